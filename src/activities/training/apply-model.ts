/**
 * Running a trained model on whole images: layer 1 restores grey levels; a layer-2 model runs its layer 1 first and
 * then decides ink or paper for every pixel (a clean black-and-white page). Pages go through in strips, so memory
 * stays flat whatever the page size.
 */
import type { ModelLayer } from '../../shared/training-inputs';
import { fileAt } from '../places';
import type { GrayImage } from '../restoration/gray-image';
import {
  readCheckpoint,
  readCheckpointInput,
  type Checkpoint,
  type ModelWeights,
  type ParsedCheckpoint,
} from './checkpoint';
import type { EvaluationSummary } from './evaluate';
import { decideGuidedShared } from './guided-bands';
import { isGuided } from './guided-model';
import { WindowModel } from './model';

/** Where an evaluation is written beside its model by default: on the dataset's held-out pages, or on given pages. */
export const DATASET_EVALUATION_FILE = 'evaluation.json';
export const PAGES_EVALUATION_FILE = 'evaluation-pages.json';

/** Rows per strip: with 48 channels of float32, a 1240-pixel-wide strip stays near 25 MB. */
const STRIP_ROWS = 96;

/**
 * 0..1 model outputs → 8-bit pixels; layer 2's outputs are ink probabilities, cut at one half. A plain loop:
 * Uint8Array.from with a mapping function takes seconds on an A4 page.
 */
export function toPixels(values: Float32Array, layer: ModelLayer): Uint8Array {
  const pixels = new Uint8Array(values.length);
  if (layer === 'layer2') for (let i = 0; i < values.length; i++) pixels[i] = (values[i] ?? 0) >= 0.5 ? 255 : 0;
  else for (let i = 0; i < values.length; i++) pixels[i] = Math.round((values[i] ?? 0) * 255);
  return pixels;
}

/** Runs `model` over one image of any size, strip by strip, with enough rows of context that strips do not show. */
export function predictImage(model: WindowModel, image: GrayImage): Float32Array {
  const context = (model.architecture.window - 1) / 2;
  const out = new Float32Array(image.width * image.height);
  for (let top = 0; top < image.height; top += STRIP_ROWS) {
    const rows = Math.min(STRIP_ROWS, image.height - top);
    const first = top - context;
    const height = rows + 2 * context;
    const data = new Uint8Array(image.width * height);
    for (let y = 0; y < height; y++) {
      const source = Math.min(image.height - 1, Math.max(0, first + y));
      data.set(image.data.subarray(source * image.width, (source + 1) * image.width), y * image.width);
    }
    const [strip] = model.predict([{ width: image.width, height, data }]);
    if (strip) out.set(strip.subarray(context * image.width, (context + rows) * image.width), top * image.width);
  }
  return out;
}

/** Applies a layer's weights to an image and returns 8-bit pixels. */
export async function applyWeights(weights: ModelWeights, layer: ModelLayer, image: GrayImage): Promise<GrayImage> {
  const model = await WindowModel.fromWeights(weights.weights, weights.architecture);
  try {
    return { width: image.width, height: image.height, data: toPixels(predictImage(model, image), layer) };
  } finally {
    model.dispose();
  }
}

/**
 * Applies a guided layer-2 network (guided-model.ts) to a page: the binariser's decisions, the network's where
 * unsure, on two threads where the worker has the cores (guided-bands.ts; `shared: false` keeps it on this one).
 */
async function applyGuided(weights: ModelWeights, image: GrayImage, shared?: boolean): Promise<GrayImage> {
  const model = await WindowModel.fromWeights(weights.weights, weights.architecture);
  try {
    const data = await decideGuidedShared(model, weights, image, shared);
    return { width: image.width, height: image.height, data };
  } finally {
    model.dispose();
  }
}

/**
 * Applies a whole checkpoint: layer 1, then layer 2 when it is a layer-2 model (a guided one needs no layer 1).
 * `shared: false` decides a guided model's pixels on this thread alone (see applyGuided).
 */
