/**
 * Scratch folders: a worker's private copies of objects (places.ts) and its own intermediates (a cut analysis'
 * candidates), in the system's temporary folder. Each is removed when its item is done; a worker killed meanwhile
 * leaves its folders behind, so a worker that starts sweeps away those nobody has touched for a day.
 */
import { chmod, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';

/** Scratch folders of Backroom workers are named with this, in `os.tmpdir()`. */
export const SCRATCH_PREFIX = 'backroom-scratch-';

/**
 * Whether `dir` is this process's own folder: a real folder (not a link), owned by this user. The system's temporary
 * folder is shared with every local user, and a scratch or cache folder has a name anyone can guess: one planted
 * there (a link to elsewhere, another user's folder) must not receive a worker's copies or be read as its cache.
 */
async function ownFolder(dir: string): Promise<{ own: boolean; open: boolean }> {
  const info = await lstat(dir);
  const uid = process.getuid?.();
  const own = info.isDirectory() && (uid === undefined || info.uid === uid);
  return { own, open: (info.mode & 0o077) !== 0 };
}

/**
 * Makes `dir` (and its parents) as a folder only this user can enter, or checks that it already is one; a folder of
 * ours left open to others (made by an older version) is closed. Anything else at that name (a link, another
 * user's folder) fails for good: waiting does not fix it.
 */
export async function makePrivateFolder(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { own, open } = await ownFolder(dir);
  if (!own) {
    throw ApplicationFailure.nonRetryable(
      `The worker's folder ${dir} is not its own (a link, or another user's folder): remove it, or give the worker ` +
        'a private TMPDIR.',
      'ScratchFolderRefused',
    );
  }
  if (open) await chmod(dir, 0o700);
  return dir;
}

/** Whether `dir` exists as a folder of this process's own (see {@link makePrivateFolder}), for reading from it. */
export async function isPrivateFolder(dir: string): Promise<boolean> {
  return ownFolder(dir).then(
    ({ own, open }) => own && !open,
    () => false,
  );
}

/**
 * Far longer than any item keeps a scratch folder in use (a page's copy lives seconds, an analysis' candidates as
 * long as the analysis): another worker on the same machine may be using a younger one right now.
 */
export const STALE_SCRATCH_MS = 24 * 60 * 60 * 1000;

/**
 * Removes the scratch folders in `dir` (default `os.tmpdir()`) whose newest change is older than `olderThanMs`;
 * returns their names. Best effort: a folder that cannot be read or removed is left for the next sweep.
 */
export async function sweepStaleScratch(
  options: { dir?: string; olderThanMs?: number; now?: number } = {},
): Promise<string[]> {
  const dir = options.dir ?? os.tmpdir();
  const cutoff = (options.now ?? Date.now()) - (options.olderThanMs ?? STALE_SCRATCH_MS);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !entry.name.startsWith(SCRATCH_PREFIX)) continue;
    const folder = path.join(dir, entry.name);
    if ((await newestChange(folder)) >= cutoff) continue;
    await rm(folder, { recursive: true, force: true }).then(
      () => removed.push(entry.name),
      () => undefined,
    );
  }
  return removed;
}

/** The latest modification time of a folder and the files directly in it (ms); scratch folders are flat. */
async function newestChange(folder: string): Promise<number> {
  let newest = (await stat(folder).catch(() => undefined))?.mtimeMs ?? Infinity;
  for (const name of await readdir(folder).catch(() => [])) {
    const info = await stat(path.join(folder, name)).catch(() => undefined);
    if (info) newest = Math.max(newest, info.mtimeMs);
  }
  return newest;
}
