/**
 * Input schemas of every job, defined once: the CLI, the HTTP API and the workflows themselves validate with them,
 * so a bad input is refused before anything starts and again if someone starts a workflow by hand.
 */
import { z } from 'zod';

export const simpleTestInput = z.strictObject({
  message: z.string().min(1).max(1000).default('hello from Backroom'),
  durationSeconds: z.number().int().min(1).max(86_400).default(10),
});

export const mathCalculationInput = z.strictObject({
  /** Count (and sum) the primes below this number. */
  limit: z.number().int().min(2).max(4_000_000_000).default(20_000_000),
  /** Numbers sieved per chunk; each chunk is one heartbeat and one resume point. */
  chunkSize: z.number().int().min(10_000).max(10_000_000).default(1_000_000),
});

export const systemHealthCheckInput = z.strictObject({
  /** The data dir check fails below this much free space. */
  minFreeMb: z.number().int().min(0).default(500),
});

export const stressTestInput = z.strictObject({
  count: z.number().int().min(1).max(10_000).default(100),
  concurrency: z.number().int().min(1).max(500).default(10),
  /** `activities`: one activity per item; `children`: one child workflow per item (each running that activity). */
  mode: z.enum(['activities', 'children']).default('activities'),
  /** SHA-256 rounds over 1 KiB per item: the real work each item does (0 measures pure orchestration). */
  rounds: z.number().int().min(0).max(10_000_000).default(1000),
  /** Items per run before continuing as new, to keep each run's event history small. */
  itemsPerRun: z.number().int().min(10).max(2000).default(500),
  /**
   * `activities` mode: items per activity (one `stressWorkBatch` runs them in order, with per-item progress and
   * retries). Default: as many as take about 150 ms by `rounds` (see `stressItemsPerActivity`), at most 100.
   */
  itemsPerActivity: z.number().int().min(1).max(100).optional(),
  /** Diagnostics: item indexes that fail on every try (`activities` mode), to see failed items in the status. */
  failItems: z.array(z.number().int().min(0)).max(100).optional(),
});

export type SimpleTestInput = z.input<typeof simpleTestInput>;
export type MathCalculationInput = z.input<typeof mathCalculationInput>;
export type SystemHealthCheckInput = z.input<typeof systemHealthCheckInput>;
export type StressTestInput = z.input<typeof stressTestInput>;
