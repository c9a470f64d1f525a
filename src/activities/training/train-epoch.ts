/**
 * The activities of `trainModel`:
 * - `prepareTrainingRun` checks the inputs that only a file can settle (dataset, fine-tune checkpoint, layer-1
 *   model) and writes the run's starting point, `models/<runId>/epoch-0000.json`;
 * - `trainEpoch` trains one epoch from the previous epoch's checkpoint, heartbeating batch progress and the running
 *   loss, and writes `partial.json` (weights, optimiser state, batch, loss so far) about once a second. A retry
 *   after a dead worker, or the next call after a pause, continues from `partial.json`: it is written before the
 *   heartbeat that announces it, so it is never behind the heartbeat. At the end it measures the validation patches,
 *   writes `epoch-NNNN.json`, and copies it to `best.json` when its validation loss is the lowest so far.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityHeartbeat, Resumable } from '../../shared/job-status';
import type { EpochMetrics, ModelLayer } from '../../shared/training-inputs';
import { displayPath, readDataFile, resolveDataPath, writeFileAtomic } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { runResumableLoop } from '../resumable-loop';
import { seededRandom } from '../restoration/page-generator';
import type { GrayImage } from '../restoration/gray-image';
import { toPixels } from './apply-model';
import {
  readCheckpoint,
  readCheckpointInput,
  writeCheckpoint,
  type Checkpoint,
  type TrainingPosition,
} from './checkpoint';
import { loadDataset, readManifest, type LoadedDataset, type PatchSet } from './dataset';
import { WindowModel, cutWindow, emptyBatch } from './model';

/** Pixel windows drawn from each training patch per epoch. */
export const WINDOWS_PER_PATCH = 256;
/** Default learning rates: from scratch, and when fine-tuning (smaller, to keep what the model knows). */
const LEARNING_RATE = { fresh: 0.002, fineTune: 0.0005 };
/** How much training happens between two partial checkpoints: this many batches, or a second if that is sooner. */
const STEP_BATCHES = 16;
const STEP_MS = 1000;

export const epochFile = (runDir: string, epoch: number) =>
  path.join(runDir, `epoch-${String(epoch).padStart(4, '0')}.json`);

export interface PrepareRunRequest {
  layer: ModelLayer;
  dataset: string;
  runId: string;
  /** Identifies this training run across continue-as-new (a stale partial checkpoint of another run is ignored). */
  runKey: string;
  batchSize: number;
  learningRate?: number | undefined;
  fineTuneFrom?: string | undefined;
  layer1Model?: string | undefined;
  seed: number;
}

export interface PreparedRun {
  runDir: string;
  learningRate: number;
  batchesPerEpoch: number;
  trainPatches: number;
  valPatches: number;
  /** Where it starts from: fresh weights or the fine-tuned checkpoint. */
  startedFrom: string;
}

/**
 * Checks the run's inputs and writes its starting checkpoint (kept when this run wrote it already). It heartbeats
 * meanwhile: reading a large manifest or checkpoint and initialising the model take a while on a busy machine, and
 * a dead worker's attempt should be retried after the heartbeat timeout, not after a long start-to-close.
 */
export async function prepareTrainingRun(request: PrepareRunRequest): Promise<PreparedRun> {
  return heartbeatWhile(prepareRun(request), () => ({ step: 'preparing' }));
}

