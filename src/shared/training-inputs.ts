/**
 * Input schemas of the training jobs (see job-inputs.ts for why they are shared), and the per-epoch metrics that
 * `trainModel` reports in its status. Every path is relative to the data dir (or absolute inside it), or an
 * `s3://bucket/key` file / `s3://bucket/prefix/` folder in an allowed bucket.
 */
import { z } from 'zod';
import { dataLocation } from './data-path';

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'use 1-64 letters, digits, dots, dashes or underscores' });

/** What a synthetic dataset's degraded pages suffer (see generateSyntheticData's `pageFaults`). */
export const PAGE_FAULTS = ['scan', 'document'] as const;
export type PageFaults = (typeof PAGE_FAULTS)[number];

export const generateSyntheticDataInput = z.strictObject({
  /** Names the dataset and its folder (`datasets/<datasetId>` unless `outputDir` says otherwise). */
  datasetId: name,
  /** Clean pages to render; a fifth of them (at least one) are held out for validation and evaluation. */
  pages: z.number().int().min(2).max(2000),
  /** Side of the square patches cut from the pages. */
  patchSize: z.number().int().min(32).max(256).default(64),
  /** Patches cut from each page (positions with ink are preferred). */
  patchesPerPage: z.number().int().min(1).max(1000).default(48),
  /** Adds a flipped / rotated / noisier / blurrier copy of every training patch. */
  augment: z.boolean().default(true),
  /**
   * `scan` (default): a scan's faults (lighting, stains, blur, noise, JPEG). `document` adds old documents' own:
   * handwriting-like strokes, show-through of the other side, faded and broken ink, blotchy paper.
   */
  pageFaults: z.enum(PAGE_FAULTS).optional(),
  width: z.number().int().min(256).max(5000).default(1240),
  height: z.number().int().min(256).max(7000).default(1754),
  seed: z.number().int().min(0).default(1),
  /** Where the dataset goes: a data-dir folder or `s3://bucket/prefix/` (default `datasets/<datasetId>`). */
  outputDir: dataLocation('folder').optional(),
  /**
   * When the dataset folder holds another dataset (other datasetId, pages, sizes, patches per page, augment or
   * seed): remove its pages, patches and manifest and start fresh. Without it such a dataset is refused
   * (`StateFolderMismatch`); the same options resume.
   */
  overwrite: z.boolean().default(false),
});

export const modelLayer = z.enum(['layer1', 'layer2']);
/** The layer-2 networks `trainModel` can train (see its `network` field). */
export const TRAINING_NETWORKS = ['window9', 'guided'] as const;
export type TrainingNetwork = (typeof TRAINING_NETWORKS)[number];

