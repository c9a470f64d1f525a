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

/** libvips repeats itself ("premature end of JPEG image" several times): keep each phrase once. */
function tidyDecoderMessage(message: string): string {
  const phrases = message
    .split(/\s*(?:VipsJpeg: |\n)\s*/)
    .map((p) => p.trim())
    .filter(Boolean);
  return [...new Set(phrases)].join('; ');
}

/** Maps a decode or file error to an ApplicationFailure: non-retryable unless the fault is transient. */
export function describeImageError(err: unknown, file: string, what = 'input'): ApplicationFailure {
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
  if (/exceeds pixel limit/i.test(message)) {
    return ApplicationFailure.nonRetryable(
      `The ${what} ${name} is larger than the limit of ${maxInputPixels().toLocaleString('en-US')} pixels ` +
        `(a possible decompression bomb); raise BACKROOM_MAX_INPUT_PIXELS if it is genuine.`,
      'ImageTooLarge',
    );
  }
  if (/unsupported image format/i.test(message)) {
    return ApplicationFailure.nonRetryable(
      `The ${what} ${name} is not an image in a supported format (JPEG, PNG, WebP, AVIF, TIFF, GIF, SVG).`,
      'UnsupportedFormat',
    );
  }
  return ApplicationFailure.nonRetryable(
    `The ${what} ${name} is a corrupt or truncated image (${tidyDecoderMessage(message)}).`,
    'CorruptImage',
  );
}
