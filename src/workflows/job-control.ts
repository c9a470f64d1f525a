/**
 * Job control, written once: the `status` query, the `pause` / `resume` / `cancel` signals, progress from
 * activities, the UI's current-details line, job metrics and the end states. Every workflow creates one `JobControl`
 * and runs its body through {@link JobControl.run}.
 *
 * Two kinds of cancel end a job:
 * - the `cancel` signal (graceful): the job stops at its next safe point, cleans up and *returns* a partial result
 *   with state `cancelled`;
 * - Temporal's own cancel (UI button, `temporal workflow cancel`): the workflow's root scope is cancelled; the job
 *   cleans up and the run ends as Canceled.
 * A pause or cancel that arrives while an activity runs cancels that activity (it learns of it on its next
 * heartbeat), which returns a checkpoint; resume starts it again from there.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  condition,
  isCancellation,
  metricMeter,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  MAX_SNAPSHOT_ERRORS,
  MAX_STATUS_ERRORS,
  type JobCarryOver,
  type JobProgress,
  type JobState,
  type JobStatus,
  type Resumable,
  type StatusSnapshot,
} from '../shared/job-status';
import { rootCause } from '../shared/failures';
import {
  JOB_PROGRESS_KEY,
  JOB_STATE_KEY,
  JOB_TYPE_KEY,
  SEARCH_ATTRIBUTES_MEMO,
  progressFraction,
} from '../shared/search-attributes';
import { JOB_SEARCH_ATTRIBUTES, JOB_SEARCH_ATTRIBUTES_FIRST_TASK } from './patches';
import { cancelSignal, pauseSignal, progressSignal, resumeSignal, statusQuery } from '../shared/messages';

/** Thrown at a safe point after the `cancel` signal; {@link JobControl.run} turns it into a partial result. */
export class GracefulCancel extends Error {
  constructor() {
    super('Cancelled by the cancel signal');
    this.name = 'GracefulCancel';
  }
}

export interface JobOptions {
  type: string;
  progress: JobProgress;
  stage?: string;
  /** Status carried over from the previous run when the job continued as new. */
  carried?: JobCarryOver;
}

export class JobControl<Result = unknown> {
  readonly status: JobStatus<Result>;
  private pauseRequested: boolean;
  private cancelRequested = false;
  private readonly interruptibleScopes = new Set<CancellationScope>();
  private readonly interruptedScopes = new Set<CancellationScope>();
  private readonly rootScope = CancellationScope.current();
  private readonly runs: number;
  private lastMemoState: JobState | undefined;
  /** Whether the job keeps Backroom's search attributes current (it was started with them; see constructor). */
  private readonly indexed: boolean;
  private lastSnapshot = '';

  constructor(options: JobOptions) {
    const now = new Date().toISOString();
    const carried = options.carried;
    this.pauseRequested = carried?.paused ?? false;
    this.runs = (carried?.runs ?? 0) + 1;
    // A job started by a client that found Backroom's search attributes registered keeps its state there. Such a
    // client says so in the memo and the job sets them on its first task; runs started before that carried them from
    // the start, and a run continued as new carries its predecessor's. (Patched: a run recorded before, or by a
    // worker that did not upsert, replays without.)
    const info = workflowInfo();
    const carriesAttributes = info.typedSearchAttributes.get(JOB_TYPE_KEY) !== undefined;
    const setsAttributes =
      !carriesAttributes && info.memo?.[SEARCH_ATTRIBUTES_MEMO] === true && patched(JOB_SEARCH_ATTRIBUTES_FIRST_TASK);
    this.indexed = (carriesAttributes && patched(JOB_SEARCH_ATTRIBUTES)) || setsAttributes;
    this.status = {
      type: options.type,
      state: this.pauseRequested ? 'paused' : 'running',
      progress: carried?.progress ?? { ...options.progress },
      stage: options.stage ?? 'starting',
      message: '',
      succeeded: carried?.succeeded ?? 0,
      failed: carried?.failed ?? 0,
      errors: carried?.errors ?? [],
      startedAt: carried?.startedAt ?? now,
      updatedAt: now,
    };

    if (setsAttributes) {
      upsertSearchAttributes([
        { key: JOB_TYPE_KEY, value: options.type },
        { key: JOB_STATE_KEY, value: this.status.state },
        { key: JOB_PROGRESS_KEY, value: progressFraction(this.status.progress) },
      ]);
    }

    setHandler(statusQuery, () => this.status);
    setHandler(pauseSignal, () => {
      if (this.state !== 'running') return;
      this.pauseRequested = true;
      this.setState('paused');
      this.interruptActivities();
    });
    setHandler(resumeSignal, () => {
      if (!this.pauseRequested) return;
      this.pauseRequested = false;
      if (this.state === 'paused') this.setState('running');
    });
    setHandler(cancelSignal, () => {
      if (this.isTerminal || this.cancelRequested) return;
      this.cancelRequested = true;
      this.setState('cancelling');
      this.interruptActivities();
    });
    setHandler(progressSignal, (report) => {
      if (this.isTerminal) return;
      if (report.total !== undefined) this.status.progress.total = report.total;
      this.status.progress.done = report.done;
      if (report.message !== undefined) this.status.message = report.message;
      this.touch();
    });
    this.touch();
  }