async function prepareRun(request: PrepareRunRequest): Promise<PreparedRun> {
  const { manifest } = await readManifest(request.dataset);
  const runDir = resolveDataPath(path.join('models', request.runId), 'run dir');
  const start = epochFile(runDir, 0);
  const fineTune = request.fineTuneFrom
    ? await readCheckpointInput(request.fineTuneFrom, 'checkpoint to fine-tune')
    : undefined;
  if (fineTune && fineTune.layer !== request.layer) {
    throw ApplicationFailure.nonRetryable(
      `${request.fineTuneFrom} is a ${fineTune.layer} model; a ${request.layer} run cannot fine-tune it.`,
      'LayerMismatch',
    );
  }
  let layer1 = fineTune?.layer1;
  if (request.layer === 'layer2' && request.layer1Model) {
    const base = await readCheckpointInput(request.layer1Model, 'layer-1 model');
    if (base.layer !== 'layer1') {
      throw ApplicationFailure.nonRetryable(
        `${request.layer1Model} is a ${base.layer} model, not a layer-1 model.`,
        'LayerMismatch',
      );
    }
    layer1 = { architecture: base.architecture, weights: base.weights };
  }
  if (request.layer === 'layer2' && !layer1) {
    throw ApplicationFailure.nonRetryable(
      'A layer-2 run refines a layer-1 model: train layer1 first and pass its checkpoint as layer1Model.',
      'Layer1Missing',
    );
  }
  const learningRate = request.learningRate ?? (fineTune ? LEARNING_RATE.fineTune : LEARNING_RATE.fresh);
  // Kept on a retry of this run; a new run under the same runId starts over from its own weights.
  const existing = await stat(start).then(
    () => readCheckpoint(start, 'starting checkpoint').catch(() => undefined),
    () => undefined,
  );
  if (existing?.position.runId !== request.runKey) {
    const model = fineTune
      ? await WindowModel.fromWeights(fineTune.weights, fineTune.architecture)
      : await WindowModel.initialise(request.seed);
    try {
      await writeCheckpoint(start, {
        layer: request.layer,
        architecture: model.architecture,
        weights: await model.weights(),
        ...(layer1 && { layer1 }),
        learningRate,
        optimizer: [],
        position: { runId: request.runKey, epoch: 0, batch: 0, lossSum: 0, samples: 0 },
      });
    } finally {
      model.dispose();
    }
  }
  return {
    runDir: displayPath(runDir),
    learningRate,
    batchesPerEpoch: Math.ceil((manifest.patches.train.length * WINDOWS_PER_PATCH) / request.batchSize),
    trainPatches: manifest.patches.train.length,
    valPatches: manifest.patches.val.length,
    startedFrom: request.fineTuneFrom ?? `fresh weights (seed ${request.seed})`,
  };
}

export interface EpochRequest {
  layer: ModelLayer;
  dataset: string;
  runDir: string;
  runKey: string;
  epoch: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  resumeFrom?: EpochCursor;
}

export interface EpochCursor {
  batch: number;
  lossSum: number;
  samples: number;
}

/** Inputs and targets for a layer: layer 1 maps degraded to clean; layer 2 maps layer 1's output to clean ink. */
interface LayerData {
  train: PatchSet;
  val: PatchSet;
}

const binarised = (image: GrayImage): GrayImage => ({
  ...image,
  data: Uint8Array.from(image.data, (value) => (value < 128 ? 0 : 255)),
});

let layer2Cache: { key: string; data: Promise<LayerData> } | undefined;

async function layerData(
  layer: ModelLayer,
  dataset: LoadedDataset,
  start: Checkpoint,
  key: string,
  breathe: () => Promise<void>,
): Promise<LayerData> {
  if (layer === 'layer1') return { train: dataset.train, val: dataset.val };
  const layer1 = start.layer1;
  if (!layer1)
    throw ApplicationFailure.nonRetryable('The layer-2 checkpoint carries no layer-1 model.', 'Layer1Missing');
  if (layer2Cache?.key !== key) {
    const refine = async (set: PatchSet): Promise<PatchSet> => {
      const model = await WindowModel.fromWeights(layer1.weights, layer1.architecture);
      try {
        const inputs: GrayImage[] = [];
        for (let i = 0; i < set.inputs.length; i += 64) {
          await breathe();
          const chunk = set.inputs.slice(i, i + 64);
          model.predict(chunk).forEach((values, j) => {
            const source = chunk[j];
            if (source) inputs.push({ width: source.width, height: source.height, data: toPixels(values, 'layer1') });
          });
        }
        return { inputs, targets: set.targets.map(binarised) };
      } finally {
        model.dispose();
      }
    };
    layer2Cache = {
      key,
      data: (async () => ({ train: await refine(dataset.train), val: await refine(dataset.val) }))(),
    };
    layer2Cache.data.catch(() => (layer2Cache = undefined));
  }
  return layer2Cache.data;
}

