/**
 * Benchmark dispatcher: `npm run bench` runs every benchmark, `npm run bench -- <name>...` only the named ones.
 * Add a benchmark with one line in BENCHMARKS.
 */
import { apiBenchmark } from './api';
import { codecBenchmark } from './codec';
import { cutsBenchmark } from './cuts';
import { emailBenchmark } from './email';
import { fairnessBenchmark } from './fairness';
import { objectStorageBenchmark } from './object-storage';
import { qualityBenchmark } from './quality';
import { restorationBenchmark } from './restoration';
import { saturationBenchmark } from './saturation';
import { stressBenchmark } from './stress';
import { trainingBenchmark } from './training';
import { workerStartBenchmark } from './worker-start';

const BENCHMARKS: Record<string, () => Promise<void>> = {
  stress: stressBenchmark,
  restoration: restorationBenchmark,
  email: emailBenchmark,
  cuts: cutsBenchmark,
  training: trainingBenchmark,
  api: apiBenchmark,
  codec: codecBenchmark,
  saturation: saturationBenchmark,
  'worker-start': workerStartBenchmark,
  fairness: fairnessBenchmark,
  quality: qualityBenchmark,
  'object-storage': objectStorageBenchmark,
};

async function main(names: string[]): Promise<number> {
  const unknown = names.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Known: ${Object.keys(BENCHMARKS).join(', ')}.`);
    return 2;
  }
  for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
    const benchmark = BENCHMARKS[name];
    if (benchmark) await benchmark();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  },
);
