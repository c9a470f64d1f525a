/**
 * Skew estimation by projection profiles: when text lines are horizontal, the count of ink pixels per row is
 * sharply peaked (lines and gaps), so the rotation that maximises the profile's energy is the page's skew.
 * `measureSkew` adds how far to trust that angle and `deskewDecision` whether to rotate by it at all.
 */
import { otsuThreshold } from './binarize';
import type { GrayImage } from './gray-image';

/** Box-averages the page down to about `targetWidth` pixels wide (skew does not need full resolution). */
function downscale(image: GrayImage, targetWidth: number): GrayImage {
  const factor = Math.max(1, Math.floor(image.width / targetWidth));
  if (factor === 1) return image;
  const width = Math.floor(image.width / factor);
  const height = Math.floor(image.height / factor);
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        const row = (y * factor + dy) * image.width + x * factor;
        for (let dx = 0; dx < factor; dx++) sum += image.data[row + dx] ?? 0;
      }
      data[y * width + x] = sum / (factor * factor);
    }
  }
  return { width, height, data };
}

/** Energy of the row profile of the ink points rotated by `degrees`. */
function profileEnergy(ink: InkPoints, degrees: number): number {
  let energy = 0;
  for (const count of rowProfile(ink, degrees)) energy += count * count;
  return energy;
}

/**
 * The angle, in degrees, by which the text lines are rotated clockwise (as sharp's `rotate(angle)` turns an
 * image), so `sharp(image).rotate(-estimate)` straightens the page. 0 for a page without ink.
 */
export function estimateSkewDegrees(image: GrayImage, options: { maxDegrees?: number } = {}): number {
  const ink = inkPoints(image);
  if (!ink) return 0;
  // Rotating ink coordinates by +θ levels lines that sharp turned clockwise by θ.
  return Math.round(profilePeak(ink, options.maxDegrees ?? 10).degrees * 100) / 100;
}

/** Ink coordinates (centred) of a page downscaled to about 1000 pixels wide. */
interface InkPoints {
  xs: Float64Array;
  ys: Float64Array;
  height: number;
}

/** The page's ink points, or undefined for a blank page (or one so dark Otsu finds no paper): no lines to align. */
function inkPoints(image: GrayImage): InkPoints | undefined {
  const small = downscale(image, 1000);
  const threshold = Math.min(otsuThreshold(small), 200);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let y = 0; y < small.height; y++) {
    for (let x = 0; x < small.width; x++) {
      if ((small.data[y * small.width + x] ?? 255) <= threshold) {
        xs.push(x - small.width / 2);
        ys.push(y - small.height / 2);
      }
    }
  }
  const inkShare = xs.length / (small.width * small.height);
  if (xs.length < 50 || inkShare > 0.5) return undefined;
  return { xs: Float64Array.from(xs), ys: Float64Array.from(ys), height: small.height };
}

/**
 * The angle of the highest profile energy (0.5° steps, then 0.05° around the best); how far that peak stands above
 * the median energy of the searched range (1 when no angle is preferred); and its sharpness, the share of the peak
 * energy lost 0.5° either side of it (0 for a flat top, where the angle is not known to ±0.5°).
 */
function profilePeak(ink: InkPoints, maxDegrees: number): { degrees: number; contrast: number; sharpness: number } {
  const energies: number[] = [];
  const search = (from: number, to: number, step: number, record: boolean) => {
    let best = 0;
    let bestEnergy = -1;
    for (let angle = from; angle <= to + 1e-9; angle += step) {
      const energy = profileEnergy(ink, angle);
      if (record) energies.push(energy);
      if (energy > bestEnergy) {
        bestEnergy = energy;
        best = angle;
      }
    }
    return { best, bestEnergy };
  };
  const coarse = search(-maxDegrees, maxDegrees, 0.5, true);
  const fine = search(coarse.best - 0.5, coarse.best + 0.5, 0.05, false);
  energies.sort((a, b) => a - b);
  const median = energies[Math.floor(energies.length / 2)] ?? 1;
  const beside = (profileEnergy(ink, fine.best - 0.5) + profileEnergy(ink, fine.best + 0.5)) / 2;
  return {
    degrees: fine.best,
    contrast: fine.bestEnergy / Math.max(1, median),
    sharpness: 1 - beside / Math.max(1, fine.bestEnergy),
  };
}

/** What the skew measurement found, for the decision to rotate and for the step's record. */
export interface SkewMeasurement {
  /** Skew in {@link estimateSkewDegrees}' convention (the same estimate). */
  degrees: number;
  /**
   * Share of the profile's peak energy lost 0.5° either side of the estimate. A sharp peak (printed lines: 0.11–0.39)
   * pins the angle well inside ±0.5°; a flat top (a few tall, wandering handwritten lines: about 0.01) does not.
   */
  confidence: number;
  /** Peak profile energy over the median energy of the searched angles (1 = no preferred angle). */
  peakContrast: number;
  /** Text lines: peaks of the row profile at the estimated angle, separated by real gaps. */
  lines: number;
}

/** Row profile (ink count per row) of the ink rotated by `degrees`; rows are shifted by `height`, a margin. */
function rowProfile(ink: InkPoints, degrees: number): Float64Array {
  const radians = (degrees * Math.PI) / 180;
  const sin = Math.sin(radians);
  const cos = Math.cos(radians);
  const bins = new Float64Array(ink.height * 3);
  for (let i = 0; i < ink.xs.length; i++) {
    const row = Math.round((ink.ys[i] ?? 0) * cos - (ink.xs[i] ?? 0) * sin) + ink.height;
    if (row >= 0 && row < bins.length) bins[row] = (bins[row] ?? 0) + 1;
  }
  return bins;
}

