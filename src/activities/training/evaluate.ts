/**
 * The `evaluateHeldOutPages` activity (the work of `evaluateModel`, and of `trainModel`'s last step): restores the dataset's held-out pages with the model and with the classical
 * pipeline (`restoreDocument`'s steps; plus Sauvola binarisation for a layer-2 model, which outputs black and
 * white), and scores both and the untouched input against the clean page by PSNR and SSIM. Resumable page by page.
 */
import path from 'node:path';
import type { Resumable } from '../../shared/job-status';
import { DEFAULT_RESTORATION_STEPS, type RestorationStep } from '../../shared/restoration-inputs';
import type { ModelLayer } from '../../shared/training-inputs';
import { displayPath, resolveDataPath, writeFileAtomic } from '../files';
import { runResumableLoop } from '../resumable-loop';
import { grayToSharp, readGray, type GrayImage } from '../restoration/gray-image';
import { psnr, ssim } from '../restoration/quality';
import { restorePixels } from '../restoration/restore-image';
import { applyCheckpoint, loadModel } from './apply-model';
import { readManifest } from './dataset';

export interface EvaluateRequest {
  model: string;
  dataset: string;
  output?: string | undefined;
  resumeFrom?: EvaluationCursor;
}

export interface Scores {
  psnr: number;
  ssim: number;
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
const scores = (output: GrayImage, reference: GrayImage): Scores => ({
  psnr: round(Math.min(99, psnr(output, reference))),
  ssim: round(ssim(output, reference)),
});

/** What the classical pipeline runs for a model of `layer` (layer 2 is compared with a binarised result). */
export function classicalSteps(layer: ModelLayer): RestorationStep[] {
  return layer === 'layer2' ? [...DEFAULT_RESTORATION_STEPS, 'binarize'] : [...DEFAULT_RESTORATION_STEPS];
}

/** Evaluates a model on the dataset's held-out pages (see the module comment). */
export async function evaluateHeldOutPages(
  request: EvaluateRequest,
): Promise<Resumable<EvaluationCursor, EvaluationSummary>> {
  const checkpoint = await loadModel(request.model);
  const { dir, manifest } = await readManifest(request.dataset);
  const modelFile = resolveDataPath(request.model, 'model');
  const output = request.output
    ? resolveDataPath(request.output, 'output')
    : path.join(path.dirname(modelFile), 'evaluation.json');
  const pages = manifest.pages.val;
  const steps = classicalSteps(checkpoint.layer);
  const outcome = await runResumableLoop<EvaluationCursor, EvaluationCursor>({
    initial: { index: 0, pages: [] },
    resumeFrom: request.resumeFrom,
    isDone: (cursor) => cursor.index >= pages.length,
    step: async (cursor) => {
      const page = pages[cursor.index];
      if (!page) return { ...cursor, index: cursor.index + 1 };
      const degraded = await readGray(path.join(dir, page.degraded));
      const clean = await readGray(path.join(dir, page.clean));
      const reference =
        checkpoint.layer === 'layer2'
          ? { ...clean, data: Uint8Array.from(clean.data, (value) => (value < 128 ? 0 : 255)) }
          : clean;
      let started = performance.now();
      const classical = (await restorePixels(degraded, steps)).image;
      const classicalMs = Math.round(performance.now() - started);
      started = performance.now();
      const restored = await applyCheckpoint(checkpoint, degraded);
      const modelMs = Math.round(performance.now() - started);
      await writeFileAtomic(
        path.join(path.dirname(output), 'evaluation', `${page.name}.png`),
        await grayToSharp(restored).png().toBuffer(),
      );
      const evaluation: PageEvaluation = {
        page: page.name,
        input: scores(degraded, reference),
        classical: { ...scores(classical, reference), ms: classicalMs },
        model: { ...scores(restored, reference), ms: modelMs },
      };
      return { index: cursor.index + 1, pages: [...cursor.pages, evaluation] };
    },
    progress: (cursor) => ({ done: cursor.index, total: pages.length, unit: 'pages' }),
    describe: (cursor) => `${cursor.index} of ${pages.length} held-out pages evaluated`,
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
    pages: evaluated.length,
    classicalSteps: steps,
    input: mean((page) => page.input),
    classical: mean((page) => page.classical),
    model: mean((page) => page.model),
    psnrGainOverClassical: round(mean((page) => page.model).psnr - mean((page) => page.classical).psnr),
    report: displayPath(output),
  };
  await writeFileAtomic(output, JSON.stringify({ ...summary, perPage: evaluated }, null, 2));
  return { finished: true, result: summary };
}
