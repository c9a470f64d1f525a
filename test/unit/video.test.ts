/**
 * Unit tests of cut analysis: the shot detector on synthetic frames, clips from shots, frame quality, and the
 * activities on videos generated with ffmpeg (probe errors, resume from a checkpoint, ffmpeg stopped on cancel,
 * flat memory over ten minutes of video).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { buildClips, shotsFromSegments, type Span } from '../../src/activities/video/clips';
import { frameQuality } from '../../src/activities/video/clip-quality';
import { detectShots, type DetectCheckpoint } from '../../src/activities/video/detect-shots';
import { ffmpegPath, ffprobePath } from '../../src/activities/video/ffmpeg';
import { detectionDecoderOptions } from '../../src/activities/video/frames';
import { probeVideoFile, type VideoInfo } from '../../src/activities/video/probe';
import { DEFAULT_DETECTOR, ShotDetector } from '../../src/activities/video/shot-detector';
import type { ActivityHeartbeat } from '../../src/shared/job-status';
import { runActivity } from '../helpers/activity';
import { makeVideo, SOURCES } from '../helpers/videos';

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };

/** The detection pass in a mock activity context. */
const detect = (video: string, info: VideoInfo, resumeFrom?: DetectCheckpoint) =>
  runActivity(new MockActivityEnvironment(undefined, quiet), detectShots, { video, info, resumeFrom });

/** The detection pass, cancelled (as a pause does) once its checkpoint reaches `frame`. */
function detectUntil(video: string, info: VideoInfo, frame: number) {
  const env = new MockActivityEnvironment(undefined, quiet);
  env.on('heartbeat', (beat: ActivityHeartbeat<DetectCheckpoint>) => {
    if (beat.checkpoint.nextIndex >= frame) env.cancel();
  });
  return runActivity(env, detectShots, { video, info });
}

/** A frame of 16×9 RGB pixels from a seed: the same seed gives the same picture. */
function picture(seed: number, brightness = 1): Uint8Array {
  const frame = new Uint8Array(16 * 9 * 3);
  let state = seed * 7919 + 13;
  for (let i = 0; i < frame.length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    frame[i] = Math.round((60 + (state % 160)) * brightness);
  }
  return frame;
}

/** A smooth pattern moving `offset` pixels sideways: each frame differs from the last, as in a fast pan. */
function moving(offset: number): Uint8Array {
  const frame = new Uint8Array(16 * 9 * 3);
  for (let p = 0; p < 16 * 9; p++) {
    const x = (p % 16) + offset;
    frame.set([128 + 80 * Math.sin(x / 3), 128 + 80 * Math.cos(x / 4), 128], p * 3);
  }
  return frame;
}

describe('ShotDetector', () => {
  it('finds hard cuts at the exact frame, fades as boundaries, and no cut in fast steady motion', () => {
    const detector = new ShotDetector(DEFAULT_DETECTOR);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) frames.push(picture(1)); // still shot
    for (let i = 0; i < 30; i++) frames.push(moving(i)); // every frame changes: fast motion, no cut inside
    for (let i = 0; i < 30; i++) frames.push(picture(2)); // still again: a cut at 60
    for (let i = 0; i < 10; i++) frames.push(picture(2, 1 - (i + 1) / 10)); // fade to black
    for (let i = 0; i < 10; i++) frames.push(picture(2, 0));
    for (let i = 0; i < 10; i++) frames.push(picture(3, (i + 1) / 10)); // fade in
    for (let i = 0; i < 20; i++) frames.push(picture(3));
    frames.forEach((pixels, i) => detector.push(i, i * 40, pixels));
    detector.finish();
    assert.deepEqual(
      detector.state.boundaries.map((b) => [b.frame, b.kind]),
      [
        [30, 'cut'],
        [60, 'cut'],
        [99, 'fade-out'], // the first frame darker than the black level
        [110, 'fade-in'], // the first frame out of it
      ],
    );
    assert.deepEqual(
      detector.state.segments.map((s) => [s.startFrame, s.black]),
      [
        [0, false],
        [30, false],
        [60, false],
        [99, true],
        [110, false],
      ],
    );
  });

  it('carries on from its saved state exactly as if it had never stopped', () => {
    const frames = Array.from({ length: 90 }, (_, i) => picture(Math.floor(i / 20)));
    const whole = new ShotDetector(DEFAULT_DETECTOR);
    frames.forEach((pixels, i) => whole.push(i, i * 40, pixels));
    whole.finish();
    const first = new ShotDetector(DEFAULT_DETECTOR);
    frames.slice(0, 41).forEach((pixels, i) => first.push(i, i * 40, pixels));
    const resumed = new ShotDetector(DEFAULT_DETECTOR, first.snapshot());
    frames.slice(41).forEach((pixels, i) => resumed.push(41 + i, (41 + i) * 40, pixels));
    resumed.finish();
    assert.deepEqual(resumed.state.boundaries, whole.state.boundaries);
    assert.deepEqual(
      whole.state.boundaries.map((b) => b.frame),
      [20, 40, 60, 80],
    );
  });
});

