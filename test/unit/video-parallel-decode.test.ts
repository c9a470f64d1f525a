/**
 * The detection pass's parallel decoding: stretches of the video that start at keyframes, one ffmpeg each, give
 * exactly the frames (order, times, pixels, candidates) of one ffmpeg over the whole video, from the start and from
 * a resume point; containers without an exact index, and keyframes too sparse to share, decode in one process;
 * aborting leaves no ffmpeg behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffmpegPath, SAFE_INPUT_OPTIONS } from '../../src/activities/video/ffmpeg';
import { decodeFrames, type DecodedFrame, type DecodeOptions } from '../../src/activities/video/frames';
import { decodeFramesInParallel, stretchTargets } from '../../src/activities/video/parallel-frames';
import { makeLongGopVideo, makeVideo, SOURCES } from '../helpers/videos';

const FPS = 25;
/** ffprobe's name for an MP4 file's container (VideoInfo.formatName). */
const MP4 = 'mov,mp4,m4a,3gp,3g2,mj2';

async function collect(frames: AsyncGenerator<DecodedFrame>): Promise<DecodedFrame[]> {
  const all: DecodedFrame[] = [];
  for await (const frame of frames) all.push(frame);
  return all;
}

function assertSameFrames(actual: DecodedFrame[], expected: DecodedFrame[]) {
  assert.equal(actual.length, expected.length, 'as many frames');
  actual.forEach((frame, i) => {
    const wanted = expected[i]!;
    assert.equal(frame.index, wanted.index, `frame ${i}: index`);
    assert.equal(frame.ms, wanted.ms, `frame ${i}: time`);
    assert.ok(frame.pixels.equals(wanted.pixels), `frame ${i} (${frame.ms} ms): the same pixels`);
    assert.equal(
      Boolean(frame.candidate),
      Boolean(wanted.candidate),
      `frame ${i} (${frame.ms} ms): a candidate or not`,
    );
    if (frame.candidate) {
      assert.ok(frame.candidate.pixels.equals(wanted.candidate!.pixels), `frame ${i}: the same candidate`);
      assert.ok(frame.candidate.jpeg.equals(wanted.candidate!.jpeg), `frame ${i}: the same candidate JPEG`);
    }
  });
}

/** ffmpeg processes reading `file` now. */
function ffmpegsReading(file: string): number {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(path.basename(file)) && /ffmpeg|ffprobe/.test(line)).length;
}

