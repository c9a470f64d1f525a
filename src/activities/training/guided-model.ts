/**
 * The guided network: a layer-2 model that reads the page as the document binariser normalises it (ink level 0,
 * paper level 255, lighting taken out) and decides only the pixels the binariser is unsure of, those between
 * clear ink and clear paper. Everything else keeps the binariser's decision.
 * - It transfers: on the normalised scale a synthetic page and a real scan look alike (no lighting, stains or paper
 *   colour left), so what it learns on synthetic pages holds on real ones (README, "Restoration quality").
 * - It is fast: a 7×7 window, 16 and 8 hidden units, run on the unsure pixels only (6% of a printed A4 page,
 *   17% of a densely written one), in place of two 9×9 networks over every pixel.
 * - It sees pixels, so it knows strokes as wide as those it trained on: train it on pages of the scans' resolution
 *   (generateSyntheticData's width 2480 for A4 at 300 dpi). Windows spaced by the stroke width were tried, to
 *   carry one model across resolutions; they moved edges by whole steps and did worse on the real page.
 */
import {
  NORMALIZED_THRESHOLD,
  normalizeDocument,
  normalizeRows,
  type PageSurfaces,
} from '../restoration/document-binarize';
import type { GrayImage } from '../restoration/gray-image';
import { emptyBatch, type Architecture, type WindowBatch, type WindowModel } from './model';

export const GUIDED_ARCHITECTURE: Architecture = { window: 7, hidden: [16, 8], input: 'normalized' };

export const isGuided = (architecture: Architecture): boolean => architecture.input === 'normalized';

/**
 * The unsure band of the normalised scale: below it is clear ink, above it clear paper (or bare paper, 255). On the
 * real manuscript, 90% of the pixels where the binariser and the ground truth disagree lie inside it, yet it holds
 * 17% of the pixels of that densely written page (a few per cent of a printed one).
 */
const UNSURE = { above: 64, below: 224 } as const;

export const isUnsure = (value: number): boolean => value > UNSURE.above && value < UNSURE.below;

/**
 * Training target: a clean page's pixel is ink when darker than this. It is where the document binariser's own
 * edge falls: on the synthetic pages its output agrees best with the clean page cut here (FM 84.4 / 88.1 at 160,
 * against 82.7 / 87.2 at 128 and 83.9 / 87.1 at 192, pages 1240 / 2480 wide). The network so learns to correct the
 * binariser's mistakes, not to move its edges.
 */
export const INK_TARGET = 160;

/** A page as the guided network reads it: normalised (see normalizeDocument). */
export const guidedInput = (page: GrayImage): GrayImage => normalizeDocument(page).image;

/**
 * Rows `from` to `to` of the image with `r` pixels of context on every side: the image's own rows above and below
 * where it has them, its edges replicated beyond them. Windows are then plain copies, with no clamping, and a band
 * of rows sees the same windows as the whole page does.
 */
function padEdges(image: GrayImage, r: number, from = 0, to = image.height): GrayImage {
  const width = image.width + 2 * r;
  const height = to - from + 2 * r;
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const source = Math.min(image.height - 1, Math.max(0, from + y - r)) * image.width;
    const row = y * width;
    data.set(image.data.subarray(source, source + image.width), row + r);
    data.fill(image.data[source] ?? 255, row, row + r);
    data.fill(image.data[source + image.width - 1] ?? 255, row + r + image.width, row + width);
  }
  return { width, height, data };
}

/** A grey level on the networks' 0..1 scale (the float32 of value / 255, as cutWindow stores it). */
const UNIT = Float32Array.from({ length: 256 }, (_, value) => value / 255);

/**
 * cutWindow's window around (x, y) of the image `padded` was made from (same values, for the same model). The
 * guided network's 7-wide rows are copied unrolled: 40% faster than the loop on a written A4 page (1.6 million
 * windows), which a model of another width still takes.
 */
function cutPaddedWindow(padded: GrayImage, x: number, y: number, batch: WindowBatch, slot: number, size: number) {
  const { data, width } = padded;
  const { windows } = batch;
  let offset = slot * size * size;
  let brightest = 0;
  for (let row = y * width + x, end = row + size * width; row < end; row += width) {
    if (size === 7) {
      const a = data[row]!;
      const b = data[row + 1]!;
      const c = data[row + 2]!;
      const d = data[row + 3]!;
      const e = data[row + 4]!;
      const f = data[row + 5]!;
      const g = data[row + 6]!;
      windows[offset] = UNIT[a]!;
      windows[offset + 1] = UNIT[b]!;
      windows[offset + 2] = UNIT[c]!;
      windows[offset + 3] = UNIT[d]!;
      windows[offset + 4] = UNIT[e]!;
      windows[offset + 5] = UNIT[f]!;
      windows[offset + 6] = UNIT[g]!;
      offset += 7;
      brightest = Math.max(brightest, a, b, c, d, e, f, g);
      continue;
    }
    for (let at = row; at < row + size; at++) {
      const value = data[at]!;
      if (value > brightest) brightest = value;
      windows[offset++] = UNIT[value]!;
    }
  }
  batch.paper[slot] = UNIT[brightest]!;
}

