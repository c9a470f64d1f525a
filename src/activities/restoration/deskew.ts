/**
 * Skew estimation by projection profiles: when text lines are horizontal, the count of ink pixels per row is
 * sharply peaked (lines and gaps), so the rotation that maximises the profile's energy is the page's skew.
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
function profileEnergy(xs: Float64Array, ys: Float64Array, degrees: number, height: number): number {
  const radians = (degrees * Math.PI) / 180;
  const sin = Math.sin(radians);
  const cos = Math.cos(radians);
  const margin = height;
  const bins = new Float64Array(height * 3);
  for (let i = 0; i < xs.length; i++) {
    const row = Math.round((ys[i] ?? 0) * cos - (xs[i] ?? 0) * sin) + margin;
    if (row >= 0 && row < bins.length) bins[row] = (bins[row] ?? 0) + 1;
  }
  let energy = 0;
  for (const count of bins) energy += count * count;
  return energy;
}

/**
 * The angle, in degrees, by which the text lines are rotated clockwise (as sharp's `rotate(angle)` turns an
 * image), so `sharp(image).rotate(-estimate)` straightens the page. 0 for a page without ink.
 */
export function estimateSkewDegrees(image: GrayImage, options: { maxDegrees?: number } = {}): number {
  const maxDegrees = options.maxDegrees ?? 10;
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
  // A blank page (or one so dark Otsu finds no paper) has no lines to align.
  const inkShare = xs.length / (small.width * small.height);
  if (xs.length < 50 || inkShare > 0.5) return 0;
  const px = Float64Array.from(xs);
  const py = Float64Array.from(ys);
  const search = (from: number, to: number, step: number) => {
    let best = 0;
    let bestEnergy = -1;
    for (let angle = from; angle <= to + 1e-9; angle += step) {
      const energy = profileEnergy(px, py, angle, small.height);
      if (energy > bestEnergy) {
        bestEnergy = energy;
        best = angle;
      }
    }
    return best;
  };
  const coarse = search(-maxDegrees, maxDegrees, 0.5);
  const fine = search(coarse - 0.5, coarse + 0.5, 0.05);
  // Rotating ink coordinates by +θ levels lines that sharp turned clockwise by θ.
  return Math.round(fine * 100) / 100;
}
