/**
 * Restores one document image: denoise, deskew, flatten the background and normalise contrast, optionally
 * binarise; then assesses quality against a clean reference (PSNR, SSIM) or, without one, by no-reference measures.
 * A trained model (see activities/training) is one more step, `model`, and can sit anywhere in the list.
 *
 * Do no harm: denoise, deskew and normalize each first check that the page needs them and, for the grey-level
 * steps, that the result kept the writing; a step that would not help is skipped, and its record says why.
 */
import sharp from 'sharp';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { applyCheckpoint } from '../training/apply-model';
import type { Checkpoint } from '../training/checkpoint';
import { fMeasure } from './binarize';
import { binarizeDocument } from './document-binarize';
import { deskewDecision, measureSkew, type SkewMeasurement } from './deskew';
import { grayToSharp, type GrayImage } from './gray-image';
import { inkKept } from './ink-check';
import { noiseSigma, noReferenceMetrics, psnr, ssim, type QualityMetrics } from './quality';

export interface StepRecord {
  step: RestorationStep;
  ms: number;
  /** Whether the step changed the page; a skipped step hands the page on untouched. */
  applied: boolean;
  /** Why the step applied or was skipped, in words (the numbers and the rule they met or missed). */
  reason: string;
  /** What the step found or did, e.g. the skew angle it corrected. */
  detail?: string;
  /** The angle deskew rotated the page back by (0 when it left the page as it was). */
  skewDegrees?: number;
  /** deskew: the measurement behind its decision. */
  skew?: SkewMeasurement;
  /** denoise, normalize: the share of stroke pixels still ink after the step (see ink-check.ts). */
  inkKept?: number;
  /** With a reference, after an applied step: how the page compares with it now. */
  referenceGain?: StepReferenceGain;
}

/** A step's effect against the reference: PSNR after it and the change it made; F-measure once the page is binary. */
export interface StepReferenceGain {
  psnr: number;
  psnrGain: number;
  /** Only when both the page and the reference are black and white (binarize, a layer-2 model, ground truth). */
  fMeasure?: number;
}

/**
 * The do-no-harm thresholds of the grey-level steps (deskew's are in deskew.ts).
 * - maxInkLoss: a step that turns more than 15% of the stroke pixels into paper is undone. A 3×3 median erases 33%
 *   of the strokes of a clean 600×800 generated page (thin serifs and hairlines) and 18% of its degraded copy; on
 *   the 800×1100 and larger degraded pages, where it is harmless, it loses 3–11%; on the Doxa manuscript 1.4%.
 *   15% sits between, and is about one edge pixel of every two-pixel-wide stroke.
 * - minNoiseSigma: below 2 grey levels (Immerkær) there is no visible noise for a median to remove, only detail to
 *   lose (8-bit rounding alone is 0.3; the Doxa manuscript scan is 0.6).
 * - minPaperSpread, faintInkLevel: normalize flattens the paper and stretches the ink to black. It runs when the
 *   paper estimate varies by 24 grey levels or more (5th to 95th percentile; about a tenth of the range, enough to
 *   move a global threshold; the stained generated pages vary by 28–76) or when the darkest ink is lighter than
 *   mid-grey. The Doxa manuscript (paper varies by 9, ink at 80) has neither, and there normalize only cost: its
 *   stretch moves Sauvola's threshold (r = 128 is fixed) and the F-measure after binarize fell from 93.1 to 92.0.
 */
export const GREY_STEP_RULES = { maxInkLoss: 0.15, minNoiseSigma: 2, minPaperSpread: 24, faintInkLevel: 128 } as const;

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

