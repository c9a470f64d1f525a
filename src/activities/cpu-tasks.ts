/**
 * The CPU pool's tasks, by name: every piece of CPU-heavy work that activities hand off (pixel loops, models,
 * detectors, page generation). Each pool thread loads this module and piscina calls its default export; with the
 * pool off, the calling thread runs the same functions. Tasks take and return plain data (numbers, strings, typed
 * arrays): nothing that holds a file, a socket or a class instance, since it crosses threads.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { renderPagePair } from './restoration/page-generator';
import { restoreAndMeasure } from './restoration/restore-image';
import { evaluatePage } from './training/evaluate-page';
import { frameQualities } from './video/clip-quality';
import { detectInBatch } from './video/shot-detector';

export const cpuTasks = {
  restoreAndMeasure,
  evaluatePage,
  detectInBatch,
  frameQualities,
  renderPagePair,
};

export type CpuTasks = typeof cpuTasks;
export type CpuTaskName = keyof CpuTasks;
export type CpuTaskInput<N extends CpuTaskName> = Parameters<CpuTasks[N]>[0];
export type CpuTaskOutput<N extends CpuTaskName> = Awaited<ReturnType<CpuTasks[N]>>;

/** Below this, copying an array costs less than the bookkeeping of moving it. */
const MOVE_FROM_BYTES = 64 * 1024;

/** The buffers of the large typed arrays in a result (plain objects and arrays are searched). */
function largeBuffers(value: unknown, found = new Set<ArrayBufferLike>()): Set<ArrayBufferLike> {
  if (ArrayBuffer.isView(value)) {
    if (value.byteLength >= MOVE_FROM_BYTES) found.add(value.buffer);
  } else if (Array.isArray(value)) {
    for (const item of value) largeBuffers(item, found);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) largeBuffers(item, found);
  }
  return found;
}

/**
 * Runs the named task in a pool thread. Its result's large arrays are moved to the caller, not copied: a task hands
 * its result over and keeps no reference to it (buffers libvips allocated cannot move, and are copied).
 */
export default async function runCpuTaskInThread(request: { name: CpuTaskName; input: unknown }): Promise<unknown> {
  const task = cpuTasks[request.name] as ((input: unknown) => unknown) | undefined;
  if (!task) throw new Error(`No CPU task named "${request.name}"`);
  const result = await task(request.input);
  if (result === null || typeof result !== 'object') return result;
  return move({ [transferableSymbol]: [...largeBuffers(result)], [valueSymbol]: result });
}
