/**
 * Telling bugs from passing faults, and what a bug ends as (src/shared/bug-errors.ts); how the root cause of a
 * converted bug reads, stack included (src/shared/failures.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { ActivityFailure, ApplicationFailure, CancelledFailure, RetryState } from '@temporalio/common';
import { BUG_ATTEMPTS, bugFailure, failBugsForGood, isBugError } from '../../src/shared/bug-errors';
import { rootCause } from '../../src/shared/failures';

/** An error as Node's net module raises it for a dropped connection. */
function systemError(code: string): Error {
  return Object.assign(new Error(`read ${code}`), { code, errno: -104, syscall: 'read' });
}

describe('isBugError', () => {
  it('takes the programming-error classes for bugs', () => {
    for (const err of [
      new TypeError('x is not a function'),
      new ReferenceError('y is not defined'),
      new RangeError('Invalid array length'),
      new SyntaxError('Unexpected token'),
      new EvalError('eval'),
      new URIError('URI malformed'),
    ]) {
      assert.equal(isBugError(err), true, err.name);
    }
  });

  it("takes Node's own argument errors (ERR_ codes) for bugs", () => {
    const err = Object.assign(new TypeError('The "path" argument must be of type string'), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    assert.equal(isBugError(err), true);
  });

  it('takes a bug from another realm (a vm context) for a bug', () => {
    const err: unknown = vm.runInNewContext('new TypeError("from a vm")');
    assert.equal(err instanceof Error, false, 'not an Error of this realm');
    assert.equal(isBugError(err), true);
  });

  it('leaves network and system faults to retry', () => {
    assert.equal(isBugError(systemError('ECONNRESET')), false);
    assert.equal(isBugError(systemError('ETIMEDOUT')), false);
    assert.equal(isBugError(new Error('plain error')), false);
  });

  it('leaves a bug-class error that reports a fault (a code, or a cause that is a fault) to retry', () => {
    // fetch's "TypeError: fetch failed" wraps the network error that caused it.
    assert.equal(isBugError(new TypeError('fetch failed', { cause: systemError('ECONNRESET') })), false);
    assert.equal(isBugError(Object.assign(new TypeError('socket'), { code: 'UND_ERR_SOCKET' })), false);
    // ...but a bug that wraps a bug is still a bug.
    assert.equal(isBugError(new TypeError('outer', { cause: new ReferenceError('inner') })), true);
    const loop = new TypeError('loops');
    loop.cause = loop;
    assert.equal(isBugError(loop), true, 'a cause chain that loops ends');
  });

  it('leaves ApplicationFailures and cancellations to their own flags', () => {
    assert.equal(isBugError(ApplicationFailure.retryable('busy', 'TypeError')), false);
    assert.equal(isBugError(ApplicationFailure.nonRetryable('gone', 'FileNotFound')), false);
    assert.equal(isBugError(new CancelledFailure('cancelled')), false);
    assert.equal(isBugError('a string'), false);
    assert.equal(isBugError(undefined), false);
  });
});

describe('failBugsForGood', () => {
  const bug = new TypeError('x is not a function');

  it('passes a bug through unchanged before attempt BUG_ATTEMPTS, so Temporal retries it', () => {
    for (let attempt = 1; attempt < BUG_ATTEMPTS; attempt++) {
      assert.equal(failBugsForGood(bug, 'countSeconds', attempt), bug);
    }
  });

  it('ends a bug as a non-retryable failure from attempt BUG_ATTEMPTS on', () => {
    for (const attempt of [BUG_ATTEMPTS, BUG_ATTEMPTS + 4]) {
      const failure = failBugsForGood(bug, 'countSeconds', attempt);
      assert.ok(failure instanceof ApplicationFailure);
      assert.equal(failure.nonRetryable, true);
      assert.equal(failure.type, 'TypeError');
      assert.equal(failure.stack, bug.stack, "the bug's own stack");
      assert.match(failure.message, /^x is not a function /, "the bug's own message first");
      assert.match(failure.message, /countSeconds/);
      assert.match(failure.message, new RegExp(`attempt ${attempt}`));
      assert.match(failure.message, /bug in Backroom, and retrying will not help/);
    }
  });

  it('never touches faults that pass, however many attempts they took', () => {
    const reset = systemError('ECONNRESET');
    const busy = ApplicationFailure.retryable('SMTP busy', 'SmtpBusy');
    assert.equal(failBugsForGood(reset, 'sendEmailBatch', 50), reset);
    assert.equal(failBugsForGood(busy, 'sendEmailBatch', 50), busy);
  });
});

describe('rootCause of a bug', () => {
  /** The failure as the workflow sees it: the activity's failure wrapped in "Activity task failed". */
  const wrapped = (cause: Error) =>
    new ActivityFailure('Activity task failed', 'countSeconds', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);

  it("gives the bug's message, type and the bug's own stack", () => {
    const bug = new TypeError('x is not a function');
    const cause = rootCause(wrapped(bugFailure(bug, 'countSeconds', BUG_ATTEMPTS)));
    assert.equal(cause.type, 'TypeError');
    assert.match(cause.message, /^x is not a function .*retrying will not help/);
    assert.equal(cause.stack, bug.stack);
  });

  it('gives a stack for an unconverted bug, and none for failures that are not bugs', () => {
    const bug = new RangeError('Invalid array length');
    assert.equal(rootCause(wrapped(bug)).stack, bug.stack);
    assert.equal(rootCause(wrapped(ApplicationFailure.nonRetryable('gone', 'FileNotFound'))).stack, undefined);
    assert.equal(rootCause(wrapped(systemError('ECONNRESET'))).stack, undefined);
  });
});
