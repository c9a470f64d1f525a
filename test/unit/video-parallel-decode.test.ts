/**
 * The detection pass's parallel decoding: stretches of the video that start at keyframes, one ffmpeg each, give
 * exactly the frames (order, times, pixels, candidates) of one ffmpeg over the whole video, from the start and from
 * a resume point; containers without an exact index decode in one process; aborting leaves no ffmpeg behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffmpegPath, SAFE_INPUT_OPTIONS } from '../../src/activities/video/ffmpeg';
import { decodeFrames, type DecodedFrame, type DecodeOptions } from '../../src/activities/video/frames';
import { decodeFramesInParallel, keyframeTimes, planStretches } from '../../src/activities/video/parallel-frames';
import { makeLongGopVideo } from '../helpers/videos';

const FPS = 25;

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

  it('finds the keyframes in the index, and plans stretches that start at them, as many as the lanes', async () => {
    const keyframes = [0, 5000, 10000, 15000, 20000, 25000];
    assert.deepEqual(await keyframeTimes(video, SAFE_INPUT_OPTIONS, 0), keyframes);
    // Two lanes: two stretches, split at the first keyframe past half the video.
    assert.deepEqual(planStretches(keyframes, 0, 2, 26_000), [
      { fromMs: 0, toMs: 15000, fromKeyframe: false },
      { fromMs: 15000, toMs: Infinity, fromKeyframe: true },
    ]);
    // Three lanes: a third of 26 s is under 10 s, so stretches of at least 10 s.
    assert.deepEqual(planStretches(keyframes, 0, 3, 26_000), [
      { fromMs: 0, toMs: 10000, fromKeyframe: false },
      { fromMs: 10000, toMs: 20000, fromKeyframe: true },
      { fromMs: 20000, toMs: Infinity, fromKeyframe: true },
    ]);
    // From a resume point: the first stretch starts there, the next at least 10 s on.
    assert.deepEqual(planStretches(keyframes, 7040, 2, 26_000), [
      { fromMs: 7040, toMs: 20000, fromKeyframe: false },
      { fromMs: 20000, toMs: Infinity, fromKeyframe: true },
    ]);
    // A long video: a multiple of the lanes, none over a minute where the keyframes allow (300 s: 6 of 50 s).
    const every8s = Array.from({ length: 36 }, (_, i) => Math.round((i * 250 * 1000) / 30));
    const long = planStretches(every8s, 0, 2, 300_000);
    assert.deepEqual(
      long.map((s) => s.fromMs),
      [0, 50000, 100000, 150000, 200000, 250000],
    );
  });

  it('gives the frames, times and candidates of one ffmpeg, from the start and from a resume point', async () => {
    for (const from of [{}, { fromMs: 7040, firstIndex: 176, previousMs: 7000 }]) {
      const single = await collect(decodeFrames(video, { ...options, ...from }));
      const parallel = await collect(
        decodeFramesInParallel(video, { ...options, ...from, lanes: 2, fps: FPS, durationMs: 26_000, isUrl: false }),
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
          decodeFramesInParallel(video, { ...options, ...from, lanes: 3, fps: FPS, durationMs: 26_000, isUrl: false }),
        ),
        single,
      );
    }
  });

  it('decodes in one process where the container cannot seek to a keyframe exactly (Matroska here)', async () => {
    const mkv = path.join(dir, 'long-gop.mkv');
    execFileSync(ffmpegPath(), ['-v', 'error', '-i', video, '-c', 'copy', mkv]);
    assert.equal(await keyframeTimes(mkv, SAFE_INPUT_OPTIONS, 0), undefined);
    const single = await collect(decodeFrames(mkv, options));
    assertSameFrames(
      await collect(decodeFramesInParallel(mkv, { ...options, lanes: 2, fps: FPS, durationMs: 26_000, isUrl: false })),
      single,
    );
  });

  it('stops every ffmpeg when aborted, and when the reader stops early', async () => {
    // A frame rate of 1 makes each stretch hold 27 frames ahead: both ffmpegs then wait, alive, for the reader.
    const held = { ...options, lanes: 2, fps: 1, durationMs: 26_000, isUrl: false };
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
