/**
 * Image quality measures for restored documents: full-reference (PSNR, SSIM) when a clean page exists, and
 * no-reference ones (sharpness, contrast, noise, residual skew) when it does not.
 */
import { estimateSkewDegrees } from './deskew';
import type { GrayImage } from './gray-image';

function assertSameSize(a: GrayImage, b: GrayImage): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(`Images differ in size: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  }
}

/** Peak signal-to-noise ratio in dB (8-bit); Infinity for identical images. */
export function psnr(a: GrayImage, b: GrayImage): number {
  assertSameSize(a, b);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = (a.data[i] ?? 0) - (b.data[i] ?? 0);
    sum += d * d;
  }
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/**
 * Structural similarity (Wang et al. 2004) over 8×8 windows with a stride of 4 (half-overlapping, which keeps it
 * fast on full pages while sampling every region), K1 = 0.01, K2 = 0.03, L = 255; the mean over windows.
 */
export function ssim(a: GrayImage, b: GrayImage): number {
  assertSameSize(a, b);
  const { width, height } = a;
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const size = 8;
  const stride = 4;
  let total = 0;
  let windows = 0;
  for (let y = 0; y + size <= height; y += stride) {
    for (let x = 0; x + size <= width; x += stride) {
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let dy = 0; dy < size; dy++) {
        const row = (y + dy) * width + x;
        for (let dx = 0; dx < size; dx++) {
          const va = a.data[row + dx] ?? 0;
          const vb = b.data[row + dx] ?? 0;
          sa += va;
          sb += vb;
          saa += va * va;
          sbb += vb * vb;
          sab += va * vb;
        }
      }
      const n = size * size;
      const ma = sa / n;
      const mb = sb / n;
      const va = saa / n - ma * ma;
      const vb = sbb / n - mb * mb;
      const cov = sab / n - ma * mb;
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      windows++;
    }
  }
  return windows ? total / windows : 1;
}

/** Variance of the Laplacian: higher means crisper edges. */
export function sharpness(image: GrayImage): number {
  const { width, height, data } = image;
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      const lap =
        (data[i - 1] ?? 0) + (data[i + 1] ?? 0) + (data[i - width] ?? 0) + (data[i + width] ?? 0) - 4 * (data[i] ?? 0);
      sum += lap;
      sumSquares += lap * lap;
      count++;
    }
  }
  if (count === 0) return 0;
  const mean = sum / count;
  return sumSquares / count - mean * mean;
}

/** RMS contrast: the standard deviation of the grey levels (0 for a flat image). */
export function contrast(image: GrayImage): number {
  let sum = 0;
  let sumSquares = 0;
  for (const value of image.data) {
    sum += value;
    sumSquares += value * value;
  }
  const n = image.data.length || 1;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sumSquares / n - mean * mean));
}

/**
 * Noise standard deviation in grey levels, by Immerkær's fast method (1996): the image convolved with a mask that
 * cancels smooth structure leaves mostly noise; edges are few enough on a page not to dominate.
 */
export function noiseSigma(image: GrayImage): number {
  const { width, height, data } = image;
  if (width < 3 || height < 3) return 0;
  let sum = 0;
  for (let y = 1; y < height - 1; y++) {
    const up = (y - 1) * width;
    const mid = y * width;
    const down = (y + 1) * width;
    for (let x = 1; x < width - 1; x++) {
      const value =
        (data[up + x - 1] ?? 0) -
        2 * (data[up + x] ?? 0) +
        (data[up + x + 1] ?? 0) -
        2 * (data[mid + x - 1] ?? 0) +
        4 * (data[mid + x] ?? 0) -
        2 * (data[mid + x + 1] ?? 0) +
        (data[down + x - 1] ?? 0) -
        2 * (data[down + x] ?? 0) +
        (data[down + x + 1] ?? 0);
      sum += Math.abs(value);
    }
  }
  return (Math.sqrt(Math.PI / 2) * sum) / (6 * (width - 2) * (height - 2));
}

export interface QualityMetrics {
  sharpness: number;
  contrast: number;
  noiseSigma: number;
  residualSkewDegrees: number;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The no-reference measures of one page. */
export function noReferenceMetrics(image: GrayImage): QualityMetrics {
  return {
    sharpness: round(sharpness(image)),
    contrast: round(contrast(image)),
    noiseSigma: round(noiseSigma(image)),
    residualSkewDegrees: round(estimateSkewDegrees(image)),
  };
}
