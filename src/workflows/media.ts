/** `processMedia`: one image through thumbnails, re-encoding and filters, in the order asked. */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ProcessImageResult } from '../activities/images/process-media';
import { processMediaInput, type ProcessMediaInput } from '../shared/restoration-inputs';
import { JobControl, validateInput } from './job-control';

const { processImage } = proxyActivities<typeof activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
});

export type ProcessMediaResult = ProcessImageResult | { outcome: 'cancelled' };

export async function processMedia(rawInput: ProcessMediaInput): Promise<ProcessMediaResult> {
  const input = validateInput('processMedia', processMediaInput, rawInput);
  const job = new JobControl<ProcessMediaResult>({
    type: 'processMedia',
    progress: { done: 0, total: 1, unit: 'images' },
    stage: 'processing',
  });
  return job.run(
    async () => {
      await job.checkpoint();
      job.setMessage(input.operations.map((operation) => operation.op).join(' → '));
      const result = await processImage(input);
      job.itemSucceeded();
      job.setProgress(1);
      // Warnings (an animation reduced to its first frame, SVG references not loaded) belong in the final line.
      job.setMessage([`${result.outputs.length} output(s) written`, ...(result.warnings ?? [])].join('; '));
      return result;
    },
    () => ({ outcome: 'cancelled' }),
  );
}
