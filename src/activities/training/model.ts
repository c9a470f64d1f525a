/**
 * The restoration model: a small network that maps the 9×9 window around a pixel to that pixel's restored value.
 *
 * - Its first layer sees the window twice: as it is, and divided by the window's brightest pixel (the local paper
 *   level). The second view is what lets it undo uneven lighting and stains, which a window alone cannot tell from
 *   ink; the division is applied after the linear map, so it costs one extra convolution, not a new input.
 * - Training runs it as dense layers over a batch of windows (the wasm backend has no convolution gradients);
 *   inference runs the same weights as convolutions over whole images, which is far faster than cutting windows.
 * - It runs on the CPU pool's threads (training-tasks.ts, evaluate-page.ts, restore-image.ts), never on the worker's
 *   main thread; a TrainingState carries it from one pool task to the next.
 */
import type * as tfTypes from '@tensorflow/tfjs-core';
import type { GrayImage } from '../restoration/gray-image';
import { tensorflow } from './tensorflow';

/** Side of the pixel window the model sees. */
export const WINDOW = 9;
export const HIDDEN = [48, 24] as const;
/** Brightness floor of the local paper level, so a black window does not divide by zero. */
const MIN_PAPER = 1 / 255;

export interface Architecture {
  window: number;
  hidden: readonly [number, number];
  /**
   * What the network reads: the page's pixels (absent), or the page normalised by the document binariser, where it
   * decides only the pixels the binariser is unsure of (guided-model.ts).
   */
  input?: 'normalized';
}

/** Weight names, in the order the optimiser keeps its state (it matches state to variables by position). */
export const WEIGHT_NAMES = ['w1', 'w1n', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];
export type Weights = Record<WeightName, Float32Array>;

export function weightShapes(architecture: Architecture): Record<WeightName, number[]> {
  const inputs = architecture.window * architecture.window;
  const [h1, h2] = architecture.hidden;
  return { w1: [inputs, h1], w1n: [inputs, h1], b1: [h1], w2: [h1, h2], b2: [h2], w3: [h2, 1], b3: [1] };
}

export const DEFAULT_ARCHITECTURE: Architecture = { window: WINDOW, hidden: HIDDEN };

/** Adam's state as checkpoints keep it: the step count, then the moments, in the optimiser's order. */
export type OptimizerState = { shape: number[]; data: Float32Array }[];

/**
 * Everything training needs to go on bit for bit on another thread: weights, Adam's state and, within one attempt,
 * Adam's running powers of beta1 and beta2 ([beta1^t, beta2^t], float32). Adam keeps those by multiplying once per
 * step, while restoring a checkpoint recomputes them as a power: the last bits can differ, so a CPU-pool task that
 * continues the previous task's training carries them over; after a checkpoint they are left out, as before.
 * About 110 KB for the default architecture.
 */
export interface TrainingState {
  architecture: Architecture;
  weights: Weights;
  optimizer: OptimizerState;
  adamPowers?: Float32Array | undefined;
}

/**
 * Model work done on this thread (each thread counts its own): the CPU pool's tests check that a training epoch
 * leaves the worker's main thread at zero.
 */
export const modelWorkCounts = { trainBatches: 0, predictions: 0 };

let instances = 0;

/** A model held in tfjs variables; dispose it when done (variables live outside tidy scopes). */
export class WindowModel {
  private readonly variables: tfTypes.Variable[];
  private optimizer: tfTypes.Optimizer | undefined;

  private constructor(
    private readonly tf: typeof tfTypes,
    readonly architecture: Architecture,
    weights: Weights,
  ) {
    const shapes = weightShapes(architecture);
    const prefix = `model${++instances}`;
    this.variables = WEIGHT_NAMES.map((name) => {
      const initial = tf.tensor(weights[name], shapes[name]);
      const variable = tf.variable(initial, true, `${prefix}/${name}`);
      initial.dispose(); // the variable holds its own reference to the data
      return variable;
    });
  }