describe('clips from shots', () => {
  const shot = (startFrame: number, endFrame: number): Span => ({
    startFrame,
    endFrame,
    startMs: startFrame * 40,
    endMs: endFrame * 40,
    change: 1,
  });

  it('splits a long shot into even parts no longer than the maximum', () => {
    const clips = buildClips([shot(0, 1125)], { minMs: 1000, maxMs: 20_000 }); // 45 s
    assert.deepEqual(
      clips.map((c) => [c.startFrame, c.endFrame, c.endMs - c.startMs]),
      [
        [0, 375, 15_000],
        [375, 750, 15_000],
        [750, 1125, 15_000],
      ],
    );
  });

  it('joins a shot shorter than the minimum to its neighbour, and drops black stretches', () => {
    const segments = [
      { startFrame: 0, startMs: 0, black: false, changeSum: 10, frames: 50 },
      { startFrame: 50, startMs: 2000, black: false, changeSum: 0, frames: 10 },
      { startFrame: 60, startMs: 2400, black: true, changeSum: 0, frames: 25 },
      { startFrame: 85, startMs: 3400, black: false, changeSum: 0, frames: 50 },
    ];
    const shots = shotsFromSegments(segments, 135, 5400);
    assert.deepEqual(
      shots.map((s) => [s.startFrame, s.endFrame]),
      [
        [0, 50],
        [50, 60],
        [85, 135],
      ],
    );
    const clips = buildClips(shots, { minMs: 1000, maxMs: 20_000 });
    assert.deepEqual(
      clips.map((c) => [c.startFrame, c.endFrame]),
      [
        [0, 60],
        [85, 135],
      ],
    );
  });
});

describe('frameQuality', () => {
  it('ranks a detailed, well exposed, colorful frame above a flat grey or a black one', () => {
    const width = 64;
    const height = 36;
    const detailed = new Uint8Array(width * height * 3);
    const grey = new Uint8Array(width * height * 3).fill(128);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        const on = (x + y) % 2 === 0;
        detailed.set(on ? [230, 60, 40] : [30, 90, 200], i);
      }
    }
    const good = frameQuality(detailed, width, height);
    const flat = frameQuality(grey, width, height);
    const dark = frameQuality(new Uint8Array(width * height * 3), width, height);
    assert.ok(good.sharpness > 0.9 && flat.sharpness === 0);
    assert.ok(good.colorfulness > 0.5 && flat.colorfulness === 0);
    assert.ok(good.contrast > flat.contrast);
    assert.ok(flat.exposure > 0.9 && dark.exposure === 0);
  });
});

