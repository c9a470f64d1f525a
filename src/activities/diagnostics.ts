/**
 * Diagnostics activities: real work that exercises heartbeats, resume and cancellation end to end.
 */
import { createHash } from 'node:crypto';
import { activityInfo, CancelledFailure, Context } from '@temporalio/activity';
import type { Resumable } from '../shared/job-status';
import { runResumableLoop } from './resumable-loop';
import { countPrimesInRange } from './primes';

export interface CountSecondsInput {
  message: string;
  durationSeconds: number;
  resumeFrom?: number;
}

export interface CountSecondsResult {
  message: string;
  secondsCounted: number;
  /** Attempts Temporal needed (more than 1 after a worker died or shut down mid-way). */
  attempts: number;
  /** The second the last run of the activity started from (0 unless it resumed). */
  resumedFrom: number;
}

/** Counts seconds, heartbeating each one: the simplest long activity that can be paused, cancelled and resumed. */
export async function countSeconds(input: CountSecondsInput): Promise<Resumable<number, CountSecondsResult>> {
  const context = Context.current();
  return runResumableLoop({
    initial: 0,
    resumeFrom: input.resumeFrom,
    isDone: (elapsed) => elapsed >= input.durationSeconds,
    step: async (elapsed) => {
      await context.sleep(1000);
      return elapsed + 1;
    },
    progress: (elapsed) => ({ done: elapsed, total: input.durationSeconds, unit: 'seconds' }),
    describe: (elapsed) => `${input.message}: ${elapsed} s of ${input.durationSeconds} s`,
    finish: (elapsed, startedFrom) => ({
      message: input.message,
      secondsCounted: elapsed,
      attempts: activityInfo().attempt,
      resumedFrom: startedFrom,
    }),
  });
}

export interface PrimeSieveInput {
  limit: number;
  chunkSize: number;
  resumeFrom?: PrimeSieveCheckpoint;
}

/** Where the sieve is: numbers below `next` are done. Sums are decimal strings (they outgrow 2^53). */
export interface PrimeSieveCheckpoint {
  next: number;
  primeCount: number;
  primeSum: string;
  largestPrime: number;
  chunksDone: number;
}

export interface PrimeSieveResult {
  limit: number;
  primeCount: number;
  primeSum: string;
  largestPrime: number;
  chunks: number;
  attempts: number;
  /** The number the last run of the activity started from (0 unless it resumed from a checkpoint). */
  resumedFrom: number;
}

/** Counts and sums the primes below `limit`, one chunk per heartbeat, resuming from the last finished chunk. */
export async function sievePrimes(input: PrimeSieveInput): Promise<Resumable<PrimeSieveCheckpoint, PrimeSieveResult>> {
  const { limit, chunkSize } = input;
  return runResumableLoop<PrimeSieveCheckpoint, PrimeSieveResult>({
    initial: { next: 0, primeCount: 0, primeSum: '0', largestPrime: 0, chunksDone: 0 },
    resumeFrom: input.resumeFrom,
    isDone: (at) => at.next >= limit,
    step: async (at) => {
      const end = Math.min(limit, at.next + chunkSize);
      const found = countPrimesInRange(at.next, end);
      return {
        next: end,
        primeCount: at.primeCount + found.count,
        primeSum: (BigInt(at.primeSum) + found.sum).toString(),
        largestPrime: found.largest || at.largestPrime,
        chunksDone: at.chunksDone + 1,
      };
    },
    progress: (at) => ({ done: at.next, total: limit, unit: 'numbers' }),
    describe: (at) => `${at.primeCount.toLocaleString('en-US')} primes below ${at.next.toLocaleString('en-US')}`,
    finish: (at, startedFrom) => ({
      limit,
      resumedFrom: startedFrom.next,
      primeCount: at.primeCount,
      primeSum: at.primeSum,
      largestPrime: at.largestPrime,
      chunks: at.chunksDone,
      attempts: activityInfo().attempt,
    }),
  });
}

export interface StressWorkInput {
  index: number;
  rounds: number;
}

