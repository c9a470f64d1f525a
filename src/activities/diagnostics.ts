/**
 * Diagnostics activities: real work that exercises heartbeats, resume and cancellation end to end.
 */
import { createHash } from 'node:crypto';
import { activityInfo, Context } from '@temporalio/activity';
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
}

/** One stress-test item: `rounds` of SHA-256 over 1 KiB, chained, so the work cannot be skipped or cached. */
export async function stressWork(input: StressWorkInput): Promise<StressWorkResult> {
  return { index: input.index, digest: chainedSha256(input.index, input.rounds) };
}

/** The stress item's work as a plain function, so benchmarks can run the same work without Temporal. */
export function chainedSha256(seed: number, rounds: number): string {
  let block = Buffer.alloc(1024, seed % 256);
  for (let i = 0; i < rounds; i++) {
    const digest = createHash('sha256').update(block).digest();
    digest.copy(block, 0);
    block = block.subarray(0, 1024);
  }
  return createHash('sha256').update(block).digest('hex');
}
