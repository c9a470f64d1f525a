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
  while (y < height - margin - 3 * lineHeight) paragraph();

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
      let light = 1 - degradation.lightingGradient * (Math.hypot(x - cx, y - cy) / diagonal);
      for (const stain of stains) {
        const d = ((x - stain.x) / stain.rx) ** 2 + ((y - stain.y) / stain.ry) ** 2;
        if (d < 1) light *= 1 - stain.depth * (1 - d) ** 2;
      }
      pixels[i] = Math.max(
        0,
        Math.min(255, Math.round((pixels[i] ?? 0) * light + degradation.noiseSigma * gaussian())),
      );
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
