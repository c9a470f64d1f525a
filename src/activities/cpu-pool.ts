/**
 * The CPU pool: CPU-heavy work runs on worker threads (piscina), so the worker's main thread stays free for
 * heartbeats, workflow tasks, queries and `/healthz`, however busy the activities are.
 * - Size: one thread per core (BACKROOM_CPU_THREADS), each at a lower priority than the main thread (nice +10 on
 *   Linux), so the pool uses every core while the process has nothing else to do, and the main thread (and libuv's
 *   threads, where sharp decodes and encodes) still get a core as soon as they have work. One thread fewer than the
 *   cores would halve CPU throughput on a 2-core machine for no gain in latency.
 * - Threads run TypeScript through tsx's require hook, whatever started the process (tsx, node --import tsx, tests).
 * - Fair between jobs: at most one task per thread is handed to piscina; the rest wait per job (the calling activity's
 *   workflow run; outside an activity, one shared queue), and a freed thread goes to the job that has used the least
 *   thread time so far (see fair-share.ts). So a training run's 1 s steps are not stuck behind a batch's 10 s pages.
 *   The job, not the activity, is the owner: a batch runs each page as its own activity, and would otherwise get a
 *   share per page in flight.
 * - A task stops when its signal aborts (by default the current activity's cancellation signal): piscina ends the
 *   thread running it and starts a fresh one, so a pause or cancel never waits for a page to finish; a task still
 *   waiting for a thread leaves the queue at once (with piscina's AbortError, as a running one).
 * - BACKROOM_CPU_POOL=0 runs the same tasks on the calling thread: the old behaviour, for side-by-side benchmarks.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { Piscina } from 'piscina';
import { cpuPoolSettings } from '../config';
import { cpuTasks, type CpuTaskInput, type CpuTaskName, type CpuTaskOutput } from './cpu-tasks';
import { FairShare } from './fair-share';

/** How much lower than the main thread the pool threads run (Linux nice levels; ignored where unsupported). */
const POOL_NICE_INCREMENT = 10;

/** The error of an aborted task: piscina's own (which it does not export), also for a task aborted in the queue. */
class AbortError extends Error {
  constructor(reason: unknown) {
    super('The task has been aborted', { cause: reason });
  }
  override get name(): string {
    return 'AbortError';
  }
}

let pool: { threads: Piscina; queue: FairShare } | undefined;

function cpuPool(): NonNullable<typeof pool> {
  if (!pool) {
    const { threads } = cpuPoolSettings();
    pool = {
      threads: new Piscina({
        filename: require.resolve('./cpu-tasks'),
        // Threads stay up: each one loads TensorFlow's wasm backend once.
        minThreads: threads,
        maxThreads: threads,
        execArgv: ['--require', require.resolve('tsx/cjs')],
        niceIncrement: POOL_NICE_INCREMENT,
      }),
      queue: new FairShare(threads, (reason) => new AbortError(reason)),
    };
  }
  return pool;
}

/** The running activity's cancellation signal, or none outside an activity. */
function activitySignal(): AbortSignal | undefined {
  return asyncLocalStorage.getStore()?.cancellationSignal;
}

/** Whose task this is, for fair sharing: the calling activity's workflow run (the job), or '' outside an activity. */
function taskOwner(): string {
  const info = asyncLocalStorage.getStore()?.info;
  if (!info) return '';
  const run = info.workflowExecution;
  return run ? `workflow ${run.workflowId} ${run.runId}` : `activity ${info.activityId}`;
}

export interface CpuTaskOptions {
  /**
   * Aborts the task; by default the current activity's cancellation signal. `null`: the task always runs to its end
   * (short steps that an activity stops between, where a cancel must not lose the step or the thread).
   */
  signal?: AbortSignal | null | undefined;
  /** Buffers of the input to move to the pool thread rather than copy (the caller must not use them after). */
  transfer?: ArrayBufferLike[];
}

const counts = new Map<CpuTaskName, { pool: number; calling: number }>();

/** How many tasks of each name this process started, on the pool and on the calling thread (tests read it). */
export function cpuTaskCounts(name: CpuTaskName): { pool: number; calling: number } {
  return { ...(counts.get(name) ?? { pool: 0, calling: 0 }) };
}

/** Runs a CPU task (see cpu-tasks.ts) on the pool, or on this thread when the pool is off. */
export async function runCpuTask<N extends CpuTaskName>(
  name: N,
  input: CpuTaskInput<N>,
  options: CpuTaskOptions = {},
): Promise<CpuTaskOutput<N>> {
  const signal = options.signal === null ? undefined : (options.signal ?? activitySignal());
  const count = counts.get(name) ?? { pool: 0, calling: 0 };
  counts.set(name, count);
  if (!cpuPoolSettings().enabled) {
    count.calling++;
    signal?.throwIfAborted();
    const task = cpuTasks[name] as (input: CpuTaskInput<N>) => CpuTaskOutput<N> | Promise<CpuTaskOutput<N>>;
    return task(input);
  }
  count.pool++;
  const { threads, queue } = cpuPool();
  return (await queue.run(
    taskOwner(),
    () =>
      threads.run(
        { name, input },
        {
          ...(signal && { signal }),
          ...(options.transfer && { transferList: options.transfer as ArrayBuffer[] }),
        },
      ),
    signal,
  )) as CpuTaskOutput<N>;
}

/** Stops the pool's threads (tests and benchmarks; a worker process just exits, the idle threads hold nothing). */
export async function closeCpuPool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  // What piscina rejects the tasks in its own queue with.
  closing?.queue.close(new Error('Terminating worker thread'));
  await closing?.threads.destroy();
}
