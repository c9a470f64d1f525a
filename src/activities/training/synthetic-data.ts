/**
 * The three activities of `generateSyntheticData`, each resumable one page (or pair) at a time:
 * 1. `renderDatasetPages`: clean pages and their degraded copies (lighting, stains, blur, noise, JPEG, but no skew:
 *    the model restores pixels, deskewing is the classical pipeline's job, and the pair must stay aligned);
 * 2. `cutDatasetPatches`: square patches, mostly where there is ink, plus an augmented copy of each training patch
 *    (flips and a small rotation of both, extra noise and blur on the degraded one);
 * 3. `validateDataset`: every pair present, same size, decodable and not blank; statistics; then the manifest.
 * The folder may be a data-dir folder or a bucket prefix (`s3://bucket/datasets/small/`): every page and patch is
 * written whole as it is made, so any worker resumes where the last one stopped.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { Resumable } from '../../shared/job-status';
import { resolveDataPath, writeFileAtomic } from '../files';
import { runCpuTask } from '../cpu-pool';
import { runResumableLoop } from '../resumable-loop';
import { readGray, type GrayImage } from '../restoration/gray-image';
import { documentDegradation, randomDegradation, seededRandom } from '../restoration/page-generator';
import type { PageFaults } from '../../shared/training-inputs';
import { psnr } from '../restoration/quality';
import { stateFingerprint } from '../state-folder';
import { placeAt, type Place } from '../places';
import { claimStateFolder } from '../state-record';
import {
  DATASET_FORMAT,
  pageName,
  pagePaths,
  valPageCount,
  type DatasetManifest,
  type PagePair,
  type Split,
} from './dataset';

export interface DatasetSpec {
  datasetId: string;
  datasetDir: string;
  pages: number;
  patchSize: number;
  patchesPerPage: number;
  augment: boolean;
  width: number;
  height: number;
  seed: number;
  /** Replace another dataset found in `datasetDir` instead of refusing to start. */
  overwrite?: boolean | undefined;
  /** `document` adds old documents' faults to the scan's (documentDegradation); absent or `scan`: the scan's only. */
  pageFaults?: PageFaults | undefined;
}

const pageSeed = (spec: DatasetSpec, index: number) => spec.seed * 1_000_003 + index;

/** What defines a dataset: another value of any of these makes other pages or patches (the folder is where). */
export function datasetFingerprint(spec: DatasetSpec): string {
  const { datasetId, pages, patchSize, patchesPerPage, augment, width, height, seed, pageFaults } = spec;
  return stateFingerprint({
    datasetId,
    pages,
    patchSize,
    patchesPerPage,
    augment,
    width,
    height,
    seed,
    // Only when it makes other pages, so datasets made before it existed keep their fingerprint.
    ...(pageFaults === 'document' && { pageFaults }),
  });
}

/**
 * The dataset folder's files, by name relative to it (`pages/clean/page-0001.png`): a data-dir folder read and
 * written by path as always, or a bucket prefix whose objects are written whole and decoded from memory.
 */
interface DatasetStore {
  place: Place;
  write(name: string, data: Uint8Array | string): Promise<void>;
  readGray(name: string): Promise<GrayImage>;
  /** The names of the files in `patches/<split>/`. */
  patchFiles(split: Split): Promise<string[]>;
}

function datasetStore(datasetDir: string): DatasetStore {
  const place = placeAt(datasetDir, 'dataset dir');
  if (place.local) {
    const dir = resolveDataPath(datasetDir, 'dataset dir');
    return {
      place,
      write: (name, data) => writeFileAtomic(path.join(dir, name), data),
      readGray: (name) => readGray(path.join(dir, name)),
      patchFiles: (split) => readdir(path.join(dir, 'patches', split)).catch(() => [] as string[]),
    };
  }
  return {
    place,
    write: (name, data) => place.write(name, data, 'dataset file'),
    readGray: async (name) => {
      const data = await place.read(name, 'dataset file');
      if (data === undefined) throw new Error(`there is no object ${place.locate(name)}`);
      try {
        return await readGray(data);
      } catch (err) {
        throw new Error(`${place.locate(name)} is not a readable image: ${(err as Error).message}`, { cause: err });
      }
    },
    patchFiles: async (split) =>
      (await place.folder(`patches/${split}`).files()).map((location) => path.posix.basename(location)),
  };
}

/** A page's files, relative to the dataset folder. */
const pageNames = (index: number) => pagePaths('', index);