/**
 * Text-line bands of a row profile, as [from, to) row ranges: peaks of the lightly smoothed profile above a fifth of
 * the highest, where neighbouring peaks count as two lines only if the profile between them falls below half the
 * lower peak (a gap between lines, not the dip between a letter's body and its accents).
 */
export function textLineBands(profile: Float64Array): [number, number][] {
  const smooth = new Float64Array(profile.length);
  for (let i = 0; i < profile.length; i++) {
    let sum = 0;
    for (let k = -2; k <= 2; k++) sum += profile[i + k] ?? 0;
    smooth[i] = sum / 5;
  }
  const highest = Math.max(...smooth);
  if (highest <= 0) return [];
  const peaks: number[] = [];
  for (let i = 1; i < smooth.length - 1; i++) {
    const value = smooth[i] ?? 0;
    if (value < highest / 5 || value < (smooth[i - 1] ?? 0) || value <= (smooth[i + 1] ?? 0)) continue;
    const previous = peaks[peaks.length - 1];
    if (previous === undefined) {
      peaks.push(i);
      continue;
    }
    let valley = Infinity;
    for (let j = previous; j <= i; j++) valley = Math.min(valley, smooth[j] ?? 0);
    if (valley < Math.min(value, smooth[previous] ?? 0) / 2) peaks.push(i);
    else if (value > (smooth[previous] ?? 0)) peaks[peaks.length - 1] = i;
  }
  const cuts: number[] = [];
  for (let p = 1; p < peaks.length; p++) {
    let at = peaks[p - 1] ?? 0;
    for (let j = at; j <= (peaks[p] ?? 0); j++) if ((smooth[j] ?? 0) < (smooth[at] ?? 0)) at = j;
    cuts.push(at);
  }
  const edges = [0, ...cuts, profile.length];
  return peaks.map((_, i) => [edges[i] ?? 0, edges[i + 1] ?? 0]);
}

/**
 * Measures the skew and how far to trust it: the projection profile's peak angle, how sharp that peak is, and how
 * many text lines the row profile shows at that angle.
 */
export function measureSkew(image: GrayImage, options: { maxDegrees?: number } = {}): SkewMeasurement {
  const ink = inkPoints(image);
  if (!ink) return { degrees: 0, confidence: 0, peakContrast: 1, lines: 0 };
  const peak = profilePeak(ink, options.maxDegrees ?? 10);
  const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
  return {
    degrees: round(peak.degrees, 2),
    confidence: round(peak.sharpness, 3),
    peakContrast: round(peak.contrast, 2),
    lines: textLineBands(rowProfile(ink, peak.degrees)).length,
  };
}

/**
 * When deskew may rotate. Rotation resamples every stroke and moves the page off any reference drawn on the scan,
 * so it must be sure: each number below is a reason a real page was (or would have been) turned for nothing.
 */
export const DESKEW_RULES = {
  /** At or below this the page is level: 0.3° moves the end of a 2,000-pixel line by about 10 pixels. */
  levelDegrees: 0.3,
  /**
   * The profile must lose ≥ 5% of its peak energy 0.5° either side, i.e. the angle is pinned within the ±0.5° we
   * promise. Printed pages score 0.11–0.39; the Doxa manuscript (8 tall, wandering lines) 0.013, with a flat top.
   */
  minConfidence: 0.05,
  /** Fewer lines than this give an angle from one or two strokes of the pen. */
  minLines: 3,
  /** Peak over median energy: 1 means no angle stands out (a photo, a drawing); text pages score 1.4–3.3. */
  minPeakContrast: 1.2,
} as const;

/** Whether to rotate by the measured skew, and why, in words for the step's record. */
export function deskewDecision(skew: SkewMeasurement): { apply: boolean; reason: string } {
  const rules = DESKEW_RULES;
  const angle = `${skew.degrees}°`;
  if (skew.lines === 0) return { apply: false, reason: 'no text lines found' };
  if (skew.lines < rules.minLines) {
    return {
      apply: false,
      reason: `only ${skew.lines} text line(s), fewer than ${rules.minLines}: estimate ${angle} not trusted`,
    };
  }
  if (skew.peakContrast < rules.minPeakContrast) {
    return {
      apply: false,
      reason: `no angle stands out (peak ${skew.peakContrast}× the median profile energy, below ${rules.minPeakContrast}×)`,
    };
  }
  if (skew.confidence < rules.minConfidence) {
    return {
      apply: false,
      reason:
        `estimate ${angle} is not sharp: the profile loses only ${(skew.confidence * 100).toFixed(1)}% 0.5° off its ` +
        `peak (needs ${rules.minConfidence * 100}%), as on a page of few, tall or uneven handwritten lines`,
    };
  }
  if (Math.abs(skew.degrees) <= rules.levelDegrees) {
    return { apply: false, reason: `level: ${angle} is within ±${rules.levelDegrees}°` };
  }
  return {
    apply: true,
    reason: `skewed ${angle} over ${skew.lines} lines, confidence ${skew.confidence} (≥ ${rules.minConfidence})`,
  };
}
