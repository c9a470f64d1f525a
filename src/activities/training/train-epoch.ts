/**
 * The activities of `trainModel`:
 * - `prepareTrainingRun` checks the inputs that only a file can settle (dataset, fine-tune checkpoint, layer-1
 *   model) and writes the run's starting point, `epoch-0000.json`, in the model folder (`models/<modelName>/`, or
 *   `modelDir`: a data-dir folder or a bucket prefix, where any worker resumes the run from its checkpoints);
 * - `trainEpoch` trains one epoch from the previous epoch's checkpoint, heartbeating batch progress and the running
 *   loss, and writes `partial.json` (weights, optimiser state, batch, loss so far) about once a second. A retry
 *   after a dead worker, or the next call after a pause, continues from `partial.json`: it is written before the
 *   heartbeat that announces it, so it is never behind the heartbeat. At the end it measures the validation patches,
 *   writes `epoch-NNNN.json`, and copies it to `best.json` when its validation loss is the lowest so far.
 * The model itself never runs here: its first weights, the training steps, layer 1's outputs for a layer-2 run and
 * the validation are CPU-pool tasks (training-tasks.ts), and the dataset's patches are decoded once per process into
 * shared memory (shared-patches.ts). This thread reads and writes checkpoints, heartbeats, and stops between steps
 * when cancelled, so heartbeats, queries and `/healthz` never wait for a model.
 */
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityHeartbeat, Resumable } from '../../shared/job-status';
import type { EpochMetrics, ModelLayer, TrainingNetwork } from '../../shared/training-inputs';
import { runCpuTask } from '../cpu-pool';
import { readCached } from '../file-cache';
import { heartbeatWhile } from '../heartbeat-while';
import { runResumableLoop } from '../resumable-loop';
import { placeAt, type Place } from '../places';
import { claimStateFolder } from '../state-record';
import { stateFingerprint } from '../state-folder';
import {
  readCheckpointAt,
  readCheckpointIfAny,
  readCheckpointInput,
  writeCheckpointAt,
  type Checkpoint,
  type TrainingPosition,
} from './checkpoint';
import { mirrorOfFolder, noteMirror, readManifest, type DatasetFolder } from './dataset';
import { GUIDED_ARCHITECTURE, isGuided } from './guided-model';
import type { TrainingState } from './model';
import type { SharedImages, SharedPatchSet, SharedPatches } from './shared-patches';

/** Pixel windows drawn from each training patch per epoch. */
export const WINDOWS_PER_PATCH = 256;
/** Default learning rates: from scratch, and when fine-tuning (smaller, to keep what the model knows). */
const LEARNING_RATE = { fresh: 0.002, fineTune: 0.0005 };
/** How much training happens between two partial checkpoints: this many batches, or a second if that is sooner. */
const STEP_BATCHES = 16;
const STEP_MS = 1000;

/** An epoch's checkpoint's name in its model folder. */
export const epochName = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}.json`;

export const epochFile = (runDir: string, epoch: number) => path.join(runDir, epochName(epoch));

export interface PrepareRunRequest {
  layer: ModelLayer;
  dataset: string;
  /** The model's name: its checkpoints go to `models/<modelName>/` unless `modelDir` says where. */
  modelName: string;
  /** Where the checkpoints go: a data-dir folder or `s3://bucket/prefix/` (default `models/<modelName>`). */
  modelDir?: string | undefined;
  /** Identifies this training run across continue-as-new (a stale partial checkpoint of another run is ignored). */
  runKey: string;
  batchSize: number;
  learningRate?: number | undefined;
  fineTuneFrom?: string | undefined;
  layer1Model?: string | undefined;
  /** Layer 2 only: `guided` trains the guided network (guided-model.ts), which needs no layer-1 model. */
  network?: TrainingNetwork | undefined;
  seed: number;
  /** Replace another model found in the model folder instead of refusing to start. */
  overwrite?: boolean | undefined;
}

