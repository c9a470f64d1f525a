/**
 * Synthetic document pages: a clean page rendered from SVG text (heading, paragraphs, sub-heading, ruled table) and
 * a degraded copy of it (skew, uneven lighting, stains, blur, noise, JPEG artefacts). Everything follows from a seed,
 * so the same seed gives the same bytes, and the clean page is the reference for the degraded one.
 */
import sharp from 'sharp';

/** mulberry32: a tiny seeded PRNG, so pages are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PageSpec {
  seed: number;
  width?: number;
  height?: number;
  /** Adds lines of handwriting-like strokes (joined loops of varying width) to the printed text. */
  handwriting?: boolean;
}

const WORDS = (
  'the of and to in archive record letter parish council year deed estate land river mill church survey ' +
  'account witness signed copy register north south manor court rent tithe village harvest market road bridge ' +
  'house family master servant trade ship cargo merchant ledger payment received paid sum pounds shillings'
).split(' ');

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

function sentence(random: () => number, words: number): string {
  const picked = Array.from({ length: words }, () => WORDS[Math.floor(random() * WORDS.length)] ?? 'the');
  const text = picked.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1) + '.';
}

/**
 * Lines of handwriting-like strokes from `y` down: each word one joined path of loops and arches of random height,
 * slant and pen width, so a model sees uneven, connected strokes as well as printed type. Returns the next `y`.
 */
function handwrittenLines(
  parts: string[],
  random: () => number,
  at: { margin: number; width: number; y: number; lineHeight: number; scale: number },
): number {
  const { margin, lineHeight, scale } = at;
  let y = at.y;
  const lines = 1 + Math.floor(random() * 3);
  const pen = (1 + random() * 1.6) * scale;
  const slant = (random() - 0.3) * 0.5;
  const xHeight = lineHeight * (0.3 + random() * 0.15);
  for (let line = 0; line < lines; line++) {
    y += lineHeight;
    let x = margin + random() * lineHeight;
    while (x < margin + at.width - 4 * xHeight) {
      const letters = 2 + Math.floor(random() * 7);
      let d = `M${x.toFixed(1)} ${y.toFixed(1)}`;
      for (let k = 0; k < letters; k++) {
        const tall = random() < 0.25 ? 2.2 : 1;
        const h = xHeight * tall * (0.8 + random() * 0.4);
        const w = xHeight * (0.7 + random() * 0.6);
        const top = y - h;
        // One letter: up with the slant, over the top and down, a loop or an arch depending on the draw.
        d +=
          ` C${(x + w * 0.1 + slant * h).toFixed(1)} ${(top + h * 0.2).toFixed(1)},` +
          ` ${(x + w * (random() < 0.5 ? 0.9 : 0.2) + slant * h).toFixed(1)} ${top.toFixed(1)},` +
          ` ${(x + w * 0.6).toFixed(1)} ${(y - h * 0.1).toFixed(1)}` +
          ` S${(x + w * 0.9).toFixed(1)} ${(y + h * 0.05).toFixed(1)}, ${(x + w).toFixed(1)} ${(y - h * 0.3).toFixed(1)}`;
        x += w;
      }
      parts.push(
        `<path d="${d}" fill="none" stroke="black" stroke-width="${(pen * (0.8 + random() * 0.4)).toFixed(2)}" stroke-linecap="round" stroke-linejoin="round"/>`,
      );
      x += xHeight * (0.8 + random() * 0.8);
    }
  }
  return y + lineHeight;
}

