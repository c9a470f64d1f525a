/**
 * Diagnostics jobs: the first real workflows, and the reference for how every job uses job control.
 */
import { ParentClosePolicy, executeChild, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { CheckReport } from '../activities/health-checks';
import type {
  CountSecondsResult,
  PrimeSieveCheckpoint,
  PrimeSieveResult,
  StressWorkBatchResult,
} from '../activities/diagnostics';
import { mathCalculationInput, simpleTestInput, stressTestInput, systemHealthCheckInput } from '../shared/job-inputs';
import { interruptibleUntilDone, probe, stressItem } from './activity-profiles';
import { defineJob } from './define-job';
import { STRESS_ACTIVITY_BATCHES } from './patches';
import { SlidingWindow, continueAsNewSuggested } from './sliding-window';

const { countSeconds, sievePrimes } = proxyActivities<typeof activities>(interruptibleUntilDone);

const checks = proxyActivities<typeof activities>(probe);

// Items heartbeat their place in the chain: a dead worker's item continues on another within the heartbeat timeout.
const stress = proxyActivities<typeof activities>(stressItem);

export interface SimpleTestResult extends Partial<CountSecondsResult> {
  outcome: 'completed' | 'cancelled';
  message: string;
  secondsCounted: number;
}

/** Counts `durationSeconds` seconds in one heartbeating activity; pause, resume and cancel work mid-way. */
export const simpleTest = defineJob({
  type: 'simpleTest',
  input: simpleTestInput,
  progress: (input) => ({ done: 0, total: input.durationSeconds, unit: 'seconds' }),
  stage: 'counting',
  setup: ({ job, input }) => ({
    async work(): Promise<SimpleTestResult> {
      const counted = await job.runResumable<number, CountSecondsResult>((resumeFrom) =>
        countSeconds({ ...input, resumeFrom }),
      );
      job.setProgress(counted.secondsCounted);
      // Progress reports are throttled: the last one may be a second behind the end.
      job.setMessage(`${input.message}: ${counted.secondsCounted} s of ${input.durationSeconds} s`);
      return { outcome: 'completed', ...counted };
    },
    cancelled: () => ({ outcome: 'cancelled', message: input.message, secondsCounted: job.status.progress.done }),
  }),
});

export interface MathCalculationResult extends Partial<PrimeSieveResult> {
  outcome: 'completed' | 'cancelled';
  limit: number;
  /** Numbers sieved (all of them unless cancelled). */
  numbersChecked: number;
}

/** Counts and sums the primes below `limit` in chunks; a retry or resume continues from the last chunk. */
export const mathCalculation = defineJob({
  type: 'mathCalculation',
  input: mathCalculationInput,
  progress: (input) => ({ done: 0, total: input.limit, unit: 'numbers' }),
  stage: 'sieving',
  setup: ({ job, input }) => {
    let lastCheckpoint: PrimeSieveCheckpoint | undefined;
    return {
      async work(): Promise<MathCalculationResult> {
        const result = await job.runResumable<PrimeSieveCheckpoint, PrimeSieveResult>(
          (resumeFrom) => sievePrimes({ ...input, resumeFrom }),
          { onCheckpoint: (checkpoint) => (lastCheckpoint = checkpoint) },
        );
        job.setProgress(input.limit);
        job.setMessage(
          `${result.primeCount.toLocaleString('en-US')} primes below ${input.limit.toLocaleString('en-US')}`,
        );
        return { outcome: 'completed', numbersChecked: input.limit, ...result };
      },
      cancelled: () => ({
        outcome: 'cancelled',
        limit: input.limit,
        numbersChecked: job.status.progress.done,
        ...(lastCheckpoint && { primeCount: lastCheckpoint.primeCount, primeSum: lastCheckpoint.primeSum }),
      }),
    };
  },
});

export interface SystemHealthReport {
  healthy: boolean;
  checks: CheckReport[];
}

/** The checks, in order: each one a quick activity. */
function healthChecks(input: { minFreeMb: number }): [string, () => Promise<CheckReport>][] {
  return [
    ['server', () => checks.checkServer()],
    ['pollers', () => checks.checkPollers()],
    ['data-dir', () => checks.checkDataDir(input.minFreeMb)],
    ['native-deps', () => checks.checkNativeDependencies()],
  ];
}

/** Runs each health check as its own activity and reports every one, healthy or not. */
export const systemHealthCheck = defineJob({
  type: 'systemHealthCheck',
  input: systemHealthCheckInput,
  progress: (input) => ({ done: 0, total: healthChecks(input).length, unit: 'checks' }),
  stage: 'checking',
  setup: ({ job, input }) => {
    const plan = healthChecks(input);
    const reports: CheckReport[] = [];
    const summary = (): SystemHealthReport => ({
      healthy: reports.length === plan.length && reports.every((r) => r.ok),
      checks: reports,
    });
    return {
      async work() {
        for (const [name, check] of plan) {
          await job.checkpoint();
          job.setMessage(`checking ${name}`);
          const report = await check();
          reports.push(report);
          if (report.ok) job.itemSucceeded();
          else job.itemFailed(name, report.detail);
          job.setProgress(reports.length);
        }
        const result = summary();
        job.setMessage(result.healthy ? 'all checks passed' : `${job.status.failed} check(s) failed`);
        return result;
      },
      cancelled: summary,
    };
  },
});

export interface StressTestResult {
  outcome: 'completed' | 'cancelled';
  mode: 'activities' | 'children';
  count: number;
  completed: number;
  failed: number;
  concurrency: number;
  /** Items per activity in `activities` mode (1 in runs recorded before batches, and in `children` mode). */
  itemsPerActivity?: number;
  /** Items completed per second of wall time, from the first start to the last completion. */
  throughputPerSecond: number;
  /**
   * Latency of one item in ms. With batches (`activities` mode): the item's own time as its activity measured it,
   * from its first try's start to its end (its retries included, the batch's scheduling not). One item per activity
   * or child (`children` mode, runs from before batches): scheduling to completion as the workflow saw it.
   */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  wallSeconds: number;
  runs: number;
}

/** What one stress run hands to the next when it continues as new (besides the job's status). */
export interface StressCarry {
  nextIndex: number;
  latencies: number[];
  startedAtMs: number;
}

/** Expected cost of one SHA-256 round over 1 KiB (measured: 246 items of 1,000 rounds per second on 2 cores). */
const STRESS_ROUND_MS = 0.004;
/** Expected fixed cost of one item in a batch (a heartbeat, a yield to the event loop). */
const STRESS_ITEM_OVERHEAD_MS = 0.05;
/** How long one batch should take: long enough to amortise an activity's cost, short enough to retry cheaply. */
const STRESS_BATCH_TARGET_MS = 150;
/** Items per batch at most (the batch's result and heartbeats list each item). */
const STRESS_MAX_ITEMS_PER_ACTIVITY = 100;

/**
 * The default batch size for `activities` mode: as many items as take about {@link STRESS_BATCH_TARGET_MS} by their
 * rounds (37 items of 1,000 rounds, about 4 ms each; 100 of 0 rounds; one item from 18,738 rounds, 75 ms, up).
 */
export function stressItemsPerActivity(rounds: number): number {
  const itemMs = rounds * STRESS_ROUND_MS + STRESS_ITEM_OVERHEAD_MS;
  return Math.max(1, Math.min(STRESS_MAX_ITEMS_PER_ACTIVITY, Math.floor(STRESS_BATCH_TARGET_MS / itemMs)));
}

/** One stress item as a child workflow: the same activity, plus the cost of a workflow around it. */
export async function stressChild(input: { index: number; rounds: number }): Promise<void> {
  await stress.stressWork(input);
}

/**
 * Runs `count` items (activities or child workflows) through a sliding window of `concurrency`, continuing as new
 * every `itemsPerRun` items, or sooner when Temporal suggests it (2,000 child items at concurrency 1 write about
 * 18,000 events), so the history stays small, and reports throughput and latency percentiles. In `activities` mode
 * the window runs batches of `itemsPerActivity` items (`stressWorkBatch`), and `concurrency` counts batches in
 * flight: each item still counts on its own (progress, failed items with their index and reason, latency).
 */
export const stressTest = defineJob<typeof stressTestInput, StressTestResult, StressCarry>({
  type: 'stressTest',
  input: stressTestInput,
  progress: (input) => ({ done: 0, total: input.count, unit: 'items' }),
  stage: (input) => `running ${input.mode}`,
  setup: ({ job, input, carry, continueAsNew }) => {
    const startedAtMs = carry?.startedAtMs ?? Date.now();
    const latencies = carry?.latencies ?? [];
    const start = carry?.nextIndex ?? 0;
    const window = new SlidingWindow(job, input.concurrency);
    let itemsPerActivity = 1;

    const runItem = async (index: number) => {
      const scheduled = Date.now();
      if (input.mode === 'children') {
        await executeChild(stressChild, {
          args: [{ index, rounds: input.rounds }],
          workflowId: `${workflowInfo().workflowId}-item-${index}`,
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        });
      } else {
        await stress.stressWork({ index, rounds: input.rounds });
      }
      latencies.push(Date.now() - scheduled);
      job.itemSucceeded();
    };

    // Patched: runs recorded before batches scheduled one `stressWork` per item.
    const runBatches = async (runEnd: number): Promise<number> => {
      const size = input.itemsPerActivity ?? stressItemsPerActivity(input.rounds);
      itemsPerActivity = size;
      const runBatch = async (batch: number) => {
        const firstIndex = start + batch * size;
        const count = Math.min(size, runEnd - firstIndex);
        let result: StressWorkBatchResult;
        try {
          result = await stress.stressWorkBatch({
            firstIndex,
            count,
            rounds: input.rounds,
            ...(input.failItems?.length && { failItems: input.failItems }),
          });
        } catch (err) {
          // The batch's own retries ran out (or the job is cancelling): each of its items failed with its cause.
          if (job.isCancelling) throw err;
          for (let index = firstIndex; index < firstIndex + count; index++) job.itemFailedWith(`item ${index}`, err);
          return;
        }
        for (const item of result.items) {
          if (item.error === undefined) {
            latencies.push(item.ms);
            job.itemSucceeded();
          } else {
            job.itemFailed(`item ${item.index}`, `${item.error} (after ${item.tries} tries)`, 'StressItemFailed');
          }
        }
      };
      const batches = Math.ceil((runEnd - start) / size);
      const started = await window.run(0, batches, runBatch, {
        stopEarly: continueAsNewSuggested('stress-continue-as-new-when-suggested'),
      });
      return Math.min(runEnd, start + started * size);
    };

    const report = (outcome: StressTestResult['outcome']): StressTestResult => {
      const wallSeconds = Math.max(0.001, (Date.now() - startedAtMs) / 1000);
      return {
        outcome,
        mode: input.mode,
        count: input.count,
        completed: job.status.succeeded,
        failed: job.status.failed,
        concurrency: input.concurrency,
        itemsPerActivity,
        throughputPerSecond: round(job.status.succeeded / wallSeconds),
        latencyMs: percentiles(latencies),
        wallSeconds: round(wallSeconds),
        runs: job.carryOver().runs,
      };
    };

    return {
      async work() {
        const runEnd = Math.min(input.count, start + input.itemsPerRun);
        const batched = input.mode === 'activities' && patched(STRESS_ACTIVITY_BATCHES);
        // Patched: runs recorded before this check started their items regardless of the suggestion.
        const nextIndex = batched
          ? await runBatches(runEnd)
          : await window.run(start, runEnd, runItem, {
              stopEarly: continueAsNewSuggested('stress-continue-as-new-when-suggested'),
            });
        if (nextIndex < input.count) await continueAsNew({ nextIndex, latencies, startedAtMs });
        return report('completed');
      },
      cancelled: () => report('cancelled'),
      // Let the items already in flight finish (or be cancelled) before the job reports.
      cleanup: () => window.settle(),
    };
  },
});

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function percentiles(values: number[]): StressTestResult['latencyMs'] {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
}
