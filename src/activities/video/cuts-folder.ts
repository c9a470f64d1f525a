/**
 * The state-folder rule (state-record.ts) for a cut analysis: its outputDir holds the thumbnails and the cuts.json
 * (a partial one after a cancel) of one video analysed with one set of options. The same analysis resumes there,
 * another video or other options are refused unless `overwrite` is set, which removes the old thumbnails and
 * cuts.json first, so no thumbnail of another analysis stays beside the new ones.
 */
import { stat } from 'node:fs/promises';
import { displayPath, resolveDataPath } from '../files';
import { stateFingerprint } from '../state-folder';
import { placeAt } from '../places';
import { claimStateFolder } from '../state-record';

export interface ClaimCutsFolderRequest {
  video: string;
  outputDir: string;
  maxClipSeconds: number;
  minClipSeconds: number;
  threshold: number;
  overwrite?: boolean | undefined;
}

/** What defines a cut analysis: the video (where it really is, and its size: a replaced file is another video). */
export async function cutsFingerprint(request: ClaimCutsFolderRequest): Promise<string> {
  const video = resolveDataPath(request.video, 'video');
  const size = await stat(video).then(
    (info) => info.size,
    () => undefined,
  );
  const { maxClipSeconds, minClipSeconds, threshold } = request;
  return stateFingerprint({ video: displayPath(video), size, maxClipSeconds, minClipSeconds, threshold });
}

/**
 * Activity: claims the analysis' outputDir before any work, so another analysis into the same folder is refused at
 * once (`StateFolderMismatch`), not after its detection pass.
 */
export async function claimCutsFolder(request: ClaimCutsFolderRequest): Promise<void> {
  const video = displayPath(resolveDataPath(request.video, 'video'));
  await claimStateFolder({
    place: placeAt(request.outputDir, 'output dir'),
    fingerprint: await cutsFingerprint(request),
    holds:
      `the cuts of ${video} (threshold ${request.threshold}, clips of ${request.minClipSeconds}` +
      `–${request.maxClipSeconds} s)`,
    overwrite: request.overwrite,
    outputs: ['cuts.json', 'thumbnails'],
    differs: 'another video, or other threshold, minClipSeconds or maxClipSeconds',
  });
}
