/**
 * Bounded fan-out for batch jobs: at most `concurrency` items in flight, a job-control safe point before each new
 * item (so pause holds new work and cancel stops it), and a way to let the items in flight settle on cleanup.
 */
import { condition } from '@temporalio/workflow';
import type { JobControl } from './job-control';

export class SlidingWindow {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly job: Pick<JobControl, 'checkpoint'>,
    private readonly concurrency: number,
  ) {}

  /** Runs `runItem` for indexes [start, end); `runItem` records its own outcome and should not throw. */
  async run(start: number, end: number, runItem: (index: number) => Promise<void>): Promise<void> {
    for (let index = start; index < end; index++) {
      await this.job.checkpoint();
      await condition(() => this.pending.size < this.concurrency);
      await this.job.checkpoint();
      const item: Promise<void> = runItem(index).finally(() => this.pending.delete(item));
      this.pending.add(item);
    }
    await Promise.all(this.pending);
  }

  /** Waits for the items in flight (used when a job is cancelled, so its report counts them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
