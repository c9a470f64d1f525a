/**
 * Bounded fan-out for batch jobs: at most `concurrency` items in flight, a job-control safe point before each new
 * item (so pause holds new work and cancel stops it), one way of counting an item that failed, and a way to let the
 * items in flight settle on cleanup.
 */
import { condition, patched, workflowInfo } from '@temporalio/workflow';
import type { JobControl } from './job-control';

export interface WindowOptions {
  /**
   * Asked before each new item (a run whose history grew long enough to continue as new): once it says yes, no new
   * item starts.
   */
  stopEarly?: () => boolean;
  /** Runs before a failed item is counted (a batch records the failure next to its outputs, for its report). */
  onFailure?: (index: number, err: unknown) => Promise<void>;
}

export class SlidingWindow {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly job: Pick<JobControl, 'checkpoint' | 'isCancelling' | 'itemFailedWith' | 'setProgress' | 'status'>,
    private readonly concurrency: number,
  ) {}

  /**
   * Runs `runItem` for indexes [start, end); `runItem` counts its own success (or an item-level failure it reports).
   * An item that throws (its retries ran out) counts as failed with its root cause, unless the job is being
   * cancelled; after every item, progress is the number of items settled. Returns the index of the first item not
   * started (`end` when all ran), after the started ones ended.
   */
  async run(
    start: number,
    end: number,
    runItem: (index: number) => Promise<void>,
    options: WindowOptions = {},
  ): Promise<number> {
    let index = start;
    for (; index < end; index++) {
      await this.job.checkpoint();
      await condition(() => this.pending.size < this.concurrency);
      await this.job.checkpoint();
      // At least one item per run, so a run that continues as new always moves on.
      if (index > start && options.stopEarly?.()) break;
      const item: Promise<void> = this.settleItem(index, runItem, options.onFailure).finally(() =>
        this.pending.delete(item),
      );
      this.pending.add(item);
    }
    await Promise.all(this.pending);
    return index;
  }

  /** Waits for the items in flight (used when a job is cancelled, so its report counts them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async settleItem(
    index: number,
    runItem: (index: number) => Promise<void>,
    onFailure: WindowOptions['onFailure'],
  ): Promise<void> {
    try {
      await runItem(index);
    } catch (err) {
      if (this.job.isCancelling) return;
      await onFailure?.(index, err);
      this.job.itemFailedWith(`item ${index}`, err);
    } finally {
      this.job.setProgress(this.job.status.succeeded + this.job.status.failed);
    }
  }
}

/**
 * A `stopEarly` for {@link SlidingWindow.run}: true once Temporal suggests continuing as new (a history grown long with
 * retries or pauses). `patchId` keeps runs recorded before the check replaying the way they ran.
 */
export function continueAsNewSuggested(patchId: string): () => boolean {
  return () => workflowInfo().continueAsNewSuggested && patched(patchId);
}
