/** The `restoreDocumentImage` activity: one page from file to restored file plus its quality report. */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import type { Resumable } from '../../shared/job-status';
import { runCpuTask } from '../cpu-pool';
import { heartbeatWhile } from '../heartbeat-while';
import { canonicalLocation, fileAt, localFile } from '../places';
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

/**
 * Restores one page and writes it: input, reference and output may each be in the data dir or in an allowed bucket
 * (an object is streamed into a scratch file for decoding, the output is written whole). The default output is
 * `<input dir>/restored/<input name>.png` (PNG: restoration output must not gain JPEG artefacts).
 */
export async function restoreDocumentFile(request: RestoreDocumentRequest): Promise<RestoreDocumentResult> {
  // Every location is checked before any work: a refused output fails at once, not after the pixels.
  const input = fileAt(request.input, 'input');
  const output = request.output
    ? fileAt(request.output, 'output')
    : { place: input.place.folder('restored'), name: `${path.posix.parse(input.name).name}.png` };
  if (request.reference) fileAt(request.reference, 'reference');
  const local = await localFile(request.input, 'input');
  try {
    const reference = request.reference ? await localFile(request.reference, 'reference') : undefined;
    try {
      const { result, png } = await restorePage(
        {
          input: local.file,
          reference: reference?.file,
          shown: {
            input: canonicalLocation(request.input),
            output: output.place.locate(output.name),
            ...(request.reference && { reference: canonicalLocation(request.reference) }),
          },
        },
        request,
      );
      await output.place.write(output.name, png, 'output');
      return result;
    } finally {
      await reference?.release();
    }
  } finally {
    await local.release();
  }
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