export interface StressWorkResult {
  index: number;
  digest: string;
  /** Attempts Temporal needed (more than 1 after a worker died or shut down mid-way). */
  attempts: number;
  /** The round the last attempt started from (0 unless it resumed from a heartbeat). */
  resumedFrom: number;
}

/** Where a stress item's chain is: `round` rounds done, and the 1 KiB block (base64) after them. */
export interface StressCheckpoint {
  round: number;
  block: string;
}

/** How long one step of a stress item hashes before it heartbeats and lets the event loop run. */
const STRESS_STEP_MS = 200;
/** Rounds between two looks at the clock within a step (about a millisecond of hashing). */
const ROUNDS_PER_CLOCK_CHECK = 256;

/**
 * One stress-test item: `rounds` of SHA-256 over 1 KiB, chained, so the work cannot be skipped or cached. It hashes
 * in short steps and heartbeats its place in the chain, so a dead worker's item is retried within the heartbeat
 * timeout and continues from there on the next worker (the chain is deterministic: the digest is the same).
 */
export async function stressWork(input: StressWorkInput): Promise<StressWorkResult> {
  const outcome = await runResumableLoop<StressCheckpoint, StressWorkResult>({
    initial: { round: 0, block: chainStart(input.index).toString('base64') },
    isDone: (at) => at.round >= input.rounds,
    step: async (at) => {
      const block = Buffer.from(at.block, 'base64');
      const until = Date.now() + STRESS_STEP_MS;
      let round = at.round;
      while (round < input.rounds && Date.now() < until) {
        const rounds = Math.min(ROUNDS_PER_CLOCK_CHECK, input.rounds - round);
        chainRounds(block, rounds);
        round += rounds;
      }
      return { round, block: block.toString('base64') };
    },
    progress: (at) => ({ done: at.round, total: input.rounds, unit: 'rounds' }),
    // The workflow counts items; an item's rounds are not the job's progress, so none are signalled to it.
    reportToWorkflow: false,
    finish: (at, startedFrom) => ({
      index: input.index,
      digest: chainDigest(Buffer.from(at.block, 'base64')),
      attempts: activityInfo().attempt,
      resumedFrom: startedFrom.round,
    }),
  });
  // Only a cancel of the whole job interrupts an item, and the job then has no use for its place in the chain.
  if (!outcome.finished) throw new CancelledFailure('Stress item cancelled');
  return outcome.result;
}

export interface StressWorkBatchInput {
  /** The index of the batch's first item; its items are `firstIndex`, `firstIndex + 1`, ... */
  firstIndex: number;
  /** Items in the batch (at least 1). */
  count: number;
  rounds: number;
  /** Where to start when there are no heartbeat details (the workflow passes none: a fresh batch). */
  resumeFrom?: StressBatchCheckpoint;
  /** Diagnostics: items that fail on every try, to exercise the per-item failure path end to end. */
  failItems?: number[];
}

/** One finished item of a batch: its digest, or the reason it failed after its tries. */
export interface StressItemOutcome {
  index: number;
  /** The item's own time in ms, as the activity measured it: from its first try's start to its end, retries included. */
  ms: number;
  tries: number;
  digest?: string;
  error?: string;
}

/** Where a batch is: items before `next` finished (their outcomes in order), and the chain of item `next` so far. */
export interface StressBatchCheckpoint {
  next: number;
  items: StressItemOutcome[];
  /** Item `next` when it has started (a long item is heartbeaten mid-chain). */
  current?: StressCheckpoint & { tries: number; ms: number };
}

export interface StressWorkBatchResult {
  firstIndex: number;
  items: StressItemOutcome[];
  /** Attempts Temporal needed (more than 1 after a worker died or shut down mid-way). */
  attempts: number;
  /** Rounds of the batch done when the last attempt started (0 unless it resumed from a heartbeat). */
  resumedFrom: number;
}

/** Tries of one item within its batch before it is recorded as failed (and the batch goes on). */
const STRESS_ITEM_TRIES = 3;
/** The wait before an item's second try; doubled before each later one. */
const STRESS_ITEM_RETRY_MS = 50;

