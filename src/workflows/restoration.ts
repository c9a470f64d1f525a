/**
 * Document restoration jobs: one page (`restoreDocument`), a whole folder (`restoreBatch`), and the sample pages
 * that demos, tests and training use (`generateSamplePages`).
 */
import {
  ActivityFailure,
  continueAsNew,
  patched,
  proxyActivities,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { BatchReportSummary } from '../activities/restoration/batch';
import type { RestoreDocumentCheckpoint, RestoreDocumentResult } from '../activities/restoration/restore-document';
import type { SamplePagesResult } from '../activities/restoration/sample-pages';
import type { JobCarryOver } from '../shared/job-status';
import {
  generateSamplePagesInput,
  restoreBatchInput,
  restoreDocumentInput,
  type GenerateSamplePagesInput,
  type RestoreBatchInput,
  type RestoreDocumentInput,
} from '../shared/restoration-inputs';
import {
  JobControl,
  boundedRetry,
  heartbeatingActivityOptions,
  interruptibleActivityOptions,
  shortActivityOptions,
  validateInput,
} from './job-control';
import { INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS } from './patches';
import { SlidingWindow } from './sliding-window';

// Pages heartbeat while they are read, restored on the CPU pool and written.
const pages = proxyActivities<typeof activities>(heartbeatingActivityOptions);

// Checking the model up front reads one small JSON file.
const { describeModel } = proxyActivities<typeof activities>(shortActivityOptions);

/** Listing, recording and reporting heartbeat while they read and write the batch's records; retried until done. */
export const batchBookkeepingOptions: ActivityOptions = {
  ...heartbeatingActivityOptions,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

const bookkeeping = proxyActivities<typeof activities>(batchBookkeepingOptions);

const { generateSamplePages: generatePages } = proxyActivities<typeof activities>(interruptibleActivityOptions);

/** A pause or cancel aborts the page; a bad page fails for good after a few tries. */
export const restoreDocumentOptions: ActivityOptions = { ...interruptibleActivityOptions, retry: boundedRetry };

const { restoreDocumentResumable } = proxyActivities<typeof activities>(restoreDocumentOptions);

export type RestoreDocumentOutcome = RestoreDocumentResult | { outcome: 'cancelled' };

/** Restores one document image and assesses the result. */
export async function restoreDocument(rawInput: RestoreDocumentInput): Promise<RestoreDocumentOutcome> {
  const input = validateInput('restoreDocument', restoreDocumentInput, rawInput);
  const job = new JobControl<RestoreDocumentOutcome>({
    type: 'restoreDocument',
    progress: { done: 0, total: 1, unit: 'documents' },
    stage: 'restoring',
  });
  return job.run(
    async () => {
      await job.checkpoint();
      job.setMessage(input.steps.join(' → '));
      // A pause or cancel aborts the page's pixel work; resume restores it again (runs from before that: in one go).
      const result = patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS)
        ? await job.runResumable<RestoreDocumentCheckpoint, RestoreDocumentResult>(() =>
            restoreDocumentResumable(input),
          )
        : await pages.restoreDocumentImage(input);
      job.itemSucceeded();
      job.setProgress(1);
      const gain = result.metrics.reference
        ? `PSNR ${result.metrics.reference.psnrGain >= 0 ? '+' : ''}${result.metrics.reference.psnrGain} dB; `
        : '';
      job.setMessage(`${gain}${result.passed ? 'passed' : `failed: ${result.reasons.join('; ')}`}`);
      return result;
    },
    () => ({ outcome: 'cancelled' }),
  );
}

export interface RestoreBatchResult extends Partial<BatchReportSummary> {
  outcome: 'completed' | 'cancelled';
  total: number;
  succeeded: number;
  failed: number;
  runs: number;
}

/** What one batch run hands to the next when it continues as new. */
export interface RestoreBatchCarry {
  job: JobCarryOver;
  manifest: string;
  count: number;
  nextIndex: number;
}

/**
 * Restores every document of a folder (or list) through a sliding window, recording each item's result next to
 * the outputs, continuing as new every `itemsPerRun` items, and writing `report.json` and `report.txt` at the end
 * (also after a cancel, for the items done so far).
 */
export async function restoreBatch(
  rawInput: RestoreBatchInput,
  carry?: RestoreBatchCarry,
): Promise<RestoreBatchResult> {
  const input = validateInput('restoreBatch', restoreBatchInput, rawInput);
  const job = new JobControl<RestoreBatchResult>({
    type: 'restoreBatch',
    progress: { done: 0, total: carry?.count ?? 0, unit: 'documents' },
    stage: carry ? 'restoring' : 'listing',
    carried: carry?.job,
  });
  let manifest = carry?.manifest;
  let count = carry?.count ?? 0;
  const window = new SlidingWindow(job, input.concurrency);
  let report: BatchReportSummary | undefined;

  const restoreItem = async (index: number) => {
    try {
      const item = await pages.restoreBatchItem({
        manifest: manifest ?? '',
        index,
        steps: input.steps,
        model: input.model,
        thresholds: input.thresholds,
      });
      if (item.ok) job.itemSucceeded();
      else job.itemFailed(item.input, item.error ?? 'failed');
    } catch (err) {
      if (job.isCancelling) return;
      // Retries ran out on a transient fault: record it so the report lists the item with its reason.
      const reason = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
      await bookkeeping.recordBatchItemFailure({ manifest: manifest ?? '', index, reason });
      job.itemFailed(`item ${index}`, reason);
    } finally {
      job.setProgress(job.status.succeeded + job.status.failed, count);
    }
  };

  const result = (outcome: RestoreBatchResult['outcome']): RestoreBatchResult => ({
    outcome,
    total: count,
    succeeded: job.status.succeeded,
    failed: job.status.failed,
    runs: job.carryOver().runs,
    ...report,
  });

  return job.run(
    async () => {
      if (!manifest) {
        await job.checkpoint();
        // A missing or corrupt model fails the batch here, instead of failing every page.
        if (input.model) await describeModel({ model: input.model });
        const prepared = await bookkeeping.prepareBatch(input);
        manifest = prepared.manifest;
        count = prepared.count;
        job.setProgress(0, count);
      }
      job.setStage('restoring', `${count} documents, ${input.concurrency} at a time`);
      const start = carry?.nextIndex ?? 0;
      const runEnd = Math.min(count, start + input.itemsPerRun);
      // A run also ends early when Temporal suggests it (a history grown long with retries or pauses).
      const historyLongEnough = () =>
        workflowInfo().continueAsNewSuggested && patched('restore-continue-as-new-when-suggested');
      const end = await window.run(start, runEnd, restoreItem, historyLongEnough);
      if (end < count) {
        await job.checkpoint();
        await continueAsNew<typeof restoreBatch>(rawInput, { job: job.carryOver(), manifest, count, nextIndex: end });
      }
      job.setStage('reporting');
      report = await bookkeeping.writeBatchReport({ manifest });
      job.setMessage(report.summary.split('\n')[0] ?? '');
      return result('completed');
    },
    () => result('cancelled'),
    async () => {
      await window.settle();
      if (manifest) report = await bookkeeping.writeBatchReport({ manifest });
    },
  );
}

export type GenerateSamplePagesResult = SamplePagesResult | { outcome: 'cancelled'; pagesGenerated: number };

/** Renders clean document pages and degraded copies of them into `outputDir/clean` and `outputDir/degraded`. */
export async function generateSamplePages(rawInput: GenerateSamplePagesInput): Promise<GenerateSamplePagesResult> {
  const input = validateInput('generateSamplePages', generateSamplePagesInput, rawInput);
  const job = new JobControl<GenerateSamplePagesResult>({
    type: 'generateSamplePages',
    progress: { done: 0, total: input.count, unit: 'pages' },
    stage: 'generating',
  });
  return job.run(
    async () => {
      const result = await job.runResumable<number, SamplePagesResult>((resumeFrom) =>
        generatePages({ ...input, resumeFrom }),
      );
      job.setProgress(input.count);
      job.setMessage(`${result.count} pages in ${result.outputDir}`);
      return result;
    },
    () => ({ outcome: 'cancelled', pagesGenerated: job.status.progress.done }),
  );
}
