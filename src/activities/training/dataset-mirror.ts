/**
 * A dataset in a bucket (`s3://bucket/prefix/`), mirrored once into a scratch cache of this machine, so the training
 * code reads it as it reads a data-dir dataset: whole files, decoded by sharp, many times over.
 *
 * A dataset is immutable once its manifest exists (generateSyntheticData writes the manifest last; `overwrite`
 * writes a new one), so a mirror is keyed by the manifest's location and version (size, ETag, last-modified) and is
 * good for as long as that version is the one in the bucket. A mirror holds what training and evaluation read: the
 * patches the manifest lists and the held-out pages, plus the manifest itself, written last. It is made in a staging
 * folder and renamed into place whole, so a folder under its final name is always complete, whichever process made
 * it (workers sharing a temporary folder share mirrors). The cache lives in `os.tmpdir()/backroom-dataset-mirrors/`,
 * never in the data dir, and keeps the {@link MIRRORS_KEPT} most recently used mirrors (and any used in the last hour).
 *
 * The mirror's files are outside the data dir by design: whoever reads one registers it, for that read only, as a
 * scratch copy of its object (`registerScratchCopy`), so the data-dir checks let it through and messages name the
 * object, not the scratch file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { registerScratchCopy } from '../files';
import { checkedS3Object, objectStorage, placeAt, storageFault } from '../places';
import { makePrivateFolder } from '../scratch';
import { storageFailureKind } from '../../storage/object-storage';
import { parseS3Prefix } from '../../storage/s3-location';
import type { DatasetManifest } from './dataset';

/** Mirrors kept in the cache (the least recently used beyond these are removed when a new one is made). */
export const MIRRORS_KEPT = 3;
/** Objects fetched at once while mirroring. */
const FETCH_CONCURRENCY = 8;
/** A staging folder older than this was left by a process that died while mirroring. */
const STALE_STAGING_MS = 60 * 60 * 1000;
/** A mirror used within this long is never evicted (a run reads its mirror at every epoch and evaluation). */
const IN_USE_MS = 60 * 60 * 1000;

/** The cache's folder (in this process's temporary folder, as `TMPDIR` says). */
export const mirrorRoot = () => path.join(os.tmpdir(), 'backroom-dataset-mirrors');

/** A dataset folder this worker reads: in the data dir, or a local mirror of a bucket's dataset. */
export interface DatasetFolder {
  /** The local folder (absolute). */
  dir: string;
  /** The `s3://bucket/prefix/` it mirrors; undefined for a data-dir folder. */
  mirrorOf?: string | undefined;
}

/** A mirrored dataset: where it is, what its manifest says, and how long mirroring took (0 when it was there). */
export interface DatasetMirror extends Required<DatasetFolder> {
  manifest: DatasetManifest;
  /** Seconds spent fetching objects for this call (0: an earlier call or process made it). */
  fetchSeconds: number;
  files: number;
  bytes: number;
}

/** Mirrors being made by this process, by cache key: concurrent calls wait for one mirror. */
const making = new Map<string, Promise<DatasetMirror>>();

/**
 * Reads `folder`'s file `relative` with `read` (a path reader that goes through the data-dir checks): a mirror's file
 * is registered as a scratch copy of its object while it is read.
 */
export async function readDatasetFile<T>(
  folder: DatasetFolder,
  relative: string,
  read: (file: string) => Promise<T>,
): Promise<T> {
  const file = path.join(folder.dir, relative);
  if (!folder.mirrorOf) return read(file);
  const unregister = registerScratchCopy(file, `${folder.mirrorOf}${relative}`);
  try {
    return await read(file);
  } finally {
    unregister();
  }
}

/** A name the manifest gives a file: relative, `/`-separated, plain, inside the dataset (no `..`, no absolute path). */
const SAFE_NAME = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** The first of `names` that is not a plain relative path inside a dataset, if any. */
export function unsafeName(names: readonly string[]): string | undefined {
  return names.find((name) => !SAFE_NAME.test(name));
}

