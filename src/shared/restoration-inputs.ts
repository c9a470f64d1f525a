/**
 * Input schemas of the media and restoration jobs (see job-inputs.ts for why they are shared). Paths are relative
 * to the data dir (or absolute inside it); activities refuse anything outside. restoreBatch's folders and inputs may
 * also be `s3://` locations in an allowed bucket.
 */
import { z } from 'zod';
import { dataLocation } from './data-path';

export const mediaOperation = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('thumbnail'),
    width: z.number().int().min(1).max(4096).default(300),
    height: z.number().int().min(1).max(4096).default(300),
    fit: z.enum(['cover', 'contain', 'inside']).default('cover'),
  }),
  z.strictObject({
    op: z.literal('optimize'),
    format: z.enum(['jpeg', 'webp', 'avif']).default('webp'),
    /** Encoder quality; the defaults keep photos visually unchanged. */
    quality: z.number().int().min(1).max(100).optional(),
  }),
  z.strictObject({ op: z.literal('blur'), radius: z.number().min(0.3).max(100) }),
  z.strictObject({ op: z.literal('brightness'), factor: z.number().min(0).max(10) }),
  z.strictObject({ op: z.literal('contrast'), factor: z.number().min(0).max(10) }),
  z.strictObject({ op: z.literal('grayscale') }),
  z.strictObject({ op: z.literal('sharpen'), sigma: z.number().min(0.01).max(10).default(1) }),
]);

export const processMediaInput = z.strictObject({
  /** The image: in the data dir, or an object in an allowed bucket (`s3://bucket/key`). */
  input: dataLocation('file'),
  /** Where outputs go (default: next to the input, in `processed/`); may be a bucket prefix (`s3://bucket/out/`). */
  outputDir: dataLocation('folder').optional(),
  operations: z.array(mediaOperation).min(1).max(50),
});

/** `model` runs a trained model (the input's `model` field): see the training jobs. */
export const restorationStep = z.enum(['denoise', 'deskew', 'normalize', 'binarize', 'model']);

/** Pass/fail thresholds of the quality assessment. */
export const qualityThresholds = z
  .strictObject({
    /** With a reference: the output must beat the input's PSNR by at least this many dB. */
    minPsnrGainDb: z.number().default(0),
    /** With a reference: the output's SSIM must reach this. */
    minSsim: z.number().min(-1).max(1).default(0),
    /** Without a reference: the output's residual skew must stay below this. */
    maxResidualSkewDegrees: z.number().min(0).default(0.5),
    /** Without a reference: the output's estimated noise must stay below this (grey levels). */
    maxNoiseSigma: z.number().min(0).default(8),
  })
  .default({ minPsnrGainDb: 0, minSsim: 0, maxResidualSkewDegrees: 0.5, maxNoiseSigma: 8 });

export const DEFAULT_RESTORATION_STEPS = ['denoise', 'deskew', 'normalize'] as const;

const steps = z
  .array(restorationStep)
  .min(1)
  .max(8)
  .default([...DEFAULT_RESTORATION_STEPS]);

/** A trained model's checkpoint, for the `model` step (e.g. `models/<modelName>/best.json`). */
const model = dataLocation('file').optional();

/** The `model` step and the `model` field go together. */
const modelStepRule: [(value: { steps: string[]; model?: string | undefined }) => boolean, z.core.$ZodCustomParams] = [
  (value) => value.steps.includes('model') === (value.model !== undefined),
  { error: 'the "model" step needs a model checkpoint, and a model needs the "model" step', path: ['model'] },
];

export const restoreDocumentInput = z
  .strictObject({
    // Each may be an object in an allowed bucket (s3://bucket/key) too.
    input: dataLocation('file'),
    /** Default: `<input dir>/restored/<input name>.png`. */
    output: dataLocation('file').optional(),
    /** A clean version of the page, for PSNR and SSIM. */
    reference: dataLocation('file').optional(),
    steps,
    model,
    thresholds: qualityThresholds,
  })
  .refine(...modelStepRule);

export const restoreBatchInput = z
  .strictObject({
    // The batch's folders and inputs may be in an allowed bucket (s3://bucket/prefix/, s3://bucket/key) too.
    inputDir: dataLocation('folder').optional(),
    inputs: z.array(dataLocation('file')).min(1).max(100_000).optional(),
    outputDir: dataLocation('folder'),
    /** Clean references, matched to inputs by file name without extension. */
    referenceDir: dataLocation('folder').optional(),
    concurrency: z.number().int().min(1).max(64).default(4),
    steps,
    model,
    thresholds: qualityThresholds,
    /** Items per run before continuing as new (keeps each run's history small). */
    itemsPerRun: z.number().int().min(10).max(2000).default(500),
    /**
     * When `outputDir` holds another batch's state (other inputs, steps, model or thresholds): clear its results and
     * start fresh, rewriting the outputs. Without it such a batch is refused (`StateFolderMismatch`).
     */
    overwrite: z.boolean().default(false),
  })
  .refine((value) => (value.inputDir === undefined) !== (value.inputs === undefined), {
    message: 'give exactly one of inputDir or inputs',
    path: ['inputDir'],
  })
  .refine(...modelStepRule);

export const generateSamplePagesInput = z.strictObject({
  outputDir: dataLocation('folder').default('samples'),
  count: z.number().int().min(1).max(10_000).default(12),
  seed: z.number().int().min(0).default(1),
  width: z.number().int().min(200).max(5000).default(1240),
  height: z.number().int().min(200).max(7000).default(1754),
});

export type ProcessMediaInput = z.input<typeof processMediaInput>;
export type MediaOperation = z.output<typeof mediaOperation>;
export type RestorationStep = z.output<typeof restorationStep>;
export type QualityThresholds = z.output<typeof qualityThresholds>;
export type RestoreDocumentInput = z.input<typeof restoreDocumentInput>;
export type RestoreBatchInput = z.input<typeof restoreBatchInput>;
export type GenerateSamplePagesInput = z.input<typeof generateSamplePagesInput>;