/** Unsure pixels per prediction call: memory stays flat whatever the page size. */
const CHUNK = 4096;

/** Rows `from` (included) to `to` (excluded) of a page. */
export interface RowBand {
  from: number;
  to: number;
}

/**
 * The network's output for every pixel of `rows` (the whole page by default), into `out` (the whole page's):
 * where the binariser is sure, its decision (0 ink, `paper` paper); where it is not, the network's probability of
 * paper, or (`cut`) `paper` when it is at least one half. Unsure pixels are cut into windows as the scan meets them
 * and predicted CHUNK at a time, so nothing grows with the page (a list of every unsure pixel first, as before, held
 * 1.6 million numbers on a written A4 page).
 */
function guidedOutputs(
  model: WindowModel,
  normalized: GrayImage,
  out: Uint8Array | Float32Array,
  { paper, cut }: { paper: number; cut: boolean },
  rows: RowBand = { from: 0, to: normalized.height },
): void {
  const { width, data } = normalized;
  const windowSize = model.architecture.window;
  const padded = padEdges(normalized, (windowSize - 1) / 2, rows.from, rows.to);
  const batch = emptyBatch(CHUNK, windowSize);
  const pending = new Int32Array(CHUNK);
  // Read once: an imported constant is a getter call in the CommonJS that tsx runs (60 ms a page, once per pixel).
  const threshold = NORMALIZED_THRESHOLD;
  let count = 0;
  const predictPending = () => {
    const predicted = model.predictWindows(
      count === CHUNK
        ? batch
        : {
            count,
            windows: batch.windows.subarray(0, count * windowSize * windowSize),
            paper: batch.paper.subarray(0, count),
            targets: batch.targets.subarray(0, count),
          },
    );
    for (let j = 0; j < count; j++) {
      const value = predicted[j] ?? 1;
      out[pending[j]!] = cut ? (value >= 0.5 ? paper : 0) : value;
    }
    count = 0;
  };
  for (let y = rows.from, i = y * width; y < rows.to; y++) {
    for (let x = 0; x < width; x++, i++) {
      const value = data[i]!;
      if (!isUnsure(value)) {
        out[i] = value > threshold ? paper : 0;
        continue;
      }
      cutPaddedWindow(padded, x, y - rows.from, batch, count, windowSize);
      pending[count++] = i;
      if (count === CHUNK) predictPending();
    }
  }
  if (count > 0) predictPending();
}

/** Ink (0) or paper (255) for every pixel: the binariser's threshold where it is sure, the network's where not. */
export function decideGuided(model: WindowModel, normalized: GrayImage): Uint8Array {
  const pixels = new Uint8Array(normalized.data.length);
  guidedOutputs(model, normalized, pixels, { paper: 255, cut: true });
  return pixels;
}

/**
 * decideGuided for the pixels of `rows` of `page` (as scanned, with its `surfaces`: pageSurfaces), written into
 * `pixels` (the whole page's): what a thread does of a page. Only these rows and the windows' context around them
 * are normalised, to the same values as the whole page's.
 */
export function decideGuidedRows(
  model: WindowModel,
  page: GrayImage,
  surfaces: PageSurfaces | undefined,
  pixels: Uint8Array,
  rows: RowBand,
): void {
  const context = (model.architecture.window - 1) / 2;
  const first = Math.max(0, rows.from - context);
  const last = Math.min(page.height, rows.to + context);
  const normalized = { width: page.width, height: last - first, data: normalizeRows(page, surfaces, { from: first, to: last }) };
  const band = { from: rows.from - first, to: rows.to - first };
  guidedOutputs(model, normalized, pixels.subarray(first * page.width), { paper: 255, cut: true }, band);
}

/** decideGuided's outputs before the cut at one half (0..1, 1 = paper): what validation's loss reads. */
export function guidedValues(model: WindowModel, normalized: GrayImage): Float32Array {
  const values = new Float32Array(normalized.data.length);
  guidedOutputs(model, normalized, values, { paper: 1, cut: false });
  return values;
}
