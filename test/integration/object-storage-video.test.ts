/**
 * analyzeCuts on object storage, on a real S3-compatible server (SeaweedFS), a real dev server and a real worker
 * process with a disk of its own (its own BACKROOM_DATA_DIR and temporary folder, nothing shared): a generated video
 * with known cuts in a bucket is analysed from the bucket into the bucket, ffmpeg streaming it through a presigned
 * URL. The cuts are those of the same analysis of a local copy, the thumbnails, cuts.json and the state record are
 * objects, and nothing of the job stays on the worker's disk. Scoring on a worker without the detection pass's
 * candidates seeks through the URL instead and finds the same clips; a cancel's partial cuts.json goes to the bucket
 * and its candidates leave the worker's scratch. A bucket off the allow-list and a missing object
 * are refused at once, with the location named.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { closeObjectStorage } from '../../src/activities/places';
import { analyzeClipsResumable, writePartialCuts, type CutAnalysis } from '../../src/activities/video/analyze-clips';
import { detectShots } from '../../src/activities/video/detect-shots';
import { probeVideoFile } from '../../src/activities/video/probe';
import { generateSampleVideo, type SampleVideoResult } from '../../src/activities/video/sample-video';
import { candidatesLocation } from '../../src/activities/video/video-source';
import { JobInputError, type Jobs } from '../../src/client/jobs';
import { rootCause } from '../../src/shared/failures';
import type { AnalyzeCutsResult } from '../../src/workflows/video';
import { activityOfWorkflow, runActivity } from '../helpers/activity';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { filesUnder, makeWorkerDisk, workerDiskEnv, type WorkerDisk } from '../helpers/disk';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';
import { startTestServer, testJobs, uniqueTaskQueue } from '../helpers/temporal';

const MEDIA = 'media';
const CUTS = 'cuts-out';
const VIDEO = `s3://${MEDIA}/clips/sample.mp4`;
/** One frame at 25 fps: hard cuts are found to the frame. */
const FRAME_MS = 40;

type Completed = CutAnalysis & { outcome: 'completed' };

