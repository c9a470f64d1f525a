/**
 * When a long activity tells its workflow how far it is. Every report is a `progress` signal, and every signal
 * writes history events (the signal and the workflow task it wakes: four), so reports follow the work, not the
 * clock: one per tenth of the activity's total at most, never at the end (the result carries that) and never
 * sooner than {@link MIN_REPORT_GAP_MS} after the last one. An activity of any length sends at most
 * {@link MAX_PROGRESS_REPORTS}; live progress travels in its heartbeat details, which write no events.
 */
import type { JobProgress } from '../shared/job-status';

/** The most reports one activity attempt sends, whatever its length: one per tenth reached (10 % … 90 %). */
export const MAX_PROGRESS_REPORTS = 9;

/** Least time between two reports, and from the activity's start: an activity shorter than this sends none. */
export const MIN_REPORT_GAP_MS = 10_000;

export class ProgressMilestones {
  private lastTenth: number;
  private lastReportAt: number;

  /** `start` is where the activity begins (its resume point): the tenths below it were reported by earlier runs. */
  constructor(
    start: JobProgress,
    now: number,
    private readonly minGapMs = MIN_REPORT_GAP_MS,
  ) {
    this.lastTenth = tenthReached(start);
    this.lastReportAt = now;
  }

  /** True when `progress` reached a tenth not reported yet (short of the end) and the gap has passed; records it. */
  due(progress: JobProgress, now: number): boolean {
    const tenth = tenthReached(progress);
    if (tenth <= this.lastTenth || tenth >= 10 || now - this.lastReportAt < this.minGapMs) return false;
    this.lastTenth = tenth;
    this.lastReportAt = now;
    return true;
  }
}

/** 0 … 10; without a known total, 0 (no milestone to reach). */
function tenthReached({ done, total }: JobProgress): number {
  if (!(total > 0)) return 0;
  return Math.floor((10 * Math.min(Math.max(done, 0), total)) / total);
}
