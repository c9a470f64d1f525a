/**
 * Document restoration jobs: one page (`restoreDocument`), a whole folder (`restoreBatch`), and the sample pages
 * that demos, tests and training use (`generateSamplePages`).
 */
import { patched, proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { BatchReportSummary } from '../activities/restoration/batch';
import type { RestoreDocumentCheckpoint, RestoreDocumentResult } from '../activities/restoration/restore-document';
import type { SamplePagesResult } from '../activities/restoration/sample-pages';
import { rootCause } from '../shared/failures';
import { generateSamplePagesInput, restoreBatchInput, restoreDocumentInput } from '../shared/restoration-inputs';
import { bounded, interruptible, interruptibleUntilDone, quick, untilWrittenDown } from './activity-profiles';
import { defineJob } from './define-job';
import { INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS, MODEL_VERDICT } from './patches';
import { SlidingWindow, continueAsNewSuggested } from './sliding-window';

// Pages heartbeat while they are read, restored on the CPU pool and written.
const pages = proxyActivities<typeof activities>(bounded);

// Checking the model up front reads one small JSON file.
const { describeModel } = proxyActivities<typeof activities>(quick);

// Listing, recording and reporting heartbeat while they read and write the batch's records; retried until done.
const batchRecords = proxyActivities<typeof activities>(untilWrittenDown);

const { generateSamplePages: generatePages } = proxyActivities<typeof activities>(interruptibleUntilDone);

// A pause or cancel aborts the page; a bad page fails for good after a few tries.
const { restoreDocumentResumable } = proxyActivities<typeof activities>(interruptible);

export type RestoreDocumentOutcome =
  /** `warnings`: the model step's model is not known to beat the classical steps on real pages (see describeModel). */
  (RestoreDocumentResult & { warnings?: string[] }) | { outcome: 'cancelled' };

/** Restores one document image and assesses the result. */
export const restoreDocument = defineJob<typeof restoreDocumentInput, RestoreDocumentOutcome>({
  type: 'restoreDocument',
  input: restoreDocumentInput,
  progress: { done: 0, total: 1, unit: 'documents' },
  stage: 'restoring',
  setup: ({ job, input }) => ({
    async work() {
      await job.checkpoint();
      job.setMessage(input.steps.join(' → '));
      // Asked to run a model: what its evaluations say about real pages (runs from before this check: not asked).
      const warnings: string[] = [];
      if (input.model && patched(MODEL_VERDICT)) {
        const { warning } = await describeModel({ model: input.model });
        if (warning) warnings.push(warning);
      }
      // A pause or cancel aborts the page's pixel work; resume restores it again (runs from before that: in one go).
      const restored = patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS)
        ? await job.runResumable<RestoreDocumentCheckpoint, RestoreDocumentResult>(() =>
            restoreDocumentResumable(input),
          )
        : await pages.restoreDocumentImage(input);
      const result = warnings.length > 0 ? { ...restored, warnings } : restored;
      job.itemSucceeded();
      job.setProgress(1);
      const gain = result.metrics.reference
        ? `PSNR ${result.metrics.reference.psnrGain >= 0 ? '+' : ''}${result.metrics.reference.psnrGain} dB; `
        : '';
      const verdict = result.passed ? 'passed' : `failed: ${result.reasons.join('; ')}`;
      job.setMessage([`${gain}${verdict}`, ...warnings].join('; '));
      return result;
    },
  }),
});

export interface RestoreBatchResult extends Partial<BatchReportSummary> {
  outcome: 'completed' | 'cancelled';
  /** The model is not known to beat the classical steps on real pages (see describeModel). */
  warnings?: string[];
  total: number;
  succeeded: number;
  failed: number;
  runs: number;
}

/** What one batch run hands to the next when it continues as new (besides the job's status). */
export interface RestoreBatchCarry {
  manifest: string;
  modelWarning?: string;
  count: number;
  nextIndex: number;
}

