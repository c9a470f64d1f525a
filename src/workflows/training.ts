/**
 * Training jobs: `generateSyntheticData` (render → cut and augment → validate), `trainModel` (one resumable
 * activity per epoch, then an evaluation) and `evaluateModel` (the evaluation alone). Weights never travel through
 * the workflow: it passes paths, and keeps the per-epoch metrics for `status`.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EvaluationCursor, EvaluationSummary } from '../activities/training/evaluate';
import type { DatasetStats } from '../activities/training/dataset';
import type { EpochCursor, PreparedRun } from '../activities/training/train-epoch';
import type { ValidationCursor } from '../activities/training/synthetic-data';
import { inputWarnings } from '../shared/job-catalog';
import {
  evaluateModelInput,
  generateSyntheticDataInput,
  trainModelInput,
  type EpochMetrics,
} from '../shared/training-inputs';
import { bounded, trainingStep } from './activity-profiles';
import { defineJob } from './define-job';

// Preparing a run heartbeats while it reads the dataset and writes the first checkpoint.
const preparing = proxyActivities<typeof activities>(bounded);

// A dead worker's step is retried (it resumes from its partial checkpoint); a bug is not retried forever.
const long = proxyActivities<typeof activities>(trainingStep);

/** How many epochs' metrics `status` and the result keep (every epoch's are in its checkpoint). */
const EPOCHS_SHOWN = 100;

export type GenerateSyntheticDataResult =
  | { outcome: 'completed'; dataset: string; manifest: string; stats: DatasetStats; rejected: number }
  | { outcome: 'cancelled'; dataset: string };

/** Renders pages, cuts and augments patches, validates them and writes the dataset's manifest. */
export const generateSyntheticData = defineJob<typeof generateSyntheticDataInput, GenerateSyntheticDataResult>({
  type: 'generateSyntheticData',
  input: generateSyntheticDataInput,
  progress: (input) => ({ done: 0, total: input.pages, unit: 'pages' }),
  stage: 'rendering pages',
  setup: ({ job, input: { outputDir, ...input } }) => {
    const spec = { ...input, datasetDir: outputDir ?? `datasets/${input.datasetId}` };
    return {
      async work() {
        await job.runResumable<number, unknown>((resumeFrom) => long.renderDatasetPages({ ...spec, resumeFrom }));
        job.setStage('cutting patches', input.augment ? 'with augmented copies' : '');
        job.setProgress(0, input.pages, 'pages');
        await job.runResumable<number, unknown>((resumeFrom) => long.cutDatasetPatches({ ...spec, resumeFrom }));
        job.setStage('validating');
        job.setProgress(0, 0, 'pairs');
        const validated = await job.runResumable<
          ValidationCursor,
          { manifest: string; stats: DatasetStats; rejected: number }
        >((resumeFrom) => long.validateDataset({ ...spec, ...(resumeFrom && { resumeFrom }) }));
        const { stats } = validated;
        job.setCounts(stats.trainPairs + stats.valPairs, validated.rejected);
        job.setMessage(
          `${stats.trainPairs} training and ${stats.valPairs} validation pairs; degraded PSNR ${stats.degradedPsnr} dB` +
            (validated.rejected ? `; ${validated.rejected} rejected` : ''),
        );
        return { outcome: 'completed', dataset: spec.datasetDir, ...validated };
      },
      cancelled: () => ({ outcome: 'cancelled', dataset: spec.datasetDir }),
    };
  },
});

export interface TrainModelResult {
  outcome: 'completed' | 'cancelled';
  layer: string;
  /** The model's name (its folder is `models/<modelName>/` unless `modelDir` said where). */
  modelName: string;
  /** The model folder: a data-dir path or an `s3://bucket/prefix/`. */
  runDir: string;
  epochsAsked: number;
  epochsCompleted: number;
  /** The checkpoint with the lowest validation loss (kept after a cancel too). */
  bestCheckpoint?: string;
  best?: EpochMetrics;
  /** The metrics of the latest epochs. */
  epochs: EpochMetrics[];
  evaluation?: EvaluationSummary;
  /** Deprecated input fields the job was started with (e.g. `runId` for `modelName`). */
  warnings?: string[];
}

/** What one run of `trainModel` hands to the next when it continues as new (besides the job's status). */
export interface TrainModelCarry {
  runKey: string;
  prepared: PreparedRun;
  epochs: EpochMetrics[];
  best?: EpochMetrics;
  nextEpoch: number;
}

/**
 * The model's name: the input's `modelName` (or its deprecated `runId`, which the schema maps to it), else the
 * workflow id without its `train-<layer>-` prefix.
 */
function modelNameOf(modelName: string | undefined, layer: string): string {
  if (modelName) return modelName;
  const id = workflowInfo().workflowId.replace(new RegExp(`^train-${layer}-`), '');
  return id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'run';
}

/**
 * Trains a layer-1 or layer-2 model epoch by epoch. Each epoch is one resumable activity: pause or cancel stops it
 * at its last partial checkpoint, a dead worker's retry resumes from there. Continues as new every `epochsPerRun`
 * epochs.
 */
