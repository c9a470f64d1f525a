/**
 * A worker that dies mid-job (SIGKILL of a worker process, as `npm run worker` runs it) holds its activity only until
 * the heartbeat timeout: another worker then takes the item over and continues from the last heartbeat.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Jobs } from '../../src/client/jobs';
import { chainedSha256, type StressWorkBatchResult } from '../../src/activities/diagnostics';
import type { StressTestResult } from '../../src/workflows/diagnostics';
import { startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue, waitFor } from '../helpers/temporal';

/** Enough rounds that the item is still hashing when its worker is killed (about a second after its first beat). */
const ROUNDS = 2_000_000;

describe('a worker killed in the middle of a job', () => {
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let taskQueue: string;
  let dying: WorkerProcess | undefined;
  let survivor: Worker | undefined;
  let survivorRunning: Promise<void> | undefined;

  before(async () => {
    env = await startTestServer();
    taskQueue = uniqueTaskQueue('worker-death');
    jobs = testJobs(env, taskQueue);
  });
  after(async () => {
    dying?.process.kill('SIGKILL');
    if (survivor?.getState() === 'RUNNING') survivor.shutdown();
    await survivorRunning;
    await env.teardown();
  });

  it('stressTest: the killed worker’s item continues on another worker from its last heartbeat', async () => {
    dying = await startWorkerProcess({
      TEMPORAL_ADDRESS: env.address,
      BACKROOM_TASK_QUEUE: taskQueue,
      BACKROOM_DATA_DIR: process.env.BACKROOM_DATA_DIR,
    });
    const { id } = await jobs.start('stressTest', { count: 1, concurrency: 1, rounds: ROUNDS });
    // The first worker has hashed part of the chain and said so in a heartbeat.
    const beaten = await waitFor(
      'the stress item to heartbeat progress',
      async () => {
        const item = (await jobs.status(id)).activities.find((a) => a.type === 'stressWorkBatch');
        return item?.progress && item.progress.done > 0 && item.progress.done < ROUNDS && item.progress;
      },
      120_000,
    );
    dying.process.kill('SIGKILL');
    await dying.exited;
    survivor = await createTestWorker(env, taskQueue);
    survivorRunning = survivor.run();

    const result = await jobs.result<StressTestResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.completed, 1);
    assert.equal(result.failed, 0);

    // The item's batch (of one item: it is long): a second attempt that started where the dead worker's last
    // heartbeat left off.
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const completed = history.events?.find((e) => e.activityTaskCompletedEventAttributes);
    const payload = completed?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    assert.ok(payload, 'the stress item completed');
    const batch = env.client.options.loadedDataConverter.payloadConverter.fromPayload<StressWorkBatchResult>(payload);
    assert.ok(batch.attempts >= 2, `a second attempt finished the item: ${JSON.stringify(batch)}`);
    assert.ok(
      batch.resumedFrom >= beaten.done,
      `it resumed from the heartbeat, not from zero: ${JSON.stringify(batch)}`,
    );
    assert.equal(batch.items[0]?.digest, chainedSha256(0, ROUNDS), 'the resumed chain gives the same digest');
  });
});
