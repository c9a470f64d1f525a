/**
 * The one way jobs open an image a user gave them, whatever it claims to be. What sharp 0.35's prebuilt libvips
 * (8.18, librsvg 2.63, libxml2 2.15, libheif 1.23) does with hostile files, as measured, and what we do about it
 * (test/unit/hostile-images.test.ts checks each):
 * - Decompression bombs: the pixel limit is checked from the header, before any pixel is allocated (a 110 KB PNG of
 *   30000×30000 fails in milliseconds instead of taking 12 s and 2.7 GB).
 * - SVG: librsvg refuses http(s), XInclude, external entities and files outside the SVG's folder, but given a
 *   file path it does read images beside the SVG (other users' files in the data dir). So SVGs are rendered from
 *   memory, where librsvg has no base and loads nothing external. They are bounded in bytes, elements and canvas:
 *   100,000 elements cost librsvg 230 MB and 8 s, and one blur filter on a 4000×4000 canvas 24 s and 600 MB.
 *   libxml2 itself refuses entity expansion ("billion laughs") and deep nesting, in milliseconds.
 * - HEIC (HEVC-coded HEIF): libvips reads its header but has no HEVC decoder: refused as an unsupported format.
 * - Animated GIF/WebP and multi-page files: the first frame or page is read (libvips' default), and `warnings` says
 *   so; processMedia puts it in its result.
 */
import { open } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { ApplicationFailure } from '@temporalio/common';
import sharp from 'sharp';
import { confirmInDataDir } from '../files';
import {
  assertReadableFile,
  describeImageError,
  heicUnsupported,
  imageTooLarge,
  maxInputPixels,
  svgTooComplex,
} from './image-errors';

/** SVG (and SVGZ once decompressed) is read into memory: this many bytes at most. */
export const SVG_MAX_BYTES = 10 * 1024 * 1024;
/** Start tags in an SVG: librsvg's own cap is 1,000,000 (measured: 1.75 GB and 4 s before it refuses). */
export const SVG_MAX_ELEMENTS = 50_000;
/** Canvas of a rendered SVG (4096×4096): filters cost far more per pixel than decoding a raster does. */
export const SVG_MAX_PIXELS = 4096 * 4096;

export interface OpenedImage {
  /** The first frame or page, with the pixel limit set and `failOn: 'error'`; not yet rotated or converted. */
  image: sharp.Sharp;
  metadata: sharp.Metadata;
  /** Size of the file on disk. */
  bytes: number;
  /** What the user should know about how the file was read, e.g. that only the first of N frames was. */
  warnings: string[];
  /** Turns an error from decoding `image` into the same clear, non-retryable failures that opening gives. */
  failure(err: unknown): ApplicationFailure;
}

export interface OpenImageOptions {
  /** Pixel limit (default: BACKROOM_MAX_INPUT_PIXELS, 100,000,000). */
  maxPixels?: number | undefined;
}

