/**
 * A training dataset, in a data-dir folder or under a bucket prefix (mirrored locally to be read, dataset-mirror.ts):
 * - `pages/clean/page-0001.png` and `pages/degraded/page-0001.jpg`: whole synthetic pages (the held-out ones are
 *   what evaluation restores);
 * - `patches/{train,val}/<name>-clean.png` and `<name>-degraded.png`: the pairs the model trains and validates on;
 * - `manifest.json`: written last, by validation, listing only pairs that passed; a folder without it is unfinished.
 * Pages are split, not patches, so no validation patch comes from a page the model trained on.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { readCached } from '../file-cache';
import { displayPath, readDataFile, resolveDataPath } from '../files';
import { readGray, type GrayImage } from '../restoration/gray-image';
import { isS3Location } from '../../storage/s3-location';
import { mirrorDataset, readDatasetFile, type DatasetFolder } from './dataset-mirror';

export type { DatasetFolder };

export const DATASET_FORMAT = 'backroom-dataset/1';
export type Split = 'train' | 'val';

export interface PagePair {
  name: string;
  clean: string;
  degraded: string;
}

export interface DatasetStats {
  trainPairs: number;
  valPairs: number;
  /** Mean PSNR (dB) of the degraded patches against their clean ones: what doing nothing scores. */
  degradedPsnr: number;
  meanClean: number;
  meanDegraded: number;
  /** Share of clean pixels darker than mid-grey. */
  inkFraction: number;
}

export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  datasetId: string;
  createdAt: string;
  patchSize: number;
  pageSize: { width: number; height: number };
  seed: number;
  augment: boolean;
  /** Paths relative to the dataset folder. */
  pages: Record<Split, PagePair[]>;
  patches: Record<Split, PagePair[]>;
  stats: DatasetStats;
  /** Pairs left out by validation, with the reason. */
  rejected: { name: string; reason: string }[];
}

export const pageName = (index: number) => `page-${String(index + 1).padStart(4, '0')}`;

/** The first `pages - valPages` pages train; the rest are held out. */
export function valPageCount(pages: number): number {
  return Math.max(1, Math.round(pages / 5));
}

export function pagePaths(datasetDir: string, index: number): { clean: string; degraded: string } {
  return {
    clean: path.join(datasetDir, 'pages', 'clean', `${pageName(index)}.png`),
    degraded: path.join(datasetDir, 'pages', 'degraded', `${pageName(index)}.jpg`),
  };
}

/**
 * Checks that `manifest` is a usable Backroom dataset manifest (the user's error otherwise, naming the dataset
 * `shownAs` and its manifest `manifestShown`).
 */
export function checkManifest(manifest: DatasetManifest, shownAs: string, manifestShown: string): DatasetManifest {
  if (manifest?.format !== DATASET_FORMAT || !manifest.patches?.train || !manifest.patches.val) {
    throw ApplicationFailure.nonRetryable(`${manifestShown} is not a Backroom dataset manifest.`, 'DatasetInvalid');
  }
  if (manifest.patches.train.length === 0 || manifest.patches.val.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `The dataset ${shownAs} has ${manifest.patches.train.length} training and ` +
        `${manifest.patches.val.length} validation patches; it needs some of each.`,
      'DatasetEmpty',
    );
  }
  return manifest;
}

/** A dataset's local folder (see {@link DatasetFolder}) and its manifest. */
export interface DatasetRead extends DatasetFolder {
  manifest: DatasetManifest;
}

/**
 * Resolves a dataset input and reads its manifest, with errors that say how to make one. A dataset in a bucket
 * (`s3://bucket/prefix/`) is mirrored on this machine first (dataset-mirror.ts), and `dir` is the mirror;
 * `onFetch` hears of each object fetched.
 */
export async function readManifest(
  datasetInput: string,
  onFetch?: (files: number, total: number) => void,
): Promise<DatasetRead> {
  if (isS3Location(datasetInput)) {
    const mirror = await mirrorDataset(
      datasetInput,
      (manifest, prefix) => checkManifest(manifest, prefix, `${prefix}manifest.json`),
      onFetch,
    );
    return { dir: mirror.dir, mirrorOf: mirror.mirrorOf, manifest: mirror.manifest };
  }
  const dir = resolveDataPath(datasetInput, 'dataset');
  const folder = await stat(dir).catch(() => undefined);
  if (!folder?.isDirectory()) {
    throw ApplicationFailure.nonRetryable(
      `The dataset ${displayPath(dir)} does not exist. Make one with generateSyntheticData first.`,
      'DatasetNotFound',
    );
  }
  let manifest: DatasetManifest;
  try {
    manifest = JSON.parse(await readDataFile(path.join(dir, 'manifest.json'), 'manifest', 'utf8')) as DatasetManifest;
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    throw ApplicationFailure.nonRetryable(
      `The dataset ${displayPath(dir)} has no readable manifest.json: it is empty or its generation did not ` +
        'finish. Run generateSyntheticData for it again.',
      'DatasetIncomplete',
    );
  }
  return { dir, manifest: checkManifest(manifest, displayPath(dir), `${displayPath(dir)}/manifest.json`) };
}

