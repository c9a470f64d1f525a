/** `processMedia`: one image through thumbnails, re-encoding and filters, in the order asked. */
import { patched, proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ProcessImageCheckpoint, ProcessImageResult } from '../activities/images/process-media';
import { processMediaInput } from '../shared/restoration-inputs';
import { bounded, interruptible } from './activity-profiles';
import { defineJob } from './define-job';
import { INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS } from './patches';

// Runs started before pause and cancel reached the activity keep calling it in one go (heartbeating as it works).
const { processImage } = proxyActivities<typeof activities>(bounded);

// Operations stop between two for a pause or cancel; a bad image fails for good after a few tries.
const { processImageResumable } = proxyActivities<typeof activities>(interruptible);

export type ProcessMediaResult =
  ProcessImageResult | { outcome: 'cancelled'; operationsDone: number; outputs: ProcessImageResult['outputs'] };

export const processMedia = defineJob<typeof processMediaInput, ProcessMediaResult>({
  type: 'processMedia',
  input: processMediaInput,
  progress: (input) =>
    patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS)
      ? { done: 0, total: input.operations.length, unit: 'operations' }
      : { done: 0, total: 1, unit: 'images' },
  stage: 'processing',
  setup: ({ job, input }) => {
    const interruptible = patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS);
    // What the operations done so far wrote: the partial result of a cancel.
    let reached: ProcessImageCheckpoint | undefined;
    return {
      async work() {
        await job.checkpoint();
        job.setMessage(input.operations.map((operation) => operation.op).join(' → '));
        let result: ProcessImageResult;
        if (interruptible) {
          result = await job.runResumable<ProcessImageCheckpoint, ProcessImageResult>(
            (resumeFrom) => processImageResumable({ ...input, resumeFrom }),
            { onCheckpoint: (checkpoint) => (reached = checkpoint) },
          );
          job.setProgress(input.operations.length);
        } else {
          result = await processImage(input);
          job.setProgress(1);
        }
        job.itemSucceeded();
        // Warnings (an animation reduced to its first frame, SVG references not loaded) belong in the final line.
        job.setMessage([`${result.outputs.length} output(s) written`, ...(result.warnings ?? [])].join('; '));
        return result;
      },
      cancelled: () => ({
        outcome: 'cancelled',
        operationsDone: Math.min(reached?.next ?? 0, input.operations.length),
        outputs: reached?.outputs ?? [],
      }),
    };
  },
});