/**
 * Several stress items in one activity, in order: the same chained hashing as {@link stressWork}, without an
 * activity's scheduling and history per item. It heartbeats after each item (and every 200 ms inside a long one)
 * with the index reached and the outcomes so far, so a retry on another worker continues from there. An item that
 * throws is tried {@link STRESS_ITEM_TRIES} times, then recorded as failed with its reason while the rest go on. The
 * result lists every item's outcome and its own time in ms.
 */
export async function stressWorkBatch(input: StressWorkBatchInput): Promise<StressWorkBatchResult> {
  const { firstIndex, count, rounds } = input;
  const end = firstIndex + count;
  const failing = new Set(input.failItems ?? []);
  const context = Context.current();
  const roundsDone = (at: StressBatchCheckpoint) => (at.next - firstIndex) * rounds + (at.current?.round ?? 0);
  const outcome = await runResumableLoop<StressBatchCheckpoint, StressWorkBatchResult>({
    initial: { next: firstIndex, items: [] },
    resumeFrom: input.resumeFrom,
    isDone: (at) => at.next >= end,
    step: async (at) => {
      const index = at.next;
      const current = at.current ?? { round: 0, block: chainStart(index).toString('base64'), tries: 1, ms: 0 };
      const started = performance.now();
      const spent = () => current.ms + (performance.now() - started);
      const finish = (result: Pick<StressItemOutcome, 'digest' | 'error'>): StressBatchCheckpoint => ({
        next: index + 1,
        items: [...at.items, { index, ms: Math.round(spent() * 100) / 100, tries: current.tries, ...result }],
      });
      try {
        if (failing.has(index)) throw new Error(`item ${index} failed on purpose (failItems)`);
        const block = Buffer.from(current.block, 'base64');
        const until = Date.now() + STRESS_STEP_MS;
        let round = current.round;
        while (round < rounds && Date.now() < until) {
          const step = Math.min(ROUNDS_PER_CLOCK_CHECK, rounds - round);
          chainRounds(block, step);
          round += step;
        }
        if (round < rounds) {
          return { ...at, current: { round, block: block.toString('base64'), tries: current.tries, ms: spent() } };
        }
        return finish({ digest: chainDigest(block) });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (current.tries >= STRESS_ITEM_TRIES) return finish({ error: reason });
        await context.sleep(STRESS_ITEM_RETRY_MS * 2 ** (current.tries - 1));
        const retry = { round: 0, block: chainStart(index).toString('base64'), tries: current.tries + 1, ms: spent() };
        return { ...at, current: retry };
      }
    },
    progress: (at) => ({ done: roundsDone(at), total: count * rounds, unit: 'rounds' }),
    describe: (at) => `stress items ${firstIndex}–${end - 1}: ${at.next - firstIndex} of ${count} done`,
    // The workflow counts items as batches end; inside a batch, progress travels in the heartbeat details only.
    reportToWorkflow: false,
    finish: (at, startedFrom) => ({
      firstIndex,
      items: at.items,
      attempts: activityInfo().attempt,
      resumedFrom: roundsDone(startedFrom),
    }),
  });
  // Only a cancel of the whole job interrupts a batch, and the job then has no use for its place.
  if (!outcome.finished) throw new CancelledFailure('Stress batch cancelled');
  return outcome.result;
}

/** The stress item's work as a plain function, so benchmarks can run the same work without Temporal. */
export function chainedSha256(seed: number, rounds: number): string {
  const block = chainStart(seed);
  chainRounds(block, rounds);
  return chainDigest(block);
}

function chainStart(seed: number): Buffer {
  return Buffer.alloc(1024, seed % 256);
}

/** Runs `rounds` rounds of the chain on `block`, in place: each round's digest overwrites the block's start. */
function chainRounds(block: Buffer, rounds: number): void {
  for (let i = 0; i < rounds; i++) createHash('sha256').update(block).digest().copy(block, 0);
}

function chainDigest(block: Buffer): string {
  return createHash('sha256').update(block).digest('hex');
}
