/**
 * The CPU pool's tasks, by name: every piece of CPU-heavy work that activities hand off (pixel loops, models and
 * their training, detectors, page generation). Each pool thread loads this module and piscina calls its default
 * export; with the pool off, the calling thread runs the same functions. Tasks take and return plain data (numbers,
 * strings, typed arrays, shared memory): nothing that holds a file, a socket or a class instance, since it crosses
 * threads.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { renderPagePair } from './restoration/page-generator';
import { restoreAndMeasure } from './restoration/restore-image';
import { evaluatePage } from './training/evaluate-page';
import { loadSharedPatches } from './training/shared-patches';
import { guidedPages, initialWeights, layer2Patches, trainSteps, validateModel } from './training/training-tasks';
import { frameQualities } from './video/clip-quality';

export const cpuTasks = {
  restoreAndMeasure,
  evaluatePage,
  frameQualities,
  renderPagePair,
  initialWeights,
  loadSharedPatches,
  trainSteps,
  layer2Patches,
  guidedPages,
  validateModel,
};

export type CpuTasks = typeof cpuTasks;
export type CpuTaskName = keyof CpuTasks;
export type CpuTaskInput<N extends CpuTaskName> = Parameters<CpuTasks[N]>[0];
export type CpuTaskOutput<N extends CpuTaskName> = Awaited<ReturnType<CpuTasks[N]>>;

/** Below this, copying an array costs less than the bookkeeping of moving it. */
const MOVE_FROM_BYTES = 64 * 1024;

/**
 * Hands `buffer` over without copying when the runtime lets it go: a new, movable ArrayBuffer with the same bytes
 * (the old one is detached), or undefined. Memory JavaScript did not allocate (libvips' output, a wasm memory) cannot
 * be moved: Node 20 copied it silently when it was in a transfer list, Node 24 refuses the whole message.
 */
function movable(buffer: ArrayBufferLike): ArrayBuffer | undefined {
  if (!(buffer instanceof ArrayBuffer)) return undefined;
  try {
    return structuredClone(buffer, { transfer: [buffer] });
  } catch {
    return undefined;
  }
}

type View = ArrayBufferView & { length?: number };

/**
 * Prepares a task's result for the trip back: every large typed array whose memory can move is rebound to a movable
 * buffer (listed in `transfer`); the rest (Node's pooled or external Buffers, wasm memory) is copied by the message.
 * The result is the task's own, so its arrays are replaced in place.
 */
function prepareForTransfer(result: object): ArrayBuffer[] {
  const moved = new Map<ArrayBufferLike, ArrayBuffer | undefined>();
  const targets = new Set<ArrayBufferLike>();
  const visit = (value: unknown): unknown => {
    if (ArrayBuffer.isView(value)) {
      if (value.byteLength < MOVE_FROM_BYTES || Buffer.isBuffer(value)) return value;
      const view = value as View;
      // An array met twice (a shared object) is already on its movable buffer.
      if (targets.has(view.buffer)) return value;
      // Read before the move: a view of a detached buffer has length 0.
      const { byteOffset } = view;
      const length = view.length ?? view.byteLength;
      if (!moved.has(view.buffer)) {
        const target = movable(view.buffer);
        moved.set(view.buffer, target);
        if (target) targets.add(target);
      }
      const target = moved.get(view.buffer);
      if (!target) return value;
      const Kind = view.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => View;
      return new Kind(target, byteOffset, length);
    }
    if (value !== null && typeof value === 'object') {
      const holder = value as Record<string, unknown>;
      for (const key of Object.keys(holder)) holder[key] = visit(holder[key]);
    }
    return value;
  };
  visit(result);
  return [...targets] as ArrayBuffer[];
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
  return move({ [transferableSymbol]: prepareForTransfer(result), [valueSymbol]: result });
}