export const trainModel = defineJob<typeof trainModelInput, TrainModelResult, TrainModelCarry>({
  type: 'trainModel',
  input: trainModelInput,
  progress: (input) => ({ done: 0, total: input.epochs, unit: 'epochs' }),
  stage: (_input, carry) => (carry ? 'training' : 'preparing'),
  setup: ({ job, input, rawInput, carry, continueAsNew }) => {
    const modelName = modelNameOf(input.modelName, input.layer);
    // A start through Temporal itself (the UI, the `temporal` CLI) or an older client may still say `runId`.
    const warnings = inputWarnings('trainModel', rawInput);
    const runKey = carry?.runKey ?? workflowInfo().firstExecutionRunId;
    if (warnings.length > 0) job.setMessage(warnings.join('; '));
    let prepared = carry?.prepared;
    const epochs = carry?.epochs ?? [];
    let best = carry?.best;
    let evaluation: EvaluationSummary | undefined;
    job.status.epochs = epochs;

    const runDir = () => prepared?.runDir ?? input.modelDir ?? `models/${modelName}`;
    const result = (outcome: TrainModelResult['outcome']): TrainModelResult => ({
      outcome,
      layer: input.layer,
      modelName,
      runDir: runDir(),
      epochsAsked: input.epochs,
      epochsCompleted: epochs.at(-1)?.epoch ?? (carry?.nextEpoch ?? 1) - 1,
      ...(best && { bestCheckpoint: inFolder(runDir(), 'best.json'), best }),
      epochs,
      ...(evaluation && { evaluation }),
      ...(warnings.length > 0 && { warnings }),
    });

    return {
      async work() {
        if (!prepared) {
          await job.checkpoint();
          prepared = await preparing.prepareTrainingRun({
            layer: input.layer,
            dataset: input.dataset,
            modelName,
            runKey,
            batchSize: input.batchSize,
            learningRate: input.learningRate,
            fineTuneFrom: input.fineTuneFrom,
            layer1Model: input.layer1Model,
            seed: input.seed,
            // Only when given: runs recorded before modelDir existed scheduled the same arguments.
            ...(input.modelDir !== undefined && { modelDir: input.modelDir }),
            ...(input.network !== undefined && { network: input.network }),
          });
        }
        const run = prepared;
        const firstEpoch = carry?.nextEpoch ?? 1;
        job.setProgress((firstEpoch - 1) * run.batchesPerEpoch, input.epochs * run.batchesPerEpoch, 'batches');
        for (let epoch = firstEpoch; epoch <= input.epochs; epoch++) {
          if (epoch >= firstEpoch + input.epochsPerRun || workflowInfo().continueAsNewSuggested) {
            await continueAsNew({ runKey, prepared: run, epochs, ...(best && { best }), nextEpoch: epoch });
          }
          job.setStage(
            'training',
            `epoch ${epoch}/${input.epochs} from ${epoch === 1 ? run.startedFrom : `epoch ${epoch - 1}`}`,
          );
          const metrics = await job.runResumable<EpochCursor, EpochMetrics>((resumeFrom) =>
            long.trainEpoch({
              layer: input.layer,
              dataset: input.dataset,
              runDir: run.runDir,
              runKey,
              epoch,
              epochs: input.epochs,
              batchSize: input.batchSize,
              learningRate: run.learningRate,
              seed: input.seed,
              ...(resumeFrom && { resumeFrom }),
            }),
          );
          epochs.push(metrics);
          if (epochs.length > EPOCHS_SHOWN) epochs.shift();
          if (!best || metrics.valLoss < best.valLoss) best = metrics;
          job.setProgress(epoch * run.batchesPerEpoch);
          job.setMessage(
            `epoch ${epoch}/${input.epochs}: train loss ${metrics.trainLoss}, val loss ${metrics.valLoss}, ` +
              `val PSNR ${metrics.valPsnr} dB (input ${metrics.inputPsnr} dB)`,
          );
        }
        if (input.evaluate) {
          job.setStage('evaluating', 'held-out pages: input, classical pipeline, model');
          evaluation = await job.runResumable<EvaluationCursor, EvaluationSummary>((resumeFrom) =>
            long.evaluateHeldOutPages({
              model: inFolder(run.runDir, 'best.json'),
              dataset: input.dataset,
              ...(resumeFrom && { resumeFrom }),
            }),
          );
          job.setMessage(describeEvaluation(evaluation));
        }
        return result('completed');
      },
      cancelled: () => result('cancelled'),
    };
  },
});

/**
 * The file `name` in the folder `dir`: a data-dir path (`models/first` → `models/first/best.json`, as before) or a
 * bucket prefix, which ends with `/` already (`s3://b/models/first/` → `s3://b/models/first/best.json`).
 */
function inFolder(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

function describeEvaluation(evaluation: EvaluationSummary): string {
  const { input, classical, model } = evaluation;
  return (
    `PSNR on ${evaluation.pages} held-out pages: input ${input.psnr} dB, classical ${classical.psnr} dB, ` +
    `model ${model.psnr} dB (SSIM ${input.ssim} / ${classical.ssim} / ${model.ssim})`
  );
}

export type EvaluateModelResult = (EvaluationSummary & { outcome: 'completed' }) | { outcome: 'cancelled' };

/** Scores a trained model on a dataset's held-out pages against the degraded input and the classical pipeline. */
export const evaluateModel = defineJob<typeof evaluateModelInput, EvaluateModelResult>({
  type: 'evaluateModel',
  input: evaluateModelInput,
  progress: { done: 0, total: 0, unit: 'pages' },
  stage: 'evaluating',
  setup: ({ job, input }) => ({
    async work() {
      const evaluation = await job.runResumable<EvaluationCursor, EvaluationSummary>((resumeFrom) =>
        long.evaluateHeldOutPages({ ...input, ...(resumeFrom && { resumeFrom }) }),
      );
      job.setMessage(describeEvaluation(evaluation));
      return { outcome: 'completed', ...evaluation };
    },
  }),
});
