/** Input schema of the video jobs (see job-inputs.ts for why they are shared). */
import { z } from 'zod';
import { dataPath } from './data-path';

export const analyzeCutsInput = z
  .strictObject({
    /** The video, inside the data dir. */
    video: dataPath,
    /** Where cuts.json and the thumbnails go (default: `<video dir>/<video name>-cuts`). */
    outputDir: dataPath.optional(),
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