  /** Fresh He-initialized weights, reproducible from `seed`. */
  static async initialize(seed: number, architecture = DEFAULT_ARCHITECTURE): Promise<WindowModel> {
    const tf = await tensorflow();
    const shapes = weightShapes(architecture);
    const weights = {} as Weights;
    WEIGHT_NAMES.forEach((name, index) => {
      const shape = shapes[name];
      if (shape.length === 1) weights[name] = new Float32Array(shape[0] ?? 0);
      else {
        const fanIn = name === 'w1' || name === 'w1n' ? 2 * (shape[0] ?? 1) : (shape[0] ?? 1);
        const random = tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', seed + index);
        weights[name] = random.dataSync() as Float32Array;
        random.dispose();
      }
    });
    return new WindowModel(tf, architecture, weights);
  }

  static async fromWeights(weights: Weights, architecture: Architecture): Promise<WindowModel> {
    return new WindowModel(await tensorflow(), architecture, weights);
  }

  /** A model ready to train on from `state` (see TrainingState), with Adam at `learningRate`. */
  static async fromTrainingState(state: TrainingState, learningRate: number): Promise<WindowModel> {
    const model = await WindowModel.fromWeights(state.weights, state.architecture);
    try {
      model.useOptimizer(learningRate);
      await model.restoreOptimizerState(state.optimizer);
      if (state.adamPowers) model.setAdamPowers(state.adamPowers);
      return model;
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** What `fromTrainingState` needs to go on from here. */
  async trainingState(): Promise<TrainingState> {
    return {
      architecture: this.architecture,
      weights: await this.weights(),
      optimizer: await this.optimizerState(),
      adamPowers: this.adamPowers(),
    };
  }

  /** Adam's running powers of beta1 and beta2 (tfjs keeps them in private variables: read and set them here only). */
  private adamPowers(): Float32Array | undefined {
    const powers = this.adamVariables();
    if (!powers) return undefined;
    return Float32Array.of(powers.accBeta1.dataSync()[0] ?? NaN, powers.accBeta2.dataSync()[0] ?? NaN);
  }

  private setAdamPowers(values: Float32Array): void {
    const powers = this.adamVariables();
    if (!powers) throw new Error('useOptimizer() before setting the optimiser state');
    const { tf } = this;
    tf.tidy(() => {
      powers.accBeta1.assign(tf.scalar(values[0] ?? NaN));
      powers.accBeta2.assign(tf.scalar(values[1] ?? NaN));
    });
  }

  private adamVariables(): { accBeta1: tfTypes.Variable; accBeta2: tfTypes.Variable } | undefined {
    if (!this.optimizer) return undefined;
    const adam = this.optimizer as unknown as { accBeta1?: tfTypes.Variable; accBeta2?: tfTypes.Variable };
    if (!adam.accBeta1 || !adam.accBeta2) throw new Error("This tfjs version's Adam has no accBeta1/accBeta2");
    return { accBeta1: adam.accBeta1, accBeta2: adam.accBeta2 };
  }

  private get w(): Record<WeightName, tfTypes.Variable> {
    return Object.fromEntries(WEIGHT_NAMES.map((name, i) => [name, this.variables[i]])) as Record<
      WeightName,
      tfTypes.Variable
    >;
  }

  /** Dense form: `windows` is [n, window²] (0..1), `paper` [n, 1] the brightest pixel of each window. */
  private forwardWindows(windows: tfTypes.Tensor2D, paper: tfTypes.Tensor2D): tfTypes.Tensor2D {
    const { tf } = this;
    const w = this.w;
    const level = tf.maximum(paper, MIN_PAPER);
    const first = tf.relu(tf.add(tf.add(tf.matMul(windows, w.w1), tf.div(tf.matMul(windows, w.w1n), level)), w.b1));
    const second = tf.relu(tf.add(tf.matMul(first, w.w2), w.b2));
    return tf.sigmoid(tf.add(tf.matMul(second, w.w3), w.b3));
  }

  /** The optimiser (Adam) and its learning rate; its state can be saved and restored with the weights. */
  useOptimizer(learningRate: number): void {
    this.optimizer?.dispose();
    this.optimizer = this.tf.train.adam(learningRate);
  }

  /** One optimiser step on a batch (MSE against `targets`, 0..1); returns the batch loss. */
  async trainBatch(batch: WindowBatch): Promise<number> {
    const { tf } = this;
    const optimizer = this.optimizer;
    if (!optimizer) throw new Error('useOptimizer() before training');
    modelWorkCounts.trainBatches++;
    const loss = tf.tidy((): tfTypes.Scalar => {
      const windows = tf.tensor2d(batch.windows, [batch.count, this.architecture.window ** 2]);
      const paper = tf.tensor2d(batch.paper, [batch.count, 1]);
      const targets = tf.tensor2d(batch.targets, [batch.count, 1]);
      const value = optimizer.minimize(
        () => tf.mean(tf.squaredDifference(this.forwardWindows(windows, paper), targets)),
        true,
        this.variables,
      );
      if (!value) throw new Error('The optimiser returned no loss');
      return value;
    });
    const [value] = await loss.data();
    loss.dispose();
    return value ?? NaN;
  }

  /**
   * forwardWindows with each layer's bias and activation fused into its product: five kernel calls fewer per batch,
   * 15% less time on the guided model's 4,096-window batches. Inference only: tfjs has no gradient through a fused
   * sigmoid. The sums round in another order, so outputs differ from forwardWindows' in the seventh decimal (at most
   * 7e-7 on the real manuscript's unsure windows, none on the other side of one half).
   */
  private forwardWindowsFused(windows: tfTypes.Tensor2D, paper: tfTypes.Tensor2D): tfTypes.Tensor2D {
    const { tf } = this;
    const w = this.w;
    const level = tf.maximum(paper, MIN_PAPER);
    const lit = tf.fused.matMul({ a: windows, b: w.w1, bias: w.b1 });
    const first = tf.relu(tf.add(lit, tf.div(tf.matMul(windows, w.w1n), level)));
    const second = tf.fused.matMul({ a: first, b: w.w2, bias: w.b2, activation: 'relu' });
    return tf.fused.matMul({ a: second, b: w.w3, bias: w.b3, activation: 'sigmoid' }) as tfTypes.Tensor2D;
  }

  /** Dense form at inference (what training optimises); `predict` must agree with it. */
  predictWindows(batch: WindowBatch): Float32Array {
    const { tf } = this;
    modelWorkCounts.predictions++;
    const output = tf.tidy(() =>
      this.forwardWindowsFused(
        tf.tensor2d(batch.windows, [batch.count, this.architecture.window ** 2]),
        tf.tensor2d(batch.paper, [batch.count, 1]),
      ),
    );
    const values = output.dataSync() as Float32Array;
    output.dispose();
    return values;
  }

  /**
   * Convolution form over same-size images (edges replicated, as the training windows are), returning each
   * output pixel in 0..1, row-major per image.
   */
  predict(images: readonly GrayImage[]): Float32Array[] {
    const { tf } = this;
    const first = images[0];
    if (!first) return [];
    modelWorkCounts.predictions++;
    const { width, height } = first;
    const k = this.architecture.window;
    const r = (k - 1) / 2;
    const [h1] = this.architecture.hidden;
    const output = tf.tidy(() => {
      const w = this.w;
      const padded = tf.tensor4d(padImages(images, r), [images.length, height + 2 * r, width + 2 * r, 1]);
      const level = tf.maximum(tf.maxPool(padded, k, 1, 'valid'), MIN_PAPER);
      const raw = tf.conv2d(padded, tf.reshape(w.w1, [k, k, 1, h1]) as tfTypes.Tensor4D, 1, 'valid');
      const normalized = tf.div(
        tf.conv2d(padded, tf.reshape(w.w1n, [k, k, 1, h1]) as tfTypes.Tensor4D, 1, 'valid'),
        level,
      );
      const hidden1 = tf.reshape(tf.relu(tf.add(tf.add(raw, normalized), w.b1)), [-1, h1]);
      const hidden2 = tf.relu(tf.add(tf.matMul(hidden1 as tfTypes.Tensor2D, w.w2), w.b2));
      return tf.sigmoid(tf.add(tf.matMul(hidden2, w.w3), w.b3));
    });
    const values = output.dataSync() as Float32Array;
    output.dispose();
    const size = width * height;
    return images.map((_, i) => values.slice(i * size, (i + 1) * size));
  }

  async weights(): Promise<Weights> {
    const values = await Promise.all(this.variables.map((variable) => variable.data() as Promise<Float32Array>));
    return Object.fromEntries(WEIGHT_NAMES.map((name, i) => [name, values[i]])) as Weights;
  }

  /** Adam's state (step count and moments), in the optimiser's order; all float32 (the step count is int32 in tfjs). */
  async optimizerState(): Promise<OptimizerState> {
    if (!this.optimizer) return [];
    const state = await this.optimizer.getWeights();
    try {
      return await Promise.all(
        state.map(async ({ tensor }) => ({ shape: tensor.shape, data: Float32Array.from(await tensor.data()) })),
      );
    } finally {
      // The step count is a new scalar; the moments are the optimiser's own variables and stay.
      state[0]?.tensor.dispose();
    }
  }

  async restoreOptimizerState(state: Readonly<OptimizerState>): Promise<void> {
    if (!this.optimizer || state.length === 0) return;
    const { tf } = this;
    // Adam names its moments after the variables; the names only label them, the order matches them up.
    const names = ['iter', ...this.variables.map((v) => `${v.name}/m`), ...this.variables.map((v) => `${v.name}/v`)];
    const tensors = state.map((entry, i) => ({
      name: names[i] ?? `state${i}`,
      tensor: tf.tensor(entry.data, entry.shape),
    }));
    try {
      await this.optimizer.setWeights(tensors);
    } finally {
      // Adam made variables of them (which hold their own references to the data).
      for (const { tensor } of tensors) tensor.dispose();
    }
  }

  dispose(): void {
    this.optimizer?.dispose();
    for (const variable of this.variables) variable.dispose();
  }
}

/** A training batch: pixel windows cut from images, each window's paper level, and the target pixel values. */
export interface WindowBatch {
  count: number;
  windows: Float32Array;
  paper: Float32Array;
  targets: Float32Array;
}

/** Allocates a batch for `count` windows. */
export function emptyBatch(count: number, window = WINDOW): WindowBatch {
  return {
    count,
    windows: new Float32Array(count * window * window),
    paper: new Float32Array(count),
    targets: new Float32Array(count),
  };
}

/**
 * Writes the window around (x, y) of `image` into slot `slot` of `batch` (edges replicated, values 0..1) and its
 * brightest pixel into `paper`.
 */
export function cutWindow(
  image: GrayImage,
  x: number,
  y: number,
  batch: WindowBatch,
  slot: number,
  window = WINDOW,
): void {
  const r = (window - 1) / 2;
  let offset = slot * window * window;
  let brightest = 0;
  for (let dy = -r; dy <= r; dy++) {
    const row = Math.min(image.height - 1, Math.max(0, y + dy)) * image.width;
    for (let dx = -r; dx <= r; dx++) {
      const value = image.data[row + Math.min(image.width - 1, Math.max(0, x + dx))] ?? 0;
      if (value > brightest) brightest = value;
      batch.windows[offset++] = value / 255;
    }
  }
  batch.paper[slot] = brightest / 255;
}

/** Same-size images with `r` pixels of replicated edge on every side, as one [n, h+2r, w+2r] block (0..1). */
function padImages(images: readonly GrayImage[], r: number): Float32Array {
  const first = images[0];
  if (!first) return new Float32Array(0);
  const { width, height } = first;
  const paddedWidth = width + 2 * r;
  const paddedHeight = height + 2 * r;
  const out = new Float32Array(images.length * paddedWidth * paddedHeight);
  images.forEach((image, i) => {
    if (image.width !== width || image.height !== height) throw new Error('predict() needs same-size images');
    let offset = i * paddedWidth * paddedHeight;
    for (let y = -r; y < height + r; y++) {
      const row = Math.min(height - 1, Math.max(0, y)) * width;
      for (let x = -r; x < width + r; x++)
        out[offset++] = (image.data[row + Math.min(width - 1, Math.max(0, x))] ?? 0) / 255;
    }
  });
  return out;
}
