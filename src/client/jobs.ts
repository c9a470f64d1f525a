/**
 * The typed jobs API: start a job by type with validated input, read its status (the workflow's `status` query
 * merged with the live heartbeat details of its running activities), pause, resume, cancel, wait for the result,
 * list and watch. The CLI and the HTTP API are thin layers on this.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Client,
  type WorkflowExecutionDescription,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowExecutionInfo,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers';
import type { SignalDefinition } from '@temporalio/common';
import {
  decodeFromPayloadsAtIndex,
  decodeOptionalFailureToOptionalError,
} from '@temporalio/common/lib/internal-non-workflow';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import {
  JOB_CATALOG,
  JobInputError,
  inputWarnings,
  isJobType,
  parseJobInput,
  type JobDefinition,
  type JobType,
} from '../shared/job-catalog';
import {
  JOB_STATES,
  TERMINAL_STATES,
  type ActivityHeartbeat,
  type JobProgress,
  type JobState,
  type JobStatus,
  type StatusSnapshot,
} from '../shared/job-status';
import { rootCause } from '../shared/failures';
import { cancelSignal, pauseSignal, resumeSignal, statusQuery } from '../shared/messages';
import { PRIORITY_KEYS, priorityName, tenantProblem, type PriorityName } from '../shared/names';
import { confineDataPaths } from '../shared/data-path';
import { jobDetails, jobSummary } from '../shared/job-summary';
import { BACKROOM_SEARCH_ATTRIBUTES, JOB_STATE_KEY, SEARCH_ATTRIBUTES_MEMO } from '../shared/search-attributes';
import { taskQueue as configuredTaskQueue } from '../config';
import { locateInDataDir } from '../data-paths';
import { connectClient } from './connection';
import { START_MARK_MEMO, isNoAnswer, keyedJobId, newStartMark, startMarkOf, type StartMark } from './start-mark';

export { JobInputError };

// A path outside the data dir is refused before the job starts (the activities would refuse it later anyway).
confineDataPaths((value) => {
  const located = locateInDataDir(value);
  return 'problem' in located ? located.problem : undefined;
});

/** The job id is already taken by a running job (starting the same job twice is refused, not duplicated). */
export class JobAlreadyRunningError extends Error {
  constructor(readonly id: string) {
    super(`A job with id "${id}" is already running. Watch it with \`backroom watch ${id}\`, or pick another --id.`);
    this.name = 'JobAlreadyRunningError';
  }
}

/** The idempotency key already started a job, with another input or job type: a key names one start. */
export class IdempotencyKeyReusedError extends Error {
  constructor(readonly id: string) {
    super(
      `This idempotency key already started job "${id}" with another input (or job type). Send the same input to ` +
        'get that job again, or use a new key for a new job.',
    );
    this.name = 'IdempotencyKeyReusedError';
  }
}

/**
 * Temporal did not answer any try of a start, so whether the job exists is unknown: it may still start. Trying
 * again with the same idempotency key gets this job if it did, and never a second one.
 */
export class StartUnconfirmedError extends Error {
  constructor(
    readonly id: string,
    options: { cause: unknown },
  ) {
    super(
      `Temporal did not confirm the start of job "${id}" (${options.cause instanceof Error ? options.cause.message : String(options.cause)}); it may still start. ` +
        `Look for it by that id, or try again with the same idempotency key (a retry with the key never makes a second job).`,
      options,
    );
    this.name = 'StartUnconfirmedError';
  }
}

export class JobNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`No job with id "${id}". \`backroom list\` shows the recent ones.`);
    this.name = 'JobNotFoundError';
  }
}

/** The job exists but has ended, so it cannot be paused, resumed or cancelled any more. */
export class JobEndedError extends Error {
  constructor(
    readonly id: string,
    readonly state: JobState,
  ) {
    super(`The job "${id}" has already ended (${state}); there is nothing left to pause, resume or cancel.`);
    this.name = 'JobEndedError';
  }
}

/** A start option that Temporal would refuse (a tenant too long, a weight out of range); nothing was started. */
export class InvalidStartOptionError extends Error {
  constructor(message: string) {
    super(`${message}; nothing was started.`);
    this.name = 'InvalidStartOptionError';
  }
}

