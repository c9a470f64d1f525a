import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';

/** `env.run` with the activity's own result type (the SDK's signature infers `unknown`). */
export function runActivity<A extends unknown[], R>(
  env: MockActivityEnvironment,
  activity: (...args: A) => Promise<R>,
  ...args: A
): Promise<R> {
  return env.run(activity, ...args) as Promise<R>;
}

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };

/** A quiet activity environment (no workflow around it), with `info` over the defaults (an attempt, details). */
export const quietActivity = (info?: ConstructorParameters<typeof MockActivityEnvironment>[0]) =>
  new MockActivityEnvironment(info, quiet);

/** Asserts that `promise` rejects with a non-retryable ApplicationFailure of `type` whose message matches. */
export async function rejectsNonRetryable(promise: Promise<unknown>, type: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, type, err.message);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, message);
    return true;
  });
}

/** A quiet activity environment inside a workflow execution (`<workflowId>-run`): what a state folder records. */
export function activityOfWorkflow(workflowId: string): MockActivityEnvironment {
  return new MockActivityEnvironment({ workflowExecution: { workflowId, runId: `${workflowId}-run` } }, quiet);
}

/** For `assert.rejects`: a non-retryable StateFolderMismatch whose message matches `pattern`. */
export function isStateFolderMismatch(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) =>
    err instanceof ApplicationFailure &&
    err.nonRetryable === true &&
    err.type === 'StateFolderMismatch' &&
    pattern.test(err.message);
}