/** Renders the clean page as an 8-bit grey PNG (white paper, black ink). */
export async function renderCleanPage(spec: PageSpec): Promise<Buffer> {
  const width = spec.width ?? 1240;
  const height = spec.height ?? 1754;
  const random = seededRandom(spec.seed);
  const scale = width / 1240;
  const margin = Math.round(110 * scale);
  const bodySize = Math.round(22 * scale);
  const lineHeight = Math.round(bodySize * 1.45);
  const charsPerLine = Math.floor((width - 2 * margin) / (bodySize * 0.52));
  const parts: string[] = [];
  let y = margin + Math.round(40 * scale);
  const text = (x: number, content: string, size: number, weight = 'normal', family = 'DejaVu Serif') =>
    parts.push(
      `<text x="${x}" y="${y}" font-family="${family}" font-size="${size}" font-weight="${weight}">${escapeXml(content)}</text>`,
    );

  text(margin, sentence(random, 4).replace('.', ''), Math.round(40 * scale), 'bold', 'DejaVu Sans');
  y += Math.round(70 * scale);
  const paragraph = () => {
    let line = '';
    const words = sentence(random, 45 + Math.floor(random() * 40)).split(' ');
    for (const word of words) {
      if (y > height - margin) return;
      if ((line + ' ' + word).length > charsPerLine) {
        text(margin, line, bodySize);
        y += lineHeight;
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line && y <= height - margin) text(margin, line, bodySize);
    y += Math.round(lineHeight * 1.6);
  };
  const paragraphs = 2 + Math.floor(random() * 2);
  for (let i = 0; i < paragraphs; i++) paragraph();

  // A ruled table: the kind of structure restoration must keep straight.
  if (y < height - margin - 8 * lineHeight) {
    text(margin, sentence(random, 3).replace('.', ''), Math.round(28 * scale), 'bold', 'DejaVu Sans');
    y += Math.round(24 * scale);
    const rows = 5;
    const columns = 4;
    const rowHeight = Math.round(lineHeight * 1.3);
    const columnWidth = (width - 2 * margin) / columns;
    const top = y;
    for (let r = 0; r <= rows; r++) {
      parts.push(
        `<line x1="${margin}" y1="${top + r * rowHeight}" x2="${width - margin}" y2="${top + r * rowHeight}" stroke="black" stroke-width="${Math.max(1, Math.round(2 * scale))}"/>`,
      );
    }
    for (let c = 0; c <= columns; c++) {
      const x = Math.round(margin + c * columnWidth);
      parts.push(
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + rows * rowHeight}" stroke="black" stroke-width="${Math.max(1, Math.round(2 * scale))}"/>`,
      );
    }
    for (let r = 0; r < rows; r++) {
      y = top + r * rowHeight + Math.round(rowHeight * 0.7);
      for (let c = 0; c < columns; c++) {
        const cell =
          r === 0 ? (WORDS[Math.floor(random() * WORDS.length)] ?? '') : String(Math.floor(random() * 9000) + 100);
        text(Math.round(margin + c * columnWidth + 10 * scale), cell, bodySize, r === 0 ? 'bold' : 'normal');
      }
    }
    y = top + rows * rowHeight + Math.round(lineHeight * 1.8);
  }
  while (y < height - margin - 3 * lineHeight) {
    if (spec.handwriting && random() < 0.4)
      y = handwrittenLines(parts, random, { margin, width: width - 2 * margin, y, lineHeight, scale });
    else paragraph();
  }
  // A note in the margin, as readers wrote them.
  if (spec.handwriting)
    handwrittenLines(parts, random, { margin: margin / 6, width: margin * 0.9, y: margin, lineHeight, scale });

  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).grayscale().png().toBuffer();
}

export interface Degradation {
  skewDegrees: number;
  noiseSigma: number;
  blurSigma: number;
  stains: number;
  /** Fraction of brightness lost across the page by uneven lighting. */
  lightingGradient: number;
  jpegQuality: number;
  /** Darkness (0..1) of the other side's text showing through, mirrored and blurred. */
  bleedThrough?: number;
  /** How much ink fades (0..1) where a slow random field is high: faint patches of writing. */
  fading?: number;
  /** Fraction (0..1) of ink lost in small breaks, as worn or flaking strokes. */
  brokenStrokes?: number;
  /** Grey levels of blotchy paper texture (foxing, uneven paper). */
  paperTexture?: number;
}

/** A plausible mix of scan and paper faults, drawn from the seed. */
export function randomDegradation(seed: number): Degradation {
  const random = seededRandom(seed ^ 0x5bd1e995);
  const between = (low: number, high: number) => low + random() * (high - low);
  const sign = random() < 0.5 ? -1 : 1;
  return {
    skewDegrees: Math.round(sign * between(0.5, 4) * 100) / 100,
    noiseSigma: Math.round(between(6, 18) * 10) / 10,
    blurSigma: Math.round(between(0.4, 1.4) * 100) / 100,
    stains: Math.floor(between(0, 4)),
    lightingGradient: Math.round(between(0.15, 0.4) * 100) / 100,
    jpegQuality: Math.round(between(35, 70)),
  };
}

/**
 * The faults of old documents on top of a scan's (randomDegradation): show-through from the other side, faded and
 * broken strokes, paper texture. What datasets train on, so a model meets on synthetic pages what real ones have.
 */
export function documentDegradation(seed: number): Degradation {
  const random = seededRandom(seed ^ 0x68e31da4);
  const between = (low: number, high: number) => low + random() * (high - low);
  const sometimes = (chance: number, low: number, high: number) =>
    random() < chance ? Math.round(between(low, high) * 100) / 100 : 0;
  return {
    ...randomDegradation(seed),
    bleedThrough: sometimes(0.6, 0.08, 0.4),
    fading: sometimes(0.6, 0.2, 0.7),
    brokenStrokes: sometimes(0.5, 0.05, 0.3),
    paperTexture: sometimes(0.7, 4, 22),
  };
}

/**
 * A smooth random field in 0..1 over a width×height page: random values on a grid `cell` pixels apart, blended
 * bilinearly, read with `at(x, y)`.
 */