export class UnknownJobTypeError extends Error {
  constructor(readonly jobType: string) {
    super(`Unknown job type "${jobType}". Known types: ${Object.keys(JOB_CATALOG).join(', ')}.`);
    this.name = 'UnknownJobTypeError';
  }
}

export interface StartOptions {
  id?: string;
  priority?: PriorityName;
  /**
   * The tenant (customer, team) the job works for: Temporal's fairness key, so a tenant's backlog shares the
   * workers with other tenants' jobs of the same priority instead of holding them up (1–64 bytes).
   */
  tenant?: string;
  /** The tenant's share relative to others (Temporal's fairness weight, 0.001–1000, default 1). */
  tenantWeight?: number;
  /** Names this start: every start with the same key and input gets the same job (see {@link Jobs.start}). */
  idempotencyKey?: string;
  /** How many times to try when Temporal does not answer (default 3); each try asks for the very same job. */
  attempts?: number;
  /** A deadline for each try; without it, the caller's deadline (if any) holds for all of them. */
  attemptTimeoutMs?: number;
}

export interface StartedJob {
  id: string;
  runId: string;
  type: JobType;
}

/** A started job, and whether this start created it (false: an earlier start with the same key did). */
export interface StartResult extends StartedJob {
  created: boolean;
  /** What the user should change in the input (a deprecated field name), when anything. */
  warnings?: string[];
}

/** A start decided once (its id and mark), so that every try of it asks for the same job. */
interface PendingStart {
  type: JobType;
  args: Record<string, unknown>;
  id: string;
  mark: StartMark;
  priority: PriorityName;
  tenant?: string;
  tenantWeight?: number;
}

/** The priority a job runs with (its activities and child workflows inherit it), as Temporal has it. */
export interface JobPriorityView {
  /** `high`, `default` or `low`; absent for a key Backroom does not name (2 or 4, set by another client). */
  level?: PriorityName;
  /** Temporal's priority key: 1 (most urgent) to 5. */
  key: number;
  /** The fairness key, when the job names a tenant (without one, the job is its own share: see ownFairnessKey). */
  tenant?: string;
  tenantWeight?: number;
}

/**
 * The fairness key of a job that names no tenant: its own id (hashed when longer than Temporal's 64 bytes). Each
 * such job is then its own share of the queue, so a job with one task waiting (a small job, or a dead worker's
 * activity waiting for its retry) goes out at the next free slot instead of behind another job's whole backlog.
 */
export function ownFairnessKey(jobId: string): string {
  if (Buffer.byteLength(jobId) <= 64) return jobId;
  return `job-${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`;
}

/** The Priority a start sends to Temporal: the tenant as fairness key, or the job's own key without one. */
export function temporalPriority(
  jobId: string,
  options: Pick<StartOptions, 'priority' | 'tenant' | 'tenantWeight'>,
): {
  priorityKey: number;
  fairnessKey: string;
  fairnessWeight?: number;
} {
  return {
    priorityKey: PRIORITY_KEYS[options.priority ?? 'default'],
    fairnessKey: options.tenant ?? ownFairnessKey(jobId),
    ...(options.tenantWeight !== undefined && { fairnessWeight: options.tenantWeight }),
  };
}

/**
 * A job's priority as clients show it, from what Temporal describes (0 or empty fields: the defaults). A fairness
 * key that is the job's own (see {@link ownFairnessKey}) is no tenant.
 */
export function priorityView(
  jobId: string,
  priority: { priorityKey?: number; fairnessKey?: string; fairnessWeight?: number } = {},
): JobPriorityView {
  const key = priority.priorityKey || PRIORITY_KEYS.default;
  const level = priorityName(key);
  const tenant = priority.fairnessKey && priority.fairnessKey !== ownFairnessKey(jobId) ? priority.fairnessKey : '';
  return {
    ...(level && { level }),
    key,
    ...(tenant && { tenant }),
    ...(tenant && priority.fairnessWeight && { tenantWeight: priority.fairnessWeight }),
  };
}

/** A running activity of a job, with the progress its last heartbeat carried. */
export interface ActivityView {
  type: string;
  attempt: number;
  /** Temporal's pending-activity state: `SCHEDULED` (waiting for a worker), `STARTED`, `CANCEL_REQUESTED`... */
  state: string;
  progress?: JobProgress;
  message?: string;
  lastHeartbeatAt?: string;
  /** Why the previous attempt failed: the root cause's message and type. */
  lastFailure?: string;
  lastFailureType?: string;
  /** The identity of the worker that ran the last attempt. */
  lastWorker?: string;
  /** When the next attempt may start (after the retry backoff). */
  nextAttemptAt?: string;
  /** Set while the activity waits for its next attempt: what happened and when the next attempt starts. */
  waiting?: string;
}