export async function applyCheckpoint(
  checkpoint: Checkpoint,
  image: GrayImage,
  options: { shared?: boolean } = {},
): Promise<GrayImage> {
  if (checkpoint.layer === 'layer1') return applyWeights(checkpoint, 'layer1', image);
  if (isGuided(checkpoint.architecture)) return applyGuided(checkpoint, image, options.shared);
  if (!checkpoint.layer1) throw new Error('This layer-2 checkpoint carries no layer-1 model');
  return applyWeights(checkpoint, 'layer2', await applyWeights(checkpoint.layer1, 'layer1', image));
}

/** The checkpoint without its optimiser state, which inference never reads: what a CPU-pool task is sent. */
export function forInference(checkpoint: Checkpoint): Checkpoint {
  return { ...checkpoint, optimizer: [] };
}

const readModel = async (file: string): Promise<ParsedCheckpoint> => ({
  checkpoint: await readCheckpoint(file, 'model'),
});

/**
 * Reads a model named by a job input (a data-dir path or `s3://bucket/key`), once per file version (file-cache.ts:
 * batches restore thousands of pages with one model).
 */
export async function loadModel(location: string): Promise<Checkpoint> {
  return readCheckpointInput(location, 'model', readModel);
}

export interface ModelDescription {
  layer: ModelLayer;
  epoch: number;
  valPsnr?: number;
  /** The model's last evaluation on pages given with their references (real scans), if any. */
  onGivenPages?: { pages: number; modelPsnr: number; classicalPsnr: number };
  /**
   * Set when the model is not known to beat the classical pipeline on real pages: never evaluated on any, or worse
   * than the classical steps there. A job that runs the model says so.
   */
  warning?: string;
}

/**
 * Activity: reads a model once up front, so a batch with a missing or corrupt model fails at once, not per page; and
 * reads what its evaluations beside it say (evaluate.ts), so a job can warn that it may do worse than the classical
 * steps on real scans.
 */
export async function describeModel(request: { model: string }): Promise<ModelDescription> {
  const checkpoint = await loadModel(request.model);
  const { place } = fileAt(request.model, 'model');
  const evaluation = async (name: string) =>
    place.read(name, 'model evaluation').then(
      (data) => (data === undefined ? undefined : (JSON.parse(data.toString('utf8')) as Partial<EvaluationSummary>)),
      () => undefined,
    );
  const onPages = await evaluation(PAGES_EVALUATION_FILE);
  const described: ModelDescription = {
    layer: checkpoint.layer,
    epoch: checkpoint.position.epoch,
    ...(checkpoint.metrics && { valPsnr: checkpoint.metrics.valPsnr }),
  };
  if (onPages?.model && onPages.classical && onPages.pages) {
    const scores = { pages: onPages.pages, modelPsnr: onPages.model.psnr, classicalPsnr: onPages.classical.psnr };
    return {
      ...described,
      onGivenPages: scores,
      ...(scores.modelPsnr < scores.classicalPsnr && {
        warning:
          `${request.model} restored the ${scores.pages} real page(s) it was evaluated on worse than the classical ` +
          `steps (PSNR ${scores.modelPsnr} dB against ${scores.classicalPsnr} dB): on real scans the steps without ` +
          `the model are likely better.`,
      }),
    };
  }
  const onDataset = await evaluation(DATASET_EVALUATION_FILE);
  return {
    ...described,
    warning:
      `${request.model} has not been evaluated on real pages` +
      (onDataset?.psnrGainOverClassical !== undefined
        ? ` (only on its synthetic dataset, ${onDataset.psnrGainOverClassical >= 0 ? '+' : ''}` +
          `${onDataset.psnrGainOverClassical} dB over the classical steps)`
        : '') +
      `, and models trained on synthetic pages may erase ink on real scans; run evaluateModel with pages (a real ` +
      `scan and its ground truth) to check it.`,
  };
}