/** The format a file's first bytes claim, for error messages about files libvips could not even open. */
function sniffFormat(head: Buffer): string | undefined {
  const ascii = head.toString('latin1', 0, 16);
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (ascii.startsWith('\x89PNG')) return 'png';
  if (ascii.startsWith('GIF8')) return 'gif';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'webp';
  if (ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')) return 'tiff';
  if (ascii.slice(4, 8) === 'ftyp') return 'heif';
  if (isMarkupOrGzip(head)) return 'svg';
  return undefined;
}

/** Text that starts with `<` (after a BOM and blanks), or gzip: what libvips might hand to its SVG loader. */
function isMarkupOrGzip(head: Buffer): boolean {
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  const text = head
    .toString('utf8', 0, 64)
    .replace(/^\uFEFF/, '')
    .trimStart();
  return text.startsWith('<');
}

async function readHead(file: string, length = 64): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(length), 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Start tags (`<` and a name), an upper bound on the elements librsvg would build. */
function countStartTags(svg: Buffer): number {
  let count = 0;
  for (let i = svg.indexOf(0x3c); i >= 0 && i < svg.length - 1; i = svg.indexOf(0x3c, i + 1)) {
    const next = svg[i + 1] ?? 0;
    if ((next | 0x20) >= 0x61 && (next | 0x20) <= 0x7a) count++;
  }
  return count;
}

/** href/src/url() values that are neither `#fragment` nor `data:` (librsvg does not load them from memory). */
const EXTERNAL_REFERENCE = /(?:\bhref|\bsrc)\s*=\s*["']\s*(?!#|data:)[^"'\s]|url\(\s*["']?\s*(?!#|data:)[^)"'\s]/i;

/** Reads an SVG or SVGZ into memory within the limits; the markup stays XML for libvips to reject if it is not SVG. */
async function loadMarkup(file: string, bytes: number, what: string, warnings: string[]): Promise<Buffer> {
  const tooBig = () => svgTooComplex(file, what, `more than ${SVG_MAX_BYTES / 1024 / 1024} MB of SVG`);
  if (bytes > SVG_MAX_BYTES) {
    // Big text that does not open with an SVG element is no SVG libvips would see: do not call it one.
    const head = (await readHead(file, 4096)).toString('latin1');
    if (head.startsWith('\x1f\x8b') || /<svg[\s>]/i.test(head)) throw tooBig();
    throw describeImageError(new Error('unsupported image format'), file, what);
  }
  const handle = await open(file, 'r');
  let data: Buffer;
  try {
    data = await handle.readFile();
  } finally {
    await handle.close();
  }
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data, { maxOutputLength: SVG_MAX_BYTES });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig();
      throw describeImageError(new Error('unsupported image format'), file, what);
    }
  }
  const elements = countStartTags(data);
  if (elements > SVG_MAX_ELEMENTS) {
    throw svgTooComplex(
      file,
      what,
      `${elements.toLocaleString('en-US')} elements, over ${SVG_MAX_ELEMENTS.toLocaleString('en-US')}`,
    );
  }
  if (EXTERNAL_REFERENCE.test(data.toString('utf8'))) {
    warnings.push('the SVG refers to external files or URLs: they were not loaded (only embedded data: images are)');
  }
  return data;
}

const FORMAT_NAMES: Record<string, string> = { gif: 'GIF', webp: 'WebP', tiff: 'TIFF', heif: 'HEIF/AVIF', pdf: 'PDF' };

/**
 * Opens a user's image for decoding (see the module comment for what is refused and why). Every failure, here or
 * later through `failure`, is an ApplicationFailure whose message names the file as the user knows it and never
 * quotes its content. `what` names the file's role in messages ("input", "reference", …).
 */
export async function openImage(file: string, what = 'input', options: OpenImageOptions = {}): Promise<OpenedImage> {
  // Checked again right before sharp opens it by path: the file may have become a link since the job began.
  confirmInDataDir(file, what);
  const bytes = await assertReadableFile(file, what);
  const warnings: string[] = [];
  let head: Buffer;
  try {
    head = await readHead(file);
  } catch (err) {
    throw describeImageError(err, file, what);
  }
  const claimed = sniffFormat(head);
  // SVG goes through memory; libvips may also recognise one that our sniffing did not: then it is read again so.
  let markup = claimed === 'svg';
  let maxPixels = 0;
  let image: sharp.Sharp;
  let metadata: sharp.Metadata;
  for (;;) {
    let source: string | Buffer = file;
    if (markup) {
      try {
        source = await loadMarkup(file, bytes, what, warnings);
      } catch (err) {
        throw describeImageError(err, file, what, { format: 'svg' });
      }
    }
    maxPixels = Math.min(options.maxPixels ?? maxInputPixels(), markup ? SVG_MAX_PIXELS : Infinity);
    image = sharp(source, { limitInputPixels: maxPixels, failOn: 'error' });
    try {
      metadata = await image.metadata();
    } catch (err) {
      throw describeImageError(err, file, what, { format: markup ? 'svg' : claimed, maxPixels });
    }
    if (markup || metadata.format !== 'svg') break;
    markup = true;
  }
  const format = metadata.format as string | undefined;
  const failure = (err: unknown) => describeImageError(err, file, what, { format: format ?? claimed, maxPixels });
  // libvips reads a HEIC's header, then fails to decode: say so now, and why.
  if (format === 'heif' && metadata.compression === 'hevc') throw heicUnsupported(file, what);
  const { width = 0, height = 0, pages = 1 } = metadata;
  if (width * height > maxPixels) throw imageTooLarge(file, what, maxPixels, format);
  if (pages > 1) {
    const animated = format === 'gif' || (format === 'webp' && metadata.delay !== undefined);
    const name = FORMAT_NAMES[format ?? ''] ?? (format ?? 'image').toUpperCase();
    warnings.push(
      animated
        ? `animated ${name} with ${pages} frames: only the first frame was processed`
        : `${name} with ${pages} pages: only the first page was processed`,
    );
  }
  return { image, metadata, bytes, warnings, failure };
}
