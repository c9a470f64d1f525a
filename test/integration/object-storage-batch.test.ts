/**
 * restoreBatch from and to object storage, on a real S3-compatible server (SeaweedFS) and a real dev server, with two
 * worker processes that share no folder (each its own BACKROOM_DATA_DIR and temporary folder): one is SIGKILLed in the
 * middle of the batch, and the job still completes with every page restored, uploaded and logged exactly once, its
 * state and report in the bucket and nothing of it on either worker's disk. A bucket off the allow-list is refused at
 * the door and, past it, by the job itself at once; the same batch started again restores nothing twice.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { JobInputError, type Jobs } from '../../src/client/jobs';
import { degradePage, randomDegradation, renderCleanPage } from '../../src/activities/restoration/page-generator';
import { rootCause } from '../../src/shared/failures';
import type { RestoreBatchResult } from '../../src/workflows/restoration';
import { fixtureFile } from '../helpers/fixtures';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { filesUnder, makeWorkerDisk, removeWorkerDisk, workerDiskEnv, type WorkerDisk } from '../helpers/disk';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';
import { startTestServer, testJobs, uniqueTaskQueue, waitFor } from '../helpers/temporal';

const IN = 'batch-in';
const OUT = 'batch-out';
/** Generated pages (with their clean originals as references) besides the real manuscript page of the fixtures. */
const GENERATED = 11;

interface ReportItem {
  input: string;
  output: string | null;
  ok: boolean;
  error?: string;
}