/**
 * Claims the dataset folder (state-record.ts): the same dataset resumes, another one is refused
 * (`StateFolderMismatch`) unless `overwrite` is set, which removes its pages, patches and manifest first.
 */
async function claimDatasetFolder(spec: DatasetSpec, place: Place): Promise<void> {
  await claimStateFolder({
    place,
    fingerprint: datasetFingerprint(spec),
    holds: `the dataset ${spec.datasetId} of ${spec.pages} pages (${spec.width}×${spec.height}, seed ${spec.seed})`,
    overwrite: spec.overwrite,
    outputs: ['manifest.json', 'pages', 'patches'],
    differs: 'other datasetId, pages, page size, patchSize, patchesPerPage, augment, pageFaults or seed',
  });
}

/**
 * Step 1: claims the dataset folder, then renders and degrades page after page; a page already on disk (from an
 * earlier attempt) is kept.
 */
export async function renderDatasetPages(
  request: DatasetSpec & { resumeFrom?: number },
): Promise<Resumable<number, { pages: number }>> {
  const store = datasetStore(request.datasetDir);
  await claimDatasetFolder(request, store.place);
  const documentFaults = request.pageFaults === 'document';
  return runResumableLoop({
    initial: 0,
    resumeFrom: request.resumeFrom,
    isDone: (done) => done >= request.pages,
    step: async (index) => {
      const seed = pageSeed(request, index);
      const files = pageNames(index);
      const { clean, degraded } = await runCpuTask('renderPagePair', {
        spec: { seed, width: request.width, height: request.height, handwriting: documentFaults },
        degradation: { ...(documentFaults ? documentDegradation(seed) : randomDegradation(seed)), skewDegrees: 0 },
      });
      await store.write(files.clean, clean);
      await store.write(files.degraded, degraded);
      return index + 1;
    },
    progress: (done) => ({ done, total: request.pages, unit: 'pages' }),
    describe: (done) => `${done} of ${request.pages} pages rendered`,
    finish: () => ({ pages: request.pages }),
  });
}

/** Draws a normal variate from a uniform source. */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
}

interface Augmentation {
  flipX: boolean;
  flipY: boolean;
  degrees: number;
  noiseSigma: number;
  blurSigma: number;
}