  get state(): JobState {
    return this.status.state;
  }

  get isTerminal(): boolean {
    return this.state === 'completed' || this.state === 'failed' || this.state === 'cancelled';
  }

  /** True once a graceful cancel or Temporal's cancel has been asked for. */
  get isCancelling(): boolean {
    return this.cancelRequested || this.rootScope.consideredCancelled;
  }

  setStage(stage: string, message = ''): void {
    this.status.stage = stage;
    this.status.message = message;
    this.touch();
  }

  setMessage(message: string): void {
    this.status.message = message;
    this.touch();
  }

  setProgress(done: number, total = this.status.progress.total, unit = this.status.progress.unit): void {
    this.status.progress.done = done;
    this.status.progress.total = total;
    this.status.progress.unit = unit;
    this.touch();
  }

  itemSucceeded(): void {
    this.status.succeeded += 1;
    this.touch();
  }

  /** Sets the counts outright, for jobs whose counts come from a durable record rather than one call per item. */
  setCounts(succeeded: number, failed: number): void {
    this.status.succeeded = succeeded;
    this.status.failed = failed;
    this.touch();
  }

  itemFailed(item: string, reason: string, type?: string, stack?: string): void {
    this.status.failed += 1;
    this.noteError(item, reason, type, stack);
  }

  /** Counts an item that failed with `err`, recording the root cause (not Temporal's "Activity task failed"). */
  itemFailedWith(item: string, err: unknown): void {
    const cause = rootCause(err);
    this.itemFailed(item, cause.message, cause.type, cause.stack);
  }

  /**
   * Keeps an item's failure reason among the recent errors, without counting it (see {@link setCounts}); `stack`
   * only for a bug (see rootCause).
   */
  noteError(item: string, reason: string, type?: string, stack?: string): void {
    this.status.errors.push({ item, reason, ...(type !== undefined && { type }), ...(stack && { stack }) });
    if (this.status.errors.length > MAX_STATUS_ERRORS) this.status.errors.shift();
    this.touch();
  }

  /**
   * A safe point: waits while the job is paused, and throws {@link GracefulCancel} once a graceful cancel was
   * asked for (or Temporal's CancelledFailure if the run itself was cancelled).
   */
  async checkpoint(): Promise<void> {
    if (this.pauseRequested && !this.cancelRequested) {
      // The job may sit here for days: leave its status where a client can read it without a worker. (Patched:
      // a run that paused before this snapshot existed replays without it.)
      if (patched('pause-status-snapshot')) this.saveSnapshot();
      await condition(() => !this.pauseRequested || this.cancelRequested);
    }
    if (this.cancelRequested) throw new GracefulCancel();
    if (this.rootScope.consideredCancelled) {
      // Let Temporal's cancellation surface as CancelledFailure, the way the SDK reports it everywhere else.
      await condition(() => false);
    }
  }

  /**
   * Runs `call` in a scope that a pause or graceful cancel cancels. `interrupted` says whether that happened at any
   * point: a resume may already have come in by the time the activity reports back, so the current pause flag
   * cannot tell. Temporal's own cancel propagates.
   */
  private async runInterruptible<T>(call: () => Promise<T>): Promise<{ value?: T; interrupted: boolean }> {
    const scope = new CancellationScope();
    this.interruptibleScopes.add(scope);
    try {
      const value = await scope.run(call);
      return { value, interrupted: this.interruptedScopes.has(scope) };
    } catch (err) {
      if (isCancellation(err) && !this.rootScope.consideredCancelled && this.interruptedScopes.has(scope)) {
        return { interrupted: true };
      }
      throw err;
    } finally {
      this.interruptibleScopes.delete(scope);
      this.interruptedScopes.delete(scope);
    }
  }

  /**
   * Runs a resumable activity to the end across pauses: each time a pause or cancel interrupts it, the activity
   * hands back a checkpoint, and the next call (after resume) starts from there instead of from zero.
   */
  async runResumable<Checkpoint, T>(
    call: (resumeFrom: Checkpoint | undefined) => Promise<Resumable<Checkpoint, T>>,
    options: { resumeFrom?: Checkpoint; onCheckpoint?: (checkpoint: Checkpoint) => void } = {},
  ): Promise<T> {
    let from = options.resumeFrom;
    for (;;) {
      await this.checkpoint();
      const { value: outcome, interrupted } = await this.runInterruptible(() => call(from));
      if (outcome?.finished) {
        // Progress reports are throttled, so the workflow's last one can trail the end: take the activity's own.
        if (outcome.progress?.unit === this.status.progress.unit) {
          this.setProgress(Math.max(this.status.progress.done, outcome.progress.done), outcome.progress.total);
        }
        return outcome.result;
      }
      if (outcome) {
        from = outcome.checkpoint;
        options.onCheckpoint?.(outcome.checkpoint);
        this.setProgress(outcome.done);
      }
      if (!interrupted && !this.isCancelling) {
        // An activity only stops early when it was asked to; anything else is a bug worth failing loudly on.
        throw ApplicationFailure.nonRetryable('Activity stopped without finishing and without being interrupted');
      }
    }
  }

