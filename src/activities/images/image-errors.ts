/**
 * Turns what goes wrong when reading an image into errors a person understands, and decides what is permanent
 * (a broken or missing file: not retried) and what is transient (the disk or the OS being busy: retried).
 */
import { stat } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { displayPath } from '../files';

/** Pixel limit against decompression bombs (sharp's `limitInputPixels`), from BACKROOM_MAX_INPUT_PIXELS. */
export function maxInputPixels(): number {
  const raw = process.env.BACKROOM_MAX_INPUT_PIXELS;
  const value = raw ? Number(raw) : 100_000_000;
  return Number.isInteger(value) && value > 0 ? value : 100_000_000;
}

const TRANSIENT_CODES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EIO', 'ETIMEDOUT']);

/** Checks the file is there and not empty before decoding, with messages that say what is wrong; returns its size. */
export async function assertReadableFile(file: string, what = 'input'): Promise<number> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw describeImageError(err, file, what);
  }
  if (!info.isFile()) {
    throw ApplicationFailure.nonRetryable(`The ${what} ${displayPath(file)} is not a file.`, 'NotAFile');
  }
  if (info.size === 0) {
    throw ApplicationFailure.nonRetryable(`The ${what} ${displayPath(file)} is empty (0 bytes).`, 'EmptyFile');
  }
  return info.size;
}

/** What the caller knows about the file when decoding failed: its detected format and the pixel limit applied. */
export interface ImageErrorContext {
  format?: string | undefined;
  maxPixels?: number | undefined;
}

const HEIC_UNSUPPORTED = "HEIC/HEVC is not supported (sharp's libvips has no HEVC decoder); convert it to JPEG or AVIF";

/** The non-retryable failure for a HEVC-coded HEIF (an iPhone photo's usual format). */
export function heicUnsupported(file: string, what = 'input'): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `The ${what} ${displayPath(file)} is a HEIC image: ${HEIC_UNSUPPORTED}.`,
    'UnsupportedFormat',
  );
}

/** The non-retryable failure for an image over the pixel limit (a possible decompression bomb). */
export function imageTooLarge(
  file: string,
  what = 'input',
  maxPixels = maxInputPixels(),
  format?: string,
): ApplicationFailure {
  const remedy =
    format === 'svg'
      ? 'SVGs are rendered at most 4096×4096 (filters cost far more per pixel than decoding); lower its width and height'
      : 'raise BACKROOM_MAX_INPUT_PIXELS if it is genuine';
  return ApplicationFailure.nonRetryable(
    `The ${what} ${displayPath(file)} is larger than the limit of ${maxPixels.toLocaleString('en-US')} pixels ` +
      `(a possible decompression bomb); ${remedy}.`,
    'ImageTooLarge',
  );
}

/**
 * The decoder's own words, made safe to show: each phrase once (libvips repeats "premature end of JPEG image"),
 * the file's absolute path replaced by its data-dir name, anything in quotes dropped (parsers quote what they
 * found, and what they found is the file's content) and only printable ASCII kept, at most 200 characters.
 */
function tidyDecoderMessage(message: string, file: string): string {
  const phrases = message
    .split(file)
    .join(displayPath(file))
    .replace(/^Input (?:file|buffer) has corrupt header:?/i, '')
    .replace(/'[^'\n]*'|"[^"\n]*"|`[^`\n]*`/g, '…')
    .replace(/[^\x20-\x7e\n]/g, '')
    .split(/\s*(?:VipsJpeg: |\n)\s*/)
    .map((p) => p.trim())
    .filter(Boolean);
  const text = [...new Set(phrases)].join('; ');
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/**
 * Maps an open, decode or file error to an ApplicationFailure: non-retryable unless the fault is transient. Messages
 * never carry the file's bytes: for SVG (XML parsers quote the markup they choke on) and for unknown formats the
 * decoder's detail is left out; for binary formats only its fixed phrases are kept (see `tidyDecoderMessage`).
 */
export function describeImageError(
  err: unknown,
  file: string,
  what = 'input',
  context: ImageErrorContext = {},
): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const name = displayPath(file);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ENOENT') return ApplicationFailure.nonRetryable(`The ${what} ${name} does not exist.`, 'FileNotFound');
  if (code === 'EACCES' || code === 'EPERM') {
    return ApplicationFailure.nonRetryable(
      `The ${what} ${name} cannot be read (permission denied).`,
      'FileNotReadable',
    );
  }
  if (code && TRANSIENT_CODES.has(code)) {
    return ApplicationFailure.retryable(`Reading ${name} failed for now (${code}); retrying.`, 'TransientIOError');
  }
  // libjpeg refuses a side over 65,500 before libvips can compare the area with the limit: the same bomb.
  if (/exceeds pixel limit|Maximum supported image dimension/i.test(message)) {
    return imageTooLarge(file, what, context.maxPixels, context.format);
  }
  if (/compression format has not been built in|HEVC|unsupported codec/i.test(message)) {
    return heicUnsupported(file, what);
  }
  if (/unsupported image format/i.test(message)) {
    return ApplicationFailure.nonRetryable(
      `The ${what} ${name} is not an image in a supported format (JPEG, PNG, WebP, AVIF, TIFF, GIF, SVG).`,
      'UnsupportedFormat',
    );
  }
  const svg = context.format === 'svg' || /\bXML\b|<svg>|svgload/.test(message);
  if (svg && /amplification|Excessive depth|cannot load more than|referenced elements|XML_PARSE_HUGE/i.test(message)) {
    return svgTooComplex(file, what);
  }
  if (svg) {
    return ApplicationFailure.nonRetryable(
      `The ${what} ${name} is not a well-formed SVG document (or uses SVG features that cannot be rendered).`,
      'CorruptImage',
    );
  }
  const detail = context.format ? tidyDecoderMessage(message, file) : '';
  return ApplicationFailure.nonRetryable(
    `The ${what} ${name} is a corrupt or truncated image${detail ? ` (${detail})` : ''}.`,
    'CorruptImage',
  );
}

/** The non-retryable failure for an SVG beyond the parser's or our limits (entity expansion, depth, elements). */
export function svgTooComplex(file: string, what = 'input', why = ''): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `The ${what} ${displayPath(file)} is an SVG too complex to render safely${why ? ` (${why})` : ''}: size, ` +
      `element count, nesting and entity expansion are limited against "billion laughs" and similar attacks; ` +
      `convert it to PNG if it is genuine.`,
    'ImageTooComplex',
  );
}
