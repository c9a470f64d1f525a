/**
 * Stress benchmark: what Temporal orchestration costs on this machine, measured in one run, side by side:
 *   1. the stress item's work (`chainedSha256`) in a bare loop,
 *   2. the same items as activities of one `stressTest` workflow on a real dev server and worker,
 *   3. `stressChild` workflows started one per item from the client (start latency and workflows per second).
 * 1 and 2 run interleaved `runs` times (bare, job, bare, job...), and the ratio is of their medians.
 * Sizes come from BENCH_STRESS_* variables (see `readSizes`). Nothing here asserts on timings.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chainedSha256 } from '../src/activities/diagnostics';
import { workerSettings } from '../src/config';
import type { StressTestResult, stressChild } from '../src/workflows/diagnostics';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv, percentile } from './settings';

interface Sizes {
  /** Items in the bare loop and in the stressTest workflow. */
  items: number;
  /** SHA-256 rounds per item (each item, loop or activity or workflow, does the same work). */
  rounds: number;
  /** The stressTest workflow's window of activities in flight. */
  concurrency: number;
  /** stressChild workflows started from the client. */
  workflows: number;
  /** `client.workflow.start` calls in flight at once. */
  startConcurrency: number;
  /** Interleaved runs of the bare loop and the stressTest workflow (the figures are their medians). */
  runs: number;
  /** The stressTest's `itemsPerActivity` (unset: the job's default for `rounds`). */
  itemsPerActivity?: number;
}

interface Latency {
  p50: number;
  p99: number;
}

interface Row {
  what: string;
  items: number;
  seconds: number;
  perSecond: number;
  latency?: Latency;
  latencyOf?: string;
}

// Defaults finish in about a minute on 2 cores.
function readSizes(): Sizes {
  return {
    items: intFromEnv('BENCH_STRESS_ITEMS', 2000),
    rounds: intFromEnv('BENCH_STRESS_ROUNDS', 1000),
    concurrency: intFromEnv('BENCH_STRESS_CONCURRENCY', 20),
    workflows: intFromEnv('BENCH_STRESS_WORKFLOWS', 300),
    startConcurrency: intFromEnv('BENCH_STRESS_START_CONCURRENCY', 10),
    runs: intFromEnv('BENCH_STRESS_RUNS', 3),
    ...(process.env.BENCH_STRESS_ITEMS_PER_ACTIVITY && {
      itemsPerActivity: intFromEnv('BENCH_STRESS_ITEMS_PER_ACTIVITY', 1),
    }),
  };
}

function latencyOf(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

function row(what: string, items: number, ms: number, extra: Partial<Row> = {}): Row {
  const seconds = ms / 1000;
  return { what, items, seconds, perSecond: items / seconds, ...extra };
}

/** 1. The item's work with nothing around it: the ceiling any orchestration is compared with. */
function bareLoop(sizes: Sizes): Row {
  const started = performance.now();
  for (let index = 0; index < sizes.items; index++) chainedSha256(index, sizes.rounds);
  const elapsed = performance.now() - started;
  return row('bare loop: chainedSha256', sizes.items, elapsed);
}

/** 2. One stressTest workflow running every item as an activity (continuing as new as it goes). */
async function orchestratedActivities(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  sizes: Sizes,
): Promise<{ own: Row; wall: Row }> {
  const jobs = testJobs(env, taskQueue);
  const started = performance.now();
  const { id } = await jobs.start('stressTest', {
    mode: 'activities',
    count: sizes.items,
    concurrency: sizes.concurrency,
    rounds: sizes.rounds,
    ...(sizes.itemsPerActivity && { itemsPerActivity: sizes.itemsPerActivity }),
  });
  const result = await jobs.result<StressTestResult>(id);
  const elapsed = performance.now() - started;
  if (result.outcome !== 'completed' || result.completed !== sizes.items || result.failed > 0) {
    throw new Error(`stressTest did not complete every item: ${JSON.stringify(result)}`);
  }
  const latency = { p50: result.latencyMs.p50, p99: result.latencyMs.p99 };
  return {
    own: row(
      `stressTest activities (workflow's own, ${result.runs} run${result.runs === 1 ? '' : 's'}, ` +
        `${result.itemsPerActivity ?? 1} items/activity)`,
      result.completed,
      result.wallSeconds * 1000,
      {
        perSecond: result.throughputPerSecond,
        latency,
        latencyOf: 'activity',
      },
    ),
    wall: row('stressTest activities (client wall clock)', result.completed, elapsed),
  };
}

/** 3. stressChild workflows started from the client, `startConcurrency` starts in flight, every result awaited. */
async function startedWorkflows(env: TestWorkflowEnvironment, taskQueue: string, sizes: Sizes): Promise<Row> {
  const prefix = uniqueTaskQueue('bench-stress-child');
  const startLatencies: number[] = [];
  const results: Promise<void>[] = [];
  let next = 0;
  const starter = async () => {
    while (next < sizes.workflows) {
      const index = next++;
      const before = performance.now();
      const handle = await env.client.workflow.start<typeof stressChild>('stressChild', {
        taskQueue,
        workflowId: `${prefix}-${index}`,
        args: [{ index, rounds: sizes.rounds }],
      });
      startLatencies.push(performance.now() - before);
      // Results are awaited apart from the starts, so only the starts are bounded.
      results.push(handle.result());
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: sizes.startConcurrency }, starter));
  await Promise.all(results);
  const elapsed = performance.now() - started;
  return row('stressChild workflows (start -> all results)', sizes.workflows, elapsed, {
    latency: latencyOf(startLatencies),
    latencyOf: 'workflow.start',
  });
}

