/**
 * Files that jobs read and write. Every path is confined to the data dir by where it really leads (`data-paths.ts`),
 * checked right before use, and every output is written atomically (a temporary file in the confirmed folder, renamed
 * into place), so a crash never leaves a half-written file behind and a link at the final name is replaced, not
 * followed.
 */
import { randomBytes } from 'node:crypto';
import { constants, openSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { dataDir } from '../config';
import { locateInDataDir, realLocation } from '../data-paths';

/**
 * Resolves a job's path (relative to the data dir, or absolute inside it) and checks where it really leads. A path
 * that leaves the data dir, by name or through a symbolic link, is refused with the non-retryable
 * `PathOutsideDataDir`, naming the path as the user wrote it.
 */
export function resolveDataPath(userPath: string, what = 'path'): string {
  const located = locateInDataDir(userPath);
  if ('problem' in located) {
    throw ApplicationFailure.nonRetryable(`The ${what} ${located.problem}.`, 'PathOutsideDataDir');
  }
  return located.path;
}

/**
 * Scratch copies of objects that this worker streamed out of a bucket for code that reads by path (sharp), by their
 * absolute path: the `s3://` location each one copies. They live in a private folder of the worker's own
 * (`places.ts`, `mkdtemp` in the system's temporary folder), outside the data dir by design, for as long as one item
 * needs them.
 */
const scratchCopies = new Map<string, string>();

/** Registers a scratch copy of `location` at `file` (absolute); call the function it returns once it is removed. */
export function registerScratchCopy(file: string, location: string): () => void {
  scratchCopies.set(file, location);
  return () => void scratchCopies.delete(file);
}

/**
 * Checks again, right before use, that a path the job made (or read from its own state) is still inside; a scratch
 * copy this worker made of an object is its own, and allowed as it is.
 */
export function confirmInDataDir(absolute: string, what = 'path'): string {
  if (scratchCopies.has(absolute)) return absolute;
  return resolveDataPath(displayPath(absolute), what);
}

/** The path as users should see it: relative to the data dir (a scratch copy: the `s3://` location it copies). */
export function displayPath(absolute: string): string {
  return scratchCopies.get(absolute) ?? (path.relative(dataDir(), absolute) || '.');
}

/** Reads a file inside the data dir, checking where it really leads first. */
export async function readDataFile(file: string, what?: string): Promise<Buffer>;
export async function readDataFile(file: string, what: string, encoding: BufferEncoding): Promise<string>;
export async function readDataFile(file: string, what = 'file', encoding?: BufferEncoding): Promise<Buffer | string> {
  const confirmed = confirmInDataDir(file, what);
  return encoding ? readFile(confirmed, encoding) : readFile(confirmed);
}

/**
 * Makes `dir` (and its parents) inside the data dir and returns its real location, refusing a folder that leads
 * outside before anything is created there.
 */
export async function makeDataDir(dir: string, what = 'folder'): Promise<string> {
  confirmInDataDir(dir, what);
  await mkdir(dir, { recursive: true });
  confirmInDataDir(dir, what);
  return realLocation(dir);
}

/** Writes `data` to `file` atomically: readers see the old file or the whole new one, never a part. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, what = 'output'): Promise<void> {
  const folder = await makeDataDir(path.dirname(file), what);
  const target = path.join(folder, path.basename(file));
  const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    // 'wx' creates a new file and never opens one that exists, a link included.
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Copies `source` (any local file: a scratch file of this worker's) to `file` in the data dir, atomically. */
export async function copyFileAtomic(source: string, file: string, what = 'output'): Promise<void> {
  const folder = await makeDataDir(path.dirname(file), what);
  const target = path.join(folder, path.basename(file));
  const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    // COPYFILE_EXCL: like 'wx', never writes through a link someone put at the temporary name.
    await copyFile(source, temporary, constants.COPYFILE_EXCL);
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Opens `file` for appending (a log), synchronously; the folder is confirmed and a link at the name is refused. */
export function openAppendSync(file: string, what = 'log'): number {
  const folder = confirmInDataDir(path.dirname(file), what);
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
  return openSync(path.join(realLocation(folder), path.basename(file)), flags, 0o644);
}

/** Appends a line to a log inside the data dir (see `openAppendSync`). */
export async function appendDataFile(file: string, text: string, what = 'log'): Promise<void> {
  const folder = confirmInDataDir(path.dirname(file), what);
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
  const handle = await open(path.join(realLocation(folder), path.basename(file)), flags, 0o644);
  try {
    await handle.appendFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * The files of a listed folder (`inputDir`, a dataset's pages), sorted, hidden ones left out. A symbolic link is
 * listed unless it leads to a folder inside the data dir: one that leads outside (or nowhere) is an item the job
 * refuses with the reason when it reaches it, so it is reported, never silently skipped.
 */
export async function listDataFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const file = path.join(dir, entry.name);
    if (entry.isFile()) files.push(file);
    else if (entry.isSymbolicLink()) {
      const inside = !('problem' in locateInDataDir(displayPath(file)));
      const isFolder = await stat(file).then(
        (info) => info.isDirectory(),
        () => false,
      );
      if (!(inside && isFolder)) files.push(file);
    }
  }
  return files.sort();
}
