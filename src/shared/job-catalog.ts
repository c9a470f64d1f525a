/**
 * The job types users can start: workflow type, input schema, a one-line summary, an example input, and the
 * prefix of meaningful workflow ids. The CLI's `backroom job-types`, `backroom start` and the HTTP API read this.
 */
import { type z } from 'zod';
import { mathCalculationInput, simpleTestInput, stressTestInput, systemHealthCheckInput } from './job-inputs';
import {
  generateSamplePagesInput,
  processMediaInput,
  restoreBatchInput,
  restoreDocumentInput,
} from './restoration-inputs';
import { sendBulkEmailInput, sendEmailInput } from './email-inputs';
import { analyzeCutsInput } from './video-inputs';
import {
  TRAIN_MODEL_RENAMED_FIELDS,
  evaluateModelInput,
  generateSyntheticDataInput,
  trainModelInput,
} from './training-inputs';

export interface JobDefinition {
  summary: string;
  schema: z.ZodObject;
  example: Record<string, unknown>;
  /** Workflow ids are `<idPrefix>-<suffix>`, so the UI list reads well and a repeated id is refused. */
  idPrefix: string;
  /** An input field that names the job: when given, the id is `<idPrefix>-<value>`, so the same job cannot run twice. */
  idField?: string;
  /** An input field whose value joins the prefix (`train-layer1-…`), so the UI list tells the kinds apart. */
  idPrefixField?: string;
  /** Renamed input fields (old → new): the schema still accepts the old name, and a start warns about it. */
  renamedFields?: Readonly<Record<string, string>>;
}

export const JOB_CATALOG = {
  simpleTest: {
    summary: 'Counts seconds in a heartbeating activity; pausable and cancellable mid-way.',
    schema: simpleTestInput,
    example: { message: 'hi', durationSeconds: 30 },
    idPrefix: 'simple-test',
  },
  mathCalculation: {
    summary: 'Counts and sums the primes below a limit with a segmented sieve, resuming from its last chunk.',
    schema: mathCalculationInput,
    example: { limit: 50_000_000 },
    idPrefix: 'math',
  },
  systemHealthCheck: {
    summary: 'Checks the server, the task queue pollers, the data dir and the native dependencies.',
    schema: systemHealthCheckInput,
    example: {},
    idPrefix: 'health',
  },
  stressTest: {
    summary: 'Runs N activities or child workflows with bounded concurrency; reports throughput and latency.',
    schema: stressTestInput,
    example: { count: 200, concurrency: 20, mode: 'activities' },
    idPrefix: 'stress',
  },
  processMedia: {
    summary: 'Applies image operations in order (thumbnail, optimize to jpeg/webp/avif, blur, brightness, ...).',
    schema: processMediaInput,
    example: {
      input: 'photos/camera.jpg',
      operations: [
        { op: 'thumbnail', width: 300, height: 300 },
        { op: 'optimize', format: 'webp' },
      ],
    },
    idPrefix: 'media',
  },
  restoreDocument: {
    summary: 'Denoises, deskews, flattens and optionally binarizes one document image, then assesses its quality.',
    schema: restoreDocumentInput,
    example: { input: 'samples/degraded/page-0001.jpg', reference: 'samples/clean/page-0001.png' },
    idPrefix: 'restore',
  },
  restoreBatch: {
    summary: 'Restores every document of a folder with bounded concurrency; writes report.json and report.txt.',
    schema: restoreBatchInput,
    example: { inputDir: 'samples/degraded', outputDir: 'samples/restored', referenceDir: 'samples/clean' },
    idPrefix: 'restore-batch',
  },
  generateSamplePages: {
    summary: 'Renders realistic document pages and degraded copies (noise, blur, skew, stains, lighting, JPEG).',
    schema: generateSamplePagesInput,
    example: { outputDir: 'samples', count: 12 },
    idPrefix: 'samples',
  },
  sendEmail: {
    summary: 'Sends one message over SMTP (SMTP_URL); an SMTP server that is down makes it wait and retry.',
    schema: sendEmailInput,
    example: { to: 'ada@example.com', subject: 'Hello', text: 'Hello from Backroom' },
    idPrefix: 'email',
  },
  sendBulkEmail: {
    summary:
      'Sends a campaign from a CSV/JSON recipients file with a template, at a durable rate limit; writes a report.',
    schema: sendBulkEmailInput,
    example: {
      campaignId: 'welcome-2026',
      recipientsFile: 'recipients.csv',
      subject: 'Hi {{name}}',
      template: 'Hello {{name}}, welcome aboard.',
      rate: '20/s',
    },
    idPrefix: 'bulk-email',
    idField: 'campaignId',
  },
  analyzeCuts: {
    summary: 'Finds the shots of a video (cuts and fades), splits it into clips, scores each clip and thumbnails it.',
    schema: analyzeCutsInput,
    example: { video: 'videos/footage.mp4', maxClipSeconds: 20 },
    idPrefix: 'cuts',
  },
  generateSyntheticData: {
    summary: 'Renders clean pages and degraded copies, cuts and augments patch pairs, validates them (a dataset).',
    schema: generateSyntheticDataInput,
    example: { datasetId: 'demo', pages: 10 },
    idPrefix: 'dataset',
    idField: 'datasetId',
  },
  trainModel: {
    summary: 'Trains a layer-1 or layer-2 restoration model epoch by epoch with checkpoints, then evaluates it.',
    schema: trainModelInput,
    example: { layer: 'layer1', dataset: 'datasets/demo', epochs: 8, modelName: 'demo-layer1' },
    idPrefix: 'train',
    idField: 'modelName',
    idPrefixField: 'layer',
    renamedFields: TRAIN_MODEL_RENAMED_FIELDS,
  },
  evaluateModel: {
    summary: 'Scores a trained model on held-out pages (PSNR, SSIM) against the input and the classical pipeline.',
    schema: evaluateModelInput,
    example: { model: 'models/demo-layer1/best.json', dataset: 'datasets/demo' },
    idPrefix: 'evaluate',
  },
} as const satisfies Record<string, JobDefinition>;

