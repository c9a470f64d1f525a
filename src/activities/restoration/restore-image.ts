/**
 * Restores one document image: denoise, deskew, flatten the background and normalise contrast, optionally
 * binarise; then assesses quality against a clean reference (PSNR, SSIM) or, without one, by no-reference measures.
 * A trained model (see activities/training) is one more step, `model`, and can sit anywhere in the list.
 */
import sharp from 'sharp';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { applyCheckpoint } from '../training/apply-model';
import type { Checkpoint } from '../training/checkpoint';
import { binarizeSauvola } from './binarize';
import { estimateSkewDegrees } from './deskew';
import { grayToSharp, type GrayImage } from './gray-image';
import { noReferenceMetrics, psnr, ssim, type QualityMetrics } from './quality';

export interface StepRecord {
  step: RestorationStep;
  ms: number;
  /** What the step found or did, e.g. the skew angle it corrected. */
  detail?: string;
  skewDegrees?: number;
}

export interface ReferenceMetrics {
  inputPsnr: number;
  outputPsnr: number;
  psnrGain: number;
  inputSsim: number;
  outputSsim: number;
}

export interface DocumentMetrics {
  input: QualityMetrics;
  output: QualityMetrics;
  reference?: ReferenceMetrics;
}

export interface Assessment {
  passed: boolean;
  /** Why it failed (empty when it passed). */
  reasons: string[];
}

async function fromSharp(pipeline: sharp.Sharp): Promise<GrayImage> {
  const { data, info } = await pipeline.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Median filter: removes salt-and-pepper and speckle noise while keeping stroke edges. */
async function denoise(image: GrayImage): Promise<GrayImage> {
  return fromSharp(grayToSharp(image).median(3));
}

/** Rotates the page back by its estimated skew, keeping its size (white fills the corners). */
async function deskew(image: GrayImage): Promise<{ image: GrayImage; angle: number }> {
  const angle = estimateSkewDegrees(image);
  if (Math.abs(angle) < 0.05) return { image, angle };
  const rotated = await grayToSharp(image)
    .rotate(-angle, { background: { r: 255, g: 255, b: 255 } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const left = Math.max(0, Math.round((rotated.info.width - image.width) / 2));
  const top = Math.max(0, Math.round((rotated.info.height - image.height) / 2));
  const straight = await fromSharp(
    sharp(rotated.data, {
      raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels },
    }).extract({ left, top, width: image.width, height: image.height }),
  );
  return { image: straight, angle };
}

/** Max filter along rows then columns (separable): lifts dark strokes out of a background estimate. */
function maxFilter(image: GrayImage, radius: number): GrayImage {
  const { width, height } = image;
  const rows = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = 0;
      for (let dx = Math.max(0, x - radius); dx <= Math.min(width - 1, x + radius); dx++) {
        best = Math.max(best, image.data[y * width + dx] ?? 0);
      }
      rows[y * width + x] = best;
    }
  }
  const out = new Uint8Array(width * height);
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      let best = 0;
      for (let dy = Math.max(0, y - radius); dy <= Math.min(height - 1, y + radius); dy++) {
        best = Math.max(best, rows[dy * width + x] ?? 0);
      }
      out[y * width + x] = best;
    }
  }
  return { width, height, data: out };
}

/**
 * Background flattening: estimate the paper (max filter on a quarter-size copy, so ink disappears, then a smooth
 * blur), divide it out so uneven lighting and stains fade to white, then stretch the ink to full contrast.
 */
async function normalize(image: GrayImage): Promise<GrayImage> {
  const small = await fromSharp(
    grayToSharp(image).resize(Math.max(1, Math.round(image.width / 4)), Math.max(1, Math.round(image.height / 4)), {
      kernel: 'linear',
    }),
  );
  const paperSmall = maxFilter(small, 4);
  const paper = await fromSharp(
    grayToSharp(paperSmall).blur(6).resize(image.width, image.height, { kernel: 'linear', fit: 'fill' }),
  );
  const flat = new Uint8Array(image.data.length);
  const histogram = new Uint32Array(256);
  for (let i = 0; i < flat.length; i++) {
    const value = Math.min(255, Math.round(((image.data[i] ?? 0) * 255) / Math.max(1, paper.data[i] ?? 255)));
    flat[i] = value;
    histogram[value] = (histogram[value] ?? 0) + 1;
  }
  // Darkest 0.5% of pixels become black: the ink regains the contrast the lighting took.
  let low = 0;
  for (let count = 0; low < 255 && count + (histogram[low] ?? 0) < flat.length * 0.005; low++) {
    count += histogram[low] ?? 0;
  }
  const scale = 255 / Math.max(1, 255 - low);
  for (let i = 0; i < flat.length; i++)
    flat[i] = Math.max(0, Math.min(255, Math.round(((flat[i] ?? 0) - low) * scale)));
  return { width: image.width, height: image.height, data: flat };
}