export interface PatchSet {
  inputs: GrayImage[];
  targets: GrayImage[];
}

export interface LoadedDataset extends DatasetFolder {
  manifest: DatasetManifest;
  train: PatchSet;
  val: PatchSet;
}

/** Decodes one image of a dataset folder (a data-dir folder or a mirror) into grey. */
export const readDatasetImage = (folder: DatasetFolder, relative: string, what?: string): Promise<GrayImage> =>
  readDatasetFile(folder, relative, (file) => readGray(file, what === undefined ? {} : { what }));

/**
 * Decodes a dataset's patch pairs (degraded → inputs, clean → targets) from `folder` (a data-dir path, or a folder
 * with the bucket it mirrors), a few at a time: sharp decodes them on libuv's threads, and `afterChunk` (a
 * heartbeat, progress) runs between, however big the dataset.
 */
export async function readPatchPairs(
  folder: DatasetFolder | string,
  pairs: PagePair[],
  afterChunk?: () => void,
): Promise<PatchSet> {
  const from = typeof folder === 'string' ? { dir: folder } : folder;
  const set: PatchSet = { inputs: [], targets: [] };
  for (let i = 0; i < pairs.length; i += 32) {
    const chunk = pairs.slice(i, i + 32);
    set.inputs.push(...(await Promise.all(chunk.map((pair) => readDatasetImage(from, pair.degraded)))));
    set.targets.push(...(await Promise.all(chunk.map((pair) => readDatasetImage(from, pair.clean)))));
    afterChunk?.();
  }
  return set;
}

/** Callers waiting for a dataset to decode, by its manifest file: each hears of every chunk, whoever started it. */
const decodeListeners = new Map<string, Set<() => void>>();

/** Decodes the dataset whose manifest is `manifestFile` (degraded → inputs, clean → targets). */
async function decodeDataset(manifestFile: string): Promise<LoadedDataset> {
  const dir = path.dirname(manifestFile);
  const mirrorOf = mirrorsByFolder.get(dir);
  const { manifest } = mirrorOf ? await readMirrorManifest({ dir, mirrorOf }) : await readManifest(dir);
  const read = (pairs: PagePair[]): Promise<PatchSet> =>
    readPatchPairs({ dir, mirrorOf }, pairs, () => {
      for (const listener of decodeListeners.get(manifestFile) ?? []) listener();
    });
  return { dir, mirrorOf, manifest, train: await read(manifest.patches.train), val: await read(manifest.patches.val) };
}

/** The buckets this process's mirror folders copy, by folder (a parser of a manifest file gets only its path). */
const mirrorsByFolder = new Map<string, string>();

/** The bucket prefix that the local folder `dir` mirrors, if it is a mirror this process noted. */
export const mirrorOfFolder = (dir: string): string | undefined => mirrorsByFolder.get(dir);

/** Remembers that `folder` mirrors a bucket's dataset, for parsers that get only a path (see {@link decodeDataset}). */
export function noteMirror(folder: DatasetFolder): void {
  if (folder.mirrorOf) mirrorsByFolder.set(folder.dir, folder.mirrorOf);
}

/** The manifest of a mirror made on this machine (the mirror is complete: its manifest was checked when made). */
export async function readMirrorManifest(folder: Required<DatasetFolder>): Promise<DatasetRead> {
  const text = await readFile(path.join(folder.dir, 'manifest.json'), 'utf8');
  const manifest = checkManifest(
    JSON.parse(text) as DatasetManifest,
    folder.mirrorOf,
    `${folder.mirrorOf}manifest.json`,
  );
  return { ...folder, manifest };
}

/**
 * The dataset's patches decoded into memory, once per process and dataset version (file-cache.ts, keyed by its
 * manifest), so the epochs of a run decode them once; other datasets loaded meanwhile keep their own. `onProgress`
 * is called as chunks of them load.
 */
export async function loadDataset(datasetInput: string, onProgress?: () => void): Promise<LoadedDataset> {
  const folder = await readManifest(datasetInput);
  noteMirror(folder);
  const { dir } = folder;
  const manifestFile = path.join(dir, 'manifest.json');
  const listeners = decodeListeners.get(manifestFile) ?? new Set();
  decodeListeners.set(manifestFile, listeners);
  const listener = () => onProgress?.();
  listeners.add(listener);
  try {
    return await readCached(manifestFile, decodeDataset);
  } finally {
    listeners.delete(listener);
    if (listeners.size === 0) decodeListeners.delete(manifestFile);
  }
}
