/**
 * The DIBCO measures of a binarisation against its ground truth (ink = dark, < 128, is the positive class):
 * F-measure, pseudo-F-measure (H-DIBCO 2010: recall counted on the ground truth's skeleton, so a stroke drawn a
 * pixel thinner or fatter than the hand-made truth costs little), PSNR of the 0/1 images, and DRD (Lu, Kot & Shi
 * 2004: each wrong pixel weighted by how much of its 5×5 neighbourhood in the truth disagrees with it, normalised by
 * the number of 8×8 blocks of the truth that hold both ink and paper).
 */
import type { GrayImage } from './gray-image';

export interface BinaryScores {
  /** Percent. */
  fMeasure: number;
  /** Percent. */
  pseudoFMeasure: number;
  /** dB, with C = 1 on 0/1 images; Infinity for a perfect result. */
  psnr: number;
  /** Distance-reciprocal distortion; 0 for a perfect result, lower is better. */
  drd: number;
  /** Percent. */
  precision: number;
  /** Percent. */
  recall: number;
}

/** 1 where the image holds ink (a value below 128), 0 elsewhere. */
function inkMask(image: GrayImage): Uint8Array {
  const mask = new Uint8Array(image.data.length);
  for (let i = 0; i < mask.length; i++) mask[i] = (image.data[i] ?? 255) < 128 ? 1 : 0;
  return mask;
}

function harmonicMean(a: number, b: number): number {
  return a + b === 0 ? 0 : (2 * a * b) / (a + b);
}

/**
 * Zhang & Suen's thinning (1984) of a 0/1 mask: peels boundary pixels in two alternating sub-steps until only a
 * one-pixel-wide skeleton remains. Pixels outside the image count as background.
 */
export function skeletonize(mask: Uint8Array, width: number, height: number): Uint8Array {
  const skeleton = mask.slice();
  const at = (x: number, y: number) =>
    x < 0 || y < 0 || x >= width || y >= height ? 0 : (skeleton[y * width + x] ?? 0);
  const removable: number[] = [];
  let changed = true;
  while (changed) {
    changed = false;
    for (const step of [0, 1]) {
      removable.length = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          if (!skeleton[y * width + x]) continue;
          // Neighbours clockwise from north: P2..P9.
          const p = [
            at(x, y - 1),
            at(x + 1, y - 1),
            at(x + 1, y),
            at(x + 1, y + 1),
            at(x, y + 1),
            at(x - 1, y + 1),
            at(x - 1, y),
            at(x - 1, y - 1),
          ] as const;
          const neighbours = p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7];
          if (neighbours < 2 || neighbours > 6) continue;
          let transitions = 0;
          for (let k = 0; k < 8; k++) if (p[k] === 0 && p[(k + 1) % 8] === 1) transitions++;
          if (transitions !== 1) continue;
          const [north, , east, , south, , west] = p;
          if (
            step === 0
              ? north * east * south === 0 && east * south * west === 0
              : north * east * west === 0 && north * south * west === 0
          ) {
            removable.push(y * width + x);
          }
        }
      }
      for (const index of removable) skeleton[index] = 0;
      if (removable.length > 0) changed = true;
    }
  }
  return skeleton;
}

/** Lu et al.'s 5×5 weights: the reciprocal distance to the centre (0 there), normalised to sum to 1. */
function drdWeights(): Float64Array {
  const weights = new Float64Array(25);
  let total = 0;
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const weight = dx === 0 && dy === 0 ? 0 : 1 / Math.hypot(dx, dy);
      weights[(dy + 2) * 5 + dx + 2] = weight;
      total += weight;
    }
  }
  return weights.map((weight) => weight / total);
}

/**
 * How many whole 8×8 blocks of the truth hold both ink and paper (at least 1, to divide by). Partial blocks at the
 * right and bottom edges are left out, as DIBCO's evaluation tool does.
 */
function nonUniformBlocks(truth: Uint8Array, width: number, height: number): number {
  let count = 0;
  for (let top = 0; top + 8 <= height; top += 8) {
    for (let left = 0; left + 8 <= width; left += 8) {
      let ink = 0;
      for (let y = top; y < top + 8; y++) {
        for (let x = left; x < left + 8; x++) ink += truth[y * width + x] ?? 0;
      }
      if (ink > 0 && ink < 64) count++;
    }
  }
  return Math.max(1, count);
}

/** DRD of a result against the truth (both 0/1 masks); neighbours outside the image are skipped. */
function distanceReciprocalDistortion(result: Uint8Array, truth: Uint8Array, width: number, height: number): number {
  const weights = drdWeights();
  let total = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = result[y * width + x] ?? 0;
      if (value === truth[y * width + x]) continue;
      for (let dy = -2; dy <= 2; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -2; dx <= 2; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          if ((truth[ny * width + nx] ?? 0) !== value) total += weights[(dy + 2) * 5 + dx + 2] ?? 0;
        }
      }
    }
  }
  return total / nonUniformBlocks(truth, width, height);
}

/** All the DIBCO measures of `result` against `groundTruth` (images of the same size). */
export function binaryScores(result: GrayImage, groundTruth: GrayImage): BinaryScores {
  const { width, height } = groundTruth;
  if (result.width !== width || result.height !== height) {
    throw new Error(`Images differ in size: ${result.width}×${result.height} vs ${width}×${height}`);
  }
  const found = inkMask(result);
  const truth = inkMask(groundTruth);
  let truePositive = 0;
  let falsePositive = 0;
  let falseNegative = 0;
  for (let i = 0; i < found.length; i++) {
    if (found[i] && truth[i]) truePositive++;
    else if (found[i]) falsePositive++;
    else if (truth[i]) falseNegative++;
  }
  const precision = (100 * truePositive) / Math.max(1, truePositive + falsePositive);
  const recall = (100 * truePositive) / Math.max(1, truePositive + falseNegative);
  const skeleton = skeletonize(truth, width, height);
  let skeletonPixels = 0;
  let skeletonFound = 0;
  for (let i = 0; i < skeleton.length; i++) {
    if (!skeleton[i]) continue;
    skeletonPixels++;
    skeletonFound += found[i] ?? 0;
  }
  const pseudoRecall = (100 * skeletonFound) / Math.max(1, skeletonPixels);
  const wrong = falsePositive + falseNegative;
  return {
    fMeasure: harmonicMean(precision, recall),
    pseudoFMeasure: harmonicMean(precision, pseudoRecall),
    psnr: wrong === 0 ? Infinity : 10 * Math.log10(found.length / wrong),
    drd: distanceReciprocalDistortion(found, truth, width, height),
    precision,
    recall,
  };
}
