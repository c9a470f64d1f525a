/**
 * The training work that runs on the CPU pool (see cpu-tasks.ts), so the worker's main thread only reads and writes
 * checkpoints, heartbeats and honours cancellation: a model's first weights, training steps, layer 1's outputs over a
 * dataset (the inputs of layer 2), and validation. Plain data in and out: weights, Adam's state and numbers travel
 * (about 110 KB each way per step); the patches stay in shared memory (shared-patches.ts). Each task builds its model
 * from the state it is given and disposes it, so any pool thread can run any step, and the numbers are those of one
 * model trained on one thread, bit for bit.
 */
import type { ModelLayer } from '../../shared/training-inputs';
import { seededRandom } from '../restoration/page-generator';
import { cutBelow } from '../restoration/binarize';
import type { GrayImage } from '../restoration/gray-image';
import { toPixels } from './apply-model';
import { guidedInput, guidedValues, INK_TARGET, isUnsure } from './guided-model';
import { readManifest, readMirrorManifest, readPatchPairs, type PatchSet } from './dataset';
import {
  DEFAULT_ARCHITECTURE,
  WindowModel,
  cutWindow,
  emptyBatch,
  type Architecture,
  type TrainingState,
  type Weights,
} from './model';
import {
  imagesOf,
  patchSetOf,
  shareImages,
  sharePatchSet,
  type SharedImages,
  type SharedPatchSet,
} from './shared-patches';

/** Patches per `predict` call: the same chunks whichever thread runs them, so the outputs are the same. */
const PREDICT_CHUNK = 64;

/** CPU-pool task: fresh He-initialized weights, reproducible from `seed`. */
export async function initialWeights(input: {
  seed: number;
  architecture?: Architecture;
}): Promise<{ architecture: Architecture; weights: Weights }> {
  const model = await WindowModel.initialize(input.seed, input.architecture ?? DEFAULT_ARCHITECTURE);
  try {
    return { architecture: model.architecture, weights: await model.weights() };
  } finally {
    model.dispose();
  }
}

/** Which windows a batch holds: the same whichever attempt, step or thread draws them, so a resume repeats none. */
export interface BatchDraw {
  seed: number;
  epoch: number;
  batchSize: number;
  /** A guided network's run (guided-model.ts): windows are drawn at the pixels the binariser is unsure of. */
  guided?: boolean | undefined;
}

/**
 * Tries per window to land on an unsure pixel; the last try is kept. With 6% of a page unsure, about a third of the
 * windows stay where they fell, so the network also sees clear ink and paper: 64 tries (2% left) did worse on the
 * real page (FM 91.9 against 92.6).
 */
const UNSURE_TRIES = 16;

/** Fills batch number `batch` of an epoch. */
export function drawBatch(set: PatchSet, draw: BatchDraw, batch: number, architecture = DEFAULT_ARCHITECTURE) {
  const random = seededRandom((draw.seed * 7919 + draw.epoch) * 1_000_003 + batch);
  const windows = emptyBatch(draw.batchSize, architecture.window);
  for (let slot = 0; slot < draw.batchSize; slot++) {
    const index = Math.floor(random() * set.inputs.length);
    const input = set.inputs[index];
    const target = set.targets[index];
    if (!input || !target) continue;
    let x = Math.floor(random() * input.width);
    let y = Math.floor(random() * input.height);
    for (
      let tries = 1;
      draw.guided && tries < UNSURE_TRIES && !isUnsure(input.data[y * input.width + x] ?? 255);
      tries++
    ) {
      x = Math.floor(random() * input.width);
      y = Math.floor(random() * input.height);
    }
    cutWindow(input, x, y, windows, slot, architecture.window);
    windows.targets[slot] = (target.data[y * target.width + x] ?? 0) / 255;
  }
  return windows;
}

export interface TrainStepsInput extends BatchDraw {
  state: TrainingState;
  learningRate: number;
  train: SharedPatchSet;
  /** The first batch to train, and the one to stop before. */
  fromBatch: number;
  toBatch: number;
  /** Stops after the batch that ends past this many milliseconds (one batch at least). */
  budgetMs: number;
}

export interface TrainStepsOutput {
  state: TrainingState;
  /** Each trained batch's loss, in order; a non-finite one is the last (training stops there). */
  losses: number[];
}

/** CPU-pool task: trains batches `fromBatch`.. of an epoch from `state` and returns the state they lead to. */
export async function trainSteps(input: TrainStepsInput): Promise<TrainStepsOutput> {
  const model = await WindowModel.fromTrainingState(input.state, input.learningRate);
  try {
    const train = patchSetOf(input.train);
    const until = performance.now() + input.budgetMs;
    const losses: number[] = [];
    for (let batch = input.fromBatch; batch < input.toBatch && performance.now() < until; batch++) {
      const loss = await model.trainBatch(drawBatch(train, input, batch, input.state.architecture));
      losses.push(loss);
      if (!Number.isFinite(loss)) break;
    }
    return { state: await model.trainingState(), losses };
  } finally {
    model.dispose();
  }
}