/** Fills batch number `batch` of `epoch`: the same windows whichever attempt draws them, so a resume repeats none. */
function drawBatch(set: PatchSet, request: EpochRequest, batch: number, count: number) {
  const random = seededRandom((request.seed * 7919 + request.epoch) * 1_000_003 + batch);
  const windows = emptyBatch(count);
  for (let slot = 0; slot < count; slot++) {
    const index = Math.floor(random() * set.inputs.length);
    const input = set.inputs[index];
    const target = set.targets[index];
    if (!input || !target) continue;
    const x = Math.floor(random() * input.width);
    const y = Math.floor(random() * input.height);
    cutWindow(input, x, y, windows, slot);
    windows.targets[slot] = (target.data[y * target.width + x] ?? 0) / 255;
  }
  return windows;
}

/**
 * Validation: the loss over every pixel of the validation patches, the PSNR of the 8-bit output, and the PSNR of
 * the degraded patches against the same targets (the bar to beat).
 */
async function validate(
  model: WindowModel,
  layer: ModelLayer,
  val: PatchSet,
  degraded: GrayImage[],
  breathe: () => Promise<void>,
): Promise<{ loss: number; psnr: number; inputPsnr: number }> {
  let squared = 0;
  let pixelError = 0;
  let inputError = 0;
  let pixels = 0;
  for (let i = 0; i < val.inputs.length; i += 64) {
    await breathe();
    const outputs = model.predict(val.inputs.slice(i, i + 64));
    outputs.forEach((values, j) => {
      const target = val.targets[i + j];
      const input = degraded[i + j];
      if (!target || !input) return;
      const rendered = toPixels(values, layer);
      for (let p = 0; p < values.length; p++) {
        const expected = target.data[p] ?? 0;
        squared += ((values[p] ?? 0) - expected / 255) ** 2;
        pixelError += ((rendered[p] ?? 0) - expected) ** 2;
        inputError += ((input.data[p] ?? 0) - expected) ** 2;
      }
      pixels += values.length;
    });
  }
  const db = (error: number) => (error === 0 ? 99 : 10 * Math.log10((255 * 255 * pixels) / error));
  return { loss: squared / pixels, psnr: db(pixelError), inputPsnr: db(inputError) };
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Reads a partial checkpoint of this run and epoch, if there is one. */
async function readPartial(file: string, request: EpochRequest): Promise<Checkpoint | undefined> {
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (!exists) return undefined;
  const partial = await readCheckpoint(file, 'partial checkpoint');
  const { runId, epoch } = partial.position;
  return runId === request.runKey && epoch === request.epoch ? partial : undefined;
}

/** Trains one epoch (see the module comment for checkpoints and resume). */
export async function trainEpoch(request: EpochRequest): Promise<Resumable<EpochCursor, EpochMetrics>> {
  const started = performance.now();
  const runDir = resolveDataPath(request.runDir, 'run dir');
  const startFile = epochFile(runDir, request.epoch - 1);
  const partialFile = path.join(runDir, 'partial.json');
  const start = await readCheckpoint(startFile, `checkpoint of epoch ${request.epoch - 1}`);
  const partial = await readPartial(partialFile, request);
  const from = partial ?? start;
  const { manifest } = await readManifest(request.dataset);
  const batches = Math.ceil((manifest.patches.train.length * WINDOWS_PER_PATCH) / request.batchSize);
  const done = (cursor: EpochCursor) => (request.epoch - 1) * batches + cursor.batch;
  const recovered: EpochCursor = partial
    ? { batch: partial.position.batch, lossSum: partial.position.lossSum, samples: partial.position.samples }
    : { batch: 0, lossSum: 0, samples: 0 };
  /**
   * Lets a heartbeat out between CPU-bound chunks (loading, layer 1's outputs, validation), so a big dataset does
   * not look like a dead worker; it carries where the epoch stands, so the progress users see never goes back.
   */
  let standing = recovered;
  const breathe = (message: string) => async () => {
    const details: ActivityHeartbeat<EpochCursor> = {
      checkpoint: standing,
      progress: { done: done(standing), total: request.epochs * batches, unit: 'batches' },
      message: `epoch ${request.epoch}/${request.epochs} · ${message}`,
    };
    Context.current().heartbeat(details);
    await yieldToEventLoop();
  };
  const dataset = await loadDataset(request.dataset, () => void breathe('loading the dataset')());
  // A run's layer-1 model never changes, so its outputs are computed once per run and process.
  const data = await layerData(
    request.layer,
    dataset,
    start,
    `${dataset.dir}:${request.runKey}`,
    breathe('running layer 1 over the dataset'),
  );
  const model = await WindowModel.fromWeights(from.weights, from.architecture);
  model.useOptimizer(request.learningRate);
  await model.restoreOptimizerState(from.optimizer);

  const position = (cursor: EpochCursor): TrainingPosition => ({
    runId: request.runKey,
    epoch: request.epoch,
    ...cursor,
  });
  const save = async (file: string, cursor: EpochCursor, metrics?: EpochMetrics) =>
    writeCheckpoint(file, {
      layer: request.layer,
      architecture: model.architecture,
      weights: await model.weights(),
      ...(start.layer1 && { layer1: start.layer1 }),
      learningRate: request.learningRate,
      optimizer: await model.optimizerState(),
      position: position(cursor),
      ...(metrics && { metrics }),
    });

  try {
    const outcome = await runResumableLoop<EpochCursor, EpochCursor>({
      initial: { batch: 0, lossSum: 0, samples: 0 },
      recovered,
      isDone: (cursor) => cursor.batch >= batches,
      step: async (cursor) => {
        const next = { ...cursor };
        const until = performance.now() + STEP_MS;
        while (next.batch < batches && next.batch - cursor.batch < STEP_BATCHES && performance.now() < until) {
          const windows = drawBatch(data.train, request, next.batch, request.batchSize);
          const loss = await model.trainBatch(windows);
          if (!Number.isFinite(loss)) {
            throw ApplicationFailure.nonRetryable(
              `Training diverged at epoch ${request.epoch}, batch ${next.batch + 1} (loss ${loss}); ` +
                `try a smaller learningRate than ${request.learningRate}.`,
              'TrainingDiverged',
            );
          }
          next.lossSum += loss * windows.count;
          next.samples += windows.count;
          next.batch += 1;
        }
        await save(partialFile, next);
        return next;
      },
      progress: (cursor) => ({ done: done(cursor), total: request.epochs * batches, unit: 'batches' }),
      describe: (cursor) =>
        `epoch ${request.epoch}/${request.epochs} · batch ${cursor.batch}/${batches}` +
        (cursor.samples ? ` · loss ${(cursor.lossSum / cursor.samples).toFixed(5)}` : ''),
      finish: (cursor) => cursor,
    });
    if (!outcome.finished) return outcome;
    const cursor = outcome.result;
    standing = cursor;
    const measured = await validate(model, request.layer, data.val, dataset.val.inputs, breathe('validating'));
    const file = epochFile(runDir, request.epoch);
    const metrics: EpochMetrics = {
      epoch: request.epoch,
      trainLoss: round(cursor.lossSum / Math.max(1, cursor.samples), 6),
      valLoss: round(measured.loss, 6),
      valPsnr: round(measured.psnr, 3),
      inputPsnr: round(measured.inputPsnr, 3),
      seconds: round((performance.now() - started) / 1000, 2),
      checkpoint: displayPath(file),
    };
    await save(file, cursor, metrics);
    await keepBest(runDir, file, metrics, request.runKey);
    return { finished: true, result: metrics };
  } finally {
    model.dispose();
  }
}

/** Copies an epoch's checkpoint to `best.json` when its validation loss beats the best one of this run. */
async function keepBest(runDir: string, file: string, metrics: EpochMetrics, runKey: string): Promise<void> {
  const bestFile = path.join(runDir, 'best.json');
  const best = await readDataFile(bestFile, 'best checkpoint', 'utf8').then(
    (text) => JSON.parse(text) as { metrics?: EpochMetrics; position?: TrainingPosition },
    () => undefined,
  );
  const bestLoss = best?.position?.runId === runKey ? best.metrics?.valLoss : undefined;
  if (bestLoss !== undefined && bestLoss <= metrics.valLoss) return;
  await writeFileAtomic(bestFile, await readDataFile(file, 'checkpoint'));
}
