/**
 * analyzeCuts' locations without a server: the input schema takes s3 locations (a file for the video, a folder for
 * outputDir), the default outputDir of an object is a prefix beside it, ffmpeg may read a URL by HTTP(S) only, the
 * candidates of an analysis into a bucket stay in the worker's scratch, and a bucket off the allow-list is refused
 * for good before any request, naming the location.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { closeObjectStorage } from '../../src/activities/places';
import { cutsFingerprint } from '../../src/activities/video/cuts-folder';
import { candidatesLocation, inputOptionsFor, videoName } from '../../src/activities/video/video-source';
import { analyzeCutsInput, defaultCutsDir } from '../../src/shared/video-inputs';

describe('analyzeCuts with s3 locations', () => {
  const previous = { data: process.env.BACKROOM_DATA_DIR, buckets: process.env.BACKROOM_S3_BUCKETS };

  before(() => {
    process.env.BACKROOM_DATA_DIR = path.join(os.tmpdir(), 'backroom-video-s3-unit');
    process.env.BACKROOM_S3_BUCKETS = 'media';
    closeObjectStorage();
  });
  after(() => {
    closeObjectStorage();
    for (const [key, value] of [
      ['BACKROOM_DATA_DIR', previous.data],
      ['BACKROOM_S3_BUCKETS', previous.buckets],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('the schema takes an object as the video and a prefix as outputDir, and refuses them the other way round', () => {
    const parsed = analyzeCutsInput.parse({ video: 's3://media/clips/a.mp4', outputDir: 's3://media/cuts/' });
    assert.equal(parsed.video, 's3://media/clips/a.mp4');
    assert.equal(parsed.outputDir, 's3://media/cuts/');
    const video = analyzeCutsInput.safeParse({ video: 's3://media/clips/' });
    assert.match(video.error?.issues[0]?.message ?? '', /names a folder \(it ends with "\/"\), not a file/);
    const folder = analyzeCutsInput.safeParse({ video: 'a.mp4', outputDir: 's3://media/cuts' });
    assert.match(
      folder.error?.issues[0]?.message ?? '',
      /a folder in a bucket ends with "\/" \(s3:\/\/media\/cuts\/\)/,
    );
  });

  it('the default outputDir is beside the video: a folder in the data dir, a prefix in the bucket', () => {
    assert.equal(defaultCutsDir('clips/a.mp4'), 'clips/a-cuts');
    assert.equal(defaultCutsDir('a.mp4'), 'a-cuts');
    assert.equal(defaultCutsDir('s3://media/clips/a.mp4'), 's3://media/clips/a-cuts/');
    assert.equal(defaultCutsDir('s3://media/a.b.mov'), 's3://media/a.b-cuts/');
    // What the default gives is itself a valid outputDir.
    assert.ok(analyzeCutsInput.safeParse({ video: 'x.mp4', outputDir: defaultCutsDir('s3://media/a.mp4') }).success);
  });

  it('ffmpeg reads a local file by the file protocol only, and a URL by HTTP(S) only', () => {
    const whitelist = (options: string[]) => options[options.indexOf('-protocol_whitelist') + 1];
    assert.equal(whitelist(inputOptionsFor('/data/a.mp4', false)), 'file');
    assert.equal(whitelist(inputOptionsFor('http://127.0.0.1:8333/media/a.mp4?X-Amz-Signature=1', true)), 'http,tcp');
    assert.equal(whitelist(inputOptionsFor('https://s3.amazonaws.com/media/a.mp4', true)), 'https,tls,tcp');
    for (const options of [inputOptionsFor('/a.mp4', false), inputOptionsFor('https://x/a.mp4', true)]) {
      assert.ok(options.includes('-format_whitelist'), 'the demuxers are limited either way');
    }
    // A URL's video may not make ffmpeg open local files (a playlist in a bucket naming /etc/...).
    assert.doesNotMatch(whitelist(inputOptionsFor('http://x/a.mp4', true)) ?? '', /file/);
  });

  it('the candidates of an analysis into a bucket are in the worker’s scratch, one folder per output and run', () => {
    const bucket = candidatesLocation('s3://media/cuts/');
    assert.equal(bucket.scratch, true);
    assert.equal(path.dirname(path.dirname(bucket.file)), os.tmpdir());
    assert.match(path.basename(path.dirname(bucket.file)), /^backroom-scratch-cuts-[0-9a-f]{24}$/);
    assert.deepEqual(candidatesLocation('s3://media/cuts/'), bucket, 'the same output finds them again');
    assert.notEqual(candidatesLocation('s3://media/other/').file, bucket.file);
    // Another run's candidates (a dead worker's, another video's into the same prefix) are never taken for its own.
    const run = { workflowId: 'analyze-a', runId: 'run-1' };
    assert.deepEqual(candidatesLocation('s3://media/cuts/', run), candidatesLocation('s3://media/cuts/', { ...run }));
    assert.notEqual(candidatesLocation('s3://media/cuts/', run).file, bucket.file);
    assert.notEqual(
      candidatesLocation('s3://media/cuts/', run).file,
      candidatesLocation('s3://media/cuts/', { ...run, runId: 'run-2' }).file,
    );
    const local = candidatesLocation('clips/a-cuts');
    assert.equal(local.scratch, false);
    assert.equal(local.file, path.join(process.env.BACKROOM_DATA_DIR!, 'clips/a-cuts/thumbnails/.candidates.bin'));
  });

  it('an object is named by its s3 location; a bucket off the allow-list fails for good, naming it', async () => {
    assert.equal(videoName('s3://media/clips/a.mp4'), 's3://media/clips/a.mp4');
    assert.equal(videoName('clips/a.mp4'), 'clips/a.mp4');
    const request = { outputDir: 's3://media/cuts/', maxClipSeconds: 20, minClipSeconds: 1, threshold: 3 };
    await assert.rejects(
      cutsFingerprint({ ...request, video: 's3://elsewhere/a.mp4' }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.nonRetryable &&
        err.type === 'S3LocationRefused' &&
        /^Video: S3 location "s3:\/\/elsewhere\/a\.mp4" is refused: bucket "elsewhere" is not on the allow-list/.test(
          err.message,
        ),
    );
  });
});