describe('video activities on generated videos', () => {
  let dataDir: string;
  let info: VideoInfo;

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-video-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    makeVideo(path.join(dataDir, 'short.mp4'), [
      { source: SOURCES.moving, seconds: 4 },
      { source: SOURCES.bars, seconds: 4 },
      { source: SOURCES.zoom, seconds: 4 },
    ]);
  });

  const refuses = async (video: string, pattern: RegExp) =>
    assert.rejects(
      probeVideoFile({ video }),
      (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && pattern.test(err.message),
    );

  it('probes a video, and refuses missing, empty, non-video, audio-only, truncated and outside files', async () => {
    info = await probeVideoFile({ video: 'short.mp4' });
    assert.deepEqual(
      [info.durationMs, info.fps, info.frameCount, info.width, info.height, info.codec, info.formatName],
      [12_000, 25, 300, 320, 180, 'h264', 'mov,mp4,m4a,3gp,3g2,mj2'],
    );
    writeFileSync(path.join(dataDir, 'empty.mp4'), '');
    writeFileSync(path.join(dataDir, 'notes.mp4'), 'not a video at all');
    execFileSync(ffmpegPath(), ['-v', 'error', '-f', 'lavfi', '-i', 'sine=duration=1', path.join(dataDir, 'tone.m4a')]);
    copyFileSync(path.join(dataDir, 'short.mp4'), path.join(dataDir, 'truncated.mp4'));
    truncateSync(path.join(dataDir, 'truncated.mp4'), 20_000);
    await refuses('missing.mp4', /does not exist/);
    await refuses('empty.mp4', /is empty \(0 bytes\)/);
    await refuses('notes.mp4', /cannot be read: Invalid data found when processing input/);
    await refuses('tone.m4a', /has no video stream \(it has: audio\)/);
    await refuses('truncated.mp4', /truncated\.mp4 cannot be read: .*not corrupt/);
    await refuses('../elsewhere.mp4', /outside the data dir/);
  });

  it('refuses a playlist that would make ffmpeg read a video outside the data dir', async () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'backroom-elsewhere-'));
    copyFileSync(path.join(dataDir, 'short.mp4'), path.join(elsewhere, 'private.mp4'));
    const playlist = ['#EXTM3U', '#EXT-X-TARGETDURATION:12', '#EXTINF:12,', path.join(elsewhere, 'private.mp4')];
    writeFileSync(path.join(dataDir, 'playlist.m3u8'), `${[...playlist, '#EXT-X-ENDLIST'].join('\n')}\n`);
    await refuses('playlist.m3u8', /is a hls file, which video jobs do not read/);
    await assert.rejects(
      runActivity(new MockActivityEnvironment(undefined, quiet), detectShots, { video: 'playlist.m3u8', info }),
      // Without the demuxer allow-list ffmpeg would open the other file and analyse it.
      (err: unknown) => err instanceof ApplicationFailure && /could not be decoded/.test(err.message),
    );
  });

  it('refuses a stream that ends long before the duration it declares', async () => {
    const file = path.join(dataDir, 'cut-short.mp4');
    execFileSync(ffmpegPath(), [
      '-v',
      'error',
      '-i',
      path.join(dataDir, 'short.mp4'),
      '-c',
      'copy',
      '-movflags',
      '+faststart',
      file,
    ]);
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const declared = await probeVideoFile({ video: 'cut-short.mp4' });
    await assert.rejects(
      runActivity(new MockActivityEnvironment(undefined, quiet), detectShots, {
        video: 'cut-short.mp4',
        info: declared,
      }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.nonRetryable &&
        /ends after [\d.]+ s of the 12\.0 s it declares/.test(err.message),
    );
  });

  it('stops when cancelled, kills ffmpeg, and resumes from the checkpoint instead of frame 0', async () => {
    const whole = await detect('short.mp4', info);
    assert.ok(whole.finished);
    assert.deepEqual(
      whole.result.boundaries.map((b) => b.frame),
      [100, 200],
    );

    const stopped = await detectUntil('short.mp4', info, 125);
    assert.ok(!stopped.finished);
    const running = () => execFileSync('ps', ['-eo', 'args']).toString().split('\n');
    assert.ok(!running().some((line) => line.includes(ffmpegPath()) && line.includes('short.mp4')), 'no ffmpeg left');

    const resumedEnv = new MockActivityEnvironment(undefined, quiet);
    const beats: ActivityHeartbeat<DetectCheckpoint>[] = [];
    resumedEnv.on('heartbeat', (beat: ActivityHeartbeat<DetectCheckpoint>) => beats.push(beat));
    const resumed = await runActivity(resumedEnv, detectShots, {
      video: 'short.mp4',
      info,
      resumeFrom: stopped.checkpoint,
    });
    assert.ok(resumed.finished);
    assert.equal(beats[0]?.checkpoint.nextIndex, stopped.checkpoint.nextIndex, 'started from the checkpoint');
    assert.ok(stopped.checkpoint.nextIndex >= 125);
    assert.deepEqual(resumed.result.boundaries, whole.result.boundaries);
    assert.equal(resumed.result.framesAnalyzed, 300);

    // A retry after a dead worker starts from the last heartbeat's checkpoint the same way.
    const retried = await runActivity(
      new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { checkpoint: stopped.checkpoint } }, quiet),
      detectShots,
      { video: 'short.mp4', info },
    );
    assert.ok(retried.finished);
    assert.deepEqual(retried.result.boundaries, whole.result.boundaries);
    assert.equal(retried.result.attempts, 2);
  });

  const packagedProbe = /@ffprobe-installer/.test(ffprobePath());
  it(
    'reports times from the start of the stream when it does not start at 0 (MPEG-TS), also after a resume',
    {
      skip: packagedProbe && 'the static ffprobe from npm crashes on MPEG-TS: install ffmpeg (apt-get install ffmpeg)',
    },
    async () => {
      execFileSync(ffmpegPath(), [
        '-v',
        'error',
        '-i',
        path.join(dataDir, 'short.mp4'),
        '-c',
        'copy',
        path.join(dataDir, 'short.ts'),
      ]);
      const ts = await probeVideoFile({ video: 'short.ts' });
      assert.ok(ts.startMs > 1000, `starts at ${ts.startMs} ms`);
      assert.equal(ts.formatName, 'mpegts'); // not cut into stretches: its seeks do not land on keyframes exactly
      const stopped = await detectUntil('short.ts', ts, 150);
      assert.ok(!stopped.finished);
      const resumed = await detect('short.ts', ts, stopped.checkpoint);
      assert.ok(resumed.finished);
      assert.deepEqual(
        resumed.result.boundaries.map((b) => [b.frame, b.ms]),
        [
          [100, 4000],
          [200, 8000],
        ],
      );
    },
  );

  it('skips deblocking only on video ten times the analysis width, and still finds every cut to the frame', async () => {
    assert.deepEqual(detectionDecoderOptions(1280, 96), ['-skip_loop_filter', 'all']);
    assert.deepEqual(detectionDecoderOptions(960, 96), ['-skip_loop_filter', 'all']);
    assert.deepEqual(detectionDecoderOptions(704, 96), [], 'block edges would be about a pixel at the analysis size');
    assert.deepEqual(detectionDecoderOptions(undefined, 96), []);
    // 720p: the detection pass decodes it without deblocking.
    makeVideo(
      path.join(dataDir, 'large.mp4'),
      [
        { source: SOURCES.moving, seconds: 2 },
        { source: SOURCES.bars, seconds: 2 },
        { source: SOURCES.zoom, seconds: 2 },
      ],
      { width: 1280, height: 720 },
    );
    const large = await probeVideoFile({ video: 'large.mp4' });
    assert.equal(large.width, 1280);
    const outcome = await detect('large.mp4', large);
    assert.ok(outcome.finished);
    assert.deepEqual(
      outcome.result.boundaries.map((b) => [b.kind, b.frame]),
      [
        ['cut', 50],
        ['cut', 100],
      ],
    );
  });

  it('places cuts in variable-frame-rate video by timestamp', async () => {
    // 3 s at 25 fps, 3 s at 10 fps, 3 s at 25 fps, joined without making the rate constant.
    const sources = [SOURCES.moving, SOURCES.bars.replace('rate=25', 'rate=10'), SOURCES.zoom];
    const args = ['-y', '-v', 'error'];
    for (const source of sources) args.push('-f', 'lavfi', '-t', '3', '-i', source);
    const chains = sources.map((_, i) => `[${i}:v]scale=320:180,format=yuv420p,setsar=1,settb=1/1000[v${i}]`);
    args.push('-filter_complex', `${chains.join(';')};[v0][v1][v2]concat=n=3:v=1[out]`, '-map', '[out]');
    args.push('-vsync', '2', '-c:v', 'libx264', '-preset', 'ultrafast', path.join(dataDir, 'vfr.mp4'));
    execFileSync(ffmpegPath(), args);
    const vfr = await probeVideoFile({ video: 'vfr.mp4' });
    assert.equal(vfr.variableFrameRate, true);
    const outcome = await detect('vfr.mp4', vfr);
    assert.ok(outcome.finished);
    assert.deepEqual(
      outcome.result.boundaries.map((b) => [b.frame, b.ms]),
      [
        [75, 3000],
        [105, 6000],
      ],
    );
  });

  it('analyses ten minutes of video with flat memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    makeVideo(path.join(dataDir, 'ten-minutes.mp4'), [{ source: SOURCES.moving, seconds: 600 }], {
      width: 160,
      height: 90,
      fps: 10,
    });
    const long = await probeVideoFile({ video: 'ten-minutes.mp4' });
    const env = new MockActivityEnvironment(undefined, quiet);
    const heap: number[] = [];
    let sizes = 0;
    env.on('heartbeat', (beat: ActivityHeartbeat<DetectCheckpoint>) => {
      if (beat.checkpoint.nextIndex % 600 < 10) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
        sizes = Math.max(sizes, JSON.stringify(beat.checkpoint).length);
      }
    });
    const outcome = await runActivity(env, detectShots, { video: 'ten-minutes.mp4', info: long });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.framesAnalyzed, 6000);
    const growth = (Math.max(...heap.slice(1)) - heap[1]!) / 1024 / 1024;
    console.log(
      `10 min of video: heap growth ${growth.toFixed(1)} MB over ${heap.length} samples, checkpoint ${sizes} bytes`,
    );
    assert.ok(heap.length >= 8);
    assert.ok(growth < 20, `heap grew by ${growth.toFixed(1)} MB`);
    assert.ok(sizes < 50_000, `checkpoints stay small (${sizes} bytes)`);
  });
});