/** Runs `steps` in order on a decoded page; the `model` step needs `model`. */
export async function restorePixels(
  image: GrayImage,
  steps: readonly RestorationStep[],
  onStep?: (step: RestorationStep) => void,
  model?: Checkpoint,
): Promise<{ image: GrayImage; records: StepRecord[] }> {
  const records: StepRecord[] = [];
  let current = image;
  for (const step of steps) {
    onStep?.(step);
    const started = performance.now();
    const record: StepRecord = { step, ms: 0 };
    switch (step) {
      case 'denoise':
        current = await denoise(current);
        break;
      case 'deskew': {
        const result = await deskew(current);
        current = result.image;
        record.skewDegrees = Math.round(result.angle * 100) / 100;
        record.detail = `corrected ${record.skewDegrees}°`;
        break;
      }
      case 'normalize':
        current = await normalize(current);
        break;
      case 'binarize':
        current = binarizeSauvola(current);
        break;
      case 'model':
        if (!model) throw new Error('The model step needs a model checkpoint');
        current = await applyCheckpoint(model, current);
        record.detail = `${model.layer} model, epoch ${model.position.epoch}`;
        break;
    }
    record.ms = Math.round(performance.now() - started);
    records.push(record);
  }
  return { image: current, records };
}

/** Quality of the input and the output, against the reference when there is one. */
export async function measureQuality(
  input: GrayImage,
  output: GrayImage,
  reference?: GrayImage,
): Promise<DocumentMetrics> {
  const metrics: DocumentMetrics = { input: noReferenceMetrics(input), output: noReferenceMetrics(output) };
  if (reference) {
    const aligned =
      reference.width === output.width && reference.height === output.height
        ? reference
        : await fromSharp(grayToSharp(reference).resize(output.width, output.height, { fit: 'fill' }));
    const round = (value: number) => Math.round(value * 1000) / 1000;
    const inputPsnr = round(psnr(input, aligned));
    const outputPsnr = round(psnr(output, aligned));
    metrics.reference = {
      inputPsnr,
      outputPsnr,
      psnrGain: round(outputPsnr - inputPsnr),
      inputSsim: round(ssim(input, aligned)),
      outputSsim: round(ssim(output, aligned)),
    };
  }
  return metrics;
}

/** Pass/fail against the thresholds, with the reasons in words. */
export function assess(metrics: DocumentMetrics, thresholds: QualityThresholds): Assessment {
  const reasons: string[] = [];
  if (metrics.reference) {
    const { psnrGain, outputSsim } = metrics.reference;
    if (psnrGain < thresholds.minPsnrGainDb) {
      reasons.push(`PSNR gain ${psnrGain} dB is below the minimum ${thresholds.minPsnrGainDb} dB`);
    }
    if (outputSsim < thresholds.minSsim) reasons.push(`SSIM ${outputSsim} is below the minimum ${thresholds.minSsim}`);
  } else {
    const { residualSkewDegrees, noiseSigma } = metrics.output;
    if (Math.abs(residualSkewDegrees) > thresholds.maxResidualSkewDegrees) {
      reasons.push(`residual skew ${residualSkewDegrees}° exceeds ${thresholds.maxResidualSkewDegrees}°`);
    }
    if (noiseSigma > thresholds.maxNoiseSigma) {
      reasons.push(`estimated noise ${noiseSigma.toFixed(1)} exceeds ${thresholds.maxNoiseSigma}`);
    }
  }
  return { passed: reasons.length === 0, reasons };
}

export interface RestoreAndMeasureInput {
  page: GrayImage;
  reference?: GrayImage | undefined;
  steps: RestorationStep[];
  model?: Checkpoint | undefined;
}

/** One page's pixel work, restoration then quality, as one CPU-pool task (plain data in and out). */
export async function restoreAndMeasure(
  input: RestoreAndMeasureInput,
): Promise<{ image: GrayImage; records: StepRecord[]; metrics: DocumentMetrics }> {
  const restored = await restorePixels(input.page, input.steps, undefined, input.model);
  const metrics = await measureQuality(input.page, restored.image, input.reference);
  return { ...restored, metrics };
}
