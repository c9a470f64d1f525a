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
