/** Input schema of the video jobs (see job-inputs.ts for why they are shared). */
import { z } from 'zod';
import { dataLocation } from './data-path';

export const analyzeCutsInput = z
  .strictObject({
    /** The video: a file inside the data dir, or an object in an allowed bucket (`s3://bucket/key.mp4`). */
    video: dataLocation('file'),
    /**
     * Where cuts.json and the thumbnails go: a data-dir folder or a prefix in an allowed bucket (`s3://bucket/cuts/`);
     * default `<video dir>/<video name>-cuts` (for an object, `s3://bucket/<key dir>/<video name>-cuts/`).
     */
    outputDir: dataLocation('folder').optional(),
    /** Longer shots are split into even parts no longer than this. */
    maxClipSeconds: z.number().min(1).max(3600).default(20),
    /** Shorter shots join a neighbour. */
    minClipSeconds: z.number().min(0).max(600).default(1),
    /** How many times its neighbours' change a frame's change must be to count as a cut (lower finds more). */
    threshold: z.number().min(1.1).max(50).default(3),
    /**
     * When `outputDir` holds the cuts of another video or of other options: remove its thumbnails and cuts.json and
     * start fresh. Without it such an analysis is refused (`StateFolderMismatch`); the same analysis resumes.
     */
    overwrite: z.boolean().default(false),
  })
  .refine((value) => value.minClipSeconds <= value.maxClipSeconds, {
    error: 'must not exceed maxClipSeconds',
    path: ['minClipSeconds'],
  });

export type AnalyzeCutsInput = z.input<typeof analyzeCutsInput>;

/**
 * Where an analysis of `video` writes when no outputDir is given: next to the video, named after it (`clips/a.mp4` →
 * `clips/a-cuts`); an object's is a prefix beside it in its bucket (`s3://media/clips/a.mp4` →
 * `s3://media/clips/a-cuts/`).
 */
export function defaultCutsDir(video: string): string {
  const slash = video.lastIndexOf('/');
  const name = video.slice(slash + 1).replace(/\.[^.]+$/, '');
  const folder = `${slash >= 0 ? video.slice(0, slash + 1) : ''}${name}-cuts`;
  return video.startsWith('s3://') ? `${folder}/` : folder;
}
