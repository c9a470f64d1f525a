/**
 * HTTP API benchmark: what `POST /jobs/{type}` → 202 costs over the bare client's `workflow.start`, measured in one
 * run, side by side, under the same concurrent load on loopback. Rounds alternate between the two so that a noisy
 * moment hits both. No worker polls the queue: the jobs only need Temporal to accept them, so both sides measure
 * the start alone, not the machine running the jobs. Sizes come from BENCH_API_* variables. Nothing asserts timings.
 */
import { performance } from 'node:perf_hooks';
import { startApi } from '../src/api/server';
import { TemporalLink } from '../src/api/temporal-link';
import { Jobs } from '../src/client/jobs';
import { startTestServer, uniqueTaskQueue } from '../test/helpers/temporal';

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

interface Measured {
  latencies: number[];
  seconds: number;
}

/** Runs `start` `count` times with `concurrency` in flight; returns each call's latency and the wall time. */
async function underLoad(
  count: number,
  concurrency: number,
  start: (index: number) => Promise<void>,
): Promise<Measured> {
  const latencies: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      const before = performance.now();
      await start(index);
      latencies.push(performance.now() - before);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/** Nearest-rank percentile. */
function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

function summary(measured: Measured[]) {
  const sorted = measured.flatMap((m) => m.latencies).sort((a, b) => a - b);
  const seconds = measured.reduce((sum, m) => sum + m.seconds, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    perSecond: sorted.length / seconds,
  };
}

export async function apiBenchmark(): Promise<void> {
  const total = intFromEnv('BENCH_API_STARTS', 600);
  const concurrency = intFromEnv('BENCH_API_CONCURRENCY', 16);
  const rounds = intFromEnv('BENCH_API_ROUNDS', 6);
  const perRound = Math.ceil(total / rounds);
  console.log(
    `\nHTTP API benchmark: ${perRound * rounds} starts each way, ${concurrency} in flight, ${rounds} alternating rounds`,
  );
  console.log('  (load generator, API and client in this process; Temporal dev server in a child process; loopback)');
  console.log('  set with BENCH_API_STARTS, BENCH_API_CONCURRENCY, BENCH_API_ROUNDS\n');

  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-api');
  // Both sides share one client connection, so the difference is the API's own work: HTTP, JSON, validation.
  const link = new TemporalLink({ connect: async () => new Jobs(env.client, taskQueue) });
  const api = await startApi({ host: '127.0.0.1', port: 0, bodyLimit: 1024 * 1024 }, { link });
  const input = { message: 'bench', durationSeconds: 60 };
  try {
    const bare = async (index: number) => {
      await env.client.workflow.start('simpleTest', { taskQueue, workflowId: `bench-bare-${index}`, args: [input] });
    };
    const viaApi = async (index: number) => {
      const response = await fetch(`${api.url}/jobs/simpleTest?id=bench-api-${index}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      if (response.status !== 202)
        throw new Error(`POST /jobs/simpleTest answered ${response.status}: ${await response.text()}`);
      await response.body?.cancel();
    };
    // Warm up both paths (connections, JIT) before measuring.
    await underLoad(concurrency * 2, concurrency, (index) => bare(-1 - index));
    await underLoad(concurrency * 2, concurrency, (index) => viaApi(-1 - index));
    const bareRuns: Measured[] = [];
    const apiRuns: Measured[] = [];
    for (let round = 0; round < rounds; round++) {
      const offset = round * perRound;
      bareRuns.push(await underLoad(perRound, concurrency, (index) => bare(offset + index)));
      apiRuns.push(await underLoad(perRound, concurrency, (index) => viaApi(offset + index)));
      process.stdout.write(`  round ${round + 1}/${rounds} done\r`);
    }
    const b = summary(bareRuns);
    const a = summary(apiRuns);
    const fixed = (value: number, digits = 1) => value.toFixed(digits);
    console.log('measure                          starts  p50 ms  p99 ms  starts/s');
    console.log('-------------------------------  ------  ------  ------  --------');
    const line = (what: string, s: typeof a) =>
      console.log(
        `${what.padEnd(31)}  ${String(s.count).padStart(6)}  ${fixed(s.p50).padStart(6)}  ${fixed(s.p99).padStart(6)}  ${fixed(s.perSecond).padStart(8)}`,
      );
    line('client workflow.start (bare)', b);
    line('POST /jobs/simpleTest -> 202', a);
    console.log(
      `\nratios API / bare: p50 ${fixed(a.p50 / b.p50, 2)} (+${fixed(a.p50 - b.p50)} ms), ` +
        `p99 ${fixed(a.p99 / b.p99, 2)} (+${fixed(a.p99 - b.p99)} ms), throughput ${fixed(a.perSecond / b.perSecond, 2)}\n`,
    );
  } finally {
    await api.close();
    await env.teardown();
  }
}
