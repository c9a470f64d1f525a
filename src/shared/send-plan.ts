/**
 * How a campaign paces its sending so that no window of the configured length ever holds more messages than the
 * limit, using only workflow timers (durable across worker restarts, and never a process-local limiter).
 *
 * Messages go out in batches of `batchSize`, one batch per activity, in list order. A batch starts no sooner than
 * `gapMs` after the previous batch's last server reply. With a gap longer than `window / k`, batch n and batch n+k
 * can never fall into one window, so a window holds at most k batches: with k = ⌊limit / batchSize⌋ that is at most
 * the limit. A per-domain limit caps how many messages to one domain a batch may carry, by the same argument.
 * Pure functions: the workflow imports this.
 */

export interface Rate {
  count: number;
  perMs: number;
}

const UNITS: Record<string, number> = { s: 1000, sec: 1000, second: 1000, m: 60_000, min: 60_000, minute: 60_000 };
UNITS.h = UNITS.hr = UNITS.hour = 3_600_000;
UNITS.d = UNITS.day = 86_400_000;

/** Parses "10/min", "5/s", "1000/h", "20 / second"; undefined when it does not read as a rate. */
export function parseRate(text: string): Rate | undefined {
  const match = /^\s*(\d+)\s*\/\s*([a-z]+?)s?\s*$/i.exec(text);
  if (!match) return undefined;
  const count = Number(match[1]);
  const perMs = UNITS[match[2]!.toLowerCase()];
  if (!perMs || !Number.isSafeInteger(count) || count < 1) return undefined;
  return { count, perMs };
}

export function describeRate(rate: Rate): string {
  const unit = Object.entries({ s: 1000, min: 60_000, h: 3_600_000, day: 86_400_000 }).find(
    ([, ms]) => ms === rate.perMs,
  );
  return unit ? `${rate.count}/${unit[0]}` : `${rate.count} per ${rate.perMs} ms`;
}

export interface SendPlan {
  /** Messages per batch (one activity). */
  batchSize: number;
  /** Minimum time from a batch's last server reply to the next batch's start; 0 means no limit. */
  gapMs: number;
  /** At most this many messages to one recipient domain per batch. */
  perDomainPerBatch?: number;
}

/** Batch size without a limit: big enough to amortise the activity, small enough for prompt progress. */
export const UNLIMITED_BATCH = 200;
/** With a limit, batches are spaced about this far apart (fewer, bigger batches cost less history). */
const TARGET_GAP_MS = 1000;
const MAX_LIMITED_BATCH = 100;

/** The pacing that keeps `rate` (and `perDomain`) in every sliding window; see the module comment. */
export function planSending(rate?: Rate, perDomain?: Rate): SendPlan {
  let batchSize = UNLIMITED_BATCH;
  let gapMs = 0;
  if (rate) {
    const perTargetGap = Math.ceil((rate.count * TARGET_GAP_MS) / rate.perMs);
    batchSize = Math.max(1, Math.min(perTargetGap, rate.count, MAX_LIMITED_BATCH));
    const batchesPerWindow = Math.floor(rate.count / batchSize);
    gapMs = Math.floor(rate.perMs / batchesPerWindow) + 1;
  }
  if (!perDomain) return { batchSize, gapMs };
  // Batches that can touch one domain window: the smallest k with k·gap > window.
  const minGap = Math.floor(perDomain.perMs / perDomain.count) + 1;
  if (gapMs === 0) gapMs = Math.max(TARGET_GAP_MS, minGap);
  else if (Math.floor(perDomain.perMs / gapMs) + 1 > perDomain.count) gapMs = minGap;
  const batchesPerDomainWindow = Math.floor(perDomain.perMs / gapMs) + 1;
  const perDomainPerBatch = Math.max(1, Math.floor(perDomain.count / batchesPerDomainWindow));
  return { batchSize, gapMs, perDomainPerBatch };
}
