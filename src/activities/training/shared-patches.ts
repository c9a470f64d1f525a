/**
 * Training patches in shared memory (SharedArrayBuffer): the dataset is decoded once per process, and every CPU-pool
 * task that trains or validates reads the same bytes, whichever thread runs it. Sending them to a task copies only a
 * handle, so a training step's message stays small however big the dataset is.
 */
import type { GrayImage } from '../restoration/gray-image';
import { readManifest, readMirrorManifest, readPatchPairs, type PagePair, type PatchSet } from './dataset';

/** Images of any sizes, back to back: image i is `layout[3i]` wide, `layout[3i+1]` high, at byte `layout[3i+2]`. */
export interface SharedImages {
  layout: Float64Array;
  pixels: Uint8Array;
}

/** A patch set in shared memory: model inputs and their targets, pair by pair. */
export interface SharedPatchSet {
  inputs: SharedImages;
  targets: SharedImages;
}

/** A dataset's training and validation patches in shared memory. */
export interface SharedPatches {
  train: SharedPatchSet;
  val: SharedPatchSet;
}

function sharedArray<T>(Kind: new (buffer: SharedArrayBuffer) => T, bytes: number): T {
  return new Kind(new SharedArrayBuffer(bytes));
}

/** Copies `images` into shared memory. */
export function shareImages(images: readonly GrayImage[]): SharedImages {
  const layout = sharedArray(Float64Array, images.length * 3 * 8);
  let bytes = 0;
  images.forEach((image, i) => {
    layout[3 * i] = image.width;
    layout[3 * i + 1] = image.height;
    layout[3 * i + 2] = bytes;
    bytes += image.width * image.height;
  });
  const pixels = sharedArray(Uint8Array, bytes);
  images.forEach((image, i) => pixels.set(image.data.subarray(0, image.width * image.height), layout[3 * i + 2]));
  return { layout, pixels };
}

/** Views of the shared images (no copy). */
export function imagesOf(shared: SharedImages): GrayImage[] {
  const images: GrayImage[] = [];
  for (let i = 0; i < shared.layout.length; i += 3) {
    const width = shared.layout[i] ?? 0;
    const height = shared.layout[i + 1] ?? 0;
    const offset = shared.layout[i + 2] ?? 0;
    images.push({ width, height, data: shared.pixels.subarray(offset, offset + width * height) });
  }
  return images;
}

export const patchSetOf = (shared: SharedPatchSet): PatchSet => ({
  inputs: imagesOf(shared.inputs),
  targets: imagesOf(shared.targets),
});

export const sharePatchSet = (set: PatchSet): SharedPatchSet => ({
  inputs: shareImages(set.inputs),
  targets: shareImages(set.targets),
});

/**
 * CPU-pool task: decodes a dataset's patches (degraded → inputs, clean → targets) into shared memory. `dataset` is
 * the dataset folder, already resolved by the caller; the manifest is read again through the data-dir checks, and
 * every patch file is opened through `openImage`, which confirms it is inside the data dir right before reading. A
 * mirror of a bucket's dataset (`mirrorOf` set, dataset-mirror.ts) is read as scratch copies of its objects.
 */
export async function loadSharedPatches(input: {
  dataset: string;
  mirrorOf?: string | undefined;
}): Promise<SharedPatches> {
  const folder = input.mirrorOf
    ? await readMirrorManifest({ dir: input.dataset, mirrorOf: input.mirrorOf })
    : await readManifest(input.dataset);
  const { manifest } = folder;
  const read = async (pairs: PagePair[]): Promise<SharedPatchSet> => sharePatchSet(await readPatchPairs(folder, pairs));
  return { train: await read(manifest.patches.train), val: await read(manifest.patches.val) };
}
