/**
 * A training dataset on disk:
 * - `pages/clean/page-0001.png` and `pages/degraded/page-0001.jpg`: whole synthetic pages (the held-out ones are
 *   what evaluation restores);
 * - `patches/{train,val}/<name>-clean.png` and `<name>-degraded.png`: the pairs the model trains and validates on;
 * - `manifest.json`: written last, by validation, listing only pairs that passed; a folder without it is unfinished.
 * Pages are split, not patches, so no validation patch comes from a page the model trained on.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { displayPath, readDataFile, resolveDataPath } from '../files';
import { readGray, type GrayImage } from '../restoration/gray-image';

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

/** Resolves a dataset input and reads its manifest, with errors that say how to make one. */
export async function readManifest(datasetInput: string): Promise<{ dir: string; manifest: DatasetManifest }> {
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
  if (manifest.format !== DATASET_FORMAT || !manifest.patches?.train || !manifest.patches.val) {
    throw ApplicationFailure.nonRetryable(
      `${displayPath(dir)}/manifest.json is not a Backroom dataset manifest.`,
      'DatasetInvalid',
    );
  }
  if (manifest.patches.train.length === 0 || manifest.patches.val.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `The dataset ${displayPath(dir)} has ${manifest.patches.train.length} training and ` +
        `${manifest.patches.val.length} validation patches; it needs some of each.`,
      'DatasetEmpty',
    );
  }
  return { dir, manifest };
}

export interface PatchSet {
  inputs: GrayImage[];
  targets: GrayImage[];
}

export interface LoadedDataset {
  dir: string;
  manifest: DatasetManifest;
  train: PatchSet;
  val: PatchSet;
}

const loaded = new Map<string, Promise<LoadedDataset>>();

/**
 * The dataset's patches decoded into memory (degraded → inputs, clean → targets). Kept per process, keyed by the
 * manifest's time, so the epochs of a run decode them once. `onProgress` is called as chunks of them load.
 */
export async function loadDataset(datasetInput: string, onProgress?: () => void): Promise<LoadedDataset> {
  const { dir, manifest } = await readManifest(datasetInput);
  const key = `${dir}@${(await stat(path.join(dir, 'manifest.json'))).mtimeMs}`;
  let entry = loaded.get(key);
  if (!entry) {
    entry = (async () => {
      const read = async (pairs: PagePair[]): Promise<PatchSet> => {
        const set: PatchSet = { inputs: [], targets: [] };
        // A few at a time (sharp decodes on the thread pool), with a heartbeat between, however big the dataset.
        for (let i = 0; i < pairs.length; i += 32) {
          const chunk = pairs.slice(i, i + 32);
          set.inputs.push(...(await Promise.all(chunk.map((pair) => readGray(path.join(dir, pair.degraded))))));
          set.targets.push(...(await Promise.all(chunk.map((pair) => readGray(path.join(dir, pair.clean))))));
          onProgress?.();
        }
        return set;
      };
      return { dir, manifest, train: await read(manifest.patches.train), val: await read(manifest.patches.val) };
    })();
    loaded.clear(); // one dataset at a time: a worker trains one run after another
    loaded.set(key, entry);
    entry.catch(() => loaded.delete(key));
  }
  return entry;
}
