/**
 * The loop every long activity runs: step from a checkpoint, heartbeat after each step (live progress travels in
 * the heartbeat details, which write no history events), tell the workflow at a few milestones, and stop when
 * interrupted.
 *
 * - Resume: the loop starts from the last heartbeat's checkpoint after a retry (worker died, timed out), else from
 *   the checkpoint the workflow passed in (after a pause), else from the start.
 * - Interruption: a cancel *requested by the workflow* (pause or cancel) ends the loop with the checkpoint, so the
 *   workflow can resume from it later; any other cancellation (worker shutdown, heartbeat timeout) is rethrown so
 *   Temporal retries the activity, which then resumes from its heartbeat details.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { Context, CancelledFailure } from '@temporalio/activity';
import type { ActivityHeartbeat, JobProgress, Resumable } from '../shared/job-status';
import { progressSignal } from '../shared/messages';
import { ProgressMilestones } from './progress-milestones';

export interface ResumableLoop<C, T> {
  /** Where a fresh run starts. */
  initial: C;
  /** The checkpoint handed in by the workflow after a pause (used when there are no heartbeat details). */
  resumeFrom?: C | undefined;
  /**
   * Where to start when the activity keeps a durable record of its own (such as a send log): it wins over heartbeat
   * details, which lag behind by up to the heartbeat throttle interval.
   */
  recovered?: C | undefined;
  isDone(checkpoint: C): boolean;
  /** Does one bounded piece of work and returns the next checkpoint. */
  step(checkpoint: C, signal: AbortSignal): Promise<C>;
  /** How far a checkpoint is, for heartbeats and status. */
  progress(checkpoint: C): JobProgress;
  describe?(checkpoint: C): string;
  /** Builds the result; `startedFrom` is where this attempt began (not the initial point after a resume). */
  finish(checkpoint: C, startedFrom: C): T;
  /**
   * Whether to send the workflow a `progress` signal at each tenth of the work (see progress-milestones.ts); off
   * when the activity's progress is not the job's (one stress item among many).
   */
  reportToWorkflow?: boolean;
  /**
   * Heartbeat after a step only when this long has passed since the last heartbeat, or when the loop is done
   * (default 0: after every step). For loops of many short steps: the SDK encodes every heartbeat and hands it to
   * the core, which sends one a second. A step that runs longer still heartbeats every second.
   */
  heartbeatEveryMs?: number;
}

/** How often a step that is still running heartbeats (as heartbeatWhile does for a single wait). */
const KEEP_ALIVE_MS = 1000;

/** Runs the loop described by `loop`; see the module comment for resume and interruption rules. */
export async function runResumableLoop<C, T>(loop: ResumableLoop<C, T>): Promise<Resumable<C, T>> {
  const context = Context.current();
  let checkpoint = resumePoint(loop);
  const startedFrom = checkpoint;
  const reporter = loop.reportToWorkflow === false ? undefined : new ProgressReporter(loop.progress(checkpoint));
  const everyMs = loop.heartbeatEveryMs ?? 0;
  let lastBeatAt = 0;
  const detailsOf = (at: C): ActivityHeartbeat<C> => {
    const details: ActivityHeartbeat<C> = { checkpoint: at, progress: loop.progress(at) };
    if (loop.describe) details.message = loop.describe(at);
    return details;
  };
  const beat = () => {
    const details = detailsOf(checkpoint);
    context.heartbeat(details);
    reporter?.report(details);
    if (everyMs > 0) lastBeatAt = performance.now();
  };
  beat();
  // A step may wait long (the CPU pool, an SMTP reply): a timer beats every second from the checkpoint it started at
  // while it runs. One timer for the loop, re-armed when a step starts: a timer made per step cost about 15 µs, a
  // noticeable share of an email campaign's ~1 ms step.
  let running: { from: C } | undefined;
  const keepAlive = setTimeout(() => {
    if (!running) return;
    context.heartbeat(detailsOf(running.from));
    keepAlive.refresh();
  }, KEEP_ALIVE_MS);
  try {
    while (!loop.isDone(checkpoint)) {
      if (context.cancellationSignal.aborted) return stopOrRethrow(checkpoint, loop);
      try {
        const work = loop.step(checkpoint, context.cancellationSignal);
        // Armed after the step has set its own timers, so a step that sleeps exactly a second ends before it fires.
        running = { from: checkpoint };
        keepAlive.refresh();
        checkpoint = await work;
      } catch (err) {
        if (context.cancellationSignal.aborted) return stopOrRethrow(checkpoint, loop);
        throw err;
      } finally {
        running = undefined;
      }
      if (everyMs === 0 || performance.now() - lastBeatAt >= everyMs || loop.isDone(checkpoint)) beat();
      // CPU-bound steps must let heartbeats go out and cancellation come in.
      await yieldToEventLoop();
    }
  } finally {
    clearTimeout(keepAlive);
  }
  // No report is sent at the end: the final progress travels with the result.
  return { finished: true, result: loop.finish(checkpoint, startedFrom), progress: loop.progress(checkpoint) };
}

function resumePoint<C, T>(loop: ResumableLoop<C, T>): C {
  if (loop.recovered !== undefined) return loop.recovered;
  const details = Context.current().info.heartbeatDetails as ActivityHeartbeat<C> | undefined;
  if (details && details.checkpoint !== undefined) return details.checkpoint;
  return loop.resumeFrom ?? loop.initial;
}

function stopOrRethrow<C, T>(checkpoint: C, loop: ResumableLoop<C, T>): Resumable<C, T> {
  const details = Context.current().cancellationDetails;
  if (details?.cancelRequested) {
    return { finished: false, checkpoint, done: loop.progress(checkpoint).done };
  }
  // Worker shutdown, timeout, reset: fail this attempt so Temporal retries it from the heartbeat details.
  throw new CancelledFailure(cancellationReason(details));
}

function cancellationReason(details: Context['cancellationDetails']): string {
  if (!details) return 'Activity cancelled';
  if (details.workerShutdown) return 'Worker shutting down; the activity will resume from its last heartbeat';
  if (details.timedOut) return 'Activity timed out';
  if (details.paused) return 'Activity paused';
  if (details.reset) return 'Workflow reset';
  return 'Activity cancelled';
}

/**
 * Sends progress to the activity's workflow as a `progress` signal at its milestones only, so that the workflow's
 * `status` query and the UI's current-details line move during a long activity while its history stays bounded.
 */
class ProgressReporter {
  private readonly milestones: ProgressMilestones;

  constructor(start: JobProgress) {
    this.milestones = new ProgressMilestones(start, Date.now());
  }

  report(details: ActivityHeartbeat): void {
    if (!this.milestones.due(details.progress, Date.now())) return;
    const context = Context.current();
    const { workflowExecution, isLocal } = context.info;
    if (isLocal || !workflowExecution) return;
    let client;
    try {
      client = context.client;
    } catch {
      return; // MockActivityEnvironment without a client: nothing to report to.
    }
    const { done, total } = details.progress;
    client.workflow
      .getHandle(workflowExecution.workflowId, workflowExecution.runId)
      .signal(progressSignal, { done, total, ...(details.message ? { message: details.message } : {}) })
      .catch((err: unknown) => context.log.debug('Progress report not delivered', { error: String(err) }));
  }
}