/** A job's status as clients show it. */
export interface JobView extends JobStatus {
  id: string;
  runId: string;
  /** Temporal's own execution status (RUNNING, COMPLETED, CANCELLED, ...). */
  execution: WorkflowExecutionStatusName;
  /** The priority and tenant the job was started with. */
  priority: JobPriorityView;
  activities: ActivityView[];
}

/** One page of {@link Jobs.listPage}; pass `nextPageToken` back for the next one. */
export interface JobListPage {
  jobs: JobListEntry[];
  nextPageToken?: string;
}

export interface JobListFilter {
  state?: JobState;
  type?: string;
  limit?: number;
}

export interface JobListEntry {
  id: string;
  runId: string;
  type: string;
  state: JobState;
  execution: WorkflowExecutionStatusName;
  startedAt: string;
  closedAt?: string;
}

/** How long {@link Jobs.status} waits for a worker to answer the `status` query before showing the last known status. */
const QUERY_TIMEOUT_MS = 10_000;
/** How long to wait for a closed job's close event (the server has it; this bounds a slow server). */
const CLOSE_EVENT_TIMEOUT_MS = 10_000;

export interface StatusOptions {
  /** How long to wait for the query's answer (default 10 s); live views use less and show the last known status. */
  queryTimeoutMs?: number;
}

/** The job state that Temporal's execution status implies (when no query answers). */
export function executionToState(status: WorkflowExecutionStatusName): JobState {
  switch (status) {
    case 'COMPLETED':
      return 'completed';
    case 'CANCELLED':
      return 'cancelled';
    case 'RUNNING':
    case 'CONTINUED_AS_NEW':
      return 'running';
    default:
      return 'failed';
  }
}

/** The state a job shows from the server's record alone: the memo carries paused, cancelling and graceful endings. */
function recordedState(execution: Pick<WorkflowExecutionInfo, 'memo' | 'status'>): JobState {
  const running = execution.status.name === 'RUNNING';
  const fromMemo = memoState(execution.memo);
  return running
    ? fromMemo && !TERMINAL_STATES.includes(fromMemo)
      ? fromMemo
      : 'running'
    : fromMemo && TERMINAL_STATES.includes(fromMemo)
      ? fromMemo
      : executionToState(execution.status.name);
}

/** How a visibility record shows in a job list. */
function listEntry(execution: WorkflowExecutionInfo): JobListEntry {
  return {
    id: execution.workflowId,
    runId: execution.runId,
    type: execution.type,
    state: recordedState(execution),
    execution: execution.status.name,
    startedAt: execution.startTime.toISOString(),
    ...(execution.closeTime && { closedAt: execution.closeTime.toISOString() }),
  };
}

/** How a closed execution ended, as users see it (a graceful cancel completes the workflow as `cancelled`). */
function endedState(description: Pick<WorkflowExecutionInfo, 'memo' | 'status'>): JobState {
  // The memo says `running` from the start: a job terminated (or timed out) before it recorded its end is failed.
  return recordedState(description);
}

function memoState(memo: Record<string, unknown> | undefined): JobState | undefined {
  const state = memo?.backroomState;
  return typeof state === 'string' && (JOB_STATES as string[]).includes(state) ? (state as JobState) : undefined;
}

/** The status snapshot a job keeps in its memo at each state change and pause (absent on older jobs). */
function memoSnapshot(memo: Record<string, unknown> | undefined): StatusSnapshot | undefined {
  const snapshot = memo?.backroomStatus as Partial<StatusSnapshot> | undefined;
  return snapshot && typeof snapshot === 'object' && snapshot.progress ? (snapshot as StatusSnapshot) : undefined;
}

/** `23:24:36 UTC`. */
function clockTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

/**
 * What an activity waiting for its next attempt is waiting for, in words: "worker lost at 23:24:36 (heartbeat
 * timeout); attempt 2 starts when a worker picks it up". Undefined while an attempt runs or none has failed yet.
 */
