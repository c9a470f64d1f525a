/**
 * The typed jobs API: start a job by type with validated input, read its status (the workflow's `status` query
 * merged with the live heartbeat details of its running activities), pause, resume, cancel, wait for the result,
 * list and watch. The CLI and the HTTP API are thin layers on this.
 */
import { randomBytes } from 'node:crypto';
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowExecutionInfo,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers';
import type { SignalDefinition } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import {
  JOB_CATALOG,
  JobInputError,
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
} from '../shared/job-status';
import { cancelSignal, pauseSignal, resumeSignal, statusQuery } from '../shared/messages';
import { PRIORITY_KEYS, type PriorityName } from '../shared/names';
import { confineDataPaths } from '../shared/data-path';
import { taskQueue as configuredTaskQueue } from '../config';
import { locateInDataDir } from '../data-paths';
import { connectClient } from './connection';

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

export class UnknownJobTypeError extends Error {
  constructor(readonly jobType: string) {
    super(`Unknown job type "${jobType}". Known types: ${Object.keys(JOB_CATALOG).join(', ')}.`);
    this.name = 'UnknownJobTypeError';
  }
}

export interface StartOptions {
  id?: string;
  priority?: PriorityName;
}

export interface StartedJob {
  id: string;
  runId: string;
  type: JobType;
}

/** A running activity of a job, with the progress its last heartbeat carried. */
export interface ActivityView {
  type: string;
  attempt: number;
  progress?: JobProgress;
  message?: string;
  lastHeartbeatAt?: string;
  lastFailure?: string;
}