function smoothField(random: () => number, width: number, height: number, cell: number) {
  const columns = Math.ceil(width / cell) + 2;
  const rows = Math.ceil(height / cell) + 2;
  const grid = Float32Array.from({ length: columns * rows }, () => random());
  // No closures inside: this runs once per pixel of a page.
  return (x: number, y: number): number => {
    const gx = x / cell;
    const gy = y / cell;
    const a = Math.floor(gx);
    const b = Math.floor(gy);
    const fx = gx - a;
    const fy = gy - b;
    const i = b * columns + a;
    const v00 = grid[i] ?? 0;
    const v10 = grid[i + 1] ?? 0;
    const v01 = grid[i + columns] ?? 0;
    const v11 = grid[i + columns + 1] ?? 0;
    const top = v00 + (v10 - v00) * fx;
    return top + (v01 + (v11 - v01) * fx - top) * fy;
  };
}

/** The other side of the sheet as it shows through: another page's ink, mirrored and blurred (1 = ink, 0 = none). */
async function showThrough(width: number, height: number, seed: number): Promise<Float32Array> {
  const back = await renderCleanPage({ seed: seed ^ 0x3c6ef372, width, height, handwriting: true });
  const pixels = await sharp(back).flop().blur(1.5).raw().toBuffer();
  const ink = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) ink[i] = 1 - (pixels[i] ?? 255) / 255;
  return ink;
}

/** Applies `degradation` to a clean page; the result has the page's size (a JPEG). */
export async function degradePage(clean: Buffer, degradation: Degradation, seed: number): Promise<Buffer> {
  const { width = 0, height = 0 } = await sharp(clean).metadata();
  const random = seededRandom(seed ^ 0x27d4eb2d);

  // Skew, keeping the page size (the reference stays aligned once the skew is undone).
  const rotated = await sharp(clean)
    .rotate(degradation.skewDegrees, { background: '#ffffff' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const left = Math.max(0, Math.round((rotated.info.width - width) / 2));
  const top = Math.max(0, Math.round((rotated.info.height - height) / 2));
  let page = sharp(rotated.data, {
    raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels },
  })
    .extract({ left, top, width, height })
    .extractChannel(0);
  if (degradation.blurSigma > 0.3) page = page.blur(degradation.blurSigma);
  const pixels = new Uint8Array(await page.raw().toBuffer());

  // Uneven lighting: brightness falls off from a random corner; stains darken soft ellipses.
  const cx = random() < 0.5 ? 0 : width;
  const cy = random() < 0.5 ? 0 : height;
  const diagonal = Math.hypot(width, height);
  const stains = Array.from({ length: degradation.stains }, () => ({
    x: random() * width,
    y: random() * height,
    rx: (0.05 + random() * 0.12) * width,
    ry: (0.04 + random() * 0.1) * height,
    depth: 0.15 + random() * 0.25,
  }));
  const { bleedThrough = 0, fading = 0, brokenStrokes = 0, paperTexture = 0 } = degradation;
  const bleed = bleedThrough ? await showThrough(width, height, seed) : undefined;
  // Fields only for the faults asked for, so a page without them draws the same noise as before they existed.
  const scale = width / 1240;
  const field = (amount: number, cell: number) => (amount ? smoothField(random, width, height, cell * scale) : () => 0);
  const fade = field(fading, 120);
  const breaks = field(brokenStrokes, 3);
  const texture = field(paperTexture, 40);
  // Breaks where the fine field is in its top `brokenStrokes` (a smooth field's values bunch around one half).
  const breakAbove = 1 - brokenStrokes * 0.6;
  let spare: number | undefined;
  const gaussian = () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    const u = Math.max(random(), 1e-12);
    const v = random();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      // The paper's own faults first: ink fades and breaks, the other side shows through, the paper is blotchy.
      let darkness = 255 - (pixels[i] ?? 255);
      if (darkness > 0 && fading) darkness *= 1 - fading * fade(x, y);
      if (darkness > 0 && brokenStrokes && breaks(x, y) > breakAbove) darkness *= 0.15;
      let value = 255 - darkness;
      if (bleed) value *= 1 - bleedThrough * (bleed[i] ?? 0);
      if (paperTexture) value -= paperTexture * texture(x, y);
      let light = 1 - degradation.lightingGradient * (Math.hypot(x - cx, y - cy) / diagonal);
      for (const stain of stains) {
        const d = ((x - stain.x) / stain.rx) ** 2 + ((y - stain.y) / stain.ry) ** 2;
        if (d < 1) light *= 1 - stain.depth * (1 - d) ** 2;
      }
      pixels[i] = Math.max(0, Math.min(255, Math.round(value * light + degradation.noiseSigma * gaussian())));
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .jpeg({ quality: degradation.jpegQuality })
    .toBuffer();
}

/** A clean page and its degraded copy (PNG and JPEG bytes), from the seed: one CPU-pool task. */
export async function renderPagePair(input: {
  spec: PageSpec;
  degradation: Degradation;
}): Promise<{ clean: Uint8Array; degraded: Uint8Array }> {
  const clean = await renderCleanPage(input.spec);
  return { clean, degraded: await degradePage(clean, input.degradation, input.spec.seed) };
}