/**
 * CPU-pool task: a layer-2 run's patches. Inputs are layer 1's 8-bit output on the dataset's degraded patches,
 * targets the clean patches cut at mid-grey (ink or paper).
 */
export async function layer2Patches(input: {
  layer1: { architecture: Architecture; weights: Weights };
  set: SharedPatchSet;
}): Promise<SharedPatchSet> {
  const set = patchSetOf(input.set);
  const model = await WindowModel.fromWeights(input.layer1.weights, input.layer1.architecture);
  try {
    const inputs: GrayImage[] = [];
    for (let i = 0; i < set.inputs.length; i += PREDICT_CHUNK) {
      const chunk = set.inputs.slice(i, i + PREDICT_CHUNK);
      model.predict(chunk).forEach((values, j) => {
        const source = chunk[j];
        if (source) inputs.push({ width: source.width, height: source.height, data: toPixels(values, 'layer1') });
      });
    }
    const targets = set.targets.map((image) => cutBelow(image, 128));
    return sharePatchSet({ inputs, targets });
  } finally {
    model.dispose();
  }
}

/** A guided run's data (guided-model.ts): whole pages, normalised, with their clean ink. */
export interface GuidedData {
  train: SharedPatchSet;
  val: SharedPatchSet;
  /** The validation pages as they are: what doing nothing scores. */
  valDegraded: SharedImages;
}

/**
 * CPU-pool task: a guided run's data. It trains on the dataset's whole pages, not its patches: the binariser's
 * surfaces and contrast bar are estimated over a page, and a patch of a few lines would give them other values than
 * the page the network will meet. Inputs are the degraded pages normalised, targets the clean pages with every pixel
 * darker than INK_TARGET as ink. `dataset` is the resolved dataset folder, as for loadSharedPatches.
 */
export async function guidedPages(input: { dataset: string; mirrorOf?: string | undefined }): Promise<GuidedData> {
  const folder = input.mirrorOf
    ? await readMirrorManifest({ dir: input.dataset, mirrorOf: input.mirrorOf })
    : await readManifest(input.dataset);
  const prepare = (pages: PatchSet): SharedPatchSet =>
    sharePatchSet({
      inputs: pages.inputs.map(guidedInput),
      targets: pages.targets.map((image) => cutBelow(image, INK_TARGET)),
    });
  const trainPages = await readPatchPairs(folder, folder.manifest.pages.train);
  const valPages = await readPatchPairs(folder, folder.manifest.pages.val);
  return { train: prepare(trainPages), val: prepare(valPages), valDegraded: shareImages(valPages.inputs) };
}

export interface Validation {
  loss: number;
  psnr: number;
  /** PSNR of the degraded patches against the same targets: the bar to beat. */
  inputPsnr: number;
}

/**
 * CPU-pool task: the loss over every pixel of the validation patches, the PSNR of the 8-bit output, and the PSNR
 * of the degraded patches against the same targets.
 */
export async function validateModel(input: {
  layer: ModelLayer;
  architecture: Architecture;
  weights: Weights;
  val: SharedPatchSet;
  degraded: SharedImages;
  guided?: boolean | undefined;
}): Promise<Validation> {
  const val = patchSetOf(input.val);
  const degraded = imagesOf(input.degraded);
  const model = await WindowModel.fromWeights(input.weights, input.architecture);
  const { guided } = input;
  // A guided network decides only the unsure pixels: validate what it outputs, the binariser's decisions included.
  const predict = (patches: GrayImage[]) =>
    guided ? patches.map((normalized) => guidedValues(model, normalized)) : model.predict(patches);
  try {
    let squared = 0;
    let pixelError = 0;
    let inputError = 0;
    let pixels = 0;
    for (let i = 0; i < val.inputs.length; i += PREDICT_CHUNK) {
      const outputs = predict(val.inputs.slice(i, i + PREDICT_CHUNK));
      outputs.forEach((values, j) => {
        const target = val.targets[i + j];
        const degradedInput = degraded[i + j];
        if (!target || !degradedInput) return;
        const rendered = toPixels(values, input.layer);
        for (let p = 0; p < values.length; p++) {
          const expected = target.data[p] ?? 0;
          squared += ((values[p] ?? 0) - expected / 255) ** 2;
          pixelError += ((rendered[p] ?? 0) - expected) ** 2;
          inputError += ((degradedInput.data[p] ?? 0) - expected) ** 2;
        }
        pixels += values.length;
      });
    }
    const db = (error: number) => (error === 0 ? 99 : 10 * Math.log10((255 * 255 * pixels) / error));
    return { loss: squared / pixels, psnr: db(pixelError), inputPsnr: db(inputError) };
  } finally {
    model.dispose();
  }
}