  /** Everything the next run needs to carry the status on after continue-as-new. */
  carryOver(): JobCarryOver {
    const { startedAt, progress, succeeded, failed, errors } = this.status;
    return { startedAt, progress, succeeded, failed, errors, paused: this.pauseRequested, runs: this.runs };
  }

  /**
   * Runs the job body and settles the end state. `partial` builds the result returned after a graceful cancel (and
   * recorded after Temporal's cancel); `cleanup` runs in a non-cancellable scope whenever the job is cancelled.
   */
  async run(body: () => Promise<Result>, partial: () => Result, cleanup?: () => Promise<void>): Promise<Result> {
    try {
      const result = await body();
      // A pause that came while the last activity was ending holds the job here: it never completes while it
      // reads `paused`. A cancel while held completes it, since the work is done. (Patched for recorded runs.)
      if (this.pauseRequested && !this.cancelRequested && patched('hold-completion-while-paused')) {
        await condition(() => !this.pauseRequested || this.cancelRequested);
      }
      this.finish('completed', result);
      return result;
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      if (err instanceof GracefulCancel || isCancellation(err)) {
        if (cleanup) await CancellationScope.nonCancellable(cleanup);
        const result = partial();
        this.finish('cancelled', result);
        if (err instanceof GracefulCancel) return result;
        throw err;
      }
      // The user needs the error inside Temporal's "Activity task failed" wrapper, with its type.
      const cause = rootCause(err);
      this.status.message = `${cause.type}: ${cause.message}`;
      const where = err instanceof ActivityFailure ? err.activityType : this.status.type;
      this.noteError(where, cause.message, cause.type, cause.stack);
      this.finish('failed');
      throw err;
    }
  }

  private finish(state: 'completed' | 'failed' | 'cancelled', result?: Result): void {
    if (result !== undefined) this.status.result = result;
    if (state !== 'failed') this.status.stage = state;
    this.setState(state);
    this.recordMetrics(state);
  }

  private recordMetrics(state: 'completed' | 'failed' | 'cancelled'): void {
    const tags = { job_type: this.status.type };
    metricMeter.createCounter(`backroom_jobs_${state}`, '1', `Backroom jobs that ended ${state}`).add(1, tags);
    metricMeter
      .createHistogram('backroom_job_duration', 'int', 'ms', 'Wall time of Backroom jobs from start to end')
      .record(Date.now() - Date.parse(this.status.startedAt), { ...tags, state });
  }

  private interruptActivities(): void {
    for (const scope of this.interruptibleScopes) {
      this.interruptedScopes.add(scope);
      scope.cancel();
    }
  }

  private setState(state: JobState): void {
    const changed = this.status.state !== state;
    this.status.state = state;
    this.touch();
    // The memo lets `list` show paused or gracefully cancelled jobs without querying each one.
    if (this.lastMemoState !== state) this.saveSnapshot();
    // The search attributes let visibility (and the UI's filter) find them: one upsert per change, not per tick.
    if (changed && this.indexed) {
      upsertSearchAttributes([
        { key: JOB_STATE_KEY, value: state },
        { key: JOB_PROGRESS_KEY, value: progressFraction(this.status.progress) },
      ]);
    }
  }

  /**
   * Upserts the state and a status snapshot to the memo when they changed: one history event per state change or
   * pause, never per progress tick. Clients show it (marked stale) when no worker answers the `status` query.
   */
  private saveSnapshot(): void {
    const { stage, message, progress, succeeded, failed, errors, updatedAt } = this.status;
    const snapshot: StatusSnapshot = {
      stage,
      message,
      progress: { ...progress },
      succeeded,
      failed,
      errors: errors.slice(-MAX_SNAPSHOT_ERRORS),
      updatedAt,
    };
    const key = JSON.stringify({ ...snapshot, updatedAt: undefined, state: this.state });
    if (this.lastMemoState === this.state && key === this.lastSnapshot) return;
    this.lastMemoState = this.state;
    this.lastSnapshot = key;
    upsertMemo({ backroomState: this.state, backroomStatus: snapshot });
  }

  private touch(): void {
    this.status.updatedAt = new Date().toISOString();
    setCurrentDetails(describeStatus(this.status));
  }
}

/** The one-line summary shown in the Temporal UI's "current details". */
export function describeStatus(status: JobStatus): string {
  const { done, total, unit } = status.progress;
  const percent = total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : '';
  const counts = status.failed ? ` · ${status.succeeded} ok, ${status.failed} failed` : '';
  const message = status.message ? ` · ${status.message}` : '';
  return `**${status.state}** · ${status.stage} · ${done} / ${total} ${unit}${percent}${counts}${message}`;
}
