/**
 * The training jobs on object storage, on a real S3-compatible server (SeaweedFS) and a real dev server, with two
 * worker processes that share no folder (each its own BACKROOM_DATA_DIR and temporary folder): a tiny dataset is
 * generated into the bucket, a layer-1 model trains from it with its checkpoints in the bucket, the worker training it
 * is SIGKILLed mid-epoch and the other one (which never saw the dataset or the run) resumes from the bucket's partial
 * checkpoint; a second model fine-tunes from the first's `best.json` in the bucket. Nothing of either job is left in
 * the workers' data dirs. A dataset without a manifest fails at once, for good, with the reason.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { closeObjectStorage } from '../../src/activities/places';
import { parseCheckpoint, type Checkpoint } from '../../src/activities/training/checkpoint';
import { mirrorDataset } from '../../src/activities/training/dataset-mirror';
import { checkManifest } from '../../src/activities/training/dataset';
import type { Jobs } from '../../src/client/jobs';
import { rootCause } from '../../src/shared/failures';
import type { EvaluateModelResult, GenerateSyntheticDataResult, TrainModelResult } from '../../src/workflows/training';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { filesUnder, makeWorkerDisk, removeWorkerDisk, workerDiskEnv, type WorkerDisk } from '../helpers/disk';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';
import { startTestServer, testJobs, uniqueTaskQueue, waitFor } from '../helpers/temporal';

const BUCKET = 'training-bucket';
const DATASET = `s3://${BUCKET}/datasets/tiny/`;
const MODEL_DIR = `s3://${BUCKET}/models/tiny/`;

describe('training jobs on object storage, two workers with no shared disk', { timeout: 10 * 60_000 }, () => {
  let s3: SeaweedS3;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  const workers: WorkerProcess[] = [];
  const disks: WorkerDisk[] = [];
  /** This test process's own temporary folder for its mirror measurement. */
  let ownTmp: string;
  const saved = { buckets: process.env.BACKROOM_S3_BUCKETS, tmp: process.env.TMPDIR };
  const savedAws: Record<string, string | undefined> = {};
  let survivor: number | undefined;

  const keys = (prefix: string) => s3.keys(BUCKET, prefix);

  async function checkpoint(key: string): Promise<Checkpoint> {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const parsed = parseCheckpoint((await got.Body?.transformToString('utf8')) ?? '');
    assert.ok('checkpoint' in parsed, `${key}: ${'problem' in parsed ? parsed.problem : ''}`);
    return parsed.checkpoint;
  }

  /** The job's files in a worker's data dir (there should be none: the job lives in the bucket). */
  const jobFilesOnDisk = (dir: string) =>
    filesUnder(dir).filter((file) => /models|datasets|reports|\.backroom|evaluation|manifest|patches|pages/.test(file));

  before(async () => {
    const started = performance.now();
    [s3, env] = await Promise.all([startSeaweedS3({ buckets: [BUCKET] }), startTestServer()]);
    const taskQueue = uniqueTaskQueue('s3-training');
    process.env.BACKROOM_S3_BUCKETS = BUCKET;
    jobs = testJobs(env, taskQueue);
    for (let index = 0; index < 2; index++) disks.push(makeWorkerDisk(`s3t-worker${index}`));
    ownTmp = mkdtempSync(path.join(os.tmpdir(), 'backroom-s3t-test-tmp-'));
    workers.push(
      ...(await Promise.all(
        disks.map((disk) =>
          startWorkerProcess({
            ...s3.env,
            TEMPORAL_ADDRESS: env.address,
            BACKROOM_TASK_QUEUE: taskQueue,
            ...workerDiskEnv(disk),
            BACKROOM_S3_BUCKETS: BUCKET,
          }),
        ),
      )),
    );
    console.log(`SeaweedFS, dev server and two workers up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

  after(async () => {
    for (const worker of workers) await stopWorkerProcess(worker);
    closeObjectStorage();
    await env?.teardown();
    await s3?.stop();
    for (const disk of disks) removeWorkerDisk(disk);
    if (ownTmp) rmSync(ownTmp, { recursive: true, force: true });
    for (const [name, value] of Object.entries({
      BACKROOM_S3_BUCKETS: saved.buckets,
      TMPDIR: saved.tmp,
      ...savedAws,
    })) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('generates a dataset into the bucket: pages, patches, manifest and state, nothing on disk', async () => {
    const started = performance.now();
    const { id } = await jobs.start('generateSyntheticData', {
      datasetId: 'tiny',
      pages: 3,
      width: 256,
      height: 320,
      patchSize: 32,
      patchesPerPage: 12,
      outputDir: DATASET,
    });
    const made = await jobs.result<GenerateSyntheticDataResult>(id);
    console.log(`generateSyntheticData into the bucket: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(made.outcome, 'completed', JSON.stringify(made));
    assert.equal(made.dataset, DATASET);
    assert.ok(made.outcome === 'completed' && made.manifest === `${DATASET}manifest.json`, JSON.stringify(made));
    assert.ok(made.stats.trainPairs > 0 && made.stats.valPairs > 0, JSON.stringify(made.stats));
    const stored = await keys('datasets/tiny/');
    for (const key of [
      'manifest.json',
      '.backroom/job.json',
      'pages/clean/page-0001.png',
      'pages/degraded/page-0003.jpg',
    ]) {
      assert.ok(stored.includes(`datasets/tiny/${key}`), `${key} in ${stored.join(', ')}`);
    }
    const patches = stored.filter((key) => key.startsWith('datasets/tiny/patches/'));
    assert.equal(patches.length, 2 * (made.stats.trainPairs + made.stats.valPairs), 'one clean and one degraded each');
    for (const disk of disks) assert.deepEqual(jobFilesOnDisk(disk.dataDir), [], `dataset files in ${disk.dataDir}`);

    // What a worker does before its first epoch: mirror the dataset once (measured here, in a temporary folder of
    // this test's own, with the workers' credentials); a second call finds it mirrored.
    for (const name of ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
      savedAws[name] = process.env[name];
      process.env[name] = s3.env[name];
    }
    process.env.TMPDIR = ownTmp;
    const check = (manifest: Parameters<typeof checkManifest>[0], prefix: string) =>
      checkManifest(manifest, prefix, `${prefix}manifest.json`);
    const first = await mirrorDataset(DATASET, check);
    const again = await mirrorDataset(DATASET, check);
    console.log(
      `mirror of the dataset: ${first.files} files, ${(first.bytes / 1024).toFixed(0)} KiB in ${first.fetchSeconds} s; ` +
        `again: ${again.fetchSeconds} s`,
    );
    assert.ok(first.fetchSeconds > 0 && first.files > patches.length, JSON.stringify(first));
    assert.equal(again.fetchSeconds, 0, 'the second call uses the mirror');
    assert.equal(again.dir, first.dir);
    assert.ok(first.dir.startsWith(ownTmp), 'the mirror is in the temporary folder');
  });

  it('trains from the bucket with checkpoints there; a worker killed mid-epoch, the other resumes from them', async () => {
    const started = performance.now();
    const { id } = await jobs.start('trainModel', {
      layer: 'layer1',
      dataset: DATASET,
      modelDir: MODEL_DIR,
      modelName: 'tiny',
      epochs: 4,
      // Small batches: an epoch of this tiny dataset takes a few seconds, long enough to kill a worker inside one.
      batchSize: 8,
    });
    const handle = env.client.workflow.getHandle(id);
    // Kill the worker that trains, in the middle of epoch 2 or 3.
    let lastView: unknown;
    const { index: holder, epoch: killedIn } = await waitFor(
      'epoch 2 or 3 under way on one worker',
      async () => {
        const view = await jobs.status(id);
        lastView = view;
        const perEpoch = view.progress.total / 4;
        const done = view.epochs?.length ?? 0;
        if (!(done >= 1 && done <= 2 && view.progress.done > perEpoch * (done + 0.05))) return undefined;
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const training = pending.find((activity) => activity.activityType?.name === 'trainEpoch');
        const index = workers.findIndex((worker) => training?.lastWorkerIdentity?.startsWith(`${worker.process.pid}@`));
        return index >= 0 ? { index, epoch: done + 1 } : undefined;
      },
      90_000,
    ).catch((err: unknown) => {
      const outputs = workers.map((worker, i) => `worker ${i}:\n${worker.output().slice(-3000)}`).join('\n');
      throw new Error(`${String(err)}\nlast status: ${JSON.stringify(lastView)}\n${outputs}`, { cause: err });
    });
    const killedAt = performance.now();
    workers[holder]!.process.kill('SIGKILL');
    await workers[holder]!.exited;
    survivor = 1 - holder;
    const reached = (await jobs.status(id)).progress.done;
    // The dead worker's partial checkpoint of that epoch is in the bucket: all the survivor has to resume from.
    const partialAtKill = await checkpoint('models/tiny/partial.json');
    assert.equal(partialAtKill.position.epoch, killedIn);
    assert.ok(partialAtKill.position.batch > 0, JSON.stringify(partialAtKill.position));

    // Progress never falls back below where it stood at the kill: the survivor resumes from the partial checkpoint.
    let lowest = Infinity;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const view = await jobs.status(id).catch(() => undefined);
        if (view?.state === 'running' && view.stage === 'training') lowest = Math.min(lowest, view.progress.done);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    const result = await jobs.result<TrainModelResult>(id).finally(() => (watching = false));
    await watcher;
    assert.ok(lowest >= reached, `progress fell from ${reached} to ${lowest}`);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `trainModel s3→s3: 4 epochs and an evaluation in ${seconds.toFixed(1)} s, ` +
        `${((performance.now() - killedAt) / 1000).toFixed(1)} s of it after the kill in epoch ${killedIn} (10 s ` +
        `heartbeat timeout); epochs took ${result.epochs.map((epoch) => epoch.seconds).join(', ')} s`,
    );
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(
      result.epochs.map((epoch) => epoch.epoch),
      [1, 2, 3, 4],
    );
    assert.equal(result.runDir, MODEL_DIR);
    assert.equal(result.bestCheckpoint, `${MODEL_DIR}best.json`);
    assert.equal(result.epochs[3]?.checkpoint, `${MODEL_DIR}epoch-0004.json`);
    for (const epoch of result.epochs) {
      assert.ok(Number.isFinite(epoch.valLoss) && epoch.valLoss < 0.5, JSON.stringify(epoch));
    }
    assert.ok(result.epochs[3]!.valLoss < result.epochs[0]!.valLoss, JSON.stringify(result.epochs));
    assert.ok(result.evaluation && result.evaluation.model.psnr > result.evaluation.input.psnr, 'the model helps');
    assert.equal(result.evaluation?.report, `${MODEL_DIR}evaluation.json`);
    assert.equal(result.evaluation?.pages, 1);

    // The survivor took epoch 2 over on a later attempt, from the partial checkpoint in the bucket.
    const history = await handle.fetchHistory();
    const retried = (history.events ?? []).filter(
      (event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1,
    );
    assert.ok(retried.length >= 1, 'an epoch was taken over after the kill');

    const stored = await keys('models/tiny/');
    for (const name of [
      '.backroom/job.json',
      'epoch-0000.json',
      'epoch-0001.json',
      'epoch-0002.json',
      'epoch-0003.json',
      'epoch-0004.json',
      'partial.json',
      'best.json',
      'evaluation.json',
      'evaluation/page-0003.png',
    ]) {
      assert.ok(stored.includes(`models/tiny/${name}`), `${name} in ${stored.join(', ')}`);
    }
    const best = await checkpoint('models/tiny/best.json');
    assert.equal(best.metrics?.valLoss, result.best?.valLoss);
    assert.equal((await checkpoint('models/tiny/partial.json')).position.epoch, 4);

    for (const disk of disks) assert.deepEqual(jobFilesOnDisk(disk.dataDir), [], `model files in ${disk.dataDir}`);
    // The survivor read the dataset from its own mirror, in its own temporary folder.
    const mirrored = filesUnder(path.join(disks[survivor]!.tmpDir, 'backroom-dataset-mirrors'));
    assert.ok(
      mirrored.some((file) => file.endsWith('manifest.json')),
      `a mirror in the survivor's temporary folder: ${mirrored.slice(0, 5).join(', ')}`,
    );
    assert.deepEqual(
      filesUnder(disks[survivor]!.tmpDir).filter((file) => file.startsWith('backroom-scratch-')),
      [],
      'no scratch copies left',
    );
  });

  it('fine-tunes from a checkpoint in the bucket on the other worker, into another model folder there', async () => {
    assert.ok(survivor !== undefined, 'runs after the training test');
    const { id } = await jobs.start('trainModel', {
      layer: 'layer1',
      dataset: DATASET,
      modelDir: `s3://${BUCKET}/models/tuned/`,
      modelName: 'tuned',
      fineTuneFrom: `${MODEL_DIR}best.json`,
      epochs: 1,
      batchSize: 256,
      evaluate: false,
    });
    const tuned = await jobs.result<TrainModelResult>(id);
    assert.equal(tuned.outcome, 'completed');
    assert.equal(tuned.bestCheckpoint, `s3://${BUCKET}/models/tuned/best.json`);
    const start = await checkpoint('models/tuned/epoch-0000.json');
    const source = await checkpoint('models/tiny/best.json');
    assert.deepEqual(start.weights.w1n, source.weights.w1n, 'starts from the bucket checkpoint');
    assert.ok(start.learningRate < source.learningRate, 'the smaller fine-tuning rate');
    for (const disk of disks) assert.deepEqual(jobFilesOnDisk(disk.dataDir), [], `model files in ${disk.dataDir}`);
  });

  it('evaluates a model in the bucket on pages in the bucket, with the report written there', async () => {
    const { id } = await jobs.start('evaluateModel', {
      model: `${MODEL_DIR}best.json`,
      pages: [{ input: `${DATASET}pages/degraded/page-0003.jpg`, reference: `${DATASET}pages/clean/page-0003.png` }],
      output: `s3://${BUCKET}/reports/tiny.json`,
    });
    const evaluated = await jobs.result<EvaluateModelResult>(id);
    assert.equal(evaluated.outcome, 'completed');
    assert.ok(evaluated.outcome === 'completed' && evaluated.report === `s3://${BUCKET}/reports/tiny.json`);
    assert.equal(evaluated.pages, 1);
    assert.ok(evaluated.model.psnr > evaluated.input.psnr, JSON.stringify(evaluated));
    assert.deepEqual(await keys('reports/'), ['reports/evaluation/001-page-0003.png', 'reports/tiny.json']);
    for (const disk of disks) {
      assert.deepEqual(jobFilesOnDisk(disk.dataDir), [], `evaluation files in ${disk.dataDir}`);
      assert.deepEqual(
        filesUnder(disk.tmpDir).filter((file) => file.startsWith('backroom-scratch-')),
        [],
        "the pages' scratch copies are removed",
      );
    }
  });

  it('a dataset without a manifest fails at once, for good, saying why', async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/half/pages/clean/page-0001.png', Body: 'x' }),
    );
    for (const [dataset, type, message] of [
      [
        `s3://${BUCKET}/datasets/none/`,
        'DatasetNotFound',
        /^The dataset s3:\/\/training-bucket\/datasets\/none\/ does not exist/,
      ],
      [`s3://${BUCKET}/datasets/half/`, 'DatasetIncomplete', /has no manifest\.json: its generation did not finish/],
    ] as const) {
      const started = performance.now();
      const { id } = await jobs.start('trainModel', {
        layer: 'layer1',
        dataset,
        epochs: 1,
        modelName: type,
        modelDir: `s3://${BUCKET}/models/${type}/`,
      });
      const handle = env.client.workflow.getHandle(id);
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError, String(err));
        const cause = rootCause(err);
        assert.equal(cause.type, type, cause.message);
        assert.match(cause.message, message);
        return true;
      });
      const seconds = (performance.now() - started) / 1000;
      assert.ok(seconds < 15, `refused in ${seconds.toFixed(1)} s`);
      const history = await handle.fetchHistory();
      const attempts = (history.events ?? []).flatMap(
        (event) => event.activityTaskStartedEventAttributes?.attempt ?? [],
      );
      assert.ok(attempts.length >= 1 && attempts.every((attempt) => attempt === 1), 'not retried');
    }
  });
});
