/**
 * The root cause of a Temporal failure, in the words of whoever raised it. Temporal wraps an activity's error in an
 * `ActivityFailure` ("Activity task failed") and a workflow's in a `WorkflowFailedError`; users need the error
 * inside. Shared by workflows (which record it in the status) and clients (which show it). No I/O here.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/common';
import { isBugType } from './bug-errors';

export interface FailureSummary {
  /** The failure's own message. */
  message: string;
  /** The `ApplicationFailure` type (`FileNotFound`, `InvalidInput`...), or the kind of failure (`HeartbeatTimeout`). */
  type: string;
  /**
   * A bug's stack (a `TypeError`... see bug-errors.ts): where in the code to look. Other failures say what happened
   * in their message, and their stacks are noise to a user, so they have none here.
   */
  stack?: string;
}

/** Wrappers that only say *where* a failure happened; the cause says what it was. */
function isWrapper(err: Error): boolean {
  return (
    err instanceof ActivityFailure ||
    err instanceof ChildWorkflowFailure ||
    // WorkflowFailedError lives in @temporalio/client, which workflows cannot import: match it by name.
    err.name === 'WorkflowFailedError'
  );
}

/** Descends through wrappers to the failure that says what went wrong, with its message and type. */
export function rootCause(err: unknown): FailureSummary {
  let current: unknown = err;
  while (current instanceof Error && isWrapper(current) && current.cause instanceof Error) current = current.cause;
  if (!(current instanceof Error)) return { message: String(current), type: 'Error' };
  const type = failureType(current);
  // A bug's failure carries the bug's own stack (see bugFailure), converted or not.
  const stack = isBugType(type) ? current.stack : undefined;
  return { message: current.message, type, ...(stack && { stack }) };
}

function failureType(err: Error): string {
  if (err instanceof ApplicationFailure) return err.type ?? 'Error';
  if (err instanceof TimeoutFailure) return `${timeoutName(err.timeoutType)}Timeout`;
  return err.name;
}

/** `HEARTBEAT` → `Heartbeat`, `START_TO_CLOSE` → `StartToClose`. */
function timeoutName(type: string | undefined): string {
  return (type ?? '')
    .toLowerCase()
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}