/** A job's status as clients show it. */
export interface JobView extends JobStatus {
  id: string;
  runId: string;
  /** Temporal's own execution status (RUNNING, COMPLETED, CANCELLED, ...). */
  execution: WorkflowExecutionStatusName;
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

const QUERY_TIMEOUT_MS = 10_000;

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

/** How a visibility record shows in a job list: the memo carries paused, cancelling and graceful endings. */
function listEntry(execution: WorkflowExecutionInfo): JobListEntry {
  const running = execution.status.name === 'RUNNING';
  const fromMemo = memoState(execution.memo);
  const state = running
    ? fromMemo && !TERMINAL_STATES.includes(fromMemo)
      ? fromMemo
      : 'running'
    : fromMemo && TERMINAL_STATES.includes(fromMemo)
      ? fromMemo
      : executionToState(execution.status.name);
  return {
    id: execution.workflowId,
    runId: execution.runId,
    type: execution.type,
    state,
    execution: execution.status.name,
    startedAt: execution.startTime.toISOString(),
    ...(execution.closeTime && { closedAt: execution.closeTime.toISOString() }),
  };
}

/** How a closed execution ended, as users see it (a graceful cancel completes the workflow as `cancelled`). */
function endedState(description: {
  memo?: Record<string, unknown>;
  status: { name: WorkflowExecutionStatusName };
}): JobState {
  return memoState(description.memo) ?? executionToState(description.status.name);
}

function memoState(memo: Record<string, unknown> | undefined): JobState | undefined {
  const state = memo?.backroomState;
  return typeof state === 'string' && (JOB_STATES as string[]).includes(state) ? (state as JobState) : undefined;
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

export class Jobs {
  constructor(
    readonly client: Client,
    readonly taskQueue: string = configuredTaskQueue(),
  ) {}

  /** Connects with the configured profile and environment (see `connection.ts`). */
  static async connect(): Promise<Jobs> {
    return new Jobs(await connectClient());
  }

  /** Validates `input` against the job's schema (throwing {@link JobInputError}) and starts the job. */
  async start(type: string, input: unknown, options: StartOptions = {}): Promise<StartedJob> {
    if (!isJobType(type)) throw new UnknownJobTypeError(type);
    const args = parseJobInput(type, JOB_CATALOG[type].schema, input);
    const workflowId = options.id ?? namedJobId(type, args) ?? newJobId(type, new Date(), args);
    try {
      const handle = await this.client.workflow.start(type, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [args],
        priority: { priorityKey: PRIORITY_KEYS[options.priority ?? 'default'] },
        memo: { backroomState: 'running' },
      });
      return { id: workflowId, runId: handle.firstExecutionRunId, type };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new JobAlreadyRunningError(workflowId);
      throw err;
    }
  }

  /** The job's status: its `status` query merged with its running activities' latest heartbeats. */
  async status(id: string): Promise<JobView> {
    const handle = this.client.workflow.getHandle(id);
    const description = await this.describe(id);
    const activities = await this.pendingActivities(description.raw.pendingActivities ?? []);
    let status: JobStatus;
    try {
      status = await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(statusQuery));
    } catch {
      // No worker to answer (or a workflow that is not a Backroom job): fall back to what the server knows.
      const now = new Date().toISOString();
      status = {
        type: description.type,
        state: memoState(description.memo) ?? executionToState(description.status.name),
        progress: { done: 0, total: 0, unit: '' },
        stage: 'unknown',
        message: 'No worker answered the status query; showing what the server knows.',
        succeeded: 0,
        failed: 0,
        errors: [],
        startedAt: description.startTime.toISOString(),
        updatedAt: now,
      };
    }
    const merged: JobView = {
      ...status,
      progress: { ...status.progress },
      id,
      runId: description.runId,
      execution: description.status.name,
      activities,
    };
    // A heartbeat is fresher than the workflow's view when the activity counts in the job's own unit.
    if (merged.state === 'running') {
      for (const activity of activities) {
        if (activity.progress && activity.progress.unit === merged.progress.unit) {
          merged.progress.done = Math.max(merged.progress.done, activity.progress.done);
          if (activity.message) merged.message = activity.message;
        }
      }
    }
    return merged;
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
    for await (const execution of this.client.workflow.list({ query: this.visibilityQuery(filter) })) {
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
      query: this.visibilityQuery(filter),
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

  private visibilityQuery(filter: JobListFilter): string {
    const clauses = [`TaskQueue = '${this.taskQueue.replace(/'/g, '')}'`];
    if (filter.type) clauses.push(`WorkflowType = '${filter.type.replace(/'/g, '')}'`);
    if (filter.state && !TERMINAL_STATES.includes(filter.state)) clauses.push(`ExecutionStatus = 'Running'`);
    return clauses.join(' AND ');
  }

  /**
   * Polls the status until the job ends, calling `onUpdate` with each view; returns the final one.
   * `signal` stops watching early (the job goes on).
   */
  async watch(
    id: string,
    onUpdate: (view: JobView) => void,
    options: { intervalMs?: number; signal?: AbortSignal } = {},
  ): Promise<JobView> {
    const interval = options.intervalMs ?? 1000;
    for (;;) {
      const view = await this.status(id);
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

  private async pendingActivities(
    pending: NonNullable<Awaited<ReturnType<Jobs['describe']>>['raw']['pendingActivities']>,
  ): Promise<ActivityView[]> {
    const converter = this.client.options.loadedDataConverter;
    return Promise.all(
      pending.map(async (activity) => {
        const view: ActivityView = { type: activity.activityType?.name ?? '?', attempt: activity.attempt ?? 1 };
        const payloads = activity.heartbeatDetails?.payloads;
        if (payloads?.length) {
          const details = await decodeFromPayloadsAtIndex<ActivityHeartbeat | undefined>(converter, 0, payloads);
          if (details?.progress) view.progress = details.progress;
          if (details?.message) view.message = details.message;
        }
        const seconds = activity.lastHeartbeatTime?.seconds;
        if (seconds) view.lastHeartbeatAt = new Date(Number(seconds) * 1000).toISOString();
        if (activity.lastFailure?.message) view.lastFailure = activity.lastFailure.message;
        return view;
      }),
    );
  }
}
