/**
 * Binarisation for degraded historical pages, in the family of Gatos et al. (2006) and Lu, Su & Tan (2010, the
 * DIBCO 2009 winner): estimate two smooth surfaces, the paper (a grey closing wider than a stroke) and the ink (the
 * darkest level within about half a stroke), and call a pixel ink when it lies below 60% of the way from ink to
 * paper. Only places where ink and paper differ enough (split by Otsu, as Su, Lu & Tan 2013 split their contrast
 * image) can hold ink, so stains, shadows and paper grain stay white. Every size follows from the page's own stroke width, and
 * the surfaces live on grids a few pixels coarse, so a 300 dpi A4 page costs a few full-size passes.
 * Ink = 0, paper = 255.
 */
import { otsuThreshold } from './binarize';
import type { GrayImage } from './gray-image';

export interface DocumentBinarizeOptions {
  /** Typical ink stroke width in pixels; estimated from the page when absent. */
  strokeWidth?: number;
  /** Where the threshold sits between the local ink level (0) and the local paper level (1). */
  inkFraction?: number;
  /** Least paper-minus-ink difference (grey levels) that can hold ink; from the page (by Otsu) when absent. */
  minContrast?: number;
}

/** Measured on the real manuscript page in test/fixtures/documents (0.5 is the midpoint; ink edges are soft). */
const DEFAULT_INK_FRACTION = 0.6;
/** The default threshold on normalizeDocument's scale. */
export const NORMALIZED_THRESHOLD = Math.round(DEFAULT_INK_FRACTION * 255);
const MAX_RUN = 64;
const BAND_ROWS = 64;
const SAMPLE_PIXELS = 2_000_000;

/**
 * The page's stroke width: the most common length of ink runs at Otsu's threshold, across and down (one pass, with
 * a running count per column), whichever is smaller, since a stroke is as wide as its narrow side. Runs of one
 * pixel are noise, and runs longer than MAX_RUN are rules or blots, so neither votes.
 */
export function estimateStrokeWidth(image: GrayImage, threshold = otsuThreshold(image)): number {
  const { width, height, data } = image;
  const across = new Uint32Array(MAX_RUN + 2);
  const down = new Uint32Array(MAX_RUN + 2);
  const columnRuns = new Uint32Array(width);
  const vote = (votes: Uint32Array, run: number) => {
    if (run > 1 && run <= MAX_RUN) votes[run] = (votes[run] ?? 0) + 1;
  };
  // A large page votes from evenly spread bands of rows (about SAMPLE_PIXELS in all): the mode settles long before.
  const bandStride = Math.max(1, Math.ceil((width * height) / SAMPLE_PIXELS));
  for (let y = 0; y < height; y++) {
    if (Math.floor(y / BAND_ROWS) % bandStride !== 0) continue;
    // A run cut by a band's edge is not a stroke's width: drop it.
    if (bandStride > 1 && y % BAND_ROWS === 0) columnRuns.fill(0);
    let run = 0;
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if ((data[row + x] ?? 255) <= threshold) {
        run++;
        columnRuns[x] = (columnRuns[x] ?? 0) + 1;
        continue;
      }
      // Most pixels are paper that ends no run: keep their cost to two reads.
      if (run > 0) {
        vote(across, run);
        run = 0;
      }
      const columnRun = columnRuns[x] ?? 0;
      if (columnRun > 0) {
        vote(down, columnRun);
        columnRuns[x] = 0;
      }
    }
    vote(across, run);
  }
  for (const run of columnRuns) vote(down, run);
  const mode = (votes: Uint32Array) => {
    let best = 2;
    for (let length = 3; length <= MAX_RUN; length++) if ((votes[length] ?? 0) > (votes[best] ?? 0)) best = length;
    return best;
  };
  return Math.min(mode(across), mode(down));
}