describe('analyzeCuts on object storage, a worker with a disk of its own', { timeout: 5 * 60_000 }, () => {
  let s3: SeaweedS3;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let taskQueue: string;
  let worker: WorkerProcess | undefined;
  let sample: SampleVideoResult;
  /** This test process's data dir (where the video is made before it is uploaded). */
  let ownDataDir: string;
  const disk: WorkerDisk = { dataDir: '', tmpDir: '' };
  let fromBucket: Completed | undefined;
  const previous = { ...process.env };

  const keys = (bucket: string, prefix: string) => s3.keys(bucket, prefix);

  async function object(location: string): Promise<Buffer> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(location) ?? [];
    const got = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from((await got.Body?.transformToByteArray()) ?? []);
  }

  /** The worker's disk holds nothing of a job: no file in its data dir, no scratch folder in its temporary one. */
  function assertDiskClean(what: string) {
    assert.deepEqual(filesUnder(disk.dataDir), [], `${what}: files in the worker's data dir`);
    const scratch = readdirSync(disk.tmpDir).filter((name) => name.startsWith('backroom-scratch-'));
    assert.deepEqual(scratch, [], `${what}: scratch folders in the worker's temporary folder`);
  }

  before(async () => {
    const started = performance.now();
    [s3, env] = await Promise.all([startSeaweedS3({ buckets: [MEDIA, CUTS, 'not-listed'] }), startTestServer()]);
    taskQueue = uniqueTaskQueue('s3-video');
    // The door (the Jobs client) and this process's own activities use the same allow-list and keys as the worker.
    Object.assign(process.env, s3.env, { BACKROOM_S3_BUCKETS: `${MEDIA},${CUTS}` });
    jobs = testJobs(env, taskQueue);

    ownDataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-s3-video-maker-'));
    process.env.BACKROOM_DATA_DIR = ownDataDir;
    // Four shots of the project's sample footage, 8.4 s at 320×180: cuts at 2, 3.6 and 5.6 s.
    sample = await generateSampleVideo({
      output: 'sample.mp4',
      shots: [
        { source: 'moving', seconds: 2 },
        { source: 'bars', seconds: 1.6 },
        { source: 'zoom', seconds: 2 },
        { source: 'pan', seconds: 2.8 },
      ],
    });
    await s3.client.send(
      new PutObjectCommand({
        Bucket: MEDIA,
        Key: 'clips/sample.mp4',
        Body: readFileSync(path.join(ownDataDir, 'sample.mp4')),
      }),
    );

    Object.assign(disk, makeWorkerDisk('s3-video-worker'));
    worker = await startWorkerProcess({
      ...s3.env,
      TEMPORAL_ADDRESS: env.address,
      BACKROOM_TASK_QUEUE: taskQueue,
      ...workerDiskEnv(disk),
      BACKROOM_S3_BUCKETS: `${MEDIA},${CUTS}`,
    });
    console.log(
      `# setup (SeaweedFS, dev server, video, worker) ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  after(async () => {
    closeObjectStorage();
    // The three stop on their own: at once, not one after the other.
    const timed = async (what: string, stop: () => Promise<void> | undefined) => {
      const started = performance.now();
      await stop();
      console.log(`# stopped ${what} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    };
    await Promise.all([
      timed('the worker', () => stopWorkerProcess(worker)),
      timed('the dev server', () => env?.teardown()),
      timed('SeaweedFS', () => s3?.stop()),
    ]);
    for (const dir of [disk.dataDir, disk.tmpDir, ownDataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
    for (const key of Object.keys(process.env)) if (!(key in previous)) delete process.env[key];
    Object.assign(process.env, previous);
  });

  it('analyses a video in a bucket into a bucket: the known cuts, thumbnails and cuts.json as objects', async () => {
    const started = performance.now();
    const { id } = await jobs.start('analyzeCuts', { video: VIDEO, outputDir: `s3://${CUTS}/sample/` });
    const result = await jobs.result<AnalyzeCutsResult>(id);
    console.log(
      `# analyzeCuts s3→s3 of ${sample.durationMs} ms: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(result.outcome, 'completed', JSON.stringify(result));
    fromBucket = result as Completed;

    // Every cut of the sample to the frame, and nothing else.
    assert.equal(fromBucket.cutMs.length, sample.cutMs.length, `cuts at ${fromBucket.cutMs.join(', ')} ms`);
    fromBucket.cutMs.forEach((ms, i) =>
      assert.ok(Math.abs(ms - sample.cutMs[i]!) <= FRAME_MS, `cut ${i}: ${ms} ms, made at ${sample.cutMs[i]} ms`),
    );
    assert.equal(fromBucket.video, VIDEO);
    assert.equal(fromBucket.results, `s3://${CUTS}/sample/cuts.json`);
    assert.equal(fromBucket.clipsCreated, sample.cutMs.length + 1);

    // The outputs and the state record are objects in the output prefix, and nothing else is.
    const thumbnails = fromBucket.clips.map((clip) => clip.thumbnail);
    assert.deepEqual(
      thumbnails,
      fromBucket.clips.map((_, i) => `s3://${CUTS}/sample/thumbnails/clip-00${i + 1}.jpg`),
    );
    assert.deepEqual(
      await keys(CUTS, 'sample/'),
      [
        'sample/.backroom/job.json',
        'sample/cuts.json',
        ...thumbnails.map((t) => t.slice(`s3://${CUTS}/`.length)),
      ].sort(),
    );
    for (const thumbnail of thumbnails) {
      const jpeg = await object(thumbnail);
      assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], `${thumbnail} is a JPEG`);
    }
    const written = JSON.parse((await object(fromBucket.results)).toString('utf8')) as CutAnalysis;
    assert.deepEqual(written.cutMs, fromBucket.cutMs);
    assert.equal(written.video, VIDEO);
    const record = JSON.parse((await object(`s3://${CUTS}/sample/.backroom/job.json`)).toString('utf8')) as {
      holds: string;
    };
    assert.match(record.holds, /^the cuts of s3:\/\/media\/clips\/sample\.mp4 \(threshold 3/);

    // The video was streamed, not copied, and the candidates lived in the worker's scratch: all gone now.
    assertDiskClean('after the s3 analysis');
  });

  it('finds the same cuts and clips as the analysis of a local copy, and writes beside the object by default', async () => {
    assert.ok(fromBucket, 'the s3 analysis ran');
    copyFileSync(path.join(ownDataDir, 'sample.mp4'), path.join(disk.dataDir, 'sample.mp4'));
    const [local, beside] = await Promise.all([
      jobs.start('analyzeCuts', { video: 'sample.mp4' }).then(({ id }) => jobs.result<AnalyzeCutsResult>(id)),
      jobs.start('analyzeCuts', { video: VIDEO }).then(({ id }) => jobs.result<AnalyzeCutsResult>(id)),
    ]);
    assert.equal(local.outcome, 'completed');
    assert.equal(beside.outcome, 'completed');
    const same = (analysis: Completed) => ({
      cutMs: analysis.cutMs,
      cutFrames: analysis.cutFrames,
      frameCount: analysis.frameCount,
      clips: analysis.clips.map(({ thumbnail: _, ...clip }) => clip),
    });
    assert.deepEqual(same(fromBucket), same(local as Completed), 'the same analysis on a local copy');
    assert.deepEqual(same(fromBucket), same(beside as Completed));
    assert.equal((local as Completed).results, 'sample-cuts/cuts.json');
    // The default outputDir of an object is a prefix beside it, in its bucket.
    assert.equal((beside as Completed).results, `s3://${MEDIA}/clips/sample-cuts/cuts.json`);
    assert.ok((await keys(MEDIA, 'clips/sample-cuts/')).includes('clips/sample-cuts/cuts.json'));
    rmSync(path.join(disk.dataDir, 'sample.mp4'));
    rmSync(path.join(disk.dataDir, 'sample-cuts'), { recursive: true });
    assertDiskClean('after both analyses');
  });

  it('scores by seeking through the URL on a worker without the candidates, and finds the same clips', async () => {
    assert.ok(fromBucket, 'the s3 analysis ran');
    // This process plays a worker: detection keeps candidates in its scratch; they are lost before scoring.
    const outputDir = `s3://${CUTS}/resumed/`;
    const info = await runActivity(activityOfWorkflow('cuts-resume'), probeVideoFile, { video: VIDEO });
    const detected = await runActivity(activityOfWorkflow('cuts-resume'), detectShots, {
      video: VIDEO,
      info,
      candidates: { outputDir },
    });
    assert.ok(detected.finished && detected.result.candidates);
    const scratch = candidatesLocation(outputDir, { workflowId: 'cuts-resume', runId: 'cuts-resume-run' });
    assert.ok(scratch.scratch && scratch.file.startsWith(os.tmpdir()), scratch.file);
    assert.ok(existsSync(scratch.file), 'the candidates are in this worker’s scratch, not in the bucket');
    assert.deepEqual(await keys(CUTS, 'resumed/'), []);
    rmSync(path.dirname(scratch.file), { recursive: true });

    const scored = await runActivity(activityOfWorkflow('cuts-resume'), analyzeClipsResumable, {
      video: VIDEO,
      outputDir,
      info,
      shots: detected.result,
      maxClipSeconds: 20,
      minClipSeconds: 1,
    });
    assert.ok(scored.finished);
    assert.deepEqual(
      scored.result.clips.map((clip) => [clip.startMs, clip.endMs]),
      fromBucket.clips.map((clip) => [clip.startMs, clip.endMs]),
    );
    assert.ok(
      scored.result.clips.every((clip) => clip.thumbnail.startsWith(outputDir) && clip.visualScore > 0),
      JSON.stringify(scored.result.clips),
    );
    assert.deepEqual(
      await keys(CUTS, 'resumed/'),
      ['resumed/cuts.json', ...scored.result.clips.map((c) => c.thumbnail.slice(`s3://${CUTS}/`.length))].sort(),
    );
  });

  it('a cancelled analysis writes its partial cuts.json to the bucket and drops its scratch candidates', async () => {
    const outputDir = `s3://${CUTS}/cancelled/`;
    const mock = () => activityOfWorkflow('cuts-cancelled');
    const info = await runActivity(mock(), probeVideoFile, { video: VIDEO });
    const detected = await runActivity(mock(), detectShots, { video: VIDEO, info, candidates: { outputDir } });
    assert.ok(detected.finished);
    const scratch = candidatesLocation(outputDir, { workflowId: 'cuts-cancelled', runId: 'cuts-cancelled-run' });
    assert.ok(existsSync(scratch.file));
    const partial = await runActivity(mock(), writePartialCuts, {
      video: VIDEO,
      outputDir,
      info,
      boundaries: detected.result.boundaries,
      framesAnalyzed: detected.result.framesAnalyzed,
      analyzedMs: info.durationMs,
    });
    assert.equal(partial.results, `${outputDir}cuts.json`);
    assert.deepEqual(partial.partial, { analyzedMs: info.durationMs, reason: 'cancelled' });
    assert.deepEqual(await keys(CUTS, 'cancelled/'), ['cancelled/cuts.json']);
    const written = JSON.parse((await object(partial.results)).toString('utf8')) as CutAnalysis;
    assert.equal(written.partial?.reason, 'cancelled');
    assert.equal(existsSync(path.dirname(scratch.file)), false, 'the scratch candidates are gone');
  });

  it('refuses a bucket off the allow-list at the door and in the job, and a missing object, naming them', async () => {
    const refused = { video: 's3://not-listed/clips/sample.mp4' };
    await assert.rejects(
      jobs.start('analyzeCuts', refused),
      (err: unknown) =>
        err instanceof JobInputError &&
        /video/.test(err.message) &&
        /bucket "not-listed" is not on the allow-list/.test(err.message),
    );
    await assert.rejects(
      jobs.start('analyzeCuts', { video: VIDEO, outputDir: `s3://${CUTS}/no-slash` }),
      (err: unknown) =>
        err instanceof JobInputError && /outputDir/.test(err.message) && /ends with "\/"/.test(err.message),
    );
    // Started past the door (as the temporal CLI would): each fails for good in its first step, not retried.
    const cases: [object, string, RegExp][] = [
      [
        refused,
        'S3LocationRefused',
        /^Video: S3 location "s3:\/\/not-listed\/clips\/sample\.mp4" is refused: bucket "not-listed" is not on the allow-list/,
      ],
      [
        { video: VIDEO, outputDir: 's3://not-listed/cuts/' },
        'S3LocationRefused',
        /^Output dir: S3 location "s3:\/\/not-listed\/cuts\/" is refused: bucket "not-listed" is not on the allow-list/,
      ],
      [{ video: `s3://${MEDIA}/clips/missing.mp4` }, 'ObjectNotFound', /s3:\/\/media\/clips\/missing\.mp4/],
    ];
    for (const [input, type, message] of cases) {
      const handle = await env.client.workflow.start('analyzeCuts', {
        taskQueue,
        workflowId: `s3-video-refused-${type}-${Date.now()}`,
        args: [input],
      });
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError, String(err));
        const cause = rootCause(err);
        assert.equal(cause.type, type, cause.message);
        assert.match(cause.message, message);
        assert.doesNotMatch(cause.message, /X-Amz-|https?:\/\//, 'no presigned URL in a message');
        return true;
      });
      const history = await handle.fetchHistory();
      const attempts = (history.events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
      assert.ok(
        attempts.every((attempt) => attempt === 1),
        'the refusal is not retried',
      );
    }
    assert.deepEqual(await keys('not-listed', ''), [], 'nothing was written to the refused bucket');
    assertDiskClean('after the refusals');
  });
});
