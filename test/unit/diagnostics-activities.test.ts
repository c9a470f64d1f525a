/** Unit tests of the diagnostics activities in a mock activity context: heartbeats, resume and cancellation. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runActivity } from '../helpers/activity';
import {
  countSeconds,
  sievePrimes,
  stressWork,
  stressWorkBatch,
  chainedSha256,
  type StressBatchCheckpoint,
  type StressCheckpoint,
} from '../../src/activities/diagnostics';
import type { ActivityHeartbeat } from '../../src/shared/job-status';

function recordHeartbeats(env: MockActivityEnvironment): ActivityHeartbeat[] {
  const beats: ActivityHeartbeat[] = [];
  env.on('heartbeat', (details: ActivityHeartbeat) => beats.push(details));
  return beats;
}

// Known values: there are 78,498 primes below 1,000,000 and they sum to 37,550,402,023.
const PRIMES_BELOW_1M = { count: 78_498, sum: '37550402023', largest: 999_983 };

describe('countSeconds', () => {
  it('heartbeats once per second with progress in seconds and finishes', async () => {
    const env = new MockActivityEnvironment();
    const beats = recordHeartbeats(env);
    const outcome = await runActivity(env, countSeconds, { message: 'hi', durationSeconds: 2 });
    assert.deepEqual(outcome, {
      finished: true,
      result: { message: 'hi', secondsCounted: 2, attempts: 1, resumedFrom: 0 },
      // The final progress travels with the result: the last heartbeat may have been throttled away.
      progress: { done: 2, total: 2, unit: 'seconds' },
    });
    assert.deepEqual(
      beats.map((b) => b.progress),
      [0, 1, 2].map((done) => ({ done, total: 2, unit: 'seconds' })),
    );
    assert.equal(beats.at(-1)?.message, 'hi: 2 s of 2 s');
  });

  it('resumes from the last heartbeat details after a retry, not from zero', async () => {
    const env = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { checkpoint: 4, progress: { done: 4, total: 5, unit: 'seconds' } },
    });
    const beats = recordHeartbeats(env);
    const outcome = await runActivity(env, countSeconds, { message: 'again', durationSeconds: 5 });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.resumedFrom, 4);
    assert.equal(outcome.result.attempts, 2);
    assert.deepEqual(
      beats.map((b) => b.checkpoint),
      [4, 5],
    );
  });

  it('resumes from the checkpoint the workflow passes after a pause', async () => {
    const env = new MockActivityEnvironment();
    const outcome = await runActivity(env, countSeconds, { message: 'x', durationSeconds: 3, resumeFrom: 2 });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.resumedFrom, 2);
    assert.equal(outcome.result.secondsCounted, 3);
  });

  it('hands back its checkpoint when the workflow cancels it (pause or cancel)', async () => {
    const env = new MockActivityEnvironment();
    const beats = recordHeartbeats(env);
    setTimeout(() => env.cancel(), 1500);
    const outcome = await runActivity(env, countSeconds, { message: 'x', durationSeconds: 30 });
    assert.deepEqual(outcome, { finished: false, checkpoint: 1, done: 1 });
    assert.equal(beats.at(-1)?.checkpoint, 1);
  });

  it('fails the attempt on worker shutdown so Temporal retries it from the heartbeat', async () => {
    const env = new MockActivityEnvironment();
    setTimeout(() => env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true })), 1200);
    await assert.rejects(runActivity(env, countSeconds, { message: 'x', durationSeconds: 30 }), (err: unknown) => {
      assert.ok(err instanceof CancelledFailure);
      assert.match(err.message, /resume from its last heartbeat/);
      return true;
    });
  });
});

describe('sievePrimes', () => {
  it('counts and sums the primes below a limit, one heartbeat per chunk', async () => {
    const env = new MockActivityEnvironment();
    const beats = recordHeartbeats(env);
    const outcome = await runActivity(env, sievePrimes, { limit: 1_000_000, chunkSize: 100_000 });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.primeCount, PRIMES_BELOW_1M.count);
    assert.equal(outcome.result.primeSum, PRIMES_BELOW_1M.sum);
    assert.equal(outcome.result.largestPrime, PRIMES_BELOW_1M.largest);
    assert.equal(outcome.result.chunks, 10);
    assert.equal(beats.length, 11, 'one heartbeat at the start and one per chunk');
    assert.deepEqual(beats.at(-1)?.progress, { done: 1_000_000, total: 1_000_000, unit: 'numbers' });
  });

  it('resumes from a mid-way heartbeat and reaches exactly the same answer', async () => {
    const first = new MockActivityEnvironment();
    const beats = recordHeartbeats(first);
    await runActivity(first, sievePrimes, { limit: 1_000_000, chunkSize: 100_000 });
    const midway = beats[4];
    assert.ok(midway);
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: midway });
    const retryBeats = recordHeartbeats(retry);
    const outcome = await runActivity(retry, sievePrimes, { limit: 1_000_000, chunkSize: 100_000 });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.resumedFrom, 400_000);
    assert.equal(outcome.result.primeCount, PRIMES_BELOW_1M.count);
    assert.equal(outcome.result.primeSum, PRIMES_BELOW_1M.sum);
    assert.equal(retryBeats.length, 7, 'only the six remaining chunks were sieved again');
  });

  it('stops at a chunk boundary when cancelled and reports how far it got', async () => {
    const env = new MockActivityEnvironment();
    env.cancel();
    const outcome = await runActivity(env, sievePrimes, { limit: 1_000_000, chunkSize: 100_000 });
    assert.deepEqual(outcome, {
      finished: false,
      checkpoint: { next: 0, primeCount: 0, primeSum: '0', largestPrime: 0, chunksDone: 0 },
      done: 0,
    });
  });
});

describe('stressWork', () => {
  it('does the same chained hashing as the plain function benchmarks use', async () => {
    const env = new MockActivityEnvironment();
    const result = await runActivity(env, stressWork, { index: 7, rounds: 50 });
    assert.deepEqual(result, { index: 7, digest: chainedSha256(7, 50), attempts: 1, resumedFrom: 0 });
    assert.notEqual(chainedSha256(7, 50), chainedSha256(7, 51), 'each round changes the digest');
    assert.notEqual(chainedSha256(7, 50), chainedSha256(8, 50), 'the seed changes the digest');
  });

  it('heartbeats its place in the chain and, on a retry, continues from it to the same digest', async () => {
    // The chain after 30 rounds, as a heartbeat carries it: each round's SHA-256 overwrites the block's start.
    const block = Buffer.alloc(1024, 7);
    for (let i = 0; i < 30; i++) createHash('sha256').update(block).digest().copy(block, 0);
    const checkpoint: StressCheckpoint = { round: 30, block: block.toString('base64') };
    const env = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { checkpoint, progress: { done: 30, total: 50, unit: 'rounds' } },
    });
    const beats = recordHeartbeats(env);
    const result = await runActivity(env, stressWork, { index: 7, rounds: 50 });
    assert.deepEqual(result, { index: 7, digest: chainedSha256(7, 50), attempts: 2, resumedFrom: 30 });
    assert.deepEqual(beats[0]?.progress, { done: 30, total: 50, unit: 'rounds' });
    assert.deepEqual(beats.at(-1)?.progress, { done: 50, total: 50, unit: 'rounds' });
  });

  it('stops when cancelled', async () => {
    const env = new MockActivityEnvironment();
    env.cancel();
    await assert.rejects(runActivity(env, stressWork, { index: 1, rounds: 1_000 }), CancelledFailure);
  });
});

describe('stressWorkBatch', () => {
  const checkpoints = (beats: ActivityHeartbeat[]) => beats.map((b) => b.checkpoint as StressBatchCheckpoint);

  it('runs its items in order, heartbeating after each one, and reports each digest and time', async () => {
    const env = new MockActivityEnvironment();
    const beats = recordHeartbeats(env);
    const result = await runActivity(env, stressWorkBatch, { firstIndex: 10, count: 4, rounds: 50 });
    assert.equal(result.firstIndex, 10);
    assert.equal(result.attempts, 1);
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(
      result.items.map((item) => [item.index, item.digest, item.tries]),
      [10, 11, 12, 13].map((index) => [index, chainedSha256(index, 50), 1]),
    );
    for (const item of result.items) assert.ok(item.ms > 0 && item.error === undefined, JSON.stringify(item));
    // One heartbeat at the start and one per item, each with the index reached and the outcomes so far.
    assert.deepEqual(
      checkpoints(beats).map((c) => [c.next, c.items.length]),
      [
        [10, 0],
        [11, 1],
        [12, 2],
        [13, 3],
        [14, 4],
      ],
    );
    assert.deepEqual(beats.at(-1)?.progress, { done: 200, total: 200, unit: 'rounds' });
  });

  it('on a retry, resumes from the heartbeat: the items done keep their outcomes, the rest run', async () => {
    const first = new MockActivityEnvironment();
    const beats = recordHeartbeats(first);
    const whole = await runActivity(first, stressWorkBatch, { firstIndex: 0, count: 5, rounds: 40 });
    const midway = beats[2]; // after items 0 and 1
    assert.ok(midway);
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: midway });
    const retryBeats = recordHeartbeats(retry);
    const resumed = await runActivity(retry, stressWorkBatch, { firstIndex: 0, count: 5, rounds: 40 });
    assert.equal(resumed.attempts, 2);
    assert.equal(resumed.resumedFrom, 80, 'two items of 40 rounds were done');
    assert.deepEqual(resumed.items.slice(0, 2), whole.items.slice(0, 2), 'the outcomes carried in the heartbeat');
    assert.deepEqual(
      resumed.items.map((item) => item.digest),
      whole.items.map((item) => item.digest),
    );
    assert.deepEqual(
      checkpoints(retryBeats).map((c) => c.next),
      [2, 3, 4, 5],
      'only the three remaining items ran again',
    );
  });

  it('continues a long item from its place in the chain, to the same digest', async () => {
    const block = Buffer.alloc(1024, 3);
    for (let i = 0; i < 30; i++) createHash('sha256').update(block).digest().copy(block, 0);
    const checkpoint: StressBatchCheckpoint = {
      next: 3,
      items: [{ index: 2, ms: 1, tries: 1, digest: chainedSha256(2, 50) }],
      current: { round: 30, block: block.toString('base64'), tries: 1, ms: 1 },
    };
    const env = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { checkpoint, progress: { done: 80, total: 100, unit: 'rounds' } },
    });
    const result = await runActivity(env, stressWorkBatch, { firstIndex: 2, count: 2, rounds: 50 });
    assert.equal(result.resumedFrom, 80);
    assert.equal(result.items[1]?.digest, chainedSha256(3, 50));
  });

  it('records an item that fails after its tries with its reason, and runs the others', async () => {
    const env = new MockActivityEnvironment();
    const result = await runActivity(env, stressWorkBatch, { firstIndex: 0, count: 4, rounds: 20, failItems: [1] });
    assert.deepEqual(
      result.items.map((item) => [item.index, item.tries, item.error ?? 'ok']),
      [
        [0, 1, 'ok'],
        [1, 3, 'item 1 failed on purpose (failItems)'],
        [2, 1, 'ok'],
        [3, 1, 'ok'],
      ],
    );
    assert.equal(result.items[1]?.digest, undefined);
    assert.ok((result.items[1]?.ms ?? 0) >= 150, 'its time includes the waits between its tries (50 + 100 ms)');
    assert.equal(result.items[3]?.digest, chainedSha256(3, 20));
  });

  it('stops when cancelled, between items', async () => {
    const env = new MockActivityEnvironment();
    const beats = recordHeartbeats(env);
    env.on('heartbeat', () => {
      if (beats.length === 3) env.cancel();
    });
    await assert.rejects(
      runActivity(env, stressWorkBatch, { firstIndex: 0, count: 50, rounds: 100 }),
      CancelledFailure,
    );
    const last = checkpoints(beats).at(-1);
    assert.ok(last && last.next < 50, `stopped early, at item ${last?.next}`);
  });

  it('fails the attempt on worker shutdown, so Temporal retries it from the heartbeat', async () => {
    const env = new MockActivityEnvironment();
    env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
    await assert.rejects(runActivity(env, stressWorkBatch, { firstIndex: 0, count: 3, rounds: 10 }), (err: unknown) => {
      assert.ok(err instanceof CancelledFailure);
      assert.match(err.message, /resume from its last heartbeat/);
      return true;
    });
  });
});
