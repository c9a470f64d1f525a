/**
 * The one status shape every Backroom job answers to its `status` query.
 * Shared by workflows (which build it), activities (which feed it) and clients (which show it). No I/O here.
 */
import type { EpochMetrics } from './training-inputs';

/** Lifecycle of a job as users see it. `cancelling` means a graceful cancel is on its way to a safe point. */
export type JobState = 'running' | 'paused' | 'cancelling' | 'completed' | 'failed' | 'cancelled';

export const JOB_STATES: readonly JobState[] = ['running', 'paused', 'cancelling', 'completed', 'failed', 'cancelled'];

/** States after which nothing changes any more. */
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface JobProgress {
  done: number;
  total: number;
  /** What `done` and `total` count: `seconds`, `numbers`, `checks`, `items`, `emails`... */
  unit: string;
}

/** One item that failed, and why, in words a person understands. */
export interface ItemError {
  item: string;
  reason: string;
  /** The failure's type when an error raised it (`FileNotFound`, `SmtpRefusesAll`, `HeartbeatTimeout`...). */
  type?: string;
  /** A bug's stack (`TypeError`, `ReferenceError`...: see bug-errors.ts), for whoever fixes it. */
  stack?: string;
}

export interface JobStatus<Result = unknown> {
  type: string;
  state: JobState;
  progress: JobProgress;
  stage: string;
  message: string;
  succeeded: number;
  failed: number;
  /** The most recent failures (bounded, so the query payload stays small); `failed` has the full count. */
  errors: ItemError[];
  /** ISO-8601 timestamps. */
  startedAt: string;
  updatedAt: string;
  /** Training jobs: the metrics of the latest epochs (bounded; every epoch's are in its checkpoint). */
  epochs?: EpochMetrics[];
  /** The result summary, once the job has ended (also the partial result of a cancelled job). */
  result?: Result;
  /**
   * True when no worker answered the `status` query in time and this is the last status the server knows (the
   * memo's snapshot, the running activities' heartbeats, the close event): true as of `updatedAt`, maybe not now.
   */
  stale?: boolean;
}

/**
 * What a job keeps in its memo (`backroomStatus`) when its state changes or it settles into a pause: enough for a
 * client to show the last known status when no worker can answer a query. Written at decisions, not on every tick.
 */
export type StatusSnapshot = Pick<
  JobStatus,
  'stage' | 'message' | 'progress' | 'succeeded' | 'failed' | 'updatedAt'
> & {
  /** The latest few item errors (the query has more). */
  errors: ItemError[];
};

/** How many recent item errors the memo's snapshot keeps. */
export const MAX_SNAPSHOT_ERRORS = 5;

/**
 * What long activities send as heartbeat details: where to resume (`checkpoint`) and how far they are.
 * Clients read it from the pending activities of `describe` and merge it into the status.
 */
export interface ActivityHeartbeat<Checkpoint = unknown> {
  checkpoint: Checkpoint;
  progress: JobProgress;
  message?: string;
}

/** What an activity sends to its workflow (throttled) so the `status` query shows live progress. */
export interface ProgressReport {
  done: number;
  total?: number;
  message?: string;
}

/**
 * The outcome of a resumable activity: either it finished, or it was interrupted by a pause or cancel and says
 * where to pick up again.
 */
export type Resumable<Checkpoint, Result> =
  | {
      finished: true;
      result: Result;
      /** Where the activity ended (its last report may have been throttled). */ progress?: JobProgress;
    }
  | { finished: false; checkpoint: Checkpoint; done: number };

/** Everything a job hands to its next run when it continues as new, so status and counts carry on. */
export interface JobCarryOver {
  startedAt: string;
  progress: JobProgress;
  succeeded: number;
  failed: number;
  errors: ItemError[];
  paused: boolean;
  runs: number;
}

/** How many recent item errors a status keeps. */
export const MAX_STATUS_ERRORS = 50;
