/**
 * The `evaluateHeldOutPages` activity (the work of `evaluateModel`, and of `trainModel`'s last step): restores a
 * dataset's held-out pages (or any pages given with their clean references, such as a real scan and its ground
 * truth) with the model and with the classical pipeline (`restoreDocument`'s steps; plus Sauvola binarisation for a
 * layer-2 model, which outputs black and white), and scores both and the untouched input against the clean page by
 * PSNR and SSIM. Resumable page by page.
 */
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Resumable } from '../../shared/job-status';
import { DEFAULT_RESTORATION_STEPS, type RestorationStep } from '../../shared/restoration-inputs';
import type { ModelLayer } from '../../shared/training-inputs';
import { displayPath } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { canonicalLocation, fileAt, localFile, type Place } from '../places';
import { runResumableLoop } from '../resumable-loop';
import { runCpuTask } from '../cpu-pool';
import { grayToSharp, readGray, type GrayImage } from '../restoration/gray-image';
import { DATASET_EVALUATION_FILE, PAGES_EVALUATION_FILE, forInference, loadModel } from './apply-model';
import { readDatasetImage, readManifest } from './dataset';
import type { Scores } from './evaluate-page';

export type { Scores };

export interface EvaluateRequest {
  model: string;
  /** A dataset whose held-out pages are evaluated... */
  dataset?: string | undefined;
  /** ...or these pages (in the data dir or a bucket), each with its clean reference. */
  pages?: { input: string; reference: string }[] | undefined;
  output?: string | undefined;
  resumeFrom?: EvaluationCursor;
}

export interface PageEvaluation {
  page: string;
  input: Scores;
  classical: Scores & { ms: number };
  model: Scores & { ms: number };
}

export interface EvaluationCursor {
  index: number;
  pages: PageEvaluation[];
}

