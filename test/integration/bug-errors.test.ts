/**
 * On a real dev server, under persistentRetry (simpleTest's countSeconds): an activity that throws a TypeError every
 * time fails its job after BUG_ATTEMPTS attempts with the bug's message, type and stack in the job's errors, instead
 * of reading "running, attempt N" forever; one that drops its connection (ECONNRESET) more often than that still
 * completes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { CountSecondsResult } from '../../src/activities/diagnostics';
import type { Jobs } from '../../src/client/jobs';
import { BUG_ATTEMPTS } from '../../src/shared/bug-errors';
import { rootCause } from '../../src/shared/failures';
import type { Resumable } from '../../src/shared/job-status';
import type { SimpleTestResult } from '../../src/workflows/diagnostics';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../helpers/temporal';

/** Attempts each job's countSeconds saw, by the job's message. */
const attempts = new Map<string, number>();

/** Stands in for countSeconds: `bug` throws a TypeError every time; `flaky` drops its connection, then counts. */
async function countSeconds(input: { message: string }): Promise<Resumable<number, CountSecondsResult>> {
  const { attempt } = Context.current().info;
  attempts.set(input.message, attempt);
  if (input.message === 'bug') {
    const notAFunction: unknown = undefined;
    // The kind of slip a refactor leaves behind: a call on something that is not a function.
    (notAFunction as () => void)();
  }
  // More failures than a bug gets: a passing fault is never cut short.
  if (attempt <= BUG_ATTEMPTS) {
    throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
  }
  return { finished: true, result: { message: input.message, secondsCounted: 1, attempts: attempt, resumedFrom: 0 } };
}

describe('bugs fail their job after BUG_ATTEMPTS attempts; passing faults still retry', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let jobs: Jobs;

  before(async () => {
    env = await startTestServer();
    const taskQueue = uniqueTaskQueue('bug-errors');
    worker = await createTestWorker(env, taskQueue, { activities: { countSeconds } });
    running = worker.run();
    jobs = testJobs(env, taskQueue);
  });

  after(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await env.teardown();
  });

  it('fails a job whose activity throws a TypeError every time, with the bug in its errors', async () => {
    const started = Date.now();
    const { id } = await jobs.start('simpleTest', { message: 'bug', durationSeconds: 1 });
    const failure = await jobs.result(id).then(
      () => assert.fail('the job completed'),
      (err: unknown) => err,
    );
    assert.equal(attempts.get('bug'), BUG_ATTEMPTS, 'failed on attempt BUG_ATTEMPTS, not before, not after');
    // Backoff 1 s, then 2 s: well under a minute, where persistentRetry alone would go on for ever.
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);

    const cause = rootCause(failure);
    assert.equal(cause.type, 'TypeError');
    assert.match(cause.message, /is not a function .*bug in Backroom, and retrying will not help/);

    const view = await jobs.status(id);
    assert.equal(view.state, 'failed');
    assert.match(view.message, /^TypeError: .*is not a function/);
    const error = view.errors.at(-1);
    assert.equal(error?.item, 'countSeconds');
    assert.equal(error?.type, 'TypeError');
    assert.match(error?.reason ?? '', /is not a function .*retrying will not help/);
    assert.match(error?.stack ?? '', /^TypeError: .*is not a function\n\s+at countSeconds .*bug-errors\.test\.ts/);
  });

  it('completes a job whose activity drops its connection more often than a bug may fail', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'flaky', durationSeconds: 1 });
    const result = await jobs.result<SimpleTestResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.attempts, BUG_ATTEMPTS + 1);
    const view = await jobs.status(id);
    assert.equal(view.state, 'completed');
    assert.deepEqual(view.errors, []);
  });
});
