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

  /**
   * Runs `runItem` for indexes [start, end); `runItem` records its own outcome and should not throw. `stopEarly` is
   * asked before each new item (a run whose history grew long enough to continue as new): once it says yes, no new
   * item starts. Returns the index of the first item not started (`end` when all ran), after the started ones ended.
   */
  async run(
    start: number,
    end: number,
    runItem: (index: number) => Promise<void>,
    stopEarly?: () => boolean,
  ): Promise<number> {
    let index = start;
    for (; index < end; index++) {
      await this.job.checkpoint();
      await condition(() => this.pending.size < this.concurrency);
      await this.job.checkpoint();
      // At least one item per run, so a run that continues as new always moves on.
      if (index > start && stopEarly?.()) break;
      const item: Promise<void> = runItem(index).finally(() => this.pending.delete(item));
      this.pending.add(item);
    }
    await Promise.all(this.pending);
    return index;
  }

  /** Waits for the items in flight (used when a job is cancelled, so its report counts them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