export interface EvaluationSummary {
  modelFile: string;
  layer: ModelLayer;
  /** What it was evaluated on: a dataset's held-out (synthetic) pages, or pages given with their references. */
  on?: 'dataset' | 'pages';
  pages: number;
  classicalSteps: RestorationStep[];
  input: Scores;
  classical: Scores;
  model: Scores;
  /** Model PSNR minus the classical pipeline's, in dB (positive: the model wins). */
  psnrGainOverClassical: number;
  report: string;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/**
 * What the classical pipeline runs against a model of `layer` (layer 2 is compared with a binarised result):
 * `restoreDocument`'s pixel steps without `deskew`. References share their page's geometry, so a rotation, even a
 * right one, would be scored as damage (on the real manuscript, deskew's 1.65° costs Sauvola 16.3 → 7.5 dB); the
 * model does not rotate either.
 */
export function classicalSteps(layer: ModelLayer): RestorationStep[] {
  const pixelSteps = DEFAULT_RESTORATION_STEPS.filter((step) => step !== 'deskew');
  return layer === 'layer2' ? [...pixelSteps, 'binarize'] : [...pixelSteps];
}

/** A page to evaluate: its name, how its files are shown, and how to read them. */
interface PageToEvaluate {
  name: string;
  shown: { degraded: string; clean: string };
  read(which: 'degraded' | 'clean'): Promise<GrayImage>;
}

/** Reads a page given by location (data dir or bucket); a missing or broken file is a clear, non-retryable error. */
async function readPageAt(location: string, what: string): Promise<GrayImage> {
  const local = await localFile(location, what);
  try {
    return await readGray(local.file, { what });
  } finally {
    await local.release();
  }
}

/**
 * The pages to evaluate: the dataset's held-out pages (a bucket's dataset is mirrored first, dataset-mirror.ts), or
 * the ones given (each in the data dir or a bucket). Every location is checked here, before any work.
 */
async function pagesToEvaluate(
  request: EvaluateRequest,
  onFetch: (files: number, total: number) => void,
): Promise<PageToEvaluate[]> {
  if (request.pages) {
    return request.pages.map((page, index) => {
      fileAt(page.input, 'page');
      fileAt(page.reference, 'reference');
      return {
        name: `${String(index + 1).padStart(3, '0')}-${path.posix.parse(page.input).name}`,
        shown: { degraded: canonicalLocation(page.input), clean: canonicalLocation(page.reference) },
        read: (which) =>
          which === 'degraded' ? readPageAt(page.input, 'page') : readPageAt(page.reference, 'reference'),
      };
    });
  }
  if (!request.dataset)
    throw ApplicationFailure.nonRetryable('Give a dataset or pages to evaluate on.', 'InvalidInput');
  const folder = await readManifest(request.dataset, onFetch);
  const shown = (relative: string) =>
    folder.mirrorOf ? `${folder.mirrorOf}${relative}` : displayPath(path.join(folder.dir, relative));
  return folder.manifest.pages.val.map((page) => ({
    name: page.name,
    shown: { degraded: shown(page.degraded), clean: shown(page.clean) },
    read: (which) =>
      which === 'degraded'
        ? readDatasetImage(folder, page.degraded, 'page')
        : readDatasetImage(folder, page.clean, 'reference'),
  }));
}

/** Where the report goes: the output asked for, or next to the model. */
function reportAt(request: EvaluateRequest): { place: Place; name: string } {
  if (request.output) return fileAt(request.output, 'output');
  return {
    place: fileAt(request.model, 'model').place,
    name: request.pages ? PAGES_EVALUATION_FILE : DATASET_EVALUATION_FILE,
  };
}

/** Evaluates a model on the dataset's held-out pages (see the module comment). */
export async function evaluateHeldOutPages(
  request: EvaluateRequest,
): Promise<Resumable<EvaluationCursor, EvaluationSummary>> {
  const report = reportAt(request);
  const checkpoint = await loadModel(request.model);
  let fetching = '';
  const pages = await heartbeatWhile(
    pagesToEvaluate(request, (files, total) => (fetching = ` (${files}/${total} files)`)),
    () => ({
      checkpoint: request.resumeFrom ?? { index: 0, pages: [] },
      message: `fetching the dataset${fetching}`,
    }),
  );
  const pictures = report.place.folder('evaluation');
  const steps = classicalSteps(checkpoint.layer);
  const outcome = await runResumableLoop<EvaluationCursor, EvaluationCursor>({
    initial: { index: 0, pages: [] },
    resumeFrom: request.resumeFrom,
    isDone: (cursor) => cursor.index >= pages.length,
    step: async (cursor) => {
      const page = pages[cursor.index];
      if (!page) return { ...cursor, index: cursor.index + 1 };
      const degraded = await page.read('degraded');
      const clean = await page.read('clean');
      if (clean.width !== degraded.width || clean.height !== degraded.height) {
        throw ApplicationFailure.nonRetryable(
          `${page.shown.clean} is ${clean.width}×${clean.height} but ${page.shown.degraded} is ` +
            `${degraded.width}×${degraded.height}; a reference must match its page.`,
          'ReferenceSizeMismatch',
        );
      }
      const { restored, ...scored } = await runCpuTask('evaluatePage', {
        degraded,
        clean,
        classicalSteps: steps,
        model: forInference(checkpoint),
      });
      await pictures.write(`${page.name}.png`, await grayToSharp(restored).png().toBuffer(), 'evaluation image');
      const evaluation: PageEvaluation = { page: page.name, ...scored };
      return { index: cursor.index + 1, pages: [...cursor.pages, evaluation] };
    },
    progress: (cursor) => ({ done: cursor.index, total: pages.length, unit: 'pages' }),
    describe: (cursor) => `${cursor.index} of ${pages.length} pages evaluated`,
    finish: (cursor) => cursor,
  });
  if (!outcome.finished) return outcome;
  const evaluated = outcome.result.pages;
  const mean = (pick: (page: PageEvaluation) => Scores): Scores => ({
    psnr: round(evaluated.reduce((sum, page) => sum + pick(page).psnr, 0) / Math.max(1, evaluated.length)),
    ssim: round(evaluated.reduce((sum, page) => sum + pick(page).ssim, 0) / Math.max(1, evaluated.length)),
  });
  const summary: EvaluationSummary = {
    modelFile: request.model,
    layer: checkpoint.layer,
    on: request.pages ? 'pages' : 'dataset',
    pages: evaluated.length,
    classicalSteps: steps,
    input: mean((page) => page.input),
    classical: mean((page) => page.classical),
    model: mean((page) => page.model),
    psnrGainOverClassical: round(mean((page) => page.model).psnr - mean((page) => page.classical).psnr),
    report: report.place.locate(report.name),
  };
  await report.place.write(report.name, JSON.stringify({ ...summary, perPage: evaluated }, null, 2), 'evaluation');
  return { ...outcome, result: summary };
}