/** Runs `measure` while the worker runs, so a worker that dies fails the benchmark instead of hanging it. */
async function whileWorkerRuns<T>(running: Promise<void>, measure: () => Promise<T>): Promise<T> {
  const stopped = running.then(() => {
    throw new Error('The worker stopped before the benchmark finished');
  });
  return Promise.race([measure(), stopped]);
}

async function withWorker<T>(env: TestWorkflowEnvironment, taskQueue: string, measure: () => Promise<T>): Promise<T> {
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  try {
    return await whileWorkerRuns(running, measure);
  } finally {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined); // its failure, if any, already failed the measurement
  }
}

const fixed = (value: number, digits = 1) => value.toFixed(digits);

function printHeader(sizes: Sizes): void {
  const cores = os.availableParallelism();
  const { maxConcurrentActivities, maxConcurrentWorkflowTasks } = workerSettings();
  console.log(`\nStress benchmark: client, worker and server share ${cores} cores`);
  console.log('  (client and worker in this process, Temporal dev server in a child process; same machine)');
  console.log(
    `  sizes: items=${sizes.items} rounds=${sizes.rounds} concurrency=${sizes.concurrency} ` +
      `workflows=${sizes.workflows} startConcurrency=${sizes.startConcurrency} runs=${sizes.runs}` +
      (sizes.itemsPerActivity ? ` itemsPerActivity=${sizes.itemsPerActivity}` : ''),
  );
  console.log(
    `  worker: maxConcurrentActivities=${maxConcurrentActivities} maxConcurrentWorkflowTasks=${maxConcurrentWorkflowTasks}`,
  );
  console.log(
    '  set with BENCH_STRESS_ITEMS, _ROUNDS, _CONCURRENCY, _WORKFLOWS, _START_CONCURRENCY, _RUNS, _ITEMS_PER_ACTIVITY;' +
      ' worker with BACKROOM_MAX_*\n',
  );
}

function printTable(rows: Row[]): void {
  const header = ['measure', 'items', 'seconds', 'items/s', 'p50 ms', 'p99 ms', 'latency of'];
  const cells = rows.map((r) => [
    r.what,
    String(r.items),
    fixed(r.seconds, 2),
    fixed(r.perSecond),
    r.latency ? fixed(r.latency.p50) : '',
    r.latency ? fixed(r.latency.p99) : '',
    r.latencyOf ?? '',
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

function printRatios(bare: Row, activities: Row, activitiesWall: Row, workflows: Row): void {
  const ratio = (r: Row) => fixed(r.perSecond / bare.perSecond, 3);
  console.log(
    `\nratios vs bare loop: activities ${ratio(activities)} (wall clock ${ratio(activitiesWall)}), ` +
      `workflows ${ratio(workflows)}\n`,
  );
}

/** The row of the median items/s among `rows` (the middle one; the lower middle of an even count). */
function medianRow(rows: Row[], what: string): Row {
  const sorted = [...rows].sort((a, b) => a.perSecond - b.perSecond);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!middle) throw new Error('no runs');
  return { ...middle, what: `${what} (median of ${rows.length})` };
}

export async function stressBenchmark(): Promise<void> {
  const sizes = readSizes();
  printHeader(sizes);

  const env = await startTestServer();
  try {
    const taskQueue = uniqueTaskQueue('bench-stress');
    const { bares, owns, walls, workflows } = await withWorker(env, taskQueue, async () => {
      const bares: Row[] = [];
      const owns: Row[] = [];
      const walls: Row[] = [];
      // Interleaved, so that a busy spell of a shared machine weighs on both sides alike.
      for (let run = 1; run <= sizes.runs; run++) {
        const bare = bareLoop(sizes);
        const activities = await orchestratedActivities(env, taskQueue, sizes);
        bares.push(bare);
        owns.push(activities.own);
        walls.push(activities.wall);
        console.log(
          `  run ${run}: bare loop ${fixed(bare.perSecond)} items/s (${fixed(1000 / bare.perSecond, 2)} ms/item), ` +
            `stressTest ${fixed(activities.own.perSecond)} items/s: ratio ${fixed(activities.own.perSecond / bare.perSecond, 3)}`,
        );
      }
      console.log(`  starting ${sizes.workflows} workflows...\n`);
      return { bares, owns, walls, workflows: await startedWorkflows(env, taskQueue, sizes) };
    });
    const ratios = owns.map((r, i) => r.perSecond / (bares[i]?.perSecond ?? Number.NaN)).sort((a, b) => a - b);
    const medianRatio = ratios[Math.floor((ratios.length - 1) / 2)] ?? Number.NaN;
    const bare = medianRow(bares, 'bare loop: chainedSha256');
    const own = medianRow(owns, owns[0]?.what ?? 'stressTest activities');
    const wall = medianRow(walls, 'stressTest activities (client wall clock)');
    printTable([bare, own, wall, workflows]);
    printRatios(bare, own, wall, workflows);
    console.log(
      `stress, ${fixed(1000 / bare.perSecond, 2)} ms items: stressTest ${fixed(own.perSecond)} items/s, ` +
        `bare loop ${fixed(bare.perSecond)} items/s, ratio ${fixed(own.perSecond / bare.perSecond, 3)} ` +
        `(medians of ${sizes.runs} interleaved runs; median of the runs' own ratios ${fixed(medianRatio, 3)})\n`,
    );
  } finally {
    await env.teardown();
  }
}