export function describeRetryWait(
  activity: Pick<ActivityView, 'attempt' | 'state' | 'lastFailure' | 'lastFailureType' | 'lastWorker'>,
  times: { lastAttemptEndedAt?: number; lastHeartbeatAt?: number; nextAttemptAt?: number },
  now = Date.now(),
): string | undefined {
  if (activity.state !== 'SCHEDULED' || activity.attempt < 2) return undefined;
  const endedAt = times.lastAttemptEndedAt ?? times.lastHeartbeatAt;
  const at = endedAt === undefined ? '' : ` at ${clockTime(endedAt)}`;
  const worker = activity.lastWorker ? ` (${activity.lastWorker})` : '';
  const what =
    activity.lastFailureType === 'HeartbeatTimeout'
      ? `worker${worker} lost${at} (heartbeat timeout)`
      : activity.lastFailureType?.endsWith('Timeout')
        ? `attempt ${activity.attempt - 1} timed out${at} (${activity.lastFailureType})`
        : `attempt ${activity.attempt - 1} failed${at}: ${activity.lastFailure ?? 'no reason given'}` +
          (activity.lastFailureType ? ` (${activity.lastFailureType})` : '');
  const next =
    times.nextAttemptAt !== undefined && times.nextAttemptAt > now
      ? `starts at ${clockTime(times.nextAttemptAt)}, when a worker picks it up`
      : 'starts when a worker picks it up';
  return `${what}; attempt ${activity.attempt} ${next}`;
}

/** `PENDING_ACTIVITY_STATE_SCHEDULED` → `SCHEDULED`. */
function pendingState(state: PendingActivity['state']): string {
  const name = state === null || state === undefined ? undefined : temporal.api.enums.v1.PendingActivityState[state];
  return (name ?? 'UNSPECIFIED').replace(/^PENDING_ACTIVITY_STATE_/, '');
}

/**
 * Folds the running activities into a job's view: a heartbeat is fresher than the workflow's view when it counts in
 * the job's own unit (or the view has no progress at all), and an activity waiting for its retry says so.
 */
function mergeActivities(view: JobView): void {
  if (view.state !== 'running') return;
  for (const activity of view.activities) {
    if (activity.progress && (activity.progress.unit === view.progress.unit || !view.progress.unit)) {
      if (!view.progress.unit) view.progress = { ...activity.progress };
      view.progress.done = Math.max(view.progress.done, activity.progress.done);
      if (activity.message) view.message = activity.message;
    }
  }
  const waiting = view.activities.find((activity) => activity.waiting);
  if (waiting?.waiting) view.message = `${waiting.type}: ${waiting.waiting}`;
}

/** The id of a job that its input names (a campaign id), so starting the same job twice is refused. */
function namedJobId(type: JobType, args: Record<string, unknown>): string | undefined {
  const definition: JobDefinition = JOB_CATALOG[type];
  const name = definition.idField === undefined ? undefined : args[definition.idField];
  return typeof name === 'string' && name ? `${idPrefix(type, args)}-${name}` : undefined;
}

/** The job type's id prefix, with the value of its `idPrefixField` when it has one (`train-layer2`). */
function idPrefix(type: JobType, args: Record<string, unknown>): string {
  const definition: JobDefinition = JOB_CATALOG[type];
  const extra = definition.idPrefixField === undefined ? undefined : args[definition.idPrefixField];
  return typeof extra === 'string' && extra ? `${definition.idPrefix}-${extra}` : definition.idPrefix;
}