/** The files of a dataset that training and evaluation read (the training pages never are). */
export function filesToMirror(manifest: DatasetManifest): string[] {
  const names = new Set<string>();
  for (const pair of [...manifest.patches.train, ...manifest.patches.val, ...(manifest.pages?.val ?? [])]) {
    // Anything but a string is kept as "", which no check lets through (unsafeName).
    for (const name of [pair?.clean, pair?.degraded]) names.add(typeof name === 'string' ? name : '');
  }
  return [...names];
}

/**
 * The dataset at `location` (`s3://bucket/prefix/`), mirrored on this machine: from the cache when this version of
 * its manifest was mirrored before, fetched otherwise. `check` validates the manifest (and throws the user's error);
 * `onProgress` hears of every object fetched. A missing manifest is a non-retryable `DatasetNotFound` (nothing
 * under the prefix) or `DatasetIncomplete` (objects, but no manifest: its generation did not finish).
 */
export async function mirrorDataset(
  location: string,
  check: (manifest: DatasetManifest, shownAs: string) => DatasetManifest,
  onProgress?: (files: number, total: number) => void,
): Promise<DatasetMirror> {
  const place = placeAt(location, 'dataset');
  const prefix = place.location;
  const manifestObject = checkedS3Object(`${prefix}manifest.json`, 'dataset manifest');
  let version: string;
  try {
    const head = await objectStorage().stat(manifestObject);
    version = `${head.size}:${head.etag ?? ''}:${head.lastModified?.getTime() ?? ''}`;
  } catch (err) {
    if (storageFailureKind(err) !== 'no-object') throw storageFault(err, 'dataset manifest');
    const anything = await firstObjectUnder(prefix);
    throw anything
      ? ApplicationFailure.nonRetryable(
          `The dataset ${prefix} has no manifest.json: its generation did not finish. Run generateSyntheticData ` +
            'for it again.',
          'DatasetIncomplete',
        )
      : ApplicationFailure.nonRetryable(
          `The dataset ${prefix} does not exist (no manifest.json there). Make one with generateSyntheticData first.`,
          'DatasetNotFound',
        );
  }
  const key = createHash('sha256').update(`${prefix}\n${version}`).digest('hex').slice(0, 32);
  const dir = path.join(mirrorRoot(), key);
  let mirror = making.get(key);
  if (!mirror) {
    mirror = (async () => {
      // Only a folder this user owns and nobody else may enter is read as the cache (scratch.ts): a mirror planted
      // by someone else in the shared temporary folder would be trained on as ours.
      await makePrivateFolder(mirrorRoot());
      const existing = await readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
      let manifest: DatasetManifest | undefined;
      try {
        manifest = existing === undefined ? undefined : (JSON.parse(existing) as DatasetManifest);
      } catch {
        // Damaged on this disk (it was whole when renamed into place): fetched again.
        await rm(dir, { recursive: true, force: true });
      }
      if (manifest === undefined) return fetchMirror(prefix, version, dir, check, onProgress);
      // Touched, so that no eviction (this process's or another's) takes a mirror in use.
      const now = new Date();
      await utimes(dir, now, now).catch(() => {});
      return { dir, mirrorOf: prefix, manifest: check(manifest, prefix), fetchSeconds: 0, files: 0, bytes: 0 };
    })();
    making.set(key, mirror);
    // Forgotten once settled: the folder on disk is the cache; a failure is tried again by the next call.
    void mirror.finally(() => making.delete(key)).catch(() => {});
  }
  return mirror;
}