export type JobType = keyof typeof JOB_CATALOG;
export const JOB_TYPES = Object.keys(JOB_CATALOG) as JobType[];

export function isJobType(name: string): name is JobType {
  return Object.hasOwn(JOB_CATALOG, name);
}

/**
 * What a start should tell its user about `raw` (the input as given, before parsing): one line per renamed field it
 * still uses. Pure, so a workflow can call it on its own input too.
 */
export function inputWarnings(jobType: string, raw: unknown): string[] {
  const renamed: JobDefinition['renamedFields'] = isJobType(jobType) ? catalogEntry(jobType).renamedFields : undefined;
  if (!renamed || raw === null || typeof raw !== 'object') return [];
  return Object.entries(renamed)
    .filter(([old]) => Object.hasOwn(raw, old))
    .map(([old, current]) => `${old} is deprecated: use ${current} (${old} is accepted until the next release)`);
}

function catalogEntry(jobType: JobType): JobDefinition {
  return JOB_CATALOG[jobType];
}

/** A bad job input, with the offending fields named. */
export class JobInputError extends Error {
  constructor(
    readonly jobType: string,
    readonly issues: string[],
  ) {
    super(`Invalid input for ${jobType}: ${issues.join('; ')}`);
    this.name = 'JobInputError';
  }
}

/** Validates and fills in defaults, or throws a {@link JobInputError} naming each bad field. */
export function parseJobInput<S extends z.ZodType>(jobType: string, schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => {
    const at = issue.path.length ? `${issue.path.join('.')}.` : '';
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${at}${key}: unknown field`).join('; ');
    const field = issue.path.length ? issue.path.join('.') : '(input)';
    return `${field}: ${issue.message}`;
  });
  throw new JobInputError(jobType, issues);
}