/** Two small copies of the page in one pass: the mean and the darkest pixel of each scale×scale block. */
function shrink(image: GrayImage, scale: number): { mean: GrayImage; darkest: GrayImage } {
  const { width, height, data } = image;
  const smallWidth = Math.ceil(width / scale);
  const smallHeight = Math.ceil(height / scale);
  const mean = new Uint8Array(smallWidth * smallHeight);
  const darkest = new Uint8Array(smallWidth * smallHeight).fill(255);
  // Sums for one row of blocks at a time, so memory stays at the size of the grid.
  const sums = new Uint32Array(smallWidth);
  for (let cy = 0; cy < smallHeight; cy++) {
    sums.fill(0);
    const smallRow = cy * smallWidth;
    const lastRow = Math.min(height, (cy + 1) * scale);
    for (let y = cy * scale; y < lastRow; y++) {
      const row = y * width;
      // One block's stretch of the row at a time, summed in locals: a write per block, not per pixel.
      for (let cx = 0, x = 0; cx < smallWidth; cx++) {
        const end = Math.min(width, x + scale);
        let sum = 0;
        let low = darkest[smallRow + cx] ?? 255;
        for (; x < end; x++) {
          const value = data[row + x] ?? 255;
          sum += value;
          if (value < low) low = value;
        }
        sums[cx] = (sums[cx] ?? 0) + sum;
        darkest[smallRow + cx] = low;
      }
    }
    const rows = lastRow - cy * scale;
    for (let cx = 0; cx < smallWidth; cx++) {
      mean[smallRow + cx] = Math.round((sums[cx] ?? 0) / (rows * Math.min(scale, width - cx * scale)));
    }
  }
  return {
    mean: { width: smallWidth, height: smallHeight, data: mean },
    darkest: { width: smallWidth, height: smallHeight, data: darkest },
  };
}

/**
 * Min filter over a (2·radius+1)² square, edges clamped, by van Herk and Gil & Werman: running minima forward and
 * backward within blocks of the window's length make each output two reads, whatever the radius. The vertical pass
 * runs on whole rows so memory is read in order. Running minima in locals, a counter instead of a modulo per pixel and
 * clamping by comparison: 27 ms against 35 ms on the A4 manuscript's 827×1170 grid, the same output.
 */
function minFilter(image: GrayImage, radius: number): GrayImage {
  const { width, height, data } = image;
  const span = 2 * radius + 1;
  const forward = new Uint8Array(width);
  const backward = new Uint8Array(width);
  const rows = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let running = 255;
    for (let x = 0, block = 0; x < width; x++) {
      const value = data[row + x]!;
      running = block === 0 || value < running ? value : running;
      forward[x] = running;
      block = block === span - 1 ? 0 : block + 1;
    }
    // Blocks end where (x + 1) is a multiple of span, and at the row's end.
    running = 255;
    for (let x = width - 1, toEnd = (x + 1) % span; x >= 0; x--) {
      const value = data[row + x]!;
      running = toEnd === 0 || x === width - 1 || value < running ? value : running;
      backward[x] = running;
      toEnd = toEnd === 0 ? span - 1 : toEnd - 1;
    }
    for (let x = 0; x < width; x++) {
      const left = backward[x < radius ? 0 : x - radius]!;
      const right = forward[x + radius < width ? x + radius : width - 1]!;
      rows[row + x] = left < right ? left : right;
    }
  }
  const down = new Uint8Array(width * height);
  const up = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    // A block's first row starts the running minimum afresh (a copy of the row).
    if (y % span === 0) down.set(rows.subarray(row, row + width), row);
    else {
      for (let x = 0; x < width; x++) {
        const above = down[row - width + x]!;
        const here = rows[row + x]!;
        down[row + x] = above < here ? above : here;
      }
    }
  }
  for (let y = height - 1; y >= 0; y--) {
    const row = y * width;
    if (y % span === span - 1 || y === height - 1) up.set(rows.subarray(row, row + width), row);
    else {
      for (let x = 0; x < width; x++) {
        const below = up[row + width + x]!;
        const here = rows[row + x]!;
        up[row + x] = below < here ? below : here;
      }
    }
  }
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const top = Math.max(0, y - radius) * width;
    const bottom = Math.min(height - 1, y + radius) * width;
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const upper = up[top + x]!;
      const lower = down[bottom + x]!;
      out[row + x] = upper < lower ? upper : lower;
    }
  }
  return { width, height, data: out };
}

/** Max filter, as the min filter of the negative. */
function maxFilter(image: GrayImage, radius: number): GrayImage {
  // A loop, not TypedArray.map with a callback (3.5× slower on the page's grid).
  const negative = (data: Uint8Array) => {
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = 255 - data[i]!;
    return out;
  };
  const filtered = minFilter({ ...image, data: negative(image.data) }, radius);
  return { ...filtered, data: negative(filtered.data) };
}