/** Rotates the page back by `angle` (its measured skew), keeping its size (white fills the corners). */
async function rotateBack(image: GrayImage, angle: number): Promise<GrayImage> {
  const rotated = await grayToSharp(image)
    .rotate(-angle, { background: { r: 255, g: 255, b: 255 } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const left = Math.max(0, Math.round((rotated.info.width - image.width) / 2));
  const top = Math.max(0, Math.round((rotated.info.height - image.height) / 2));
  return fromSharp(
    sharp(rotated.data, {
      raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels },
    }).extract({ left, top, width: image.width, height: image.height }),
  );
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
 * The paper under the page: a max filter on a quarter-size copy (so ink disappears), then a smooth blur, at full size.
 */
async function paperEstimate(image: GrayImage): Promise<GrayImage> {
  const small = await fromSharp(
    grayToSharp(image).resize(Math.max(1, Math.round(image.width / 4)), Math.max(1, Math.round(image.height / 4)), {
      kernel: 'linear',
    }),
  );
  const paperSmall = maxFilter(small, 4);
  return fromSharp(
    grayToSharp(paperSmall).blur(6).resize(image.width, image.height, { kernel: 'linear', fit: 'fill' }),
  );
}

/** The grey level below which `share` of the pixels lie (a percentile of the histogram). */
function percentileLevel(image: GrayImage, share: number): number {
  const histogram = new Uint32Array(256);
  for (const value of image.data) histogram[value] = (histogram[value] ?? 0) + 1;
  let count = 0;
  for (let value = 0; value < 256; value++) {
    count += histogram[value] ?? 0;
    if (count >= image.data.length * share) return value;
  }
  return 255;
}

/** How unevenly lit the paper is: grey levels between the 5th and 95th percentile of the paper estimate. */
const paperSpread = (paper: GrayImage) => percentileLevel(paper, 0.95) - percentileLevel(paper, 0.05);

/** How dark the ink already is: the level of the darkest 0.5% (the share normalize stretches to black). */
const inkLevel = (image: GrayImage) => percentileLevel(image, 0.005);

/**
 * Background flattening: divide the paper estimate out so uneven lighting and stains fade to white, then stretch
 * the ink to full contrast.
 */
async function normalize(image: GrayImage, paper: GrayImage): Promise<GrayImage> {
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

/** What a step decided: the page it hands on, and its record's findings. */
type StepOutcome = { image: GrayImage } & Omit<StepRecord, 'step' | 'ms'>;

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** Keeps a grey-level step's result only if it kept the writing (see GREY_STEP_RULES.maxInkLoss). */
function keepIfInkSurvives(before: GrayImage, after: GrayImage, need: string): StepOutcome {
  const kept = Math.round(inkKept(before, after) * 1000) / 1000;
  const { maxInkLoss } = GREY_STEP_RULES;
  if (1 - kept > maxInkLoss) {
    return {
      image: before,
      applied: false,
      inkKept: kept,
      reason: `${need}, but the result turned ${percent(1 - kept)} of the stroke pixels into paper (over ${percent(maxInkLoss)}): undone`,
    };
  }
  return { image: after, applied: true, inkKept: kept, reason: `${need}; ${percent(kept)} of the stroke pixels kept` };
}

/** Median 3×3 only on a page with visible noise, and only if the strokes survive it. */
async function denoiseStep(page: GrayImage): Promise<StepOutcome> {
  const sigma = Math.round(noiseSigma(page) * 100) / 100;
  const { minNoiseSigma } = GREY_STEP_RULES;
  if (sigma < minNoiseSigma) {
    return { image: page, applied: false, reason: `no visible noise (σ ${sigma} < ${minNoiseSigma} grey levels)` };
  }
  return keepIfInkSurvives(page, await denoise(page), `noise σ ${sigma} grey levels`);
}

/** Rotates only by a skew it is sure of (see deskewDecision). */
async function deskewStep(page: GrayImage): Promise<StepOutcome> {
  const skew = measureSkew(page);
  const decision = deskewDecision(skew);
  if (!decision.apply) {
    return { image: page, applied: false, reason: decision.reason, skew, skewDegrees: 0, detail: 'not rotated' };
  }
  return {
    image: await rotateBack(page, skew.degrees),
    applied: true,
    reason: decision.reason,
    skew,
    skewDegrees: skew.degrees,
    detail: `corrected ${skew.degrees}°`,
  };
}

/** Flattens the paper only when it is uneven or the ink faint, and only if the strokes survive it. */
async function normalizeStep(page: GrayImage): Promise<StepOutcome> {
  const paper = await paperEstimate(page);
  const spread = paperSpread(paper);
  const ink = inkLevel(page);
  const { minPaperSpread, faintInkLevel } = GREY_STEP_RULES;
  const found = `paper varies by ${spread} grey levels, darkest ink at ${ink}`;
  if (spread < minPaperSpread && ink < faintInkLevel) {
    return {
      image: page,
      applied: false,
      reason: `nothing to flatten or stretch: ${found} (even: below ${minPaperSpread}; dark: below ${faintInkLevel})`,
    };
  }
  return keepIfInkSurvives(page, await normalize(page, paper), found);
}

function isBinary(image: GrayImage): boolean {
  return image.data.every((value) => value === 0 || value === 255);
}

/** Runs `steps` in order on a decoded page; the `model` step needs `model`. */
export async function restorePixels(
  image: GrayImage,
  steps: readonly RestorationStep[],
  onStep?: (step: RestorationStep) => void,
  model?: Checkpoint,
  /** A reference of the page's size: each applied step's record then says what it gained against it. */
  options: { reference?: GrayImage | undefined } = {},
): Promise<{ image: GrayImage; records: StepRecord[] }> {
  const records: StepRecord[] = [];
  const { reference } = options;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  let current = image;
  let currentPsnr = reference ? round(psnr(image, reference)) : 0;
  for (const step of steps) {
    onStep?.(step);
    const started = performance.now();
    let outcome: StepOutcome;
    switch (step) {
      case 'denoise':
        outcome = await denoiseStep(current);
        break;
      case 'deskew':
        outcome = await deskewStep(current);
        break;
      case 'normalize':
        outcome = await normalizeStep(current);
        break;
      case 'binarize':
        outcome = {
          image: binarizeDocument(current),
          applied: true,
          reason: 'asked for black and white (background and ink estimated per page: document-binarize.ts)',
        };
        break;
      case 'model':
        if (!model) throw new Error('The model step needs a model checkpoint');
        outcome = {
          image: await applyCheckpoint(model, current),
          applied: true,
          reason: 'asked for the trained model',
          detail: `${model.layer} model, epoch ${model.position.epoch}`,
        };
        break;
    }
    const { image: next, ...findings } = outcome;
    current = next;
    // The step's own time: the comparison with the reference below is bookkeeping.
    const record: StepRecord = { step, ms: Math.round(performance.now() - started), ...findings };
    if (reference && record.applied) {
      const after = round(psnr(current, reference));
      record.referenceGain = { psnr: after, psnrGain: round(after - currentPsnr) };
      if (isBinary(current) && isBinary(reference)) {
        record.referenceGain.fMeasure = Math.round(fMeasure(current, reference) * 100) / 100;
      }
      currentPsnr = after;
    }
    records.push(record);
  }
  return { image: current, records };
}

/** The reference at the page's size (a reference scanned at another resolution is resized to match). */
async function alignedReference(reference: GrayImage, width: number, height: number): Promise<GrayImage> {
  return reference.width === width && reference.height === height
    ? reference
    : fromSharp(grayToSharp(reference).resize(width, height, { fit: 'fill' }));
}

/** Quality of the input and the output, against the reference when there is one. */
export async function measureQuality(
  input: GrayImage,
  output: GrayImage,
  reference?: GrayImage,
): Promise<DocumentMetrics> {
  const metrics: DocumentMetrics = { input: noReferenceMetrics(input), output: noReferenceMetrics(output) };
  if (reference) {
    const aligned = await alignedReference(reference, output.width, output.height);
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

/**
 * One page's pixel work, restoration then quality, as one CPU-pool task (plain data in and out). With a reference,
 * each applied step's record carries its gain against it.
 */
export async function restoreAndMeasure(
  input: RestoreAndMeasureInput,
): Promise<{ image: GrayImage; records: StepRecord[]; metrics: DocumentMetrics }> {
  const reference = input.reference && (await alignedReference(input.reference, input.page.width, input.page.height));
  const restored = await restorePixels(input.page, input.steps, undefined, input.model, { reference });
  const metrics = await measureQuality(input.page, restored.image, input.reference);
  return { ...restored, metrics };
}
