/**
 * Errors that are bugs, told apart from faults that pass. A `TypeError` ("x is not a function") fails the same way
 * on every retry, so under a retry-until-it-works policy its job would read "running, attempt N" forever; an
 * `ECONNRESET` may be gone on the next attempt. The worker (src/workers/bug-interceptor.ts) lets a bug retry a few
 * times, then fails its activity for good with the bug's own message, type and stack. Shared because clients and
 * workflows show a bug's stack (see failures.ts). Pure: no I/O, safe in workflow code.
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';

/** The classes JavaScript raises for mistakes in code (a call on undefined, a bad argument), not for the world. */
export const BUG_ERROR_NAMES: readonly string[] = [
  'TypeError',
  'ReferenceError',
  'RangeError',
  'SyntaxError',
  'EvalError',
  'URIError',
];

/**
 * The attempt from which an activity that throws a bug fails for good, whatever its retry policy. A bug that a
 * passing state set off (a file read mid-write, a race) may pass on a retry or two, 1 s and 2 s later; one still
 * there on the third attempt is in the code, and more attempts would only hide it behind "running".
 */
export const BUG_ATTEMPTS = 3;

/** True for the type of a failure that {@link bugFailure} made, or that a bug raised before it was converted. */
export function isBugType(type: string | undefined): boolean {
  return type !== undefined && BUG_ERROR_NAMES.includes(type);
}

interface ErrorLike {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  cause?: unknown;
}

/** Duck-typed: errors from a `vm` context or another realm fail `instanceof Error`. */
function isErrorLike(value: unknown): value is ErrorLike {
  if (typeof value !== 'object' || value === null) return false;
  const { name, message } = value as Partial<ErrorLike>;
  return typeof name === 'string' && typeof message === 'string';
}

/** How far down a cause chain to look: far enough for any real wrapping, and a chain may loop. */
const MAX_CAUSE_DEPTH = 8;

/**
 * True when `err` is a programming error: one of {@link BUG_ERROR_NAMES}, not raised on behalf of the world. Not
 * bugs: `ApplicationFailure`s (they carry their own retryable flag); errors with a system or library code
 * (`ECONNRESET`, undici's `UND_ERR_SOCKET`; Node's own `ERR_INVALID_ARG_TYPE` is a bug); and errors that wrap a
 * cause that is not a bug (fetch's `TypeError: fetch failed` wraps the network error that caused it).
 */
export function isBugError(err: unknown): err is Error {
  if (!isErrorLike(err)) return false;
  let current: unknown = err;
  // Bounded: a cause chain may loop back on itself.
  for (let depth = 0; isErrorLike(current) && depth < MAX_CAUSE_DEPTH; depth++) {
    if (!isBugItself(current)) return false;
    current = current.cause;
  }
  return true;
}

/** The error alone, without its cause: a bug's class, and no code that names a fault of the world. */
function isBugItself(err: ErrorLike): boolean {
  if (err instanceof TemporalFailure || !isBugType(err.name)) return false;
  return typeof err.code !== 'string' || err.code.startsWith('ERR_');
}

/**
 * The failure an activity ends with once a bug has lasted to {@link BUG_ATTEMPTS}: non-retryable, typed by the
 * bug's class, with the bug's message first and what it means after, and the bug's own stack (the Temporal UI
 * shows it; `rootCause` hands it to the job's errors). Made from the bug itself rather than wrapping it: a plain
 * error as a failure's cause reaches the workflow as a bare `TemporalFailure`, its class lost.
 */
export function bugFailure(err: Error, activityType: string, attempt: number): ApplicationFailure {
  return ApplicationFailure.fromError(err, {
    message:
      `${err.message} (a ${err.name} in the ${activityType} activity, still there on attempt ${attempt}: ` +
      'this looks like a bug in Backroom, and retrying will not help)',
    type: err.name,
    nonRetryable: true,
  });
}

/**
 * What an activity attempt that threw `err` should end with: the error unchanged (Temporal retries it by the
 * activity's policy) unless it is a bug on attempt {@link BUG_ATTEMPTS} or later, which ends as {@link bugFailure}.
 */
export function failBugsForGood(err: unknown, activityType: string, attempt: number): unknown {
  if (attempt < BUG_ATTEMPTS || !isBugError(err)) return err;
  return bugFailure(err, activityType, attempt);
}
