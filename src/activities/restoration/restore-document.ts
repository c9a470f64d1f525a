/** The `restoreDocumentImage` activity: one page from file to restored file plus its quality report. */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { displayPath, resolveDataPath, writeFileAtomic } from '../files';
import type { Resumable } from '../../shared/job-status';
import { runCpuTask } from '../cpu-pool';
import { heartbeatWhile } from '../heartbeat-while';
import { runResumableLoop } from '../resumable-loop';
import { forInference, loadModel } from '../training/apply-model';
import { grayToSharp, readGray, type GrayImage } from './gray-image';
import { assess, type Assessment, type DocumentMetrics, type StepRecord } from './restore-image';

export interface RestoreDocumentRequest {
  input: string;
  /** Default: `<input dir>/restored/<input name>.png`. */
  output?: string | undefined;
  reference?: string | undefined;
  steps: RestorationStep[];
  /** The checkpoint the `model` step runs. */
  model?: string | undefined;
  thresholds: QualityThresholds;
}

export interface RestoreDocumentResult extends Assessment {
  input: string;
  output: string;
  reference?: string;
  width: number;
  height: number;
  steps: StepRecord[];
  metrics: DocumentMetrics;
}

/** Reads an image for restoration; bad files become clear, non-retryable errors. */
async function readPage(file: string, what: string): Promise<GrayImage> {
  return readGray(file, { what });
}

/** Default output path: `<dir>/restored/<name>.png` (PNG: restoration output must not gain JPEG artefacts). */
export function defaultRestoredPath(input: string): string {
  return path.join(path.dirname(input), 'restored', `${path.parse(input).name}.png`);
}

/**
 * Where a caller (the batch) records an output's fate around the one moment it lands: `beforeWrite` gets the
 * finished result and the exact bytes before the atomic rename, `afterWrite` runs once the output is in place.
 */
export interface OutputWriteHooks {
  beforeWrite?(result: RestoreDocumentResult, data: Buffer): Promise<void>;
  afterWrite?(output: string): Promise<void>;
}

/** Restores one page and writes it; see {@link OutputWriteHooks} for what a caller may record around the write. */
export async function restoreDocumentFile(
  request: RestoreDocumentRequest,
  hooks: OutputWriteHooks = {},
): Promise<RestoreDocumentResult> {
  const input = resolveDataPath(request.input, 'input');
  const output = request.output ? resolveDataPath(request.output, 'output') : defaultRestoredPath(input);
  const reference = request.reference ? resolveDataPath(request.reference, 'reference') : undefined;
  const { result, png } = await restorePage(
    {
      input,
      reference,
      shown: {
        input: displayPath(input),
        output: displayPath(output),
        ...(reference && { reference: displayPath(reference) }),
      },
    },
    request,
  );
  await hooks.beforeWrite?.(result, png);
  await writeFileAtomic(output, png);
  await hooks.afterWrite?.(output);
  return result;
}

/** One page's files: local files to read (checked already), and the names its result gives them. */
export interface PageFiles {
  input: string;
  reference?: string | undefined;
  /** How the result names the input, output and reference (data-dir paths or `s3://` locations). */
  shown: { input: string; output: string; reference?: string };
}

/**
 * Restores one page from local files and assesses it: the result and the PNG bytes, written by the caller (to the
 * data dir, or to a bucket).
 */
export async function restorePage(
  files: PageFiles,
  request: Pick<RestoreDocumentRequest, 'steps' | 'model' | 'thresholds'>,
): Promise<{ result: RestoreDocumentResult; png: Buffer }> {
  const { input, reference } = files;
  const context = Context.current();
  const page = await readPage(input, 'input');
  const clean = reference ? await readPage(reference, 'reference') : undefined;
  const model = request.model ? await loadModel(request.model) : undefined;
  // The pixel work runs on the CPU pool; the restored page's quality is measured there too, in the same task.
  context.heartbeat({ step: 'restoring' });
  const restored = await heartbeatWhile(
    runCpuTask('restoreAndMeasure', {
      page,
      reference: clean,
      steps: request.steps,
      model: model && forInference(model),
    }),
    () => ({ step: 'restoring' }),
  );
  const { metrics } = restored;
  const result: RestoreDocumentResult = {
    ...files.shown,
    width: page.width,
    height: page.height,
    steps: restored.records,
    metrics,
    ...assess(metrics, request.thresholds),
  };
  context.heartbeat({ step: 'writing' });
  const png = await grayToSharp(restored.image).png({ compressionLevel: 6 }).toBuffer();
  return { result, png };
}

/**
 * Activity: restore one document image (see {@link restoreDocumentFile}); the form runs before pause existed. It
 * heartbeats while the page is read, restored and encoded, however long each takes.
 */
export async function restoreDocumentImage(request: RestoreDocumentRequest): Promise<RestoreDocumentResult> {
  return heartbeatWhile(restoreDocumentFile(request), () => ({ step: 'restoring' }));
}

/** Where a restoreDocument stands: the page is one task on the CPU pool, so it is either to do or done. */
export interface RestoreDocumentCheckpoint {
  result?: RestoreDocumentResult;
}

/**
 * Activity: {@link restoreDocumentFile} as an interruptible step. A pause or cancel aborts the pixel task on the CPU
 * pool at once (nothing is written) and hands back an empty checkpoint, so a resume restores the page again; once the
 * output is written the step is done.
 */
export async function restoreDocumentResumable(
  request: RestoreDocumentRequest,
): Promise<Resumable<RestoreDocumentCheckpoint, RestoreDocumentResult>> {
  return runResumableLoop<RestoreDocumentCheckpoint, RestoreDocumentResult>({
    initial: {},
    isDone: (checkpoint) => checkpoint.result !== undefined,
    step: async () => ({ result: await restoreDocumentFile(request) }),
    progress: (checkpoint) => ({ done: checkpoint.result ? 1 : 0, total: 1, unit: 'documents' }),
    describe: (checkpoint) => (checkpoint.result ? 'written' : `restoring ${request.input}`),
    finish: (checkpoint) => checkpoint.result!,
  });
}
