/**
 * Files that jobs read and write: every path is confined to the data dir, and every output is written atomically
 * (a temporary file renamed into place), so a crash never leaves a half-written file behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { dataDir, pathInDataDir } from '../config';

/**
 * Resolves a job's path (relative to the data dir, or absolute inside it). A path that leaves the data dir is
 * refused with a non-retryable error: jobs never touch files outside it.
 */
export function resolveDataPath(userPath: string, what = 'path'): string {
  const resolved = pathInDataDir(userPath);
  if (resolved === undefined) {
    throw ApplicationFailure.nonRetryable(
      `The ${what} "${userPath}" is outside the data dir (${dataDir()}); jobs may only use files inside it.`,
      'PathOutsideDataDir',
    );
  }
  return resolved;
}

/** The path as users should see it: relative to the data dir. */
export function displayPath(absolute: string): string {
  return path.relative(dataDir(), absolute) || '.';
}

/** Writes `data` to `file` atomically: readers see the old file or the whole new one, never a part. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(temporary, data);
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
