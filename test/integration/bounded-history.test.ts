/**
 * Bounded histories on a real dev server: the time a job spends inside a long activity must not add history events
 * tick by tick (Temporal stops a run at 51,200 events). Each job type runs once short and once long; the long run may
 * add at most the activity's few progress milestones, a constant whatever its length. A job of many items continues
 * as new when Temporal suggests it, so no run's history outgrows the suggestion.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Jobs } from '../../src/client/jobs';
import { MAX_PROGRESS_REPORTS } from '../../src/activities/progress-milestones';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/devserver/dev-server';
import { ensureTemporalCli } from '../../src/devserver/temporal-cli';
import {
  createTestWorker,
  startTestStack,
  testJobs,
  uniqueTaskQueue,
  waitFor,
  type TestStack,
} from '../helpers/temporal';

/** A `progress` signal costs four events: the signal and the workflow task (scheduled, started, completed) it wakes. */
const EVENTS_PER_REPORT = 4;
/** What a long activity may add over a short one, at any length. */
const MAX_EXTRA_EVENTS = MAX_PROGRESS_REPORTS * EVENTS_PER_REPORT;

interface Measured {
  id: string;
  events: number;
  /** Seconds between the activity's start and its completion, from the history's own timestamps. */
  activitySeconds: number;
}

describe('bounded histories on a real dev server', () => {
  let stack: TestStack;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;

  before(async () => {
    stack = await startTestStack('bounded-history');
    ({ env, jobs } = stack);
  });
  after(() => stack.stop());

  /** Runs a job to its end and counts its history's events. */
  async function measure(type: string, input: Record<string, unknown>): Promise<Measured> {
    const { id } = await jobs.start(type, input);
    await jobs.result(id);
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const events = history.events ?? [];
    const timeOf = (name: 'activityTaskStartedEventAttributes' | 'activityTaskCompletedEventAttributes') => {
      const event = events.find((e) => e[name]);
      return event?.eventTime?.seconds ? Number(event.eventTime.seconds) + (event.eventTime.nanos ?? 0) / 1e9 : 0;
    };
    const activitySeconds =
      timeOf('activityTaskCompletedEventAttributes') - timeOf('activityTaskStartedEventAttributes');
    return { id, events: events.length, activitySeconds };
  }

  /** Asserts the long run added no more than the constant, and prints the figures behind it. */
  function assertBounded(type: string, short: Measured, long: Measured, minExtraSeconds = 15): void {
    const extra = long.events - short.events;
    const extraSeconds = long.activitySeconds - short.activitySeconds;
    console.log(
      `${type}: ${short.events} events after ${short.activitySeconds.toFixed(1)} s in the activity, ` +
        `${long.events} after ${long.activitySeconds.toFixed(1)} s (+${extra} in ${extraSeconds.toFixed(1)} s more); ` +
        `at most +${MAX_EXTRA_EVENTS} per activity at any length: <= ${MAX_EXTRA_EVENTS} events/h in a 1 h ` +
        `activity, <= ${(MAX_EXTRA_EVENTS / 24).toFixed(1)} events/h in a 24 h one`,
    );
    assert.ok(extraSeconds > minExtraSeconds, 'the long run spent its time in the activity');
    assert.ok(
      extra <= MAX_EXTRA_EVENTS,
      `${type}: the long run added ${extra} events (more than ${MAX_EXTRA_EVENTS}): history grows with time`,
    );
  }

  it('a simpleTest of 30 s has the events of a 5 s one plus at most its milestones', async () => {
    const [short, long] = await Promise.all([
      measure('simpleTest', { message: 'short', durationSeconds: 5 }),
      measure('simpleTest', { message: 'long', durationSeconds: 30 }),
    ]);
    assertBounded('simpleTest', short, long);
  });

  it('a long mathCalculation in small chunks has the events of a short one plus at most its milestones', async () => {
    const [short, long] = await Promise.all([
      measure('mathCalculation', { limit: 1_000_000, chunkSize: 10_000 }),
      measure('mathCalculation', { limit: 600_000_000, chunkSize: 10_000 }),
    ]);
    // How long the sieve takes depends on the machine and the Node version (Node 24 runs it in under 15 s); the
    // simpleTest above is the one whose length is fixed.
    assertBounded('mathCalculation', short, long, 5);
  });

  it("the status query and the UI's current-details line still move during a long activity", async () => {
    const { id } = await jobs.start('simpleTest', { message: 'watched', durationSeconds: 30 });
    const handle = env.client.workflow.getHandle(id);
    // The raw query (no heartbeat merge, as the UI's Query tab and current-details line see it) shows a milestone.
    const details = await waitFor(
      'a progress milestone in the workflow',
      async () => {
        const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
        const line = metadata.currentDetails ?? '';
        return /^\*\*running\*\* · counting · [1-9]\d* \/ 30 seconds/.test(line) && line;
      },
      60_000,
    );
    assert.match(details, /watched: \d+ s of 30 s/);
    await jobs.result(id);
  });
});

/** A dev server that suggests continue-as-new once a run's history reaches `events` (the default is 4 Ki events). */
async function startServerSuggestingContinueAsNewAt(events: number): Promise<TestWorkflowEnvironment> {
  process.env.BACKROOM_DATA_DIR ??= mkdtempSync(path.join(os.tmpdir(), 'backroom-test-'));
  const values = [...DEV_SERVER_DYNAMIC_CONFIG, `limit.historyCount.suggestContinueAsNew=${events}`];
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: await ensureTemporalCli() },
      extraArgs: values.flatMap((value) => ['--dynamic-config-value', value]),
    },
  });
}

describe('continue-as-new when Temporal suggests it', () => {
  const SUGGEST_AT = 200;
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let jobs: Jobs;

  before(async () => {
    env = await startServerSuggestingContinueAsNewAt(SUGGEST_AT);
    const taskQueue = uniqueTaskQueue('suggested-can');
    worker = await createTestWorker(env, taskQueue);
    running = worker.run();
    jobs = testJobs(env, taskQueue);
  });
  after(async () => {
    worker.shutdown();
    await running;
    await env.teardown();
  });

  it('a stressTest whose items outgrow the suggestion continues as new before its itemsPerRun', async () => {
    const concurrency = 2;
    // 150 items at about 6 events each would be one run of ~900 events: itemsPerRun alone would not split it. One
    // item per activity, so that each writes its own events (by default 100 such items would share one activity).
    const input = { count: 150, itemsPerRun: 2000, concurrency, rounds: 0, itemsPerActivity: 1 };
    const { id } = await jobs.start('stressTest', input);
    const result = await jobs.result<{ completed: number; failed: number; runs: number }>(id);
    assert.equal(result.completed, 150, 'every item ran once across the runs');
    assert.equal(result.failed, 0);
    const runs = await waitFor('every run in visibility', async () => {
      const found: number[] = [];
      for await (const run of env.client.workflow.list({ query: `WorkflowId = '${id}'` })) {
        found.push(run.historyLength);
      }
      return found.length === result.runs && found;
    });
    console.log(`stressTest: ${runs.length} runs of ${runs.join(', ')} events (suggestion at ${SUGGEST_AT})`);
    assert.ok(runs.length >= 3, `continued as new on the suggestion: ${runs.length} run(s)`);
    // After the suggestion a run lets its items in flight end (about 9 events each at most) and continues as new.
    const limit = SUGGEST_AT + concurrency * 9 + 10;
    for (const length of runs) assert.ok(length <= limit, `a run of ${length} events (limit ${limit})`);
  });
});
