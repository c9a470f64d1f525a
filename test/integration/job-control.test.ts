/**
 * Job control against a real Temporal dev server and a real worker: status while running, pause holds progress,
 * resume continues, graceful cancel returns a partial result, Temporal's cancel cleans up, and a worker stopped
 * mid-job resumes from the heartbeat on the next worker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { JobEndedError, type Jobs } from '../../src/client/jobs';
import {
  createTestWorker,
  sleep,
  startTestServer,
  startTestStack,
  testJobs,
  uniqueTaskQueue,
  waitFor,
  type TestStack,
} from '../helpers/temporal';

describe('job control on a real dev server', () => {
  let stack: TestStack;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let taskQueue: string;

  before(async () => {
    stack = await startTestStack('job-control');
    ({ env, jobs, taskQueue } = stack);
  });
  after(() => stack.stop());

  it('refuses to steer a job terminated before it recorded its end, as failed (not as running)', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'terminate me', durationSeconds: 30 });
    await env.client.workflow.getHandle(id).terminate('terminated by the test');
    await assert.rejects(jobs.pause(id), (err: unknown) => err instanceof JobEndedError && err.state === 'failed');
  });

  it('reports running progress, holds it while paused, continues on resume and completes', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'pause me', durationSeconds: 6 });
    const running = await waitFor('progress of 2 s', async () => {
      const view = await jobs.status(id);
      return view.progress.done >= 2 && view;
    });
    assert.equal(running.state, 'running');
    assert.equal(running.progress.unit, 'seconds');
    assert.equal(running.progress.total, 6);

    await jobs.pause(id);
    const paused = await waitFor('the paused activity to stop', async () => {
      const view = await jobs.status(id);
      return view.state === 'paused' && view.activities.length === 0 && view;
    });
    await sleep(2500);
    const stillPaused = await jobs.status(id);
    assert.equal(stillPaused.state, 'paused');
    assert.equal(stillPaused.progress.done, paused.progress.done, 'progress does not move while paused');
    assert.ok(paused.progress.done < 6);

    await jobs.resume(id);
    const result = await jobs.result<{ outcome: string; secondsCounted: number; resumedFrom: number }>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.secondsCounted, 6);
    assert.equal(result.resumedFrom, paused.progress.done, 'resume continued from the checkpoint, not from zero');
    const final = await jobs.status(id);
    assert.equal(final.state, 'completed');
    assert.equal(final.progress.done, 6);
  });

  it('a resume that arrives before the paused activity has stopped still finishes the job', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'quick', durationSeconds: 5 });
    await waitFor('1 s of progress', async () => (await jobs.status(id)).progress.done >= 1);
    // The activity learns of the pause on its next heartbeat; the resume is already in by then.
    await jobs.pause(id);
    await jobs.resume(id);
    const result = await jobs.result<{ outcome: string; secondsCounted: number }>(id);
    assert.deepEqual([result.outcome, result.secondsCounted], ['completed', 5]);
  });

  it('pausing then cancelling a paused job ends it with a partial result', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'x', durationSeconds: 60 });
    await waitFor('1 s of progress', async () => (await jobs.status(id)).progress.done >= 1);
    await jobs.pause(id);
    await waitFor('paused', async () => (await jobs.status(id)).state === 'paused');
    await jobs.cancel(id);
    const result = await jobs.result<{ outcome: string; secondsCounted: number }>(id);
    assert.equal(result.outcome, 'cancelled');
    assert.ok(result.secondsCounted >= 1 && result.secondsCounted < 60);
  });

  it('graceful cancel stops mid-activity and returns the partial result with state cancelled', async () => {
    const { id } = await jobs.start('mathCalculation', { limit: 3_000_000_000, chunkSize: 1_000_000 });
    await waitFor('sieving under way', async () => (await jobs.status(id)).progress.done > 0);
    await jobs.cancel(id);
    const result = await jobs.result<{ outcome: string; numbersChecked: number; primeCount?: number }>(id);
    assert.equal(result.outcome, 'cancelled');
    assert.ok(result.numbersChecked > 0 && result.numbersChecked < 3_000_000_000, String(result.numbersChecked));
    assert.ok((result.primeCount ?? 0) > 0, 'the partial result carries the primes found so far');
    const view = await jobs.status(id);
    assert.equal(view.state, 'cancelled');
    assert.equal(view.execution, 'COMPLETED');
    assert.deepEqual(view.result, result);
    const [entry] = await jobs.list({ state: 'cancelled', type: 'mathCalculation' });
    assert.equal(entry?.id, id, 'list finds the gracefully cancelled job by state');
  });

  it("Temporal's own cancel ends the run as Canceled after stopping its activity", async () => {
    const { id } = await jobs.start('simpleTest', { message: 'x', durationSeconds: 60 });
    await waitFor('1 s of progress', async () => (await jobs.status(id)).progress.done >= 1);
    await jobs.cancel(id, { hard: true });
    await assert.rejects(jobs.result(id), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof CancelledFailure);
      return true;
    });
    const view = await jobs.status(id);
    assert.equal(view.execution, 'CANCELLED');
    assert.equal(view.state, 'cancelled');
    assert.deepEqual(view.activities, [], 'no activity is left running');
  });

  it('a job whose input is invalid fails at once with a non-retryable error naming the field', async () => {
    const handle = await env.client.workflow.start('simpleTest', {
      taskQueue,
      workflowId: `bad-input-${Date.now()}`,
      args: [{ message: 'x', durationSeconds: -1 }],
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'InvalidInput');
      assert.equal(err.cause.nonRetryable, true);
      assert.match(err.cause.message, /durationSeconds: Too small/);
      return true;
    });
  });

  it('refuses to start a second job with the id of a running one', async () => {
    const { id } = await jobs.start('simpleTest', { durationSeconds: 30 }, { id: `dup-${Date.now()}` });
    await assert.rejects(jobs.start('simpleTest', { durationSeconds: 30 }, { id }), /already running/);
    await jobs.cancel(id);
  });
});

describe('a worker stopped mid-job', () => {
  let env: TestWorkflowEnvironment;
  const taskQueue = uniqueTaskQueue('restart');

  before(async () => {
    env = await startTestServer();
  });
  after(async () => {
    await env.teardown();
  });

  it('leaves the job to the next worker, which resumes from the last heartbeat', async () => {
    const jobs = testJobs(env, taskQueue);
    const limit = 2_000_000_000;
    const first = await createTestWorker(env, taskQueue);
    const firstRun = first.run();
    const { id } = await jobs.start('mathCalculation', { limit, chunkSize: 1_000_000 });
    const before = await waitFor(
      '10% sieved',
      async () => {
        const view = await jobs.status(id);
        return view.progress.done > limit / 10 && view;
      },
      120_000,
    );
    first.shutdown();
    await firstRun;

    const second = await createTestWorker(env, taskQueue);
    const result = await second.runUntil(
      jobs.result<{ outcome: string; primeCount: number; resumedFrom: number; attempts: number }>(id),
    );
    assert.equal(result.outcome, 'completed');
    assert.ok(result.attempts >= 2, 'the activity was retried on the new worker');
    assert.ok(
      result.resumedFrom >= before.progress.done - 1_000_000,
      `resumed from ${result.resumedFrom}, the heartbeat had reached ${before.progress.done}`,
    );
    // pi(2e9) = 98,222,287: the resumed run's answer is exact.
    assert.equal(result.primeCount, 98_222_287);
  });
});
