/**
 * One held-out page's evaluation, as a CPU-pool task: the classical pipeline and the model restore the page, and
 * both and the untouched input are scored against the clean page. Plain data in and out; no files.
 */
import type { ModelLayer } from '../../shared/training-inputs';
import type { RestorationStep } from '../../shared/restoration-inputs';
import type { GrayImage } from '../restoration/gray-image';
import { cutBelow } from '../restoration/binarize';
import { psnr, ssim } from '../restoration/quality';
import { restorePixels } from '../restoration/restore-image';
import { applyCheckpoint } from './apply-model';
import type { Checkpoint } from './checkpoint';

export interface Scores {
  psnr: number;
  ssim: number;
}

export interface PageScores {
  input: Scores;
  classical: Scores & { ms: number };
  model: Scores & { ms: number };
  /** The model's output, which the activity writes next to the report. */
  restored: GrayImage;
}

const round = (value: number) => Math.round(value * 1000) / 1000;
const scores = (output: GrayImage, reference: GrayImage): Scores => ({
  psnr: round(Math.min(99, psnr(output, reference))),
  ssim: round(ssim(output, reference)),
});

/** A layer-2 model outputs black and white, so it is scored against the clean page cut at mid-grey. */
function referenceFor(layer: ModelLayer, clean: GrayImage): GrayImage {
  return layer === 'layer2' ? cutBelow(clean, 128) : clean;
}

export async function evaluatePage(input: {
  degraded: GrayImage;
  clean: GrayImage;
  classicalSteps: RestorationStep[];
  model: Checkpoint;
}): Promise<PageScores> {
  const { degraded, model } = input;
  const reference = referenceFor(model.layer, input.clean);
  let started = performance.now();
  const classical = (await restorePixels(degraded, input.classicalSteps)).image;
  const classicalMs = Math.round(performance.now() - started);
  started = performance.now();
  const restored = await applyCheckpoint(model, degraded);
  const modelMs = Math.round(performance.now() - started);
  return {
    input: scores(degraded, reference),
    classical: { ...scores(classical, reference), ms: classicalMs },
    model: { ...scores(restored, reference), ms: modelMs },
    restored,
  };
}
