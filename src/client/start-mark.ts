/**
 * What makes a start safe to repeat. Every try of one start asks for the same workflow id and carries the same mark
 * in the workflow's memo: a fingerprint of the validated input, a digest of the idempotency key (when there is one)
 * and the start's own request id. A try that finds the id taken reads the mark of the job it found and tells "this
 * start's own (an earlier try whose answer was lost)" from "the job this key already started" and "another job".
 */
import { hash, randomUUID } from 'node:crypto';
import { isGrpcServiceError } from '@temporalio/client';
import { stringify } from 'safe-stable-stringify';

/** The memo field that holds a job's {@link StartMark}. */
export const START_MARK_MEMO = 'backroomStart';

export interface StartMark {
  /** A fingerprint of the job type and its validated input (defaults filled in, keys in a stable order). */
  input: string;
  /** This start's own id, the same on every try of it. */
  request: string;
  /** A digest of the idempotency key (the key itself stays out of Temporal). */
  key?: string;
}

// One-shot hashing: the same SHA-256 as createHash(...).update(...).digest(), without a Hash object per call.
const digest = (text: string, length: number) => hash('sha256', text, 'hex').slice(0, length);

/** The mark a new start carries on all its tries. */
export function newStartMark(type: string, args: Record<string, unknown>, idempotencyKey?: string): StartMark {
  return {
    input: digest(stringify({ type, args }) ?? '', 32),
    request: randomUUID(),
    ...(idempotencyKey !== undefined && { key: keyDigest(idempotencyKey) }),
  };
}

function keyDigest(key: string): string {
  return digest(`backroom idempotency key ${key}`, 24);
}

/** The job id that an idempotency key names: `<idPrefix>-key-<digest>`, so every start with the key meets one id. */
export function keyedJobId(idPrefix: string, key: string): string {
  return `${idPrefix}-key-${keyDigest(key)}`;
}

/** The mark in a job's memo (none for jobs started some other way, e.g. by the `temporal` CLI). */
export function startMarkOf(memo: Record<string, unknown> | undefined): StartMark | undefined {
  const mark = memo?.[START_MARK_MEMO] as Partial<StartMark> | undefined;
  return typeof mark?.input === 'string' && typeof mark.request === 'string' ? (mark as StartMark) : undefined;
}

/**
 * gRPC's CANCELLED (1), DEADLINE_EXCEEDED (4) and UNAVAILABLE (14): Temporal did not answer, so a request may or
 * may not have taken effect, and asking again may help.
 */
const NO_ANSWER_CODES = new Set<number>([1, 4, 14]);

/** Whether an error (or one of its causes) says that Temporal did not answer. */
export function isNoAnswer(err: unknown): boolean {
  for (let cause = err, depth = 0; cause && depth < 6; depth++) {
    if (isGrpcServiceError(cause) && NO_ANSWER_CODES.has(cause.code)) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}
