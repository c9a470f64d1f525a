/**
 * Cut analysis as a player shows the video: thumbnails at the display aspect ratio (non-square pixels), and times
 * on the container's timeline when the video stream starts after the container does (audio first).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { analyzeClipsResumable, type CutAnalysis } from '../../src/activities/video/analyze-clips';
import { detectShots } from '../../src/activities/video/detect-shots';
import { ffmpegPath } from '../../src/activities/video/ffmpeg';
import { displaySize, probeVideoFile, type VideoInfo } from '../../src/activities/video/probe';
import { runActivity } from '../helpers/activity';
import { makeVideo, SOURCES } from '../helpers/videos';

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
const mock = () => new MockActivityEnvironment(undefined, quiet);

/** Detection and scoring of `video` in mock activity contexts, as the job runs them. */
async function analyze(video: string, info: VideoInfo, outputDir: string): Promise<CutAnalysis> {
  const detected = await runActivity(mock(), detectShots, { video, info });
  assert.ok(detected.finished);
  const request = { video, outputDir, info, shots: detected.result, maxClipSeconds: 20, minClipSeconds: 1 };
  const scored = await runActivity(mock(), analyzeClipsResumable, request);
  assert.ok(scored.finished);
  return scored.result;
}

const ffmpeg = (...args: string[]) => execFileSync(ffmpegPath(), ['-nostdin', '-y', '-v', 'error', ...args]);

describe('cut analysis as the video is shown', () => {
  let dataDir: string;

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-video-display-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    // Two shots, a hard cut at frame 50 (2 s).
    makeVideo(path.join(dataDir, 'square.mp4'), [
      { source: SOURCES.moving, seconds: 2 },
      { source: SOURCES.bars, seconds: 2 },
    ]);
  });

  it('makes thumbnails at the display aspect ratio: 704×576 with 16:11 pixels (16:9) gives 320×180', async () => {
    ffmpeg(
      '-i',
      path.join(dataDir, 'square.mp4'),
      '-vf',
      'scale=704:576,setsar=16/11',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      path.join(dataDir, 'pal-wide.mp4'),
    );
    const info = await probeVideoFile({ video: 'pal-wide.mp4' });
    assert.equal(info.width, 704);
    assert.equal(info.height, 576);
    assert.ok(Math.abs((info.sampleAspectRatio ?? 0) - 16 / 11) < 0.001, `SAR ${info.sampleAspectRatio}`);
    assert.deepEqual(displaySize(info), { width: 1024, height: 576 });
    const result = await analyze('pal-wide.mp4', info, 'pal-wide-cuts');
    assert.deepEqual(result.cutFrames, [50]);
    assert.ok(result.clips.length >= 2);
    for (const clip of result.clips) {
      const { width, height } = await sharp(path.join(dataDir, clip.thumbnail)).metadata();
      assert.deepEqual([width, height], [320, 180], clip.thumbnail);
    }
  });

  it('keeps square-pixel thumbnails as they were (320×180 for 320×180)', async () => {
    const info = await probeVideoFile({ video: 'square.mp4' });
    assert.equal(info.sampleAspectRatio, 1);
    const result = await analyze('square.mp4', info, 'square-cuts');
    const { width, height } = await sharp(path.join(dataDir, result.clips[0]!.thumbnail)).metadata();
    assert.deepEqual([width, height], [320, 180]);
  });

  it('puts cutMs on the container timeline when the video stream starts 1.5 s after the audio', async () => {
    ffmpeg(
      '-f',
      'lavfi',
      '-t',
      '6',
      '-i',
      'sine=f=440:sample_rate=48000',
      '-itsoffset',
      '1.5',
      '-i',
      path.join(dataDir, 'square.mp4'),
      '-map',
      '0:a',
      '-map',
      '1:v',
      '-c:v',
      'copy',
      '-c:a',
      'aac',
      path.join(dataDir, 'late.mp4'),
    );
    const info = await probeVideoFile({ video: 'late.mp4' });
    assert.equal(info.startMs, 1500);
    assert.equal(info.timelineStartMs, 0);
    const result = await analyze('late.mp4', info, 'late-cuts');
    assert.deepEqual(result.cutFrames, [50], "frames count from the stream's first frame");
    assert.deepEqual(result.cutMs, [3500], 'the cut 2 s into the stream is 3.5 s into the file');
    assert.equal(result.clips[0]!.startMs, 1500, 'the first clip starts where the video does');
    assert.equal(result.clips.at(-1)!.endMs, 5500, 'and the last ends where it ends');
  });

  it('puts cutMs on the container timeline when the whole file starts late (-output_ts_offset)', async () => {
    ffmpeg(
      '-i',
      path.join(dataDir, 'square.mp4'),
      '-c',
      'copy',
      '-output_ts_offset',
      '10',
      '-f',
      'mpegts',
      path.join(dataDir, 'offset.ts'),
    );
    const info = await probeVideoFile({ video: 'offset.ts' });
    assert.ok(info.startMs >= 10_000, `starts at ${info.startMs}`);
    const result = await analyze('offset.ts', info, 'offset-cuts');
    assert.deepEqual(result.cutMs, [2000], "the container starts with the stream: its timeline is the stream's");
  });
});
