/**
 * Activity profiles: every activity a workflow calls runs under one of these, and each name has one meaning. A
 * profile says two things: how a dead worker is noticed (a short activity's clock, or a missed heartbeat) and which
 * faults are worth retrying (a few tries, or until it works). Whatever the profile, an error that is a bug (a
 * `TypeError`...) fails for good on attempt BUG_ATTEMPTS (src/workers/bug-interceptor.ts): waiting never fixes code.
 *
 * test/unit/activity-timeouts.test.ts checks that none lets a job stall longer than WORKER_DEATH_STALL_LIMIT after its
 * worker dies.
 */
import { ActivityCancellationType, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';

/**
 * How long an activity may go without a heartbeat before Temporal retries it (on another worker if this one died):
 * the longest a dead worker holds a job up. Heartbeating activities beat at least every second; with eight stress
 * items hashing on one worker's main thread and a load average of 9 on 2 cores, the worst gap between one item's
 * heartbeats was 3.1 s (event-loop delay up to 4.2 s). 10 s leaves three times that. It was 15 s, until a chaos run
 * killed the worker of a cut analysis three times in 40 s, each time just as the retry began: the job waited 3 × 15 s
 * for timeouts and stood still 64 s. At 10 s a dead worker costs a job about 11 s (timeout, then the retry's start).
 */
export const HEARTBEAT_TIMEOUT = '10 seconds';

/**
 * The longest a short activity (one that does not heartbeat) may run: it must finish well within this on a loaded
 * machine, and a dead worker's attempt is retried after it.
 */
export const SHORT_ACTIVITY_TIMEOUT = '30 seconds';

/** The promise every profile keeps: a job whose worker dies waits at most this long before a retry elsewhere. */
export const WORKER_DEATH_STALL_LIMIT = '60 seconds';

/** A few tries: a bad input fails the job for good, a passing fault (a busy disk) is ridden out. */
const fewTries: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  maximumAttempts: 5,
};

/** Until it works, backing off to 30 s: the job's own records must be written for it to go on. */
const untilWritten: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' };

/** Until it works, backing off to a minute: something outside (an SMTP server, a dead worker) has to come back. */
const untilBack: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' };

/** Short by nature (a small JSON file read or written): no heartbeat, the clock tells a dead worker; a few tries. */
export const quick: ActivityOptions = { startToCloseTimeout: SHORT_ACTIVITY_TIMEOUT, retry: fewTries };

/** A health probe: quick, and tried twice (a check that keeps failing is the answer, not a fault to wait out). */
export const probe: ActivityOptions = { startToCloseTimeout: SHORT_ACTIVITY_TIMEOUT, retry: { maximumAttempts: 2 } };

/** Work that heartbeats however long it takes (one page, one probe of a video); a few tries. */
export const bounded: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: fewTries,
};

/** A batch's bookkeeping (listing, recording an item, the report): heartbeats, and retried until written. */
export const untilWrittenDown: ActivityOptions = { ...bounded, retry: untilWritten };

/** Work that waits on a server outside (one email): heartbeats, and retried until the server is reachable. */
export const untilReachable: ActivityOptions = { ...bounded, retry: untilBack };

/** A stress item or batch of items: heartbeats its place in its chain; retried quickly (200 ms), a few times. */
export const stressItem: ActivityOptions = {
  ...bounded,
  retry: { initialInterval: '200 milliseconds', maximumAttempts: 5 },
};

/**
 * Work a pause or cancel interrupts: the workflow waits for it to stop and hand back its checkpoint, and the
 * heartbeats are frequent enough for the interruption to arrive promptly. A few tries (a bad image, a bad clip).
 */
export const interruptible: ActivityOptions = {
  startToCloseTimeout: '1 day',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: fewTries,
};

/**
 * Interruptible work that only a passing fault or a dead worker stops (counting, sieving, rendering pages, decoding a
 * video, a batch of emails waiting on its server): retried until it finishes, each retry from its last checkpoint.
 */
export const interruptibleUntilDone: ActivityOptions = { ...interruptible, retry: untilBack };

/**
 * A training job's long step (rendering or validating a dataset, an epoch, an evaluation): interruptible, resumed from
 * its partial checkpoint; ten tries.
 */
export const trainingStep: ActivityOptions = { ...interruptible, retry: { ...fewTries, maximumAttempts: 10 } };
