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

/** The tfjs namespace with the wasm backend selected (once per process). */
export function tensorflow(): Promise<typeof tf> {
  ready ??= (async () => {
    if (!(await tf.setBackend('wasm'))) throw new Error('TensorFlow.js could not start its wasm backend');
    await tf.ready();
    return tf;
  })();
  return ready;
}

export { tf };
