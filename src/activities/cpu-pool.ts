/**
 * The CPU pool: CPU-heavy work runs on worker threads (piscina), so the worker's main thread stays free for
 * heartbeats, workflow tasks, queries and `/healthz`, however busy the activities are.
 * - Size: one thread per core (BACKROOM_CPU_THREADS), each at a lower priority than the main thread (nice +10 on
 *   Linux), so the pool uses every core while the process has nothing else to do, and the main thread (and libuv's
 *   threads, where sharp decodes and encodes) still get a core as soon as they have work. One thread fewer than the
 *   cores would halve CPU throughput on a 2-core machine for no gain in latency.
 * - Threads run TypeScript through tsx's require hook, whatever started the process (tsx, node --import tsx, tests).
 * - A task stops when its signal aborts (by default the current activity's cancellation signal): piscina ends the
 *   thread running it and starts a fresh one, so a pause or cancel never waits for a page to finish.
 * - BACKROOM_CPU_POOL=0 runs the same tasks on the calling thread: the old behaviour, for side-by-side benchmarks.
 */
import { Context } from '@temporalio/activity';
import { Piscina } from 'piscina';
import { cpuPoolSettings } from '../config';
import { cpuTasks, type CpuTaskInput, type CpuTaskName, type CpuTaskOutput } from './cpu-tasks';

/** How much lower than the main thread the pool threads run (Linux nice levels; ignored where unsupported). */
const POOL_NICE_INCREMENT = 10;

let pool: Piscina | undefined;

function cpuPool(): Piscina {
  if (!pool) {
    const { threads } = cpuPoolSettings();
    pool = new Piscina({
      filename: require.resolve('./cpu-tasks'),
      // Threads stay up: each one loads TensorFlow's wasm backend once.
      minThreads: threads,
      maxThreads: threads,
      execArgv: ['--require', require.resolve('tsx/cjs')],
      niceIncrement: POOL_NICE_INCREMENT,
    });
  }
  return pool;
}

/** The running activity's cancellation signal, or none outside an activity. */
function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
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
  return (await cpuPool().run(
    { name, input },
    {
      ...(signal && { signal }),
      ...(options.transfer && { transferList: options.transfer as ArrayBuffer[] }),
    },
  )) as CpuTaskOutput<N>;
}

/** Stops the pool's threads (tests and benchmarks; a worker process just exits, the idle threads hold nothing). */
export async function closeCpuPool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.destroy();
}
