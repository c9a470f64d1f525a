/**
 * How a campaign paces its sending so that no window of the configured length ever holds more messages than the
 * limit, using only workflow timers (durable across worker restarts, and never a process-local limiter).
 *
 * Messages go out in batches of `batchSize` (one activity each, in list order); the workflow knows when each batch
 * got its last server reply, and starts the next one no sooner than {@link nextBatchStart} says. Two rules, each
 * enough on its own to keep the limit (with k = limit / batchSize batches allowed per window):
 * - window rule: batch n starts more than one window after batch n−k ended, so no window can hold messages of
 *   both, hence at most k batches. It wastes almost nothing, but needs the last k end times, so it is used for
 *   small k; batches are also spaced by a quarter of their share of the window so they do not all go out in one burst.
 * - spacing rule: batch n starts more than window / k after batch n−1 ended; then batch n and batch n+k are more
 *   than a window apart as well. It loses each batch's own duration, which is little when batches are far apart.
 * A per-domain limit caps the messages to one domain per batch so that the batches that fit in a domain window
 * stay under it. The activity waits for the exact start time itself (`notBefore`), so the time to dispatch it is
 * not lost either.
 *
 * Per message, when the limit is small enough to remember its last `count` replies and no per-domain limit applies
 * (`perMessage`): message j starts only after message j − count got its reply plus one window. The server receives
 * each message between its start and its reply, so j and j − count are always more than a window apart, and no
 * window holds more than `count`; yet nothing is lost to a batch's length, so the rate is the limit within a
 * round trip per window. The batches then only group messages into activities. Pure functions: the workflow
 * imports this.
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
  /** Minimum time from a batch's last server reply to the next batch's start; 0 means no pacing. */
  spacingMs: number;
  /** The window rule: at most `batches` batches start within one `ms` window after the batch `batches` back ended. */
  window?: { batches: number; ms: number };
  /** At most this many messages to one recipient domain per batch. */
  perDomainPerBatch?: number;
  /** Per-message pacing (see the module comment): message j waits for message j − count's reply plus `ms`. */
  perMessage?: { count: number; ms: number };
}

/**
 * Batch size without a limit: each batch costs a round trip through the server and a new SMTP connection, so big
 * batches send faster (a pause still interrupts a batch between two messages).
 */
export const UNLIMITED_BATCH = 1000;
/** With a limit, aim for a batch about this often. */
const TARGET_CADENCE_MS = 500;
const MAX_LIMITED_BATCH = 100;
/** The window rule keeps this many end times at most (they travel through continue-as-new). */
export const MAX_TRACKED_BATCHES = 64;
/** Per-message pacing remembers this many reply times at most (they travel with every batch and continue-as-new). */
export const MAX_TRACKED_SENDS = 200;
/** Below this much time per batch, the spacing rule would waste a noticeable share of the limit. */
const WINDOW_RULE_BELOW_MS = 2000;

const divisors = (n: number) => {
  const found: number[] = [];
  for (let d = 1; d * d <= n; d++) if (n % d === 0) found.push(d, n / d);
  return found.sort((a, b) => a - b);
};

/** A batch size that divides the limit (so k batches use all of it) near the target cadence. */
function limitedBatchSize(rate: Rate): number {
  const target = Math.max(1, Math.min(Math.ceil((rate.count * TARGET_CADENCE_MS) / rate.perMs), MAX_LIMITED_BATCH));
  const options = divisors(rate.count).filter((d) => d <= MAX_LIMITED_BATCH);
  const size = options.filter((d) => d <= target).at(-1) ?? 1;
  const share = rate.perMs / (rate.count / size);
  if (rate.count / size <= MAX_TRACKED_BATCHES || share >= WINDOW_RULE_BELOW_MS) return size;
  // Batches close together lose their dispatch time under the spacing rule: bigger ones fit the window rule.
  return options.find((d) => rate.count / d <= MAX_TRACKED_BATCHES) ?? size;
}

/**
 * The pacing that keeps `rate` (and `perDomain`) in every sliding window; see the module comment. `perMessage`
 * allows per-message pacing where it applies (campaigns recorded before it existed replay without it).
 */
export function planSending(rate?: Rate, perDomain?: Rate, options: { perMessage?: boolean } = {}): SendPlan {
  if (options.perMessage && rate && !perDomain && rate.count <= MAX_TRACKED_SENDS) {
    return { batchSize: limitedBatchSize(rate), spacingMs: 0, perMessage: { count: rate.count, ms: rate.perMs } };
  }
  const plan: SendPlan = { batchSize: UNLIMITED_BATCH, spacingMs: 0 };
  if (rate) {
    plan.batchSize = limitedBatchSize(rate);
    const batches = Math.floor(rate.count / plan.batchSize);
    const share = rate.perMs / batches;
    if (batches <= MAX_TRACKED_BATCHES && share < WINDOW_RULE_BELOW_MS) {
      plan.window = { batches, ms: rate.perMs };
      plan.spacingMs = Math.floor(share / 4);
    } else {
      plan.spacingMs = Math.floor(share) + 1;
    }
  }
  if (!perDomain) return plan;
  // With batches at least `spacingMs` apart, a domain window can hold ⌊window / spacing⌋ + 1 of them.
  const minSpacing = Math.floor(perDomain.perMs / perDomain.count) + 1;
  if (plan.spacingMs === 0) plan.spacingMs = Math.max(1000, minSpacing);
  else if (Math.floor(perDomain.perMs / plan.spacingMs) + 1 > perDomain.count) plan.spacingMs = minSpacing;
  const batchesPerDomainWindow = Math.floor(perDomain.perMs / plan.spacingMs) + 1;
  plan.perDomainPerBatch = Math.max(1, Math.floor(perDomain.count / batchesPerDomainWindow));
  return plan;
}

/**
 * The earliest start of the next batch, given when recent batches got their last reply (oldest first, at least the
 * last `window.batches` of them); 0 when nothing holds it back.
 */
export function nextBatchStart(
  plan: SendPlan,
  recentEnds: readonly number[],
  recentReplies: readonly number[] = [],
): number {
  if (plan.perMessage) return earliestSend(plan.perMessage, recentReplies);
  const last = recentEnds.at(-1);
  let start = last === undefined || plan.spacingMs === 0 ? 0 : last + plan.spacingMs;
  if (plan.window && recentEnds.length >= plan.window.batches) {
    start = Math.max(start, recentEnds[recentEnds.length - plan.window.batches]! + plan.window.ms + 1);
  }
  return start;
}

/**
 * Per-message pacing: the earliest start of the next message, given the reply times of the messages before it
 * (oldest first); 0 when fewer than `count` came before.
 */
export function earliestSend(perMessage: { count: number; ms: number }, recentReplies: readonly number[]): number {
  const back = recentReplies[recentReplies.length - perMessage.count];
  return back === undefined ? 0 : back + perMessage.ms + 1;
}

/** Per-message pacing: the reply times it needs to keep, after adding a batch's. */
export function keepRecentReplies(plan: SendPlan, recentReplies: readonly number[], added: readonly number[]) {
  return [...recentReplies, ...added].slice(-(plan.perMessage?.count ?? 0));
}

/** The end times the plan needs to keep, after adding the latest. */
export function keepRecentEnds(plan: SendPlan, recentEnds: readonly number[], latest: number): number[] {
  return [...recentEnds, latest].slice(-(plan.window?.batches ?? 1));
}
