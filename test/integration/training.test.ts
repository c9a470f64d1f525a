/**
 * Training jobs on a real dev server: a dataset made by `generateSyntheticData`, a layer-1 run that learns and is
 * evaluated, pause / resume / cancel (the best checkpoint stays), a worker process killed with SIGKILL mid-epoch
 * (the run resumes from its partial checkpoint and runs exactly the epochs asked), fine-tuning, layer 2, and inputs
 * that fail at once.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ActivityFailure, WorkflowFailedError } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import { readCheckpoint } from '../../src/activities/training/checkpoint';
import type { GenerateSyntheticDataResult, TrainModelResult } from '../../src/workflows/training';
import { startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { sleep, startTestStack, testJobs, uniqueTaskQueue, waitFor, type TestStack } from '../helpers/temporal';

const dataset = 'datasets/small';

describe('training jobs on a dev server', () => {
  let stack: TestStack;
  let dataDir: string;
  let firstRun: TrainModelResult;

  before(async () => {
    stack = await startTestStack('training');
    dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    const { id } = await stack.jobs.start('generateSyntheticData', {
      datasetId: 'small',
      pages: 4,
      width: 500,
      height: 707,
      patchesPerPage: 24,
    });
    const made = await stack.jobs.result<GenerateSyntheticDataResult>(id);
    assert.equal(made.outcome, 'completed');
  });

  after(async () => {
    await stack?.stop();
  });

  it('trains layer 1: validation loss falls, the model beats the degraded input and is evaluated', async () => {
    const { id } = await stack.jobs.start('trainModel', { layer: 'layer1', dataset, epochs: 3, modelName: 'first' });
    assert.equal(id, 'train-layer1-first');
    firstRun = await stack.jobs.result<TrainModelResult>(id);
    const epochs = firstRun.epochs;
    assert.deepEqual(
      epochs.map((e) => e.epoch),
      [1, 2, 3],
    );
    assert.ok(epochs[2]!.valLoss < epochs[0]!.valLoss, JSON.stringify(epochs));
    assert.ok(epochs[2]!.valPsnr > epochs[2]!.inputPsnr, JSON.stringify(epochs[2]));
    const evaluation = firstRun.evaluation;
    assert.ok(evaluation && evaluation.model.psnr > evaluation.input.psnr, JSON.stringify(evaluation));
    assert.ok(existsSync(path.join(dataDir, 'models/first/best.json')));
    const view = await stack.jobs.status(id);
    assert.equal(view.epochs?.length, 3);
    assert.match(view.message, /PSNR on 1 held-out pages: input .* classical .* model/);
  });

  it('pause holds training, resume continues, cancel keeps the best checkpoint', async () => {
    const { id } = await stack.jobs.start('trainModel', {
      layer: 'layer1',
      dataset,
      epochs: 50,
      batchSize: 256,
      modelName: 'paused',
    });
    await waitFor('the first epoch', async () => ((await stack.jobs.status(id)).epochs?.length ?? 0) >= 1, 120_000);
    await stack.jobs.pause(id);
    await waitFor('the epoch activity to stop', async () => (await stack.jobs.status(id)).activities.length === 0);
    const held = (await stack.jobs.status(id)).progress.done;
    await sleep(2500);
    const still = await stack.jobs.status(id);
    assert.equal(still.state, 'paused');
    assert.equal(still.progress.done, held, 'no batches while paused');
    await stack.jobs.resume(id);
    await waitFor('progress after resume', async () => (await stack.jobs.status(id)).progress.done > held, 60_000);
    await stack.jobs.cancel(id);
    const result = await stack.jobs.result<TrainModelResult>(id);
    assert.equal(result.outcome, 'cancelled');
    assert.ok(result.epochsCompleted >= 1 && result.epochsCompleted < 50);
    assert.equal(result.bestCheckpoint, 'models/paused/best.json');
    const best = await readCheckpoint(path.join(dataDir, 'models/paused/best.json'));
    assert.equal(best.metrics?.valLoss, result.best?.valLoss);
  });

  it('a worker killed mid-epoch: the run resumes from its partial checkpoint and runs exactly the epochs asked', async () => {
    const taskQueue = uniqueTaskQueue('training-kill');
    const env = { TEMPORAL_ADDRESS: stack.env.address, BACKROOM_TASK_QUEUE: taskQueue, BACKROOM_DATA_DIR: dataDir };
    const jobs = testJobs(stack.env, taskQueue);
    let worker: WorkerProcess = await startWorkerProcess(env);
    try {
      // Small batches make an epoch long enough to kill the worker in the middle of one.
      const { id } = await jobs.start('trainModel', {
        layer: 'layer1',
        dataset,
        epochs: 3,
        batchSize: 64,
        modelName: 'killed',
        evaluate: false,
      });
      const status = await waitFor(
        'epoch 2 under way',
        async () => {
          const view = await jobs.status(id);
          const perEpoch = view.progress.total / 3;
          return view.progress.done > perEpoch * 1.3 && view.epochs?.length === 1 ? view : undefined;
        },
        120_000,
      );
      worker.process.kill('SIGKILL');
      await worker.exited;
      const reached = status.progress.done;
      worker = await startWorkerProcess(env);
      // Progress must never fall back below where it stood before the kill (the partial is ahead of the status).
      // One poll at a time, all finished before the test ends: a status call still in flight (and in the client's
      // retry backoff) when the server stops at teardown would throw from a timer and crash the test process.
      let lowest = Infinity;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const view = await jobs.status(id).catch(() => undefined);
          if (view?.state === 'running' && view.epochs?.length) lowest = Math.min(lowest, view.progress.done);
          await sleep(300);
        }
      })();
      const result = await jobs.result<TrainModelResult>(id).finally(() => (watching = false));
      await watcher;
      assert.deepEqual(
        result.epochs.map((e) => e.epoch),
        [1, 2, 3],
      );
      assert.equal(result.epochsCompleted, 3);
      assert.ok(lowest >= reached, `progress fell from ${reached} to ${lowest}`);
      const partial = await readCheckpoint(path.join(dataDir, 'models/killed/partial.json'));
      assert.equal(partial.position.epoch, 3);
    } finally {
      worker.process.kill('SIGKILL');
    }
  });

  it('fine-tunes from the given weights and trains layer 2 on layer 1', async () => {
    const tuned = await stack.jobs.result<TrainModelResult>(
      (
        await stack.jobs.start('trainModel', {
          layer: 'layer1',
          dataset,
          epochs: 1,
          modelName: 'tuned',
          fineTuneFrom: 'models/first/best.json',
          evaluate: false,
        })
      ).id,
    );
    const start = await readCheckpoint(path.join(dataDir, 'models/tuned/epoch-0000.json'));
    const source = await readCheckpoint(path.join(dataDir, 'models/first/best.json'));
    assert.deepEqual(start.weights.w1n, source.weights.w1n);
    // Starting from trained weights, one epoch already lands near the first run's best.
    assert.ok(tuned.epochs[0]!.valLoss < firstRun.epochs[0]!.valLoss, `${tuned.epochs[0]!.valLoss}`);

    const layer2 = await stack.jobs.result<TrainModelResult>(
      (
        await stack.jobs.start('trainModel', {
          layer: 'layer2',
          dataset,
          epochs: 2,
          modelName: 'refine',
          layer1Model: 'models/first/best.json',
        })
      ).id,
    );
    assert.equal(layer2.evaluation?.layer, 'layer2');
    assert.deepEqual(layer2.evaluation?.classicalSteps, ['denoise', 'normalize', 'binarize']);
  });

  it('trains the guided network through the job, without a layer-1 model', async () => {
    const guided = await stack.jobs.result<TrainModelResult>(
      (await stack.jobs.start('trainModel', { layer: 'layer2', network: 'guided', dataset, epochs: 1, modelName: 'g' }))
        .id,
    );
    const best = await readCheckpoint(path.join(dataDir, 'models/g/best.json'));
    assert.equal(best.architecture.input, 'normalized');
    assert.equal(best.layer1, undefined);
    assert.equal(guided.epochs.length, 1);
    // Evaluated like any layer-2 model: its held-out pages restored by the model and by the classical steps.
    assert.equal(guided.evaluation?.layer, 'layer2');
    assert.ok(Number.isFinite(guided.evaluation?.model.psnr), JSON.stringify(guided.evaluation));
  });

  it('fails at once, without retries, on a bad input or a missing dataset', async () => {
    const failure = async (input: Record<string, unknown>) => {
      const { id } = await stack.jobs.start('trainModel', { layer: 'layer1', dataset, epochs: 1, ...input }, {});
      const err = await stack.jobs.result(id).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError, String(err));
      // Not retried: the activity's failure says so, and carries the message for the user.
      assert.ok(err.cause instanceof ActivityFailure, String(err.cause));
      assert.equal(err.cause.retryState, RetryState.NON_RETRYABLE_FAILURE);
      return String(err.cause.cause?.message);
    };
    assert.match(await failure({ dataset: 'datasets/none' }), /datasets\/none does not exist/);
    assert.match(await failure({ fineTuneFrom: 'models/first/epoch-0009.json' }), /does not exist/);
    await assert.rejects(
      stack.jobs.start('trainModel', { layer: 'layer1', dataset, epochs: 0 }),
      /epochs: Too small: expected number to be >=1/,
    );
  });
});