/** Box blur of radius `radius` (edges clamped), rows then columns, with running sums (columns kept per row). */
function boxBlur(image: GrayImage, radius: number): GrayImage {
  const { width, height, data } = image;
  const span = 2 * radius + 1;
  const clamp = (i: number, length: number) => Math.min(length - 1, Math.max(0, i));
  const rows = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    for (let i = -radius; i <= radius; i++) sum += data[row + clamp(i, width)] ?? 0;
    for (let x = 0; x < width; x++) {
      rows[row + x] = Math.round(sum / span);
      sum += (data[row + clamp(x + radius + 1, width)] ?? 0) - (data[row + clamp(x - radius, width)] ?? 0);
    }
  }
  const out = new Uint8Array(width * height);
  const sums = new Uint32Array(width);
  for (let i = -radius; i <= radius; i++) {
    const row = clamp(i, height) * width;
    for (let x = 0; x < width; x++) sums[x] = (sums[x] ?? 0) + (rows[row + x] ?? 0);
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const entering = clamp(y + radius + 1, height) * width;
    const leaving = clamp(y - radius, height) * width;
    for (let x = 0; x < width; x++) {
      out[row + x] = Math.round((sums[x] ?? 0) / span);
      sums[x] = (sums[x] ?? 0) + (rows[entering + x] ?? 0) - (rows[leaving + x] ?? 0);
    }
  }
  return { width, height, data: out };
}

/** Paper and ink surfaces on a grid `scale` pixels coarse (see the module comment). */
function surfaces(image: GrayImage, strokeWidth: number, scale: number): { paper: GrayImage; ink: GrayImage } {
  const { mean, darkest } = shrink(image, scale);
  // The paper is smooth, so a grid twice as coarse holds it. A closing of radius two strokes removes every stroke
  // (and the blots where strokes cross) yet keeps the paper's own edges and shadows in place.
  const coarse = shrink(mean, 2).mean;
  const paperRadius = Math.max(1, Math.ceil((2 * strokeWidth) / (2 * scale)));
  const closed = minFilter(maxFilter(coarse, paperRadius), paperRadius);
  const paper = enlarge(boxBlur(closed, paperRadius), mean.width, mean.height, 2);
  // Half a stroke reaches a stroke's core from its edge, but not the next stroke's.
  const ink = minFilter(darkest, Math.max(1, Math.ceil(strokeWidth / 2 / scale)));
  return { paper, ink };
}

/** Bilinear enlargement of a grid `scale` times coarser than the width×height one it came from. */
function enlarge(small: GrayImage, width: number, height: number, scale: number): GrayImage {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(small.height - 1, Math.max(0, (y + 0.5) / scale - 0.5));
    const top = Math.floor(sy) * small.width;
    const bottom = Math.min(small.height - 1, Math.floor(sy) + 1) * small.width;
    const down = sy - Math.floor(sy);
    for (let x = 0; x < width; x++) {
      const sx = Math.min(small.width - 1, Math.max(0, (x + 0.5) / scale - 0.5));
      const a = Math.floor(sx);
      const b = Math.min(small.width - 1, a + 1);
      const across = sx - a;
      const upper = (small.data[top + a] ?? 255) * (1 - across) + (small.data[top + b] ?? 255) * across;
      const lower = (small.data[bottom + a] ?? 255) * (1 - across) + (small.data[bottom + b] ?? 255) * across;
      out[y * width + x] = Math.round(upper + (lower - upper) * down);
    }
  }
  return { width, height, data: out };
}

/** The grid step of the surfaces: fine enough to follow a stroke, coarse enough to be cheap. */
function surfaceScale(strokeWidth: number): number {
  return Math.max(3, Math.min(16, Math.round(strokeWidth / 4)));
}

/**
 * The least paper-minus-ink difference that can hold ink. Otsu's split of that difference parts bare paper from
 * places with writing; the bar sits a quarter of the way from the first class's mean to the second's, so faint
 * strokes still count while paper grain and shading do not. (Class means, not the split itself: with two clean
 * clusters any split in the gap is as good to Otsu, and it takes the lowest.)
 */