export interface PreparedRun {
  /** The model folder: a data-dir path (`models/first`) or a bucket prefix (`s3://bucket/models/first/`). */
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
export async function prepareTrainingRun(request: PrepareRunRequest | LegacyPrepareRunRequest): Promise<PreparedRun> {
  const current = 'modelName' in request ? request : { ...request, modelName: request.runId };
  return heartbeatWhile(prepareRun(current), () => ({ step: 'preparing' }));
}

/**
 * A request scheduled before `runId` was renamed `modelName` (by a job that was preparing when the new worker came
 * up): its retry runs on this code.
 */
export type LegacyPrepareRunRequest = Omit<PrepareRunRequest, 'modelName'> & { runId: string };

async function prepareRun(request: PrepareRunRequest): Promise<PreparedRun> {
  // Checked before the dataset is fetched: a refused folder fails at once.
  const place = request.modelDir
    ? placeAt(request.modelDir, 'model dir')
    : placeAt(path.join('models', request.modelName), 'run dir');
  const { manifest } = await readManifest(request.dataset);
  const fineTune = request.fineTuneFrom
    ? await readCheckpointInput(request.fineTuneFrom, 'checkpoint to fine-tune')
    : undefined;
  if (fineTune && fineTune.layer !== request.layer) {
    throw ApplicationFailure.nonRetryable(
      `${request.fineTuneFrom} is a ${fineTune.layer} model; a ${request.layer} run cannot fine-tune it.`,
      'LayerMismatch',
    );
  }
  const guided = request.network === 'guided';
  if (guided && (request.layer !== 'layer2' || request.layer1Model)) {
    throw ApplicationFailure.nonRetryable(
      'The guided network is a layer-2 model that reads the normalised page, not a layer-1 model: train it with ' +
        'layer "layer2" and no layer1Model.',
      'LayerMismatch',
    );
  }
  if (fineTune && guided !== isGuided(fineTune.architecture)) {
    throw ApplicationFailure.nonRetryable(
      `${request.fineTuneFrom} is ${isGuided(fineTune.architecture) ? 'a guided' : 'a window'} network; ` +
        `give network "${isGuided(fineTune.architecture) ? 'guided' : 'window9'}" to fine-tune it.`,
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
  if (request.layer === 'layer2' && !layer1 && !guided) {
    throw ApplicationFailure.nonRetryable(
      'A layer-2 run refines a layer-1 model: train layer1 first and pass its checkpoint as layer1Model.',
      'Layer1Missing',
    );
  }
  const learningRate = request.learningRate ?? (fineTune ? LEARNING_RATE.fineTune : LEARNING_RATE.fresh);
  await claimModelFolder(request, place);
  // Kept on a retry of this run; a new run of the same model starts over from its own (the same) weights.
  const existing = await readCheckpointIfAny(place, epochName(0), 'starting checkpoint').catch(() => undefined);
  if (existing?.position.firstRunId !== request.runKey) {
    const { architecture, weights } =
      fineTune ??
      (await runCpuTask(
        'initialWeights',
        { seed: request.seed, ...(guided && { architecture: GUIDED_ARCHITECTURE }) },
        { signal: null },
      ));
    await writeCheckpointAt(place, epochName(0), {
      layer: request.layer,
      architecture,
      weights,
      ...(layer1 && { layer1 }),
      learningRate,
      optimizer: [],
      position: { firstRunId: request.runKey, epoch: 0, batch: 0, lossSum: 0, samples: 0 },
    });
  }
  return {
    runDir: place.location,
    learningRate,
    batchesPerEpoch: Math.ceil((manifest.patches.train.length * WINDOWS_PER_PATCH) / request.batchSize),
    trainPatches: manifest.patches.train.length,
    valPatches: manifest.patches.val.length,
    startedFrom: request.fineTuneFrom ?? `fresh weights (seed ${request.seed})`,
  };
}

/** What defines a model: another value of any of these trains another one (its name is where it goes). */
export function modelFingerprint(request: PrepareRunRequest): string {
  const { layer, dataset, batchSize, learningRate, fineTuneFrom, layer1Model, seed, network } = request;
  // `network` only when given, so model folders made before it existed keep their fingerprint.
  return stateFingerprint({
    layer,
    dataset,
    batchSize,
    learningRate,
    fineTuneFrom,
    layer1Model,
    seed,
    ...(network && { network }),
  });
}

/** A model folder's checkpoints: each epoch's, the partial one of an epoch in progress, and the best. */
const CHECKPOINT_FILE = /^(epoch-\d+|partial|best)\.json$/;

/**
 * Claims the model folder (`models/<modelName>/` or `modelDir`, state-record.ts): the same model resumes, another one is refused
 * (`StateFolderMismatch`) unless `overwrite` is set, which removes its checkpoints first.
 */
async function claimModelFolder(request: PrepareRunRequest, place: Place): Promise<void> {
  const names = (await place.files().catch(() => [] as string[])).map((file) => path.posix.basename(file));
  await claimStateFolder({
    place,
    fingerprint: modelFingerprint(request),
    holds:
      `a ${request.layer} model trained on ${request.dataset}` +
      (request.fineTuneFrom ? ` from ${request.fineTuneFrom}` : ` (seed ${request.seed})`),
    overwrite: request.overwrite,
    outputs: names.filter((name) => CHECKPOINT_FILE.test(name)),
    differs: 'another layer, dataset, fineTuneFrom, layer1Model, batchSize, learningRate or seed',
    namedBy: request.modelDir ? 'modelDir' : 'modelName',
  });
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

/** What an epoch trains and validates on, in shared memory; layer 2 maps layer 1's output to clean ink. */
interface LayerData {
  train: SharedPatchSet;
  val: SharedPatchSet;
  /** A guided network's run (guided-model.ts): it trains and validates on the normalised pages. */
  guided?: boolean;
  /** A guided run validates on whole pages: these, as they are. */
  valDegraded?: SharedImages;
}

/** Decodes the dataset whose manifest is `manifestFile` into shared memory, on the CPU pool. */
const decodeSharedDataset = (manifestFile: string): Promise<SharedPatches> => {
  const dataset = path.dirname(manifestFile);
  return runCpuTask('loadSharedPatches', { dataset, mirrorOf: mirrorOfFolder(dataset) }, { signal: null });
};

/**
 * The dataset's patches, decoded once per process and dataset version (file-cache.ts, keyed by its manifest; for a
 * bucket's dataset, by its mirror's), so the epochs of a run, and runs on the same dataset, decode them once; runs on
 * other datasets keep their own.
 */
function sharedDataset(folder: DatasetFolder): Promise<SharedPatches> {
  noteMirror(folder);
  return readCached(path.join(folder.dir, 'manifest.json'), decodeSharedDataset);
}

/**
 * Layer 2's patches per dataset version (they live as long as its decoded patches do) and run. A few runs per
 * dataset: each holds a copy of the dataset's size, and runs sharing a worker each keep theirs between epochs.
 */
const layer2Runs = new WeakMap<SharedPatches, Map<string, Promise<LayerData>>>();
const LAYER2_RUNS_PER_DATASET = 2;

/** A run's layer-1 model never changes, so its outputs over the dataset are computed once per run and process. */
async function layerData(
  layer: ModelLayer,
  dataset: SharedPatches,
  folder: DatasetFolder,
  start: Checkpoint,
  runKey: string,
): Promise<LayerData> {
  if (layer === 'layer1') return dataset;
  const layer1 = start.layer1;
  const guided = isGuided(start.architecture);
  if (!layer1 && !guided)
    throw ApplicationFailure.nonRetryable('The layer-2 checkpoint carries no layer-1 model.', 'Layer1Missing');
  let runs = layer2Runs.get(dataset);
  if (!runs) layer2Runs.set(dataset, (runs = new Map()));
  let data = runs.get(runKey);
  if (!data) {
    const entry: Promise<LayerData> = layer1
      ? Promise.all(
          [dataset.train, dataset.val].map((set) => runCpuTask('layer2Patches', { layer1, set }, { signal: null })),
        ).then(([train, val]) => ({ train: train!, val: val! }))
      : runCpuTask('guidedPages', { dataset: folder.dir, mirrorOf: folder.mirrorOf }, { signal: null }).then(
          ({ train, val, valDegraded }) => ({ train, val, valDegraded, guided: true }),
        );
    data = entry;
    runs.set(runKey, entry);
    entry.catch(() => {
      if (runs.get(runKey) === entry) runs.delete(runKey);
    });
    while (runs.size > LAYER2_RUNS_PER_DATASET) runs.delete(runs.keys().next().value!);
  }
  return data;
}

const PARTIAL = 'partial.json';
const BEST = 'best.json';

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Reads a partial checkpoint of this run and epoch, if there is one. */
async function readPartial(place: Place, request: EpochRequest): Promise<Checkpoint | undefined> {
  const partial = await readCheckpointIfAny(place, PARTIAL, 'partial checkpoint');
  if (!partial) return undefined;
  const { firstRunId, epoch } = partial.position;
  return firstRunId === request.runKey && epoch === request.epoch ? partial : undefined;
}

/** Trains one epoch (see the module comment for checkpoints and resume). */
export async function trainEpoch(request: EpochRequest): Promise<Resumable<EpochCursor, EpochMetrics>> {
  const started = performance.now();
  const place = placeAt(request.runDir, 'run dir');
  const start = await readCheckpointAt(place, epochName(request.epoch - 1), `checkpoint of epoch ${request.epoch - 1}`);
  const partial = await readPartial(place, request);
  const from = partial ?? start;
  // A bucket's dataset is fetched once per machine and version (dataset-mirror.ts): heartbeats go on meanwhile.
  // Their progress is the last attempt's until the manifest gives the epoch's size: a heartbeat without it would let
  // the status fall back to the workflow's view, the epoch's start, while a new worker fetches the dataset.
  const lastProgress = (Context.current().info.heartbeatDetails as Partial<ActivityHeartbeat> | undefined)?.progress;
  let fetching = '';
  const folder = await heartbeatWhile(
    readManifest(request.dataset, (files, total) => (fetching = ` (${files}/${total} files)`)),
    () => ({
      checkpoint: partial
        ? { batch: partial.position.batch, lossSum: partial.position.lossSum, samples: partial.position.samples }
        : { batch: 0, lossSum: 0, samples: 0 },
      ...(lastProgress && { progress: lastProgress }),
      message: `epoch ${request.epoch}/${request.epochs} · fetching the dataset${fetching}`,
    }),
  );
  const { manifest } = folder;
  const batches = Math.ceil((manifest.patches.train.length * WINDOWS_PER_PATCH) / request.batchSize);
  const done = (cursor: EpochCursor) => (request.epoch - 1) * batches + cursor.batch;
  const recovered: EpochCursor = partial
    ? { batch: partial.position.batch, lossSum: partial.position.lossSum, samples: partial.position.samples }
    : { batch: 0, lossSum: 0, samples: 0 };
  /**
   * Heartbeats while the CPU pool loads, runs layer 1 or validates (a big dataset must not look like a dead worker);
   * they carry where the epoch stands, so the progress users see never goes back.
   */
  let standing = recovered;
  const meanwhile = <T>(message: string, work: Promise<T>): Promise<T> => {
    const details = (): ActivityHeartbeat<EpochCursor> => ({
      checkpoint: standing,
      progress: { done: done(standing), total: request.epochs * batches, unit: 'batches' },
      message: `epoch ${request.epoch}/${request.epochs} · ${message}`,
    });
    Context.current().heartbeat(details());
    return heartbeatWhile(work, details);
  };
  const dataset = await meanwhile('loading the dataset', sharedDataset(folder));
  const data = await meanwhile(
    isGuided(start.architecture) ? 'normalising the pages of the dataset' : 'running layer 1 over the dataset',
    layerData(request.layer, dataset, folder, start, request.runKey),
  );
  // The model as the last step left it: weights, Adam's state and (after a step of this attempt) Adam's powers.
  let state: TrainingState = { architecture: from.architecture, weights: from.weights, optimizer: from.optimizer };

  const position = (cursor: EpochCursor): TrainingPosition => ({
    firstRunId: request.runKey,
    epoch: request.epoch,
    ...cursor,
  });
  const save = async (name: string, cursor: EpochCursor, metrics?: EpochMetrics) =>
    writeCheckpointAt(place, name, {
      layer: request.layer,
      architecture: state.architecture,
      weights: state.weights,
      ...(start.layer1 && { layer1: start.layer1 }),
      learningRate: request.learningRate,
      optimizer: state.optimizer,
      position: position(cursor),
      ...(metrics && { metrics }),
    });

  const outcome = await runResumableLoop<EpochCursor, EpochCursor>({
    initial: { batch: 0, lossSum: 0, samples: 0 },
    recovered,
    isDone: (cursor) => cursor.batch >= batches,
    step: async (cursor) => {
      // Up to STEP_BATCHES batches or STEP_MS on the pool; a cancel is honoured when the step is back (as before).
      const trained = await runCpuTask(
        'trainSteps',
        {
          state,
          learningRate: request.learningRate,
          train: data.train,
          seed: request.seed,
          epoch: request.epoch,
          batchSize: request.batchSize,
          fromBatch: cursor.batch,
          toBatch: Math.min(batches, cursor.batch + STEP_BATCHES),
          budgetMs: STEP_MS,
          guided: data.guided,
        },
        { signal: null },
      );
      const next = { ...cursor };
      for (const loss of trained.losses) {
        if (!Number.isFinite(loss)) {
          throw ApplicationFailure.nonRetryable(
            `Training diverged at epoch ${request.epoch}, batch ${next.batch + 1} (loss ${loss}); ` +
              `try a smaller learningRate than ${request.learningRate}.`,
            'TrainingDiverged',
          );
        }
        next.lossSum += loss * request.batchSize;
        next.samples += request.batchSize;
        next.batch += 1;
      }
      state = trained.state;
      await save(PARTIAL, next);
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
  const measured = await meanwhile(
    'validating',
    runCpuTask(
      'validateModel',
      {
        layer: request.layer,
        architecture: state.architecture,
        weights: state.weights,
        val: data.val,
        degraded: data.valDegraded ?? dataset.val.inputs,
        guided: data.guided,
      },
      { signal: null },
    ),
  );
  const name = epochName(request.epoch);
  const metrics: EpochMetrics = {
    epoch: request.epoch,
    trainLoss: round(cursor.lossSum / Math.max(1, cursor.samples), 6),
    valLoss: round(measured.loss, 6),
    valPsnr: round(measured.psnr, 3),
    inputPsnr: round(measured.inputPsnr, 3),
    seconds: round((performance.now() - started) / 1000, 2),
    checkpoint: place.locate(name),
  };
  const written = await save(name, cursor, metrics);
  await keepBest(place, written, metrics, request.runKey);
  return { finished: true, result: metrics };
}

/** Copies an epoch's checkpoint (`checkpoint`, as written) to `best.json` when it beats this run's best. */
async function keepBest(place: Place, checkpoint: string, metrics: EpochMetrics, runKey: string): Promise<void> {
  const best = await place.read(BEST, 'best checkpoint').then(
    (data) =>
      data === undefined
        ? undefined
        : (JSON.parse(data.toString('utf8')) as {
            metrics?: EpochMetrics;
            position?: Partial<TrainingPosition> & { runId?: string };
          }),
    () => undefined,
  );
  // `runId`: what `firstRunId` was called in checkpoints written before it was renamed.
  const writtenBy = best?.position?.firstRunId ?? best?.position?.runId;
  const bestLoss = writtenBy === runKey ? best?.metrics?.valLoss : undefined;
  if (bestLoss !== undefined && bestLoss <= metrics.valLoss) return;
  await place.write(BEST, checkpoint, 'best checkpoint');
}