describe('restoreBatch on object storage, two workers with no shared disk', { timeout: 30 * 60_000 }, () => {
  let s3: SeaweedS3;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let taskQueue: string;
  const workers: WorkerProcess[] = [];
  /** Each worker's data dir and temporary folder: its whole disk, as far as the job is concerned. */
  const disks: WorkerDisk[] = [];
  const pages: string[] = [];
  const previousBuckets = process.env.BACKROOM_S3_BUCKETS;

  async function keys(bucket: string, prefix: string): Promise<{ key: string; etag: string; modified: number }[]> {
    const found: { key: string; etag: string; modified: number }[] = [];
    let token: string | undefined;
    do {
      const page = await s3.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const item of page.Contents ?? []) {
        found.push({ key: item.Key ?? '', etag: item.ETag ?? '', modified: item.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  async function text(bucket: string, key: string): Promise<string> {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await got.Body?.transformToString('utf8')) ?? '';
  }

  const put = (key: string, body: Uint8Array) =>
    s3.client.send(new PutObjectCommand({ Bucket: IN, Key: key, Body: body }));

  before(async () => {
    s3 = await startSeaweedS3({ buckets: [IN, OUT, 'not-listed'] });
    env = await startTestServer();
    taskQueue = uniqueTaskQueue('s3-batch');
    // The door (the Jobs client) checks buckets against this process's allow-list, as the workers do against theirs.
    process.env.BACKROOM_S3_BUCKETS = `${IN},${OUT}`;
    jobs = testJobs(env, taskQueue);

    for (let index = 0; index < GENERATED; index++) {
      const name = `page-${String(index + 1).padStart(2, '0')}`;
      const clean = await renderCleanPage({ seed: 500 + index, width: 800, height: 1100 });
      await put(`clean/${name}.png`, clean);
      await put(`scans/${name}.jpg`, await degradePage(clean, randomDegradation(500 + index), 500 + index));
      pages.push(`${name}.jpg`);
    }
    // A real manuscript page and its ground truth (test/fixtures/SOURCES.md).
    await put('scans/2JohnC1V3.png', readFileSync(fixtureFile('documents/2JohnC1V3.png')));
    await put('clean/2JohnC1V3.png', readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
    pages.push('2JohnC1V3.png');
    pages.sort();

    for (let index = 0; index < 2; index++) {
      const disk = makeWorkerDisk(`s3-worker${index}`);
      disks.push(disk);
      workers.push(
        await startWorkerProcess({
          ...s3.env,
          TEMPORAL_ADDRESS: env.address,
          BACKROOM_TASK_QUEUE: taskQueue,
          ...workerDiskEnv(disk),
          BACKROOM_S3_BUCKETS: `${IN},${OUT}`,
          BACKROOM_MAX_ACTIVITIES: '4',
        }),
      );
    }
  });

  after(async () => {
    for (const worker of workers) await stopWorkerProcess(worker);
    await env?.teardown();
    await s3?.stop();
    for (const disk of disks) removeWorkerDisk(disk);
    if (previousBuckets === undefined) delete process.env.BACKROOM_S3_BUCKETS;
    else process.env.BACKROOM_S3_BUCKETS = previousBuckets;
  });

  const batch = {
    inputDir: `s3://${IN}/scans/`,
    referenceDir: `s3://${IN}/clean/`,
    outputDir: `s3://${OUT}/restored/`,
    concurrency: 4,
  };

  it('completes with one worker killed mid-batch: every page once, state and report in the bucket', async () => {
    const [dying, survivor] = workers;
    assert.ok(dying && survivor);
    const started = performance.now();
    const { id } = await jobs.start('restoreBatch', batch);
    // Kill the first worker while it holds a page (its identity is `<pid>@<host>`) and some pages are done.
    const handle = env.client.workflow.getHandle(id);
    await waitFor(
      'a page in flight on the first worker, after a page was done',
      async () => {
        const status = await jobs.status(id);
        if (status.progress.done < 1) return false;
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        return pending.some(
          (activity) =>
            activity.activityType?.name === 'restoreBatchItem' &&
            activity.lastWorkerIdentity?.startsWith(`${dying.process.pid}@`),
        );
      },
      300_000,
    );
    const doneAtKill = (await jobs.status(id)).progress.done;
    dying.process.kill('SIGKILL');
    await dying.exited;

    const result = await jobs.result<RestoreBatchResult>(id);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `restoreBatch s3→s3: ${pages.length} pages in ${seconds.toFixed(1)} s with a worker killed after ${doneAtKill} ` +
        `(${(pages.length / seconds).toFixed(2)} pages/s, including the 10 s heartbeat timeout of the dead worker)`,
    );
    assert.equal(result.outcome, 'completed');
    assert.equal(result.total, pages.length);
    assert.equal(result.succeeded, pages.length, JSON.stringify(result));
    assert.equal(result.failed, 0);
    assert.equal(result.report, `s3://${OUT}/restored/report.json`);

    // The dead worker's pages went to the survivor: a restoreBatchItem started again on a later attempt.
    const history = await handle.fetchHistory();
    const retried = (history.events ?? []).filter(
      (event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1,
    );
    assert.ok(retried.length >= 1, 'at least one page was taken over after the kill');

    // Exactly one output object per page, named after it.
    const stored = await keys(OUT, 'restored/');
    const outputs = stored.map((o) => o.key).filter((key) => !key.startsWith('restored/.backroom/'));
    const expected = pages.map((page) => `restored/${page.replace(/\.[^.]+$/, '.png')}`);
    assert.deepEqual(outputs.filter((key) => key.endsWith('.png')).sort(), expected.sort());
    assert.deepEqual(
      outputs.filter((key) => !key.endsWith('.png')).sort(),
      ['restored/report.json', 'restored/report.txt'],
      'nothing else next to the outputs',
    );
    // The write log (one object per upload) shows each page's output written once.
    const logged = stored.map((o) => o.key).filter((key) => key.startsWith('restored/.backroom/writes/'));
    const perIndex = new Map<string, number>();
    for (const key of logged) {
      const index = key.slice('restored/.backroom/writes/'.length).split('.')[0] ?? '';
      perIndex.set(index, (perIndex.get(index) ?? 0) + 1);
    }
    assert.equal(perIndex.size, pages.length, logged.join('\n'));
    assert.ok(
      [...perIndex.values()].every((count) => count === 1),
      `an output was written twice:\n${logged.join('\n')}`,
    );
    // The batch's state is in the bucket: the manifest with its fingerprint and one result per page.
    const manifest = JSON.parse(await text(OUT, 'restored/.backroom/manifest.json')) as {
      fingerprint: string;
      outputDir: string;
      items: { input: string; output: string; reference?: string }[];
    };
    assert.match(manifest.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(manifest.outputDir, `s3://${OUT}/restored/`);
    assert.equal(manifest.items.length, pages.length);
    assert.ok(
      manifest.items.every((item) => item.reference?.startsWith(`s3://${IN}/clean/`)),
      'references matched',
    );
    const results = stored.filter((o) => /^restored\/\.backroom\/results\/\d+\.json$/.test(o.key));
    assert.equal(results.length, pages.length);

    // The report in the bucket lists every page once, each restored, and the references show a gain.
    const report = JSON.parse(await text(OUT, 'restored/report.json')) as {
      items: (ReportItem & { metrics?: { reference?: { psnrGain: number } } })[];
      aggregates: { succeeded: number; meanPsnrGain: number };
    };
    assert.deepEqual(
      report.items.map((item) => item.input).sort(),
      pages.map((page) => `s3://${IN}/scans/${page}`).sort(),
    );
    assert.ok(report.items.every((item) => item.ok, JSON.stringify(report.items.filter((item) => !item.ok))));
    assert.equal(report.aggregates.succeeded, pages.length);
    assert.ok(report.aggregates.meanPsnrGain > 0, `mean PSNR gain ${report.aggregates.meanPsnrGain}`);
    assert.match(await text(OUT, 'restored/report.txt'), new RegExp(`Restored ${pages.length} of ${pages.length}`));

    // Neither worker kept anything of the batch on its disk; the survivor removed every scratch copy.
    for (const disk of disks) {
      const left = filesUnder(disk.dataDir).filter((file) => /\.backroom|restored|report|scans|clean/.test(file));
      assert.deepEqual(left, [], `batch state in ${disk.dataDir}`);
    }
    const survivorScratch = filesUnder(disks[1]!.tmpDir).filter((file) => file.startsWith('backroom-scratch-'));
    assert.deepEqual(survivorScratch, [], 'scratch copies are removed after each page');
  });

  it('the same batch started again resumes from the bucket: no page is restored or uploaded twice', async () => {
    const before = new Map((await keys(OUT, 'restored/')).map((o) => [o.key, o]));
    const { id } = await jobs.start('restoreBatch', batch);
    const result = await jobs.result<RestoreBatchResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.succeeded, pages.length);
    const after = await keys(OUT, 'restored/');
    const changed = after.filter((o) => {
      const was = before.get(o.key);
      return !was || was.etag !== o.etag || was.modified !== o.modified;
    });
    // Only the report is written again (a rewrite with the same bytes in the same second shows no change); no output,
    // result or write-log entry is new or different.
    const reports = new Set(['restored/report.json', 'restored/report.txt']);
    assert.deepEqual(
      changed.map((o) => o.key).filter((key) => !reports.has(key)),
      [],
      'outputs, results and the write log are untouched',
    );
    assert.ok(
      after.some((o) => o.key === 'restored/report.json'),
      'the report is there',
    );
  });

  it('inputs named one by one in a bucket: a missing object is one failed item with the reason', async () => {
    const { id } = await jobs.start('restoreBatch', {
      inputs: [`s3://${IN}/scans/${pages[0]}`, `s3://${IN}/scans/missing.jpg`],
      outputDir: `s3://${OUT}/picked/`,
    });
    const result = await jobs.result<RestoreBatchResult>(id);
    assert.equal(result.succeeded, 1, JSON.stringify(result));
    assert.equal(result.failed, 1);
    const report = JSON.parse(await text(OUT, 'picked/report.json')) as { items: ReportItem[] };
    const missing = report.items.find((item) => item.input.endsWith('missing.jpg'));
    assert.match(
      missing?.error ?? '',
      /^Input: Cannot read s3:\/\/batch-in\/scans\/missing\.jpg: there is no such object\./,
    );
  });

  it('a bucket off the allow-list is refused at the door, and by the job at once when it gets past', async () => {
    const refused = { ...batch, inputDir: 's3://not-listed/scans/', outputDir: `s3://${OUT}/elsewhere/` };
    await assert.rejects(
      jobs.start('restoreBatch', refused),
      (err: unknown) =>
        err instanceof JobInputError &&
        /inputDir/.test(err.message) &&
        /bucket "not-listed" is not on the allow-list\. Add it to BACKROOM_S3_BUCKETS/.test(err.message),
    );
    // Malformed locations are refused by the schema itself, the workflow's too (no allow-list needed to see them).
    for (const [field, value, problem] of [
      ['outputDir', `s3://${OUT}/restored`, /a folder in a bucket ends with "\/"/],
      ['inputDir', `s3://${IN}/../scans/`, /the key has a "\.\." segment/],
      ['outputDir', 's3://x/restored/', /bucket names are 3 to 63 characters long/],
    ] as const) {
      await assert.rejects(
        jobs.start('restoreBatch', { ...batch, [field]: value }),
        (err: unknown) => err instanceof JobInputError && err.message.includes(field) && problem.test(err.message),
        `${field}: ${value}`,
      );
    }
    // Started past the door (as the temporal CLI would): the job fails for good in its first step, not retried.
    const started = performance.now();
    const handle = await env.client.workflow.start('restoreBatch', {
      taskQueue,
      workflowId: `s3-refused-${Date.now()}`,
      args: [refused],
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      const cause = rootCause(err);
      assert.equal(cause.type, 'S3LocationRefused', cause.message);
      assert.match(
        cause.message,
        /^Input dir: S3 location "s3:\/\/not-listed\/scans\/" is refused: bucket "not-listed" is not on the allow-list\. Add it to BACKROOM_S3_BUCKETS/,
      );
      return true;
    });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 20, `refused in ${seconds.toFixed(1)} s`);
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).flatMap((event) => event.activityTaskStartedEventAttributes?.attempt ?? []);
    assert.ok(attempts.length >= 1 && attempts.every((attempt) => attempt === 1), 'the refusal is not retried');
    assert.deepEqual(await keys(OUT, 'elsewhere/'), [], 'nothing was written');
  });
});
