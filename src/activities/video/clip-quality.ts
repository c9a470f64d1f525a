/**
 * How good a frame looks, from measurable qualities, each in [0, 1]: sharpness (variance of the Laplacian),
 * exposure (mid-tones, few clipped pixels), contrast (spread of brightness), colorfulness (Hasler and
 * Süsstrunk's measure). Motion comes from the detection pass. Pure functions on raw RGB.
 */

export interface FrameQuality {
  sharpness: number;
  exposure: number;
  contrast: number;
  colorfulness: number;
}

export interface ClipComponents extends FrameQuality {
  /** How much moves (0 = still, 1 = a lot); steadier clips score higher. */
  motion: number;
}

/** Weights of the visual score; they add up to 1. */
export const SCORE_WEIGHTS = { sharpness: 0.3, exposure: 0.2, contrast: 0.2, colorfulness: 0.15, steadiness: 0.15 };

const clamp = (value: number) => Math.min(1, Math.max(0, value));
const round = (value: number) => Math.round(value * 1000) / 1000;

/** The luma plane of the frame being measured, reused: a new one per frame (230 kB at 320×180) kept the GC busy. */
let lumaScratch = new Float32Array(0);

export function frameQuality(rgb: Uint8Array, width: number, height: number): FrameQuality {
  const pixels = width * height;
  if (lumaScratch.length < pixels) lumaScratch = new Float32Array(pixels);
  const luma = lumaScratch;
  let sum = 0;
  let sumSquares = 0;
  let clipped = 0;
  let rgMean = 0;
  let ybMean = 0;
  let rgSquares = 0;
  let ybSquares = 0;
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    luma[p] = y;
    sum += y;
    sumSquares += y * y;
    if (y < 5 || y > 250) clipped += 1;
    const rg = r - g;
    const yb = 0.5 * (r + g) - b;
    rgMean += rg;
    ybMean += yb;
    rgSquares += rg * rg;
    ybSquares += yb * yb;
  }
  const mean = sum / pixels;
  const std = Math.sqrt(Math.max(0, sumSquares / pixels - mean * mean));
  rgMean /= pixels;
  ybMean /= pixels;
  const rgStd = Math.sqrt(Math.max(0, rgSquares / pixels - rgMean * rgMean));
  const ybStd = Math.sqrt(Math.max(0, ybSquares / pixels - ybMean * ybMean));
  const colorfulness = Math.hypot(rgStd, ybStd) + 0.3 * Math.hypot(rgMean, ybMean);

  let lapSum = 0;
  let lapSquares = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const p = y * width + x;
      const lap = luma[p - width]! + luma[p + width]! + luma[p - 1]! + luma[p + 1]! - 4 * luma[p]!;
      lapSum += lap;
      lapSquares += lap * lap;
      count += 1;
    }
  }
  const lapMean = count ? lapSum / count : 0;
  const lapVariance = count ? lapSquares / count - lapMean * lapMean : 0;

  return {
    sharpness: round(1 - Math.exp(-lapVariance / 400)),
    exposure: round(clamp(1 - Math.abs(mean / 255 - 0.5) * 2) * (1 - clipped / pixels)),
    contrast: round(clamp(std / 64)),
    colorfulness: round(clamp(colorfulness / 100)),
  };
}

/** The clip's visual score in [0, 1] from its components. */
export function visualScore(c: ClipComponents): number {
  const w = SCORE_WEIGHTS;
  return round(
    w.sharpness * c.sharpness +
      w.exposure * c.exposure +
      w.contrast * c.contrast +
      w.colorfulness * c.colorfulness +
      w.steadiness * (1 - c.motion),
  );
}

/** Motion component from the mean content change per frame (0–255): 25 and above counts as a lot. */
export const motionFromChange = (change: number) => round(clamp(change / 25));

/** The qualities of a clip's sampled frames (same size, raw RGB): one CPU-pool task. */
export function frameQualities(input: { frames: Uint8Array[]; width: number; height: number }): FrameQuality[] {
  return input.frames.map((frame) => frameQuality(frame, input.width, input.height));
}