/** Cuts one square from `page` at (left, top), rotated about its centre and flipped as asked. */
async function cutPatch(page: GrayImage, left: number, top: number, size: number, change?: Augmentation) {
  const margin = Math.ceil(size * 0.1);
  const region = { left: left - margin, top: top - margin, width: size + 2 * margin, height: size + 2 * margin };
  let pipeline = sharp(page.data, { raw: { width: page.width, height: page.height, channels: 1 } }).extract(region);
  if (change?.degrees) pipeline = pipeline.rotate(change.degrees, { background: '#ffffff' });
  const rotated = await pipeline.raw().toBuffer({ resolveWithObject: true });
  let patch = sharp(rotated.data, {
    raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels },
  })
    .extract({
      left: Math.floor((rotated.info.width - size) / 2),
      top: Math.floor((rotated.info.height - size) / 2),
      width: size,
      height: size,
    })
    .extractChannel(0);
  if (change?.flipY) patch = patch.flip();
  if (change?.flipX) patch = patch.flop();
  const data = await patch.raw().toBuffer();
  return { width: size, height: size, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Extra noise and blur on a degraded patch: scans vary more than one generator's settings. */
async function roughen(patch: GrayImage, change: Augmentation, random: () => number): Promise<GrayImage> {
  const data = Uint8Array.from(patch.data, (value) =>
    Math.max(0, Math.min(255, Math.round(value + change.noiseSigma * gaussian(random)))),
  );
  let image = sharp(data, { raw: { width: patch.width, height: patch.height, channels: 1 } });
  if (change.blurSigma >= 0.3) image = image.blur(change.blurSigma);
  const out = await image.raw().toBuffer();
  return { ...patch, data: new Uint8Array(out.buffer, out.byteOffset, out.length) };
}

const png = (image: GrayImage) =>
  sharp(image.data, { raw: { width: image.width, height: image.height, channels: 1 } })
    .png()
    .toBuffer();

/** Picks patch corners: most where the clean page has ink, a few anywhere (blank paper must stay blank). */
function patchCorners(clean: GrayImage, spec: DatasetSpec, random: () => number): { left: number; top: number }[] {
  const size = spec.patchSize;
  const margin = Math.ceil(size * 0.1);
  const span = (length: number) => Math.max(1, length - size - 2 * margin);
  const corners: { left: number; top: number }[] = [];
  for (let tries = 0; corners.length < spec.patchesPerPage && tries < spec.patchesPerPage * 50; tries++) {
    const left = margin + Math.floor(random() * span(clean.width));
    const top = margin + Math.floor(random() * span(clean.height));
    let ink = 0;
    for (let y = top; y < top + size; y += 4) {
      for (let x = left; x < left + size; x += 4) if ((clean.data[y * clean.width + x] ?? 255) < 128) ink++;
    }
    if (ink > 0 || random() < 0.15) corners.push({ left, top });
  }
  return corners;
}

/** Step 2: cuts the patches of page after page. */
export async function cutDatasetPatches(
  request: DatasetSpec & { resumeFrom?: number },
): Promise<Resumable<number, { pages: number }>> {
  const store = datasetStore(request.datasetDir);
  const trainPages = request.pages - valPageCount(request.pages);
  return runResumableLoop({
    initial: 0,
    resumeFrom: request.resumeFrom,
    isDone: (done) => done >= request.pages,
    step: async (index) => {
      const files = pageNames(index);
      const [clean, degraded] = await Promise.all([store.readGray(files.clean), store.readGray(files.degraded)]);
      const split: Split = index < trainPages ? 'train' : 'val';
      const random = seededRandom(pageSeed(request, index) ^ 0x9e3779b9);
      const write = async (name: string, pair: { clean: GrayImage; degraded: GrayImage }) => {
        const base = path.join('patches', split, `${pageName(index)}-${name}`);
        await store.write(`${base}-clean.png`, await png(pair.clean));
        await store.write(`${base}-degraded.png`, await png(pair.degraded));
      };
      for (const [k, { left, top }] of patchCorners(clean, request, random).entries()) {
        const name = String(k + 1).padStart(3, '0');
        const cut = (page: GrayImage, change?: Augmentation) => cutPatch(page, left, top, request.patchSize, change);
        await write(name, { clean: await cut(clean), degraded: await cut(degraded) });
        if (split === 'train' && request.augment) {
          const change: Augmentation = {
            flipX: random() < 0.5,
            flipY: random() < 0.5,
            degrees: Math.round((random() * 6 - 3) * 10) / 10,
            noiseSigma: random() * 10,
            blurSigma: random() * 1.2,
          };
          await write(`${name}a`, {
            clean: await cut(clean, change),
            degraded: await roughen(await cut(degraded, change), change, random),
          });
        }
      }
      return index + 1;
    },
    progress: (done) => ({ done, total: request.pages, unit: 'pages' }),
    describe: (done) => `patches cut from ${done} of ${request.pages} pages`,
    finish: () => ({ pages: request.pages }),
  });
}

export interface ValidationCursor {
  index: number;
  rejected: { name: string; reason: string }[];
  sums: { psnr: number; clean: number; degraded: number; ink: number; pixels: number; pairs: number };
}

async function listPairs(
  store: DatasetStore,
  split: Split,
): Promise<{ name: string; clean?: string; degraded?: string }[]> {
  const names = (await store.patchFiles(split)).filter((file) => file.endsWith('.png')).sort();
  const pairs = new Map<string, { name: string; clean?: string; degraded?: string }>();
  for (const file of names) {
    const match = /^(.*)-(clean|degraded)\.png$/.exec(file);
    if (!match?.[1] || !match[2]) continue;
    const name = `${split}/${match[1]}`;
    const pair = pairs.get(name) ?? { name };
    pair[match[2] as 'clean' | 'degraded'] = path.join('patches', split, file);
    pairs.set(name, pair);
  }
  return [...pairs.values()];
}

/** Why a pair cannot be used, or the decoded pair. */
async function checkPair(
  store: DatasetStore,
  pair: { name: string; clean?: string; degraded?: string },
  patchSize: number,
): Promise<{ reason: string } | { clean: GrayImage; degraded: GrayImage }> {
  if (!pair.clean) return { reason: 'the clean patch is missing' };
  if (!pair.degraded) return { reason: 'the degraded patch is missing' };
  const images: GrayImage[] = [];
  for (const [what, file] of [
    ['clean', pair.clean],
    ['degraded', pair.degraded],
  ] as const) {
    try {
      images.push(await store.readGray(file));
    } catch (err) {
      // A patch that is not an image, or a link that leads outside the data dir: rejected with the reason.
      return { reason: `the ${what} patch cannot be used (${(err as Error).message})` };
    }
  }
  const [clean, degraded] = images as [GrayImage, GrayImage];
  if (clean.width !== degraded.width || clean.height !== degraded.height) {
    return {
      reason: `sizes differ: ${clean.width}×${clean.height} clean, ${degraded.width}×${degraded.height} degraded`,
    };
  }
  if (clean.width !== patchSize || clean.height !== patchSize) {
    return { reason: `${clean.width}×${clean.height} is not the dataset's ${patchSize}×${patchSize}` };
  }
  const flat = (image: GrayImage) => image.data.every((value) => value === image.data[0]);
  if (flat(degraded) && (degraded.data[0] ?? 0) < 250)
    return { reason: 'the degraded patch is one flat colour (empty)' };
  return { clean, degraded };
}

/** Step 3: checks every pair, gathers statistics, and writes the manifest of the pairs that passed. */
export async function validateDataset(
  request: DatasetSpec & { resumeFrom?: ValidationCursor },
): Promise<Resumable<ValidationCursor, { manifest: string; stats: DatasetManifest['stats']; rejected: number }>> {
  const store = datasetStore(request.datasetDir);
  const pairs = [...(await listPairs(store, 'train')), ...(await listPairs(store, 'val'))];
  const result = await runResumableLoop<ValidationCursor, ValidationCursor>({
    initial: { index: 0, rejected: [], sums: { psnr: 0, clean: 0, degraded: 0, ink: 0, pixels: 0, pairs: 0 } },
    resumeFrom: request.resumeFrom,
    isDone: (cursor) => cursor.index >= pairs.length,
    step: async (cursor) => {
      const pair = pairs[cursor.index];
      if (!pair) return { ...cursor, index: cursor.index + 1 };
      const checked = await checkPair(store, pair, request.patchSize);
      if ('reason' in checked) {
        return {
          ...cursor,
          index: cursor.index + 1,
          rejected: [...cursor.rejected, { name: pair.name, reason: checked.reason }],
        };
      }
      const sums = { ...cursor.sums };
      const similarity = psnr(checked.degraded, checked.clean);
      sums.psnr += Number.isFinite(similarity) ? similarity : 100;
      for (let i = 0; i < checked.clean.data.length; i++) {
        const value = checked.clean.data[i] ?? 0;
        sums.clean += value;
        sums.degraded += checked.degraded.data[i] ?? 0;
        if (value < 128) sums.ink++;
      }
      sums.pixels += checked.clean.data.length;
      sums.pairs++;
      return { ...cursor, index: cursor.index + 1, sums };
    },
    progress: (cursor) => ({ done: cursor.index, total: pairs.length, unit: 'pairs' }),
    describe: (cursor) => `${cursor.index} of ${pairs.length} pairs checked, ${cursor.rejected.length} rejected`,
    finish: (cursor) => cursor,
  });
  if (!result.finished) return result;
  const { rejected, sums } = result.result;
  // A retry re-checks from the heartbeat's position: names before it passed unless rejected.
  const rejectedNames = new Set(rejected.map((entry) => entry.name));
  const passed = (split: Split): PagePair[] =>
    pairs
      .filter(
        (pair) => pair.name.startsWith(`${split}/`) && !rejectedNames.has(pair.name) && pair.clean && pair.degraded,
      )
      .map((pair) => ({ name: pair.name, clean: pair.clean ?? '', degraded: pair.degraded ?? '' }));
  const valPages = valPageCount(request.pages);
  const page = (index: number): PagePair => ({ name: pageName(index), ...pageNames(index) });
  const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
  const manifest: DatasetManifest = {
    format: DATASET_FORMAT,
    datasetId: request.datasetId,
    createdAt: new Date().toISOString(),
    patchSize: request.patchSize,
    pageSize: { width: request.width, height: request.height },
    seed: request.seed,
    augment: request.augment,
    pages: {
      train: Array.from({ length: request.pages - valPages }, (_, i) => page(i)),
      val: Array.from({ length: valPages }, (_, i) => page(request.pages - valPages + i)),
    },
    patches: { train: passed('train'), val: passed('val') },
    stats: {
      trainPairs: passed('train').length,
      valPairs: passed('val').length,
      degradedPsnr: round(sums.psnr / Math.max(1, sums.pairs)),
      meanClean: round(sums.clean / Math.max(1, sums.pixels), 1),
      meanDegraded: round(sums.degraded / Math.max(1, sums.pixels), 1),
      inkFraction: round(sums.ink / Math.max(1, sums.pixels), 4),
    },
    rejected,
  };
  await store.write('manifest.json', JSON.stringify(manifest, null, 2));
  const summary = { manifest: store.place.locate('manifest.json'), stats: manifest.stats, rejected: rejected.length };
  return { ...result, result: summary };
}
