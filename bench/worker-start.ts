/**
 * Worker start benchmark: how long from spawning a worker process (`npm run worker`'s entry, as the tests start it:
 * `node --import tsx src/workers/main.ts`) until its `/healthz` says it runs, that is until it polls.
 * - Cold: the first start after an install: no cached workflow bundle (a fresh BACKROOM_BUNDLE_CACHE_DIR) and no tsx
 *   transforms (a fresh TMPDIR). Warm: a restart, both cached (the project's bundle cache, warmed by one start).
 * - Idle, and loaded: one busy-loop process per core (`node -e "for(;;){}"`, BENCH_WORKER_START_HOGS) for the whole
 *   scenario.
 * - Side by side, in alternating runs: the worker as it starts now (activity modules loaded once it polls, see
 *   src/workers/lazy-activities.ts) and with the activity modules (TensorFlow, sharp, the CPU pool's tasks) imported
 *   before it starts, as every start did before (bench/worker-start-eager.ts).
 * Besides wall time it prints the CPU time the process used until then (all its threads, from /proc on Linux): on a
 * machine shared with other work, the figure that noise moves least.
 * A warm run that finds the bundle stale (a workflow source changed meanwhile) is not counted and is run again.
 * BENCH_WORKER_START_RUNS (default 5) runs per cell; BENCH_WORKER_START_SCENARIOS picks scenarios
 * (`warm-idle,warm-loaded,cold-idle,cold-loaded`). Nothing asserts on timings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, PROJECT_ROOT } from '../test/helpers/processes';
import { startTestServer, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv, percentile } from './settings';

const SCENARIOS = ['warm-idle', 'warm-loaded', 'cold-idle', 'cold-loaded'] as const;
type Scenario = (typeof SCENARIOS)[number];

const VARIANTS = {
  /** Activity modules imported before the worker starts, as every start did before they became lazy. */
  eager: 'bench/worker-start-eager.ts',
  /** The worker as it starts now. */
  lazy: 'src/workers/main.ts',
} as const;
type Variant = keyof typeof VARIANTS;

const HEALTH_POLL_MS = 20;
const START_TIMEOUT_MS = 300_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Start {
  seconds: number;
  /** CPU seconds the worker process used until it polled (NaN where /proc is not there). */
  cpuSeconds: number;
  /** Whether the worker found its workflow bundle in the cache. */
  reusedBundle: boolean;
}

/** Spawns one worker, times it until `/healthz` answers 200, and stops it (SIGTERM, as a deploy would). */
async function timeStart(variant: Variant, address: string, env: NodeJS.ProcessEnv): Promise<Start> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', VARIANTS[variant]], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      ...env,
      TEMPORAL_ADDRESS: address,
      BACKROOM_TASK_QUEUE: uniqueTaskQueue('worker-start'),
      BACKROOM_HEALTH_PORT: String(port),
      BACKROOM_HEALTH_HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      const healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
      if (healthy) break;
      if (child.exitCode !== null) throw new Error(`The worker exited before it polled:\n${output}`);
      if (performance.now() - started > START_TIMEOUT_MS)
        throw new Error(`The worker did not poll in time:\n${output}`);
      await sleep(HEALTH_POLL_MS);
    }
    return {
      seconds: (performance.now() - started) / 1000,
      cpuSeconds: cpuSecondsOf(child.pid),
      reusedBundle: output.includes('reused from the cache'),
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** User + system CPU time of a process so far, all threads (Linux: /proc/<pid>/stat, in USER_HZ = 100 ticks). */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** One busy-loop process per `count`, until `stop()`. */
function startHogs(count: number): () => Promise<void> {
  const hogs: ChildProcess[] = Array.from({ length: count }, () =>
    spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }),
  );
  return async () => {
    await Promise.all(
      hogs.map((hog) => {
        const gone = new Promise((resolve) => hog.once('exit', resolve));
        hog.kill('SIGKILL');
        return gone;
      }),
    );
  };
}