function contrastThreshold(paper: GrayImage, ink: GrayImage): number {
  const difference = new Uint8Array(paper.data.length);
  for (let i = 0; i < difference.length; i++) {
    difference[i] = Math.max(0, (paper.data[i] ?? 255) - (ink.data[i] ?? 0));
  }
  const split = otsuThreshold({ width: paper.width, height: paper.height, data: difference });
  const sums = [0, 0];
  const counts = [0, 0];
  for (const value of difference) {
    const side = value > split ? 1 : 0;
    sums[side] = (sums[side] ?? 0) + value;
    counts[side] = (counts[side] ?? 0) + 1;
  }
  const bare = (sums[0] ?? 0) / Math.max(1, counts[0] ?? 0);
  const writing = counts[1] ? (sums[1] ?? 0) / (counts[1] ?? 1) : 255;
  return bare + (writing - bare) / 4;
}

/**
 * A stretch of one row between two neighbouring grid points: columns `start` up to `end` of the row whose first
 * pixel is `row`, with the ink level and the paper-minus-ink difference at its two ends. Column x lies
 * `weights[x]` of the way from end A to end B; `minContrast` is the page's contrast bar.
 */
interface Segment {
  row: number;
  start: number;
  end: number;
  inkA: number;
  inkB: number;
  differenceA: number;
  differenceB: number;
  weights: Float32Array;
  minContrast: number;
}

/**
 * What a page's binarisation and normalisation read besides its pixels: the paper and ink surfaces on their grid
 * (`scale` pixels coarse) and the page's contrast bar. Small (a few hundred kB for an A4 page), so a thread that
 * does some of the page's rows is sent them rather than working them out again.
 */
export interface PageSurfaces {
  paper: GrayImage;
  ink: GrayImage;
  scale: number;
  minContrast: number;
}

/** The page's surfaces (see the module comment); undefined for an empty page. */
export function pageSurfaces(image: GrayImage, options: DocumentBinarizeOptions = {}): PageSurfaces | undefined {
  if (image.width === 0 || image.height === 0) return undefined;
  const strokeWidth = Math.max(2, options.strokeWidth ?? estimateStrokeWidth(image));
  const scale = surfaceScale(strokeWidth);
  const { paper, ink } = surfaces(image, strokeWidth, scale);
  return { paper, ink, scale, minContrast: options.minContrast ?? contrastThreshold(paper, ink) };
}

/**
 * What binarizeDocument and normalizeDocument share: given the page's surfaces, row by row (rows `from` to `to`,
 * the whole page by default), each stretch between two grid points (bilinear in the grids), skipping those whose
 * ends both lack contrast (bare paper: every blend between them lacks it too). One Segment object is reused for every
 * stretch: there are millions on a page.
 */
function forEachSegmentWithContrast(
  image: GrayImage,
  surfaces: PageSurfaces | undefined,
  visit: (segment: Readonly<Segment>) => void,
  rows = { from: 0, to: image.height },
): void {
  if (!surfaces) return;
  const { width } = image;
  const { paper, ink, scale, minContrast } = surfaces;
  const gridWidth = paper.width;
  // The columns between grid points a and a + 1 are segmentStart[a] up to segmentStart[a + 1].
  const segmentStart = new Int32Array(gridWidth + 1).fill(width);
  const weights = new Float32Array(width);
  for (let x = width - 1; x >= 0; x--) {
    const position = Math.min(gridWidth - 1, Math.max(0, (x + 0.5) / scale - 0.5));
    segmentStart[Math.floor(position)] = x;
    weights[x] = position - Math.floor(position);
  }
  for (let a = gridWidth - 1; a >= 0; a--)
    segmentStart[a] = Math.min(segmentStart[a] ?? width, segmentStart[a + 1] ?? width);
  const inkRow = new Float32Array(gridWidth);
  const differenceRow = new Float32Array(gridWidth);
  const segment: Segment = {
    row: 0,
    start: 0,
    end: 0,
    inkA: 0,
    inkB: 0,
    differenceA: 0,
    differenceB: 0,
    weights,
    minContrast,
  };
  for (let y = rows.from; y < rows.to; y++) {
    const position = Math.min(paper.height - 1, Math.max(0, (y + 0.5) / scale - 0.5));
    const top = Math.floor(position) * gridWidth;
    const bottom = Math.min(paper.height - 1, Math.floor(position) + 1) * gridWidth;
    const down = position - Math.floor(position);
    for (let x = 0; x < gridWidth; x++) {
      const paperTop = paper.data[top + x] ?? 255;
      const inkTop = ink.data[top + x] ?? 0;
      const inkLevel = inkTop + ((ink.data[bottom + x] ?? 0) - inkTop) * down;
      inkRow[x] = inkLevel;
      differenceRow[x] = paperTop + ((paper.data[bottom + x] ?? 255) - paperTop) * down - inkLevel;
    }
    segment.row = y * width;
    for (let a = 0; a < gridWidth; a++) {
      const b = Math.min(gridWidth - 1, a + 1);
      const differenceA = differenceRow[a] ?? 0;
      const differenceB = differenceRow[b] ?? 0;
      if (differenceA < minContrast && differenceB < minContrast) continue;
      segment.start = segmentStart[a] ?? 0;
      segment.end = segmentStart[a + 1] ?? width;
      segment.inkA = inkRow[a] ?? 0;
      segment.inkB = inkRow[b] ?? 0;
      segment.differenceA = differenceA;
      segment.differenceB = differenceB;
      visit(segment);
    }
  }
}