/** Waits up to 5 s for `done`. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !done(); await new Promise((resolve) => setTimeout(resolve, 50))) {
    if (Date.now() - started > 5000) assert.fail(`timed out waiting: ${what}`);
  }
}

describe('parallel decoding of the detection pass', () => {
  let dir: string;
  let video: string;
  let options: DecodeOptions;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'backroom-parallel-decode-'));
    video = path.join(dir, 'long-gop.mp4');
    makeLongGopVideo(video, FPS);
    options = {
      width: 96,
      height: 54,
      inputOptions: SAFE_INPUT_OPTIONS,
      candidates: { width: 160, height: 90, everyMs: 333 },
    };
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('aims the stretches after the first evenly, as many as the lanes, at least 10 s and at most a minute', () => {
    // Two lanes: the second stretch aimed at half the video (its decoder lands on the keyframe at or before).
    assert.deepEqual(stretchTargets(0, 2, 26_000), [13_000]);
    // Three lanes: a third of 26 s is under 10 s, so stretches of at least 10 s.
    assert.deepEqual(stretchTargets(0, 3, 26_000), [10_000, 20_000]);
    // From a resume point: what is left is shared.
    assert.deepEqual(stretchTargets(7040, 2, 26_000), [17_040]);
    // A long video: a multiple of the lanes, none over a minute (300 s: 6 of 50 s).
    assert.deepEqual(stretchTargets(0, 2, 300_000), [50_000, 100_000, 150_000, 200_000, 250_000]);
    // Too short to share.
    assert.deepEqual(stretchTargets(0, 2, 9_000), []);
    assert.deepEqual(stretchTargets(17_040, 2, 26_000), []);
  });

  it('gives the frames, times and candidates of one ffmpeg, from the start and from a resume point', async () => {
    for (const from of [{}, { fromMs: 7040, firstIndex: 176, previousMs: 7000 }]) {
      const single = await collect(decodeFrames(video, { ...options, ...from }));
      const parallel = await collect(
        decodeFramesInParallel(video, {
          ...options,
          ...from,
          lanes: 2,
          fps: FPS,
          durationMs: 26_000,
          isUrl: false,
          formatName: MP4,
        }),
      );
      // 26 s at 25 fps (a frame more where a segment's length rounds up), or what follows frame 176 at 7.04 s.
      assert.ok(Math.abs(single.length - (from.fromMs ? 650 - 176 : 650)) <= 1, `${single.length} frames`);
      assert.deepEqual([single[0]!.index, single[0]!.ms], from.fromMs ? [176, 7040] : [0, 0]);
      assertSameFrames(parallel, single);
      // A resumed decode carries on as if never stopped: the same frames, and candidates in the same steps.
      if (from.fromMs) assertSameFrames(single, (await collect(decodeFrames(video, options))).slice(176));
      // Three lanes (more than the stretches left) change nothing either.
      assertSameFrames(
        await collect(
          decodeFramesInParallel(video, {
            ...options,
            ...from,
            lanes: 3,
            fps: FPS,
            durationMs: 26_000,
            isUrl: false,
            formatName: MP4,
          }),
        ),
        single,
      );
    }
  });

  it('decodes in one process where the container cannot seek to a keyframe exactly (Matroska here)', async () => {
    const mkv = path.join(dir, 'long-gop.mkv');
    execFileSync(ffmpegPath(), ['-v', 'error', '-i', video, '-c', 'copy', mkv]);
    const single = await collect(decodeFrames(mkv, options));
    const parallel = { ...options, lanes: 2, fps: FPS, durationMs: 26_000, isUrl: false, formatName: 'matroska,webm' };
    assertSameFrames(await collect(decodeFramesInParallel(mkv, parallel)), single);
  });

  it('decodes in one process, the same frames, when the keyframes are too sparse to share out', async () => {
    // One keyframe in 12 s: the second stretch's seek lands back on the first frame.
    const sparse = path.join(dir, 'one-keyframe.mp4');
    makeVideo(sparse, [{ source: SOURCES.moving, seconds: 12 }], { fps: FPS, keyframeSeconds: 20 });
    const single = await collect(decodeFrames(sparse, options));
    assert.equal(single.length, 12 * FPS);
    const parallel = { ...options, lanes: 2, fps: FPS, durationMs: 12_000, isUrl: false, formatName: MP4 };
    assertSameFrames(await collect(decodeFramesInParallel(sparse, parallel)), single);
  });

  it('stops every ffmpeg when aborted, and when the reader stops early', async () => {
    // A frame rate of 1 makes each stretch hold 27 frames ahead: both ffmpegs then wait, alive, for the reader.
    const held = { ...options, lanes: 2, fps: 1, durationMs: 26_000, isUrl: false, formatName: MP4 };
    const stop = new AbortController();
    const frames = decodeFramesInParallel(video, { ...held, signal: stop.signal });
    for (let i = 0; i < 5; i++) assert.equal((await frames.next()).done, false);
    await until(() => ffmpegsReading(video) === 2, 'two stretches decode at once');
    stop.abort();
    for (let next = await frames.next(); !next.done; next = await frames.next());
    await until(() => ffmpegsReading(video) === 0, 'no ffmpeg left after the abort');

    const early = decodeFramesInParallel(video, held);
    for (let i = 0; i < 5; i++) await early.next();
    await until(() => ffmpegsReading(video) === 2, 'two stretches decode at once');
    await early.return(undefined);
    await until(() => ffmpegsReading(video) === 0, 'no ffmpeg left once the reader stopped');
  });
});