export const trainModelInput = z
  .strictObject({
    /** `layer1` restores degraded pages toward clean ones; `layer2` turns layer 1's output into clean ink/paper. */
    layer: modelLayer,
    /** A dataset folder made by generateSyntheticData (a data-dir folder or `s3://bucket/prefix/`). */
    dataset: dataLocation('folder'),
    epochs: z.number().int({ error: 'must be a whole number' }).min(1).max(10_000),
    /** Pixel windows per optimizer step. */
    batchSize: z.number().int().min(1).max(65_536).default(1024),
    learningRate: z
      .number({ error: 'must be a number' })
      .positive({ error: 'must be a positive number' })
      .max(1)
      .optional(),
    /**
     * Names the model: checkpoints go to `models/<modelName>/` (unless `modelDir` says where), the workflow id is
     * `train-<layer>-<modelName>`.
     */
    modelName: name.optional(),
    /**
     * Where the checkpoints, `best.json` and the model's state go: a data-dir folder or `s3://bucket/prefix/`
     * (default `models/<modelName>`). In a bucket, any worker resumes the run from them.
     */
    modelDir: dataLocation('folder').optional(),
    /** Deprecated: the old name of `modelName` (not Temporal's run id), still accepted for one release. */
    runId: name.optional().meta({ deprecated: true, description: 'Deprecated: the old name of modelName.' }),
    /** A checkpoint to continue from (new data or learning rate); its layer must match. */
    fineTuneFrom: dataLocation('file').optional(),
    /** Layer 2 only: the layer-1 model whose output it refines. */
    layer1Model: dataLocation('file').optional(),
    /**
     * Layer 2 only: `window9` (default) refines a layer-1 model's output with a 9×9 network over every pixel;
     * `guided` reads the page as the document binariser normalises it and decides only the pixels the binariser is
     * unsure of (no layer-1 model; fast, and it transfers to real scans).
     */
    network: z.enum(TRAINING_NETWORKS).optional(),
    seed: z.number().int().min(0).default(1),
    /** Evaluate on the held-out pages at the end (PSNR / SSIM against the degraded input and the classical pipeline). */
    evaluate: z.boolean().default(true),
    /** Epochs per run before continuing as new (keeps each run's history small). */
    epochsPerRun: z.number().int().min(1).max(500).default(100),
    /**
     * When the model folder holds another model (other layer, dataset, fine-tune source, layer-1 model, batch
     * size, learning rate or seed): remove its checkpoints and start fresh. Without it such a model is refused
     * (`StateFolderMismatch`); the same options resume.
     */
    overwrite: z.boolean().default(false),
  })
  .refine(
    (value) =>
      value.layer === 'layer1' ||
      value.layer1Model !== undefined ||
      value.fineTuneFrom !== undefined ||
      value.network === 'guided',
    {
      error:
        'a layer2 run refines a layer-1 model: give layer1Model (or fineTuneFrom a layer-2 checkpoint), or ' +
        'network "guided", which needs none',
      path: ['layer1Model'],
    },
  )
  .refine((value) => value.network === undefined || value.layer === 'layer2', {
    error: 'network chooses a layer-2 model: give it with layer "layer2"',
    path: ['network'],
  })
  .refine((value) => value.network !== 'guided' || value.layer1Model === undefined, {
    error: 'the guided network reads the normalised page, not a layer-1 model: leave layer1Model out',
    path: ['layer1Model'],
  })
  .refine((value) => value.runId === undefined || value.modelName === undefined || value.runId === value.modelName, {
    error: 'runId is the old name of modelName and names the same thing: give modelName only',
    path: ['runId'],
  })
  // The old name maps to the new one, so everything past the parse (ids, folders, the workflow) sees `modelName` only.
  .overwrite(({ runId, ...value }) => ({
    ...value,
    ...(value.modelName === undefined && runId !== undefined && { modelName: runId }),
  }));

/** Input fields of `trainModel` that were renamed (old → new): the old name still works for one release. */
export const TRAIN_MODEL_RENAMED_FIELDS = { runId: 'modelName' } as const;

export const evaluateModelInput = z
  .strictObject({
    /** A model checkpoint (`models/<modelName>/best.json`, or `s3://bucket/models/<modelName>/best.json`). */
    model: dataLocation('file'),
    /** The dataset whose held-out pages it is measured on... */
    dataset: dataLocation('folder').optional(),
    /** ...or pages of your own with their clean references (a real scan and its ground truth). */
    pages: z
      .array(z.strictObject({ input: dataLocation('file'), reference: dataLocation('file') }))
      .min(1)
      .max(1000)
      .optional(),
    /** Where the report goes (default: next to the model, `evaluation.json`). */
    output: dataLocation('file').optional(),
  })
  .refine((value) => (value.dataset === undefined) !== (value.pages === undefined), {
    error: 'give exactly one of dataset or pages',
    path: ['dataset'],
  });

/** One epoch of a training run, as `status` and its checkpoint (`models/<modelName>/epoch-NNNN.json`) show it. */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  /** PSNR (dB) of the model's output on the validation patches. */
  valPsnr: number;
  /** PSNR (dB) of the untouched input of those patches, the bar to beat. */
  inputPsnr: number;
  seconds: number;
  checkpoint: string;
}

export type ModelLayer = z.output<typeof modelLayer>;
export type GenerateSyntheticDataInput = z.input<typeof generateSyntheticDataInput>;
export type TrainModelInput = z.input<typeof trainModelInput>;
export type EvaluateModelInput = z.input<typeof evaluateModelInput>;
