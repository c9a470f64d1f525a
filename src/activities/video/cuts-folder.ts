/**
 * The state-folder rule (state-record.ts) for a cut analysis: its outputDir (a data-dir folder or a prefix in a
 * bucket) holds the thumbnails and the cuts.json (a partial one after a cancel) of one video analysed with one set of
 * options. The same analysis resumes there, another video or other options are refused unless `overwrite` is set,
 * which removes the old thumbnails and cuts.json first, so no thumbnail of another analysis stays beside the new ones.
 */
import { stateFingerprint } from '../state-folder';
import { placeAt, sizeOf } from '../places';
import { claimStateFolder } from '../state-record';
import { videoName } from './video-source';

export interface ClaimCutsFolderRequest {
  video: string;
  outputDir: string;
  maxClipSeconds: number;
  minClipSeconds: number;
  threshold: number;
  overwrite?: boolean | undefined;
}

/**
 * What defines a cut analysis: the video (where it really is: a data-dir path, or an object's canonical `s3://`
 * location; and its size: a replaced file is another video), and the options.
 */
export async function cutsFingerprint(request: ClaimCutsFolderRequest): Promise<string> {
  const video = videoName(request.video);
  const size = await sizeOf(request.video, 'video');
  const { maxClipSeconds, minClipSeconds, threshold } = request;
  return stateFingerprint({ video, size, maxClipSeconds, minClipSeconds, threshold });
}

/**
 * Activity: claims the analysis' outputDir before any work, so another analysis into the same folder is refused at
 * once (`StateFolderMismatch`), not after its detection pass.
 */
export async function claimCutsFolder(request: ClaimCutsFolderRequest): Promise<void> {
  const video = videoName(request.video);
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