function scenariosFromEnv(): Scenario[] {
  const raw = process.env.BENCH_WORKER_START_SCENARIOS;
  if (!raw) return [...SCENARIOS];
  const picked = raw.split(',').map((name) => name.trim());
  const unknown = picked.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`Unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  return picked as Scenario[];
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);

const ascending = (a: number, b: number) => a - b;
const median = (values: number[]) => percentile([...values].sort(ascending), 0.5);

/** Median and max wall time, median CPU time. */
function summary(starts: Start[]): number[] {
  const seconds = starts.map((start) => start.seconds);
  return [median(seconds), Math.max(...seconds), median(starts.map((start) => start.cpuSeconds))];
}

export async function workerStartBenchmark(): Promise<void> {
  const runs = intFromEnv('BENCH_WORKER_START_RUNS', 5);
  const hogCount = intFromEnv('BENCH_WORKER_START_HOGS', os.availableParallelism());
  const scenarios = scenariosFromEnv();
  console.log(
    `\nWorker start benchmark: spawn to /healthz "running" (polling), ${runs} runs per cell, ` +
      `loaded = ${hogCount} busy-loop processes on ${os.availableParallelism()} cores`,
  );
  console.log('  set with BENCH_WORKER_START_RUNS, BENCH_WORKER_START_HOGS, BENCH_WORKER_START_SCENARIOS\n');
  const env = await startTestServer();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-worker-start-'));
  const rows: string[] = [];
  try {
    // Untimed starts that fill the project's bundle cache and tsx's transform cache for the warm runs.
    for (const variant of Object.keys(VARIANTS) as Variant[]) await timeStart(variant, env.address, {});
    for (const scenario of scenarios) {
      const cold = scenario.startsWith('cold');
      const stopHogs = startHogs(scenario.endsWith('loaded') ? hogCount : 0);
      const starts: Record<Variant, Start[]> = { eager: [], lazy: [] };
      let stale = 0;
      try {
        for (let run = 0; run < runs; run++) {
          // Alternating order, so that a noisy moment hits both variants.
          const order: Variant[] = run % 2 === 0 ? ['eager', 'lazy'] : ['lazy', 'eager'];
          for (const variant of order) {
            for (let attempt = 0; ; attempt++) {
              const fresh = cold ? mkdtempSync(path.join(scratch, `${variant}-`)) : undefined;
              const start = await timeStart(
                variant,
                env.address,
                fresh ? { BACKROOM_BUNDLE_CACHE_DIR: path.join(fresh, 'bundles'), TMPDIR: fresh } : {},
              );
              if (fresh) rmSync(fresh, { recursive: true, force: true });
              if (cold || start.reusedBundle || attempt >= 2) {
                starts[variant].push(start);
                break;
              }
              stale++;
            }
          }
        }
      } finally {
        await stopHogs();
      }
      const [eager, lazy] = [summary(starts.eager), summary(starts.lazy)];
      rows.push(
        [scenario.padEnd(11), ...[...eager, ...lazy].map((value) => fixed(value).padStart(7))].join('  ') +
          fixed((lazy[0] ?? 0) / (eager[0] ?? 1)).padStart(13) +
          (stale > 0 ? `  (${stale} warm run(s) found the bundle stale and were run again)` : ''),
      );
      const list = (variant: Variant) => starts[variant].map((start) => fixed(start.seconds)).join(' ');
      console.log(`  ${scenario}: before ${list('eager')} s; now ${list('lazy')} s`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await env.teardown();
  }
  console.log('\n             before: imported at start  now: loaded once polling');
  console.log('             wall s           CPU s     wall s           CPU s     now/before');
  console.log('scenario     median      max  median    median      max  median    wall median');
  console.log('-----------  -------  -------  -------  -------  -------  -------  -----------');
  for (const row of rows) console.log(row);
}