/**
 * Restores every document of a folder (or list) through a sliding window, recording each item's result next to
 * the outputs, continuing as new every `itemsPerRun` items, and writing `report.json` and `report.txt` at the end
 * (also after a cancel, for the items done so far).
 */
export const restoreBatch = defineJob<typeof restoreBatchInput, RestoreBatchResult, RestoreBatchCarry>({
  type: 'restoreBatch',
  input: restoreBatchInput,
  progress: { done: 0, total: 0, unit: 'documents' },
  stage: (_input, carry) => (carry ? 'restoring' : 'listing'),
  setup: ({ job, input, carry, continueAsNew }) => {
    let manifest = carry?.manifest;
    let count = carry?.count ?? 0;
    let modelWarning = carry?.modelWarning;
    const window = new SlidingWindow(job, input.concurrency);
    let report: BatchReportSummary | undefined;

    const restoreItem = async (index: number) => {
      const item = await pages.restoreBatchItem({
        manifest: manifest ?? '',
        index,
        steps: input.steps,
        model: input.model,
        thresholds: input.thresholds,
      });
      if (item.ok) job.itemSucceeded();
      else job.itemFailed(item.input, item.error ?? 'failed');
    };
    // Retries ran out on a transient fault: record it so the report lists the item with its reason.
    const recordFailure = (index: number, err: unknown) =>
      batchRecords.recordBatchItemFailure({ manifest: manifest ?? '', index, reason: rootCause(err).message });

    const result = (outcome: RestoreBatchResult['outcome']): RestoreBatchResult => ({
      outcome,
      total: count,
      succeeded: job.status.succeeded,
      failed: job.status.failed,
      runs: job.carryOver().runs,
      ...(modelWarning && { warnings: [modelWarning] }),
      ...report,
    });

    return {
      async work() {
        if (!manifest) {
          await job.checkpoint();
          // A missing or corrupt model fails the batch here, instead of failing every page.
          if (input.model) ({ warning: modelWarning } = await describeModel({ model: input.model }));
          const prepared = await batchRecords.prepareBatch(input);
          manifest = prepared.manifest;
          count = prepared.count;
          job.setProgress(0, count);
        }
        job.setStage('restoring', `${count} documents, ${input.concurrency} at a time`);
        const start = carry?.nextIndex ?? 0;
        const runEnd = Math.min(count, start + input.itemsPerRun);
        const end = await window.run(start, runEnd, restoreItem, {
          stopEarly: continueAsNewSuggested('restore-continue-as-new-when-suggested'),
          onFailure: recordFailure,
        });
        if (end < count)
          await continueAsNew({ manifest, count, nextIndex: end, ...(modelWarning && { modelWarning }) });
        job.setStage('reporting');
        report = await batchRecords.writeBatchReport({ manifest });
        job.setMessage([report.summary.split('\n')[0] ?? '', ...(modelWarning ? [modelWarning] : [])].join('; '));
        return result('completed');
      },
      cancelled: () => result('cancelled'),
      async cleanup() {
        await window.settle();
        if (manifest) report = await batchRecords.writeBatchReport({ manifest });
      },
    };
  },
});

export type GenerateSamplePagesResult = SamplePagesResult | { outcome: 'cancelled'; pagesGenerated: number };

/** Renders clean document pages and degraded copies of them into `outputDir/clean` and `outputDir/degraded`. */
export const generateSamplePages = defineJob<typeof generateSamplePagesInput, GenerateSamplePagesResult>({
  type: 'generateSamplePages',
  input: generateSamplePagesInput,
  progress: (input) => ({ done: 0, total: input.count, unit: 'pages' }),
  stage: 'generating',
  setup: ({ job, input }) => ({
    async work() {
      const result = await job.runResumable<number, SamplePagesResult>((resumeFrom) =>
        generatePages({ ...input, resumeFrom }),
      );
      job.setProgress(input.count);
      job.setMessage(`${result.count} pages in ${result.outputDir}`);
      return result;
    },
    cancelled: () => ({ outcome: 'cancelled', pagesGenerated: job.status.progress.done }),
  }),
});
