/**
 * TensorFlow.js on its WebAssembly backend: the kernels ship inside the npm package (nothing is downloaded at
 * install or run time) and run 3-4× faster than the pure-JavaScript CPU backend on this kind of machine. The wasm
 * backend cannot back-propagate through convolutions, so the models train as dense layers over pixel windows and
 * run as convolutions (see model.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core alone registers no gradients; training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

let ready: Promise<typeof tf> | undefined;

/**
 * The backend's Emscripten glue adds process-wide `uncaughtException` and `unhandledRejection` listeners that
 * rethrow, which overrides every handler the host process has (the test runner's, for one: an error it would report
 * against a test crashes the process instead). Node's own behaviour without them is the same for a worker: exit.
 */
function removeEmscriptenRethrowers(before: Set<unknown>): void {
  for (const listener of process.listeners('uncaughtException')) {
    if (!before.has(listener)) process.removeListener('uncaughtException', listener);
  }
  for (const listener of process.listeners('unhandledRejection')) {
    if (!before.has(listener)) process.removeListener('unhandledRejection', listener);
  }
}

/** The tfjs namespace with the wasm backend selected (once per process). */
export function tensorflow(): Promise<typeof tf> {
  ready ??= (async () => {
    const before = new Set([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
    if (!(await tf.setBackend('wasm'))) throw new Error('TensorFlow.js could not start its wasm backend');
    await tf.ready();
    removeEmscriptenRethrowers(before);
    return tf;
  })();
  return ready;
}

export { tf };
