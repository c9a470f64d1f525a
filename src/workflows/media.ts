/** `processMedia`: one image through thumbnails, re-encoding and filters, in the order asked. */
import { patched, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ProcessImageCheckpoint, ProcessImageResult } from '../activities/images/process-media';
import { processMediaInput, type ProcessMediaInput } from '../shared/restoration-inputs';
import { INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS } from './patches';
import {
  JobControl,
  boundedRetry,
  heartbeatingActivityOptions,
  interruptibleActivityOptions,
  validateInput,
} from './job-control';

/** Runs started before pause and cancel reached the activity keep calling it in one go (heartbeating as it works). */
const { processImage } = proxyActivities<typeof activities>(heartbeatingActivityOptions);

/** Operations stop between two for a pause or cancel; a bad image fails for good after a few tries. */
export const processImageOptions: ActivityOptions = { ...interruptibleActivityOptions, retry: boundedRetry };

const { processImageResumable } = proxyActivities<typeof activities>(processImageOptions);

export type ProcessMediaResult =
  ProcessImageResult | { outcome: 'cancelled'; operationsDone: number; outputs: ProcessImageResult['outputs'] };

export async function processMedia(rawInput: ProcessMediaInput): Promise<ProcessMediaResult> {
  const input = validateInput('processMedia', processMediaInput, rawInput);
  const interruptible = patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS);
  const job = new JobControl<ProcessMediaResult>({
    type: 'processMedia',
    progress: interruptible
      ? { done: 0, total: input.operations.length, unit: 'operations' }
      : { done: 0, total: 1, unit: 'images' },
    stage: 'processing',
  });
  // What the operations done so far wrote: the partial result of a cancel.
  let reached: ProcessImageCheckpoint | undefined;
  return job.run(
    async () => {
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
    () => ({
      outcome: 'cancelled',
      operationsDone: Math.min(reached?.next ?? 0, input.operations.length),
      outputs: reached?.outputs ?? [],
    }),
  );
}