/**
 * Binarises a degraded document page (see the module comment). Pure and synchronous, for the CPU pool; memory is
 * the output plus a few coarse grids and row buffers.
 */
export function binarizeDocument(image: GrayImage, options: DocumentBinarizeOptions = {}): GrayImage {
  const { width, height, data } = image;
  const out = new Uint8Array(width * height).fill(255);
  const inkFraction = options.inkFraction ?? DEFAULT_INK_FRACTION;
  forEachSegmentWithContrast(image, pageSurfaces(image, options), (segment) => {
    const { row, end, inkA, inkB, differenceA, differenceB, weights, minContrast } = segment;
    // The threshold is linear in the two surfaces, so interpolating it is interpolating them.
    const thresholdA = inkA + inkFraction * differenceA;
    const thresholdB = inkB + inkFraction * differenceB;
    for (let x = segment.start; x < end; x++) {
      const w = weights[x] ?? 0;
      if (differenceA + (differenceB - differenceA) * w < minContrast) continue;
      if ((data[row + x] ?? 255) <= thresholdA + (thresholdB - thresholdA) * w) out[row + x] = 0;
    }
  });
  return { width, height, data: out };
}

/** A page with its lighting taken out: see `normalizeDocument`. */
export interface NormalizedDocument {
  /** 0 at the local ink level, 255 at the local paper level (clamped); bare paper (too little contrast) is 255. */
  image: GrayImage;
  /** Where binarizeDocument puts its threshold on this scale: ink is at or below it. */
  threshold: number;
}

/** Where binarizeDocument puts its threshold on normalizeDocument's scale. */
const thresholdOf = (options: DocumentBinarizeOptions) =>
  Math.round((options.inkFraction ?? DEFAULT_INK_FRACTION) * 255);

/**
 * The page as binarizeDocument sees it: each pixel placed between the local ink level (0) and the local paper level
 * (255) of the same two surfaces, with places too flat to hold ink set to paper. Uneven lighting, stains and faded
 * ink all look alike on this scale, so a model that reads it learns strokes, not a scanner's lighting.
 */
export function normalizeDocument(image: GrayImage, options: DocumentBinarizeOptions = {}): NormalizedDocument {
  const data = normalizeRows(image, pageSurfaces(image, options), { from: 0, to: image.height });
  return { image: { width: image.width, height: image.height, data }, threshold: thresholdOf(options) };
}

/**
 * Rows `from` to `to` of normalizeDocument's image, from the page's surfaces (pageSurfaces): the same values as the
 * whole page's, so threads can each normalise a band of rows.
 */
export function normalizeRows(image: GrayImage, surfaces: PageSurfaces | undefined, rows: { from: number; to: number }) {
  const { width, data } = image;
  const first = rows.from * width;
  const out = new Uint8Array(width * (rows.to - rows.from)).fill(255);
  forEachSegmentWithContrast(
    image,
    surfaces,
    (segment) => {
      const { row, end, inkA, inkB, differenceA, differenceB, weights, minContrast } = segment;
      for (let x = segment.start; x < end; x++) {
        const w = weights[x] ?? 0;
        const difference = differenceA + (differenceB - differenceA) * w;
        if (difference < minContrast) continue;
        const value = (255 * ((data[row + x] ?? 255) - inkA - (inkB - inkA) * w)) / difference;
        out[row - first + x] = value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
      }
    },
    rows,
  );
  return out;
}
