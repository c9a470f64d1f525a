/** The `restoreDocumentImage` activity: one page from file to restored file plus its quality report. */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { displayPath, resolveDataPath, writeFileAtomic } from '../files';
import { runCpuTask } from '../cpu-pool';
import { heartbeatWhile } from '../heartbeat-while';
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

/** Restores one page; `afterWrite` runs once the output is in place (the batch records it there). */
export async function restoreDocumentFile(
  request: RestoreDocumentRequest,
  afterWrite?: (output: string) => Promise<void>,
): Promise<RestoreDocumentResult> {
  const input = resolveDataPath(request.input, 'input');
  const output = request.output ? resolveDataPath(request.output, 'output') : defaultRestoredPath(input);
  const reference = request.reference ? resolveDataPath(request.reference, 'reference') : undefined;
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
  context.heartbeat({ step: 'writing' });
  await writeFileAtomic(output, await grayToSharp(restored.image).png({ compressionLevel: 6 }).toBuffer());
  await afterWrite?.(output);
  const { metrics } = restored;
  return {
    input: displayPath(input),
    output: displayPath(output),
    ...(reference && { reference: displayPath(reference) }),
    width: page.width,
    height: page.height,
    steps: restored.records,
    metrics,
    ...assess(metrics, request.thresholds),
  };
}

/** Activity: restore one document image (see {@link restoreDocumentFile}). */
export async function restoreDocumentImage(request: RestoreDocumentRequest): Promise<RestoreDocumentResult> {
  return restoreDocumentFile(request);
}
