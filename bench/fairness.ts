/**
 * Fair shares between tenants: tenant A's large batch (a stressTest of BENCH_FAIRNESS_ITEMS activities, all in the
 * queue at once) runs on one worker with BENCH_FAIRNESS_SLOTS activity slots; once BENCH_FAIRNESS_HEAD of A's items
 * have started, tenant B starts one simpleTest (1 s). Measured: B's wait (its start call to its activity's start, as
 * the worker saw it) and A's throughput (items/s from the first to the last item start), three ways:
 * - "no fairness": a dev server with `matching.enableFairness=false` (the priority matcher only), jobs with tenants;
 * - "fair, one tenant": today's dev server, A and B both tenant `a` (one fairness key: first come, first served);
 * - "fair, no tenants": today's dev server, jobs without a tenant (each job its own fairness key);
 * - "fair, tenants": today's dev server, A and B as tenants `a` and `b`.
 * Nothing asserts on timings; test/integration/priorities.test.ts checks the order.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { StartOptions } from '../src/client/jobs';
import { countSeconds, stressWorkBatch } from '../src/activities/diagnostics';
import {
  createTestWorker,
  serverDynamicConfig,
  startTestServer,
  testJobs,
  uniqueTaskQueue,
  waitFor,
} from '../test/helpers/temporal';
import { intFromEnv } from './settings';

interface Run {
  mode: string;
  bWaitMs: number;
  aItemsBeforeB: number;
  aItemsPerSecond: number;
  aSeconds: number;
}

/** The tenants A and B name in each mode (none: each job is its own share). */
const TENANTS: Record<string, [StartOptions, StartOptions]> = {
  'no fairness': [{ tenant: 'a' }, { tenant: 'b' }],
  'fair, one tenant': [{ tenant: 'a' }, { tenant: 'a' }],
  'fair, no tenants': [{}, {}],
  'fair, tenants': [{ tenant: 'a' }, { tenant: 'b' }],
};

async function oneRun(env: TestWorkflowEnvironment, mode: keyof typeof TENANTS): Promise<Run> {
  const [tenantA, tenantB] = TENANTS[mode] ?? [{}, {}];
  const items = intFromEnv('BENCH_FAIRNESS_ITEMS', 200);
  const slots = intFromEnv('BENCH_FAIRNESS_SLOTS', 2);
  const rounds = intFromEnv('BENCH_FAIRNESS_ROUNDS', 20_000);
  const head = intFromEnv('BENCH_FAIRNESS_HEAD', 10);
  const taskQueue = uniqueTaskQueue('fairness');
  const jobs = testJobs(env, taskQueue);
  const aStarts: number[] = [];
  let bStartedAt = 0;
  const worker = await createTestWorker(env, taskQueue, {
    settings: { maxConcurrentActivities: slots },
    activities: {
      stressWorkBatch: (input: Parameters<typeof stressWorkBatch>[0]) => {
        aStarts.push(performance.now());
        return stressWorkBatch(input);
      },
      countSeconds: (input: Parameters<typeof countSeconds>[0]) => {
        bStartedAt ||= performance.now();
        return countSeconds(input);
      },
    },
  });
  return worker.runUntil(async () => {
    // One item per activity: a backlog of `items` activities (by default a few dozen would share one).
    const a = await jobs.start(
      'stressTest',
      { count: items, concurrency: items, rounds, itemsPerActivity: 1 },
      tenantA,
    );
    await waitFor('the head of A’s batch', async () => aStarts.length >= head, 120_000);
    const aItemsBeforeB = aStarts.length;
    const bCalled = performance.now();
    const b = await jobs.start('simpleTest', { durationSeconds: 1 }, tenantB);
    await env.client.workflow.getHandle(b.id).result();
    await env.client.workflow.getHandle(a.id).result();
    await sleep(100);
    const first = aStarts[0] ?? 0;
    const last = aStarts[aStarts.length - 1] ?? first;
    return {
      mode,
      bWaitMs: bStartedAt - bCalled,
      aItemsBeforeB: aStarts.filter((at) => at < bStartedAt).length - aItemsBeforeB,
      aItemsPerSecond: (aStarts.length - 1) / ((last - first) / 1000),
      aSeconds: (last - first) / 1000,
    };
  });
}

export async function fairnessBenchmark(): Promise<void> {
  const repeats = intFromEnv('BENCH_FAIRNESS_REPEATS', 1);
  const items = intFromEnv('BENCH_FAIRNESS_ITEMS', 200);
  console.log(
    `\nFairness: job A's ${items}-item batch, then job B's one task, on ` +
      `${intFromEnv('BENCH_FAIRNESS_SLOTS', 2)} activity slots (${repeats} run(s) each)`,
  );
  const runs: Run[] = [];
  const old = await startTestServer({ dynamicConfig: ['matching.enableFairness=false'] });
  try {
    for (let i = 0; i < repeats; i++) runs.push(await oneRun(old, 'no fairness'));
  } finally {
    await old.teardown();
  }
  const fair = await startTestServer();
  try {
    for (let i = 0; i < repeats; i++) {
      for (const mode of ['fair, one tenant', 'fair, no tenants', 'fair, tenants']) runs.push(await oneRun(fair, mode));
    }
  } finally {
    await fair.teardown();
  }
  console.log(`server dynamic config: ${serverDynamicConfig().join(' ')}`);
  console.table(
    runs.map((run) => ({
      mode: run.mode,
      "B's wait (s)": +(run.bWaitMs / 1000).toFixed(2),
      'A items started while B waited': run.aItemsBeforeB,
      'A items/s': +run.aItemsPerSecond.toFixed(1),
      'A wall (s)': +run.aSeconds.toFixed(1),
    })),
  );
}
