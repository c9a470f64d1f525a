/**
 * processMedia, restoreDocument and generateSamplePages from and to object storage, on a real S3-compatible server
 * (SeaweedFS), a real dev server and a worker process whose data dir and temporary folder are its own: the outputs
 * land in the bucket, decode as the images asked for, and nothing of the jobs stays on the worker's disk. A missing
 * object and a corrupt one fail for good with messages that name the `s3://` location, never a scratch path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import type { Jobs } from '../../src/client/jobs';
import type { ProcessImageResult } from '../../src/activities/images/process-media';
import type { RestoreDocumentResult } from '../../src/activities/restoration/restore-document';
import { rootCause, type FailureSummary } from '../../src/shared/failures';
import { fixtureFile } from '../helpers/fixtures';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { filesUnder, makeWorkerDisk, removeWorkerDisk, workerDiskEnv, type WorkerDisk } from '../helpers/disk';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';
import { startTestServer, testJobs, uniqueTaskQueue } from '../helpers/temporal';

const IN = 'media-in';
const OUT = 'media-out';

describe('single-file jobs on object storage', { timeout: 10 * 60_000 }, () => {
  let s3: SeaweedS3;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let worker: WorkerProcess;
  let disk: WorkerDisk | undefined;
  const previousBuckets = process.env.BACKROOM_S3_BUCKETS;

  const keys = (bucket: string, prefix: string) => s3.keys(bucket, prefix);

  const bytes = (bucket: string, key: string) => s3.read(bucket, key);

  const put = (key: string, body: Uint8Array) =>
    s3.client.send(new PutObjectCommand({ Bucket: IN, Key: key, Body: body }));

  /** The failure of a job that must fail, as the user sees it. */
  async function failure(id: string): Promise<FailureSummary> {
    const err = await jobs.result(id).then(
      () => assert.fail(`${id} should have failed`),
      (reason: unknown) => reason,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    return rootCause(err);
  }

  before(async () => {
    s3 = await startSeaweedS3({ buckets: [IN, OUT] });
    env = await startTestServer();
    const taskQueue = uniqueTaskQueue('s3-media');
    process.env.BACKROOM_S3_BUCKETS = `${IN},${OUT}`;
    jobs = testJobs(env, taskQueue);
    await put('photos/landscape.jpg', readFileSync(fixtureFile('images/landscape.jpg')));
    await put('photos/truncated.jpg', readFileSync(fixtureFile('images/truncated.jpg')));
    await put('scans/2JohnC1V3.png', readFileSync(fixtureFile('documents/2JohnC1V3.png')));
    await put('clean/2JohnC1V3.png', readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
    disk = makeWorkerDisk('s3-media');
    worker = await startWorkerProcess({
      ...s3.env,
      TEMPORAL_ADDRESS: env.address,
      BACKROOM_TASK_QUEUE: taskQueue,
      ...workerDiskEnv(disk),
      BACKROOM_S3_BUCKETS: `${IN},${OUT}`,
    });
  });

  after(async () => {
    await stopWorkerProcess(worker);
    await env?.teardown();
    await s3?.stop();
    if (disk) removeWorkerDisk(disk);
    if (previousBuckets === undefined) delete process.env.BACKROOM_S3_BUCKETS;
    else process.env.BACKROOM_S3_BUCKETS = previousBuckets;
  });

  it('processMedia reads a photo from one bucket and writes its outputs to another', async () => {
    const { id } = await jobs.start('processMedia', {
      input: `s3://${IN}/photos/landscape.jpg`,
      outputDir: `s3://${OUT}/processed/`,
      operations: [
        { op: 'thumbnail', width: 160, height: 120 },
        { op: 'blur', radius: 2 },
        { op: 'optimize', format: 'jpeg', quality: 80 },
      ],
    });
    const result = await jobs.result<ProcessImageResult>(id);
    assert.equal(result.input, `s3://${IN}/photos/landscape.jpg`);
    assert.deepEqual(
      result.outputs.map((output) => output.path),
      [`s3://${OUT}/processed/landscape.thumb-160x120.webp`, `s3://${OUT}/processed/landscape.optimized.jpg`],
    );
    assert.deepEqual(await keys(OUT, 'processed/'), [
      'processed/landscape.optimized.jpg',
      'processed/landscape.thumb-160x120.webp',
    ]);
    // The objects are the images the result describes, whole.
    for (const output of result.outputs) {
      const stored = await bytes(OUT, output.path.slice(`s3://${OUT}/`.length));
      assert.equal(stored.length, output.bytes);
      const metadata = await sharp(stored).metadata();
      assert.equal(metadata.width, output.width);
      assert.equal(metadata.height, output.height);
    }
  });

  it('processMedia without outputDir writes next to the object, in processed/', async () => {
    const { id } = await jobs.start('processMedia', {
      input: `s3://${IN}/photos/landscape.jpg`,
      operations: [{ op: 'thumbnail', width: 64, height: 64 }],
    });
    const result = await jobs.result<ProcessImageResult>(id);
    assert.deepEqual(
      result.outputs.map((output) => output.path),
      [`s3://${IN}/photos/processed/landscape.thumb-64x64.webp`],
    );
    assert.deepEqual(await keys(IN, 'photos/processed/'), ['photos/processed/landscape.thumb-64x64.webp']);
  });

  it('restoreDocument restores a page from a bucket, measured against a reference in the bucket', async () => {
    const { id } = await jobs.start('restoreDocument', {
      input: `s3://${IN}/scans/2JohnC1V3.png`,
      reference: `s3://${IN}/clean/2JohnC1V3.png`,
      output: `s3://${OUT}/restored/2JohnC1V3.png`,
      steps: ['binarize'],
    });
    const result = await jobs.result<RestoreDocumentResult>(id);
    assert.equal(result.input, `s3://${IN}/scans/2JohnC1V3.png`);
    assert.equal(result.reference, `s3://${IN}/clean/2JohnC1V3.png`);
    assert.equal(result.output, `s3://${OUT}/restored/2JohnC1V3.png`);
    assert.ok(result.metrics.reference, 'measured against the reference');
    const stored = await sharp(await bytes(OUT, 'restored/2JohnC1V3.png')).metadata();
    assert.equal(stored.format, 'png');
    assert.equal(stored.width, result.width);
    assert.equal(stored.height, result.height);
  });

  it('generateSamplePages writes its pages and manifest into a bucket', async () => {
    const { id } = await jobs.start('generateSamplePages', {
      outputDir: `s3://${OUT}/samples/`,
      count: 2,
      width: 400,
      height: 560,
    });
    await jobs.result(id);
    assert.deepEqual(await keys(OUT, 'samples/'), [
      'samples/clean/page-0001.png',
      'samples/clean/page-0002.png',
      'samples/degraded/page-0001.jpg',
      'samples/degraded/page-0002.jpg',
      'samples/manifest.json',
    ]);
    const manifest = JSON.parse((await bytes(OUT, 'samples/manifest.json')).toString('utf8')) as {
      pages: { degraded: string }[];
    };
    assert.equal(manifest.pages[0]?.degraded, `s3://${OUT}/samples/degraded/page-0001.jpg`);
  });

  it('a missing object and a corrupt one fail for good, naming the s3 location', async () => {
    const missing = await jobs.start('processMedia', {
      input: `s3://${IN}/photos/nowhere.jpg`,
      operations: [{ op: 'grayscale' }],
    });
    const gone = await failure(missing.id);
    assert.match(gone.message, /s3:\/\/media-in\/photos\/nowhere\.jpg/);
    assert.equal(gone.type, 'ObjectNotFound');

    const corrupt = await jobs.start('processMedia', {
      input: `s3://${IN}/photos/truncated.jpg`,
      outputDir: `s3://${OUT}/broken/`,
      operations: [{ op: 'grayscale' }],
    });
    const broken = await failure(corrupt.id);
    assert.match(broken.message, /s3:\/\/media-in\/photos\/truncated\.jpg/);
    assert.doesNotMatch(broken.message, /backroom-scratch-/, 'the scratch copy is not what the user named');
    assert.deepEqual(await keys(OUT, 'broken/'), [], 'nothing written for a broken input');
  });

  it('leaves nothing of these jobs on the worker disk', () => {
    assert.ok(disk);
    assert.deepEqual(filesUnder(disk.dataDir), []);
    assert.deepEqual(
      filesUnder(disk.tmpDir).filter((file) => file.includes('backroom-scratch-')),
      [],
      'every scratch copy was removed',
    );
  });
});