/** A fresh, readable workflow id: `<prefix>-<yyyymmdd-hhmmss>-<random>`. */
export function newJobId(type: JobType, now = new Date(), args: Record<string, unknown> = {}): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${idPrefix(type, args)}-${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * A job input checked against its type's schema, with defaults filled in (see {@link validateJobInput}). Passed to
 * {@link Jobs.start} instead of the raw input, it is not validated a second time.
 */
export class ValidatedInput {
  constructor(
    readonly type: JobType,
    /** The input as the job gets it: validated, defaults filled in. */
    readonly args: Record<string, unknown>,
    /** What the user should change in the input as given (a deprecated field name), when anything. */
    readonly warnings: string[],
  ) {}
}

/**
 * Validates `input` for a job of `type` (throwing {@link UnknownJobTypeError} or {@link JobInputError}), once: a
 * caller that must refuse a bad input early (the HTTP API, before it touches Temporal) passes the result to
 * {@link Jobs.start}, which then skips its own check.
 */
export function validateJobInput(type: string, input: unknown): ValidatedInput {
  if (!isJobType(type)) throw new UnknownJobTypeError(type);
  return new ValidatedInput(type, parseJobInput(type, JOB_CATALOG[type].schema, input), inputWarnings(type, input));
}

/** How long a client trusts "the namespace has no Backroom search attributes" before asking again. */
const SEARCH_ATTRIBUTES_RECHECK_MS = 60_000;

/** The static details of each job type, made once (the same text for every job of a type). */
const staticDetails = new Map<JobType, string>();

function detailsOf(type: JobType): string {
  let details = staticDetails.get(type);
  if (details === undefined) staticDetails.set(type, (details = jobDetails(type)));
  return details;
}

export class Jobs {
  /** Whether the namespace has Backroom's search attributes, and until when a "no" holds (see below). */
  private indexed?: { answer: Promise<boolean>; until: number };

  constructor(
    readonly client: Client,
    readonly taskQueue: string = configuredTaskQueue(),
  ) {}

  /**
   * Whether the namespace has Backroom's search attributes (BACKROOM_SEARCH_ATTRIBUTES): the dev server registers
   * them at start, a cluster once by the README's command. Without them jobs start without, and `list` filters by
   * state on the client. A "yes" is kept; a "no", or a server that cannot say (no operator access, a passing fault),
   * is asked again after a minute, so attributes registered while a long-lived API runs are taken up.
   */
  async searchAttributesRegistered(): Promise<boolean> {
    if (!this.indexed || Date.now() > this.indexed.until) {
      // (A client without an operator service, such as a test's stand-in, counts as without too.)
      const answer = Promise.resolve()
        .then(() =>
          this.client.connection.operatorService.listSearchAttributes({ namespace: this.client.options.namespace }),
        )
        .then(
          ({ customAttributes }) =>
            BACKROOM_SEARCH_ATTRIBUTES.every(({ name }) => customAttributes?.[name] !== undefined),
          () => false,
        );
      const entry = { answer, until: Infinity };
      this.indexed = entry;
      void answer.then((yes) => {
        if (!yes) entry.until = Date.now() + SEARCH_ATTRIBUTES_RECHECK_MS;
      });
    }
    return this.indexed.answer;
  }

  /** Connects with the configured profile and environment (see `connection.ts`). */
  static async connect(): Promise<Jobs> {
    return new Jobs(await connectClient());
  }

  /**
   * Validates `input` against the job's schema (throwing {@link JobInputError}; a {@link ValidatedInput} of this
   * type is taken as it is) and starts the job. A start is safe to repeat: its id is decided once, and when Temporal
   * does not answer a try (a deadline, a dropped connection) the next try asks for the same job, so a start whose
   * answer was lost is found, not duplicated.
   * With an idempotency key the id comes from the key: the same key and input give the job it already started
   * (`created: false`, running or ended); the same key with another input is an {@link IdempotencyKeyReusedError}.
   * When no try is answered, {@link StartUnconfirmedError} names the id the job would have. An input that uses a
   * deprecated field name still starts the job, and `warnings` says what to write instead.
   */
  async start(type: string, input: unknown, options: StartOptions = {}): Promise<StartResult> {
    if (!isJobType(type)) throw new UnknownJobTypeError(type);
    const problem = tenantProblem(options.tenant, options.tenantWeight);
    if (problem) throw new InvalidStartOptionError(problem);
    // An input validated by the caller (the HTTP API checks it before it touches Temporal) is not validated again.
    const validated =
      input instanceof ValidatedInput && input.type === type
        ? input
        : validateJobInput(type, input instanceof ValidatedInput ? input.args : input);
    const { args, warnings } = validated;
    const key = options.idempotencyKey;
    const pending: PendingStart = {
      type,
      args,
      id:
        options.id ??
        (key === undefined ? undefined : keyedJobId(JOB_CATALOG[type].idPrefix, key)) ??
        namedJobId(type, args) ??
        newJobId(type, new Date(), args),
      mark: newStartMark(type, args, key),
      priority: options.priority ?? 'default',
      ...(options.tenant !== undefined && { tenant: options.tenant }),
      ...(options.tenantWeight !== undefined && { tenantWeight: options.tenantWeight }),
    };
    const attempts = options.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        const timeout = options.attemptTimeoutMs;
        const started =
          timeout === undefined
            ? await this.startOnce(pending)
            : await this.client.withDeadline(Date.now() + timeout, () => this.startOnce(pending));
        return warnings.length > 0 ? { ...started, warnings } : started;
      } catch (err) {
        if (!isNoAnswer(err)) throw err;
        if (attempt >= attempts) throw new StartUnconfirmedError(pending.id, { cause: err });
        await sleep(200 * attempt);
      }
    }
  }

  /**
   * One try of a start. An id that is taken is looked at before anything else: the job there may be this start's
   * own (an earlier try whose answer was lost) or the one its idempotency key started, even if it has ended. Only
   * an ended job that is neither gives its id up to a new run, as Temporal's default reuse policy would.
   */
  private async startOnce(pending: PendingStart, reuseEndedId = false): Promise<StartResult> {
    const { id, type } = pending;
    try {
      const handle = await this.client.workflow.start(type, {
        taskQueue: this.taskQueue,
        workflowId: id,
        args: [pending.args],
        // Activities and child workflows inherit it (the server fills in what they leave unset).
        priority: temporalPriority(id, pending),
        // With Backroom's search attributes registered, the job sets them on its first task (see the memo key).
        memo: {
          backroomState: 'running',
          [START_MARK_MEMO]: pending.mark,
          ...((await this.searchAttributesRegistered()) && { [SEARCH_ATTRIBUTES_MEMO]: true }),
        },
        workflowIdReusePolicy: reuseEndedId ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
        // What the job is, for the UI's list and page (the current details line follows its progress).
        staticSummary: jobSummary(type, pending.args),
        staticDetails: detailsOf(type),
      });
      return { id, runId: handle.firstExecutionRunId, type, created: true };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const existing = await this.describe(id);
      const mark = startMarkOf(existing.memo);
      // The first run's id, as a start answers it, even after the job has continued as new.
      const runId = existing.raw.workflowExecutionInfo?.firstRunId || existing.runId;
      const found = { id, runId, type };
      if (mark?.request === pending.mark.request) return { ...found, created: true };
      if (pending.mark.key !== undefined && mark?.key === pending.mark.key) {
        if (mark.input === pending.mark.input) return { ...found, created: false };
        throw new IdempotencyKeyReusedError(id);
      }
      if (existing.status.name === 'RUNNING' || reuseEndedId) throw new JobAlreadyRunningError(id);
      return this.startOnce(pending, true);
    }
  }

  /**
   * The job's status: its `status` query merged with its running activities' latest heartbeats and retries. When no
   * worker answers within `queryTimeoutMs`, the last status the server knows, marked `stale`.
   */
  async status(id: string, options: StatusOptions = {}): Promise<JobView> {
    const handle = this.client.workflow.getHandle(id);
    const description = await this.describe(id);
    const activities = await this.pendingActivities(description.raw.pendingActivities ?? []);
    let status: JobStatus;
    try {
      const deadline = Date.now() + (options.queryTimeoutMs ?? QUERY_TIMEOUT_MS);
      status = await this.client.withDeadline(deadline, () => handle.query(statusQuery));
    } catch {
      // No worker answered in time (or a job failed before it could answer): show what the server knows.
      status = await this.lastKnownStatus(id, description);
    }
    const merged: JobView = {
      ...status,
      progress: { ...status.progress },
      id,
      runId: description.runId,
      execution: description.status.name,
      priority: priorityView(id, description.priority),
      activities,
    };
    mergeActivities(merged);
    return merged;
  }

  /**
   * The status as the server knows it without a worker: the memo's snapshot (taken at each state change and pause),
   * and for an ended job its close event (the result, or the failure's root cause). Marked `stale`.
   */
  private async lastKnownStatus(id: string, description: WorkflowExecutionDescription): Promise<JobStatus> {
    const snapshot = memoSnapshot(description.memo);
    const state = recordedState(description);
    const status: JobStatus = {
      type: description.type,
      state,
      progress: snapshot?.progress ?? { done: 0, total: 0, unit: '' },
      stage: snapshot?.stage ?? (TERMINAL_STATES.includes(state) ? state : 'unknown'),
      message: snapshot?.message ?? '',
      succeeded: snapshot?.succeeded ?? 0,
      failed: snapshot?.failed ?? 0,
      errors: snapshot?.errors ?? [],
      startedAt: description.startTime.toISOString(),
      updatedAt: snapshot?.updatedAt ?? (description.closeTime ?? description.startTime).toISOString(),
      stale: true,
    };
    if (description.status.name === 'RUNNING') return status;
    try {
      const deadline = Date.now() + CLOSE_EVENT_TIMEOUT_MS;
      const result: unknown = await this.client.withDeadline(deadline, () =>
        this.client.workflow.getHandle(id, description.runId).result(),
      );
      status.result = result;
    } catch (err) {
      if (state !== 'failed') return status;
      const cause = rootCause(err);
      status.message = `${cause.type}: ${cause.message}`;
      if (!status.errors.some((error) => error.reason === cause.message)) {
        status.errors.push({
          item: description.type,
          reason: cause.message,
          type: cause.type,
          ...(cause.stack && { stack: cause.stack }),
        });
      }
    }
    return status;
  }

  async pause(id: string): Promise<void> {
    await this.signal(id, pauseSignal);
  }

  async resume(id: string): Promise<void> {
    await this.signal(id, resumeSignal);
  }

  /**
   * Graceful cancel (the `cancel` signal: stop at a safe point, return a partial result), or with `hard`,
   * Temporal's own cancellation (the run ends as Canceled after cleanup).
   */
  async cancel(id: string, options: { hard?: boolean } = {}): Promise<void> {
    if (options.hard) {
      // Temporal accepts a cancel request for a closed workflow without a word: look first.
      const description = await this.describe(id);
      if (description.status.name !== 'RUNNING') throw new JobEndedError(id, endedState(description));
      await this.whileRunning(id, () => this.client.workflow.getHandle(id).cancel());
      return;
    }
    await this.signal(id, cancelSignal);
  }

  /** Waits for the job to end and returns its result (throws if the job failed). */
  async result<T = unknown>(id: string): Promise<T> {
    return this.withNotFound(id, () => this.client.workflow.getHandle(id).result() as Promise<T>);
  }

  /** Recent jobs on this task queue, newest first, optionally filtered by state and type. */
  async list(filter: JobListFilter = {}): Promise<JobListEntry[]> {
    const limit = filter.limit ?? 20;
    const entries: JobListEntry[] = [];
    const query = await this.visibilityQuery(filter);
    for await (const execution of this.client.workflow.list({ query })) {
      const entry = listEntry(execution);
      if (filter.state && entry.state !== filter.state) continue;
      entries.push(entry);
      if (entries.length >= limit) break;
    }
    return entries;
  }

  /**
   * One page of recent jobs, newest first, straight from Temporal's visibility; `nextPageToken` (opaque) fetches
   * the next. A state filter that visibility cannot express (paused, cancelling, the kind of ending) is applied to
   * the page, so a filtered page can hold fewer than `limit` jobs while more pages follow.
   */
  async listPage(filter: JobListFilter & { pageToken?: string } = {}): Promise<JobListPage> {
    const response = await this.client.workflowService.listWorkflowExecutions({
      namespace: this.client.options.namespace,
      query: await this.visibilityQuery(filter),
      pageSize: filter.limit ?? 20,
      ...(filter.pageToken && { nextPageToken: Buffer.from(filter.pageToken, 'base64url') }),
    });
    const executions = await Promise.all(
      (response.executions ?? []).map((raw) =>
        executionInfoFromRaw(raw, this.client.options.loadedDataConverter, raw, this.client.options.namespace),
      ),
    );
    const jobs = executions.map(listEntry).filter((entry) => !filter.state || entry.state === filter.state);
    const token = response.nextPageToken;
    return { jobs, ...(token?.length && { nextPageToken: Buffer.from(token).toString('base64url') }) };
  }

  /**
   * The visibility query for a list. A state filter is a `BackroomState` clause when the namespace has Backroom's
   * search attributes (jobs started before they were registered have none: `IS NULL` keeps them, and the list's own
   * check of each entry decides); without them, running states narrow to running executions and the rest is the
   * list's check.
   */
  private async visibilityQuery(filter: JobListFilter): Promise<string> {
    const clauses = [`TaskQueue = '${this.taskQueue.replace(/'/g, '')}'`];
    if (filter.type) clauses.push(`WorkflowType = '${filter.type.replace(/'/g, '')}'`);
    const state = filter.state;
    if (state && !TERMINAL_STATES.includes(state)) clauses.push(`ExecutionStatus = 'Running'`);
    if (state && (await this.searchAttributesRegistered())) {
      // A job that was terminated or timed out never recorded its end: it shows as failed, whatever its state says.
      const unrecorded = state === 'failed' ? ` OR ExecutionStatus IN ('Terminated', 'TimedOut')` : '';
      clauses.push(`(${JOB_STATE_KEY.name} = '${state}' OR ${JOB_STATE_KEY.name} IS NULL${unrecorded})`);
    }
    return clauses.join(' AND ');
  }

  /**
   * Polls the status until the job ends, calling `onUpdate` with each view; returns the final one.
   * `signal` stops watching early (the job goes on).
   */
  async watch(
    id: string,
    onUpdate: (view: JobView) => void,
    options: { intervalMs?: number; signal?: AbortSignal; queryTimeoutMs?: number } = {},
  ): Promise<JobView> {
    const interval = options.intervalMs ?? 1000;
    // A live view that waits 10 s for a busy worker freezes; the last known status (marked stale) keeps it moving.
    const queryTimeoutMs = options.queryTimeoutMs ?? Math.max(2000, 2 * interval);
    for (;;) {
      const view = await this.status(id, { queryTimeoutMs });
      onUpdate(view);
      if (view.execution !== 'RUNNING' || options.signal?.aborted) return view;
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  /** Throws {@link JobNotFoundError} unless a job with this id exists (running or ended); asks no worker. */
  async assertExists(id: string): Promise<void> {
    await this.describe(id);
  }

  private async describe(id: string) {
    return this.withNotFound(id, () => this.client.workflow.getHandle(id).describe());
  }

  private async signal(id: string, signal: SignalDefinition<[]>): Promise<void> {
    await this.whileRunning(id, () => this.client.workflow.getHandle(id).signal(signal));
  }

  /** Steers a running job; a job that has ended is a {@link JobEndedError}, an unknown one a {@link JobNotFoundError}. */
  private async whileRunning(id: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // Temporal answers "not found" for a closed execution as well: tell the two apart.
      throw new JobEndedError(id, endedState(await this.describe(id)));
    }
  }

  private async withNotFound<T>(id: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new JobNotFoundError(id);
      throw err;
    }
  }

  private async pendingActivities(pending: PendingActivity[]): Promise<ActivityView[]> {
    const converter = this.client.options.loadedDataConverter;
    return Promise.all(
      pending.map(async (activity) => {
        const view: ActivityView = {
          type: activity.activityType?.name ?? '?',
          attempt: activity.attempt ?? 1,
          state: pendingState(activity.state),
        };
        const payloads = activity.heartbeatDetails?.payloads;
        if (payloads?.length) {
          const details = await decodeFromPayloadsAtIndex<ActivityHeartbeat | undefined>(converter, 0, payloads);
          if (details?.progress) view.progress = details.progress;
          if (details?.message) view.message = details.message;
        }
        const lastHeartbeatAt = optionalTsToMs(activity.lastHeartbeatTime);
        if (lastHeartbeatAt) view.lastHeartbeatAt = new Date(lastHeartbeatAt).toISOString();
        // Decoded like any failure, so an encrypted deployment shows the real message, not "Encoded failure".
        const failure = await decodeOptionalFailureToOptionalError(converter, activity.lastFailure);
        if (failure) {
          const cause = rootCause(failure);
          view.lastFailure = cause.message;
          view.lastFailureType = cause.type;
        }
        if (activity.lastWorkerIdentity) view.lastWorker = activity.lastWorkerIdentity;
        const nextAttemptAt = optionalTsToMs(activity.nextAttemptScheduleTime);
        if (nextAttemptAt) view.nextAttemptAt = new Date(nextAttemptAt).toISOString();
        const waiting = describeRetryWait(view, {
          lastAttemptEndedAt: optionalTsToMs(activity.lastAttemptCompleteTime) || undefined,
          lastHeartbeatAt: lastHeartbeatAt || undefined,
          nextAttemptAt: nextAttemptAt || undefined,
        });
        if (waiting) view.waiting = waiting;
        return view;
      }),
    );
  }
}
