/**
 * runResumableLoop's heartbeat while a step is still running: a step that waits long (the CPU pool, an SMTP reply)
 * beats every second from the checkpoint it started at, so Temporal does not take the worker for dead; steps that
 * end within a second add no beats of their own.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runResumableLoop } from '../../src/activities/resumable-loop';
import type { ActivityHeartbeat } from '../../src/shared/job-status';

function loopOf(stepMs: (at: number) => number, steps: number) {
  return () =>
    runResumableLoop<number, number>({
      initial: 0,
      isDone: (at) => at >= steps,
      step: async (at) => {
        await sleep(stepMs(at));
        return at + 1;
      },
      progress: (at) => ({ done: at, total: steps, unit: 'steps' }),
      finish: (at) => at,
      reportToWorkflow: false,
    });
}

async function beatsOf(run: () => Promise<unknown>): Promise<number[]> {
  const env = new MockActivityEnvironment();
  const beats: number[] = [];
  env.on('heartbeat', (details: ActivityHeartbeat<number>) => beats.push(details.checkpoint));
  await env.run(run);
  return beats;
}

describe('runResumableLoop keeps beating while a step runs', () => {
  it('beats each second of a long step from the checkpoint the step started at', async () => {
    const beats = await beatsOf(loopOf((at) => (at === 1 ? 2500 : 10), 3));
    // 0 at the start, 1 after the first step, twice 1 during the 2.5 s step, then 2 and 3 after the steps.
    assert.deepEqual(beats, [0, 1, 1, 1, 2, 3]);
  });

  it('adds no beat to steps that end within a second, however many', async () => {
    const beats = await beatsOf(loopOf(() => 300, 6));
    assert.deepEqual(beats, [0, 1, 2, 3, 4, 5, 6]);
  });
});