async function fetchMirror(
  prefix: string,
  version: string,
  dir: string,
  check: (manifest: DatasetManifest, shownAs: string) => DatasetManifest,
  onProgress?: (files: number, total: number) => void,
): Promise<DatasetMirror> {
  const started = performance.now();
  const root = await makePrivateFolder(mirrorRoot());
  const opened = await objectStorage()
    .openRead(checkedS3Object(`${prefix}manifest.json`, 'dataset manifest'))
    .catch((err: unknown) => {
      throw storageFault(err, 'dataset manifest');
    });
  const text = Buffer.concat(await opened.body.toArray());
  if (opened.etag !== undefined && !version.includes(`:${opened.etag}:`)) {
    // Replaced between the HEAD and the GET (a regeneration): retried, and the next attempt mirrors the new one.
    throw new Error(`The manifest of the dataset ${prefix} changed while it was read; trying again.`);
  }
  let parsed: DatasetManifest;
  try {
    parsed = JSON.parse(text.toString('utf8')) as DatasetManifest;
  } catch {
    throw ApplicationFailure.nonRetryable(
      `The dataset ${prefix} has no readable manifest.json (it is not JSON). Run generateSyntheticData for it again.`,
      'DatasetIncomplete',
    );
  }
  const manifest = check(parsed, prefix);
  const names = filesToMirror(manifest);
  const unsafe = unsafeName(names);
  if (unsafe !== undefined) {
    throw ApplicationFailure.nonRetryable(
      `${prefix}manifest.json names the file "${unsafe.slice(0, 200)}", which is not a plain path inside the ` +
        'dataset; it is not a Backroom dataset manifest.',
      'DatasetInvalid',
    );
  }
  const staging = path.join(root, `.staging-${path.basename(dir)}-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { recursive: true });
  let bytes = 0;
  let fetched = 0;
  try {
    const queue = [...names];
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const file = path.join(staging, name);
        await mkdir(path.dirname(file), { recursive: true });
        const object = checkedS3Object(`${prefix}${name}`, 'dataset file');
        try {
          const read = await objectStorage().openRead(object);
          await pipeline(read.body, createWriteStream(file, { flags: 'wx' }));
          const { size } = await stat(file);
          bytes += size;
        } catch (err) {
          throw storageFault(err, `the dataset file ${prefix}${name}`);
        }
        fetched++;
        onProgress?.(fetched, names.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, names.length) }, worker));
    // The manifest last: a folder with one is complete.
    await writeFile(path.join(staging, 'manifest.json'), text);
    try {
      await rename(staging, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another process made the same mirror meanwhile: theirs is as good as ours.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(staging, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  await evictMirrors(dir).catch(() => {});
  return {
    dir,
    mirrorOf: prefix,
    manifest,
    fetchSeconds: Math.round((performance.now() - started) / 10) / 100,
    files: names.length + 1,
    bytes: bytes + text.length,
  };
}

/** Whether anything is stored under `prefix` (a dataset whose generation did not finish). */
async function firstObjectUnder(prefix: string): Promise<boolean> {
  try {
    const found = objectStorage().list(parseS3Prefix(prefix), { pageSize: 1 });
    const first = await found.next();
    await found.return(undefined);
    return first.done !== true;
  } catch {
    return false;
  }
}

/**
 * Removes mirrors beyond the {@link MIRRORS_KEPT} most recently used that no one used for {@link IN_USE_MS} (never
 * `keep`), and stale staging folders.
 */
async function evictMirrors(keep: string): Promise<void> {
  const root = mirrorRoot();
  const entries = await readdir(root, { withFileTypes: true });
  const mirrors: { dir: string; used: number }[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(root, entry.name);
    const info = await stat(dir).catch(() => undefined);
    if (!info) continue;
    if (entry.name.startsWith('.staging-')) {
      if (Date.now() - info.mtimeMs > STALE_STAGING_MS) await rm(dir, { recursive: true, force: true });
    } else if (dir !== keep) mirrors.push({ dir, used: info.mtimeMs });
  }
  mirrors.sort((a, b) => b.used - a.used);
  for (const old of mirrors.slice(MIRRORS_KEPT - 1)) {
    if (Date.now() - old.used > IN_USE_MS) await rm(old.dir, { recursive: true, force: true });
  }
}
