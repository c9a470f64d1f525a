/**
 * analyzeCuts on a real dev server, on videos generated with ffmpeg whose cuts are known: every hard cut found
 * to the frame, fades found inside the fade, no false cut in moving footage, the long shot split, scores and
 * thumbnails written; status counts seconds analysed, pause stops ffmpeg, cancel ends it, bad input fails at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffmpegPath } from '../../src/activities/video/ffmpeg';
import type { AnalyzeCutsResult } from '../../src/workflows/video';
import type { CutAnalysis } from '../../src/activities/video/analyze-clips';
import { Context } from '@temporalio/activity';
import {
  createTestWorker,
  sleep,
  startTestStack,
  testJobs,
  uniqueTaskQueue,
  waitFor,
  type TestStack,
} from '../helpers/temporal';
import { makeVideo, SOURCES, type KnownBoundary } from '../helpers/videos';

const FADE_FRAMES = 25;

/** Matches found boundaries to known ones: hard cuts within one frame, fades within the fade. */
function score(known: KnownBoundary[], found: { frame: number; kind: string }[]) {
  const unmatched = [...found];
  const missed: KnownBoundary[] = [];
  for (const truth of known) {
    const tolerance = truth.kind === 'cut' ? 1 : FADE_FRAMES;
    const at = unmatched.findIndex((f) => f.kind === truth.kind && Math.abs(f.frame - truth.frame) <= tolerance);
    if (at >= 0) unmatched.splice(at, 1);
    else missed.push(truth);
  }
  const hits = known.length - missed.length;
  return { precision: hits / (hits + unmatched.length), recall: hits / known.length, missed, extra: unmatched };
}

const running = (file: string) =>
  execFileSync('ps', ['-eo', 'args'])
    .toString()
    .split('\n')
    .some((line) => line.includes(ffmpegPath()) && line.includes(file));

describe('analyzeCuts on a real dev server', () => {
  let stack: TestStack;
  let dataDir: string;
  let known: KnownBoundary[];

  before(async () => {
    stack = await startTestStack('video');
    dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    ({ boundaries: known } = makeVideo(path.join(dataDir, 'footage.mp4'), [
      { source: SOURCES.moving, seconds: 3 },
      { source: SOURCES.bars, seconds: 2.48 },
      { source: SOURCES.zoom, seconds: 3 },
      { source: SOURCES.pan, seconds: 2.5 },
      { source: `${SOURCES.tinted},fade=t=out:st=1.5:d=1`, seconds: 2.5 },
      { source: SOURCES.black, seconds: 1, kind: 'black' },
      { source: `${SOURCES.hdbars},fade=t=in:d=1`, seconds: 3, kind: 'fade-in' },
      { source: `${SOURCES.moving},hue=h=100`, seconds: 45 },
    ]));
    // Ten minutes: the same footage looped, without re-encoding.
    execFileSync(
      ffmpegPath(),
      ['-v', 'error', '-stream_loop', '9', '-i', path.join(dataDir, 'footage.mp4')].concat([
        '-c',
        'copy',
        path.join(dataDir, 'long.mp4'),
      ]),
    );
  });
  after(() => stack.stop());

  it('finds every cut to the frame and the fades, splits the long shot, and scores and thumbnails each clip', async () => {
    const { id } = await stack.jobs.start('analyzeCuts', { video: 'footage.mp4' });
    const result = (await stack.jobs.result<AnalyzeCutsResult>(id)) as CutAnalysis & { outcome: string };
    assert.equal(result.outcome, 'completed');
    const { precision, recall, missed, extra } = score(known, result.boundaries);
    console.log(`cuts: precision ${precision.toFixed(2)}, recall ${recall.toFixed(2)} over ${known.length} boundaries`);
    assert.deepEqual(missed, [], 'every boundary found');
    assert.deepEqual(extra, [], 'no false cut inside the moving, zooming, panning or long segments');
    for (const truth of known.filter((k) => k.kind === 'cut')) {
      const found = result.boundaries.find((b) => Math.abs(b.frame - truth.frame) <= 1);
      assert.equal(found?.ms, Math.round((found?.frame ?? 0) * 40), 'milliseconds follow the timestamps');
    }

    const long = result.clips.filter((c) => c.startFrame >= 438);
    assert.equal(long.length, 3, 'the 45 s shot is split into three even clips');
    for (const clip of result.clips) {
      assert.ok(clip.endMs - clip.startMs <= 20_000);
      assert.ok(clip.visualScore >= 0 && clip.visualScore <= 1);
      assert.deepEqual(Object.keys(clip.components).sort(), [
        'colorfulness',
        'contrast',
        'exposure',
        'motion',
        'sharpness',
      ]);
      assert.ok(existsSync(path.join(dataDir, clip.thumbnail)), clip.thumbnail);
    }
    assert.equal(result.clipsCreated, result.clips.length);
    assert.ok(!result.clips.some((c) => c.startFrame < 363 && c.endFrame >= 340), 'the black stretch is no clip');
    const written = JSON.parse(readFileSync(path.join(dataDir, result.results), 'utf8')) as CutAnalysis;
    assert.deepEqual(written.cutFrames, result.cutFrames);
    assert.equal(result.results, 'footage-cuts/cuts.json');
  });

  it('counts seconds analysed in status; pause stops ffmpeg and holds, resume finishes with the same cuts', async () => {
    const { id } = await stack.jobs.start('analyzeCuts', { video: 'long.mp4', outputDir: 'long-cuts' });
    const live = await waitFor('seconds analysed', async () => {
      const view = await stack.jobs.status(id);
      return view.progress.done >= 30 && view.progress.done < 600 ? view : undefined;
    });
    assert.equal(live.progress.unit, 'seconds');
    assert.ok(Math.abs(live.progress.total - 625) <= 1, `total ${live.progress.total}`);
    await stack.jobs.pause(id);
    await waitFor('paused with no activity', async () => {
      const view = await stack.jobs.status(id);
      return view.state === 'paused' && view.activities.length === 0;
    });
    assert.equal(running('long.mp4'), false, 'ffmpeg stopped with the pause');
    const held = (await stack.jobs.status(id)).progress.done;
    await sleep(1500);
    assert.equal((await stack.jobs.status(id)).progress.done, held);
    await stack.jobs.resume(id);
    const result = (await stack.jobs.result<AnalyzeCutsResult>(id)) as CutAnalysis;
    assert.equal(result.frameCount, 10 * 1563);
    assert.equal(result.cutFrames.filter((f) => f < 1563).length, 7, 'the first loop has its 7 boundaries');
  });

  it('cancel ends the analysis with what it covered and leaves no ffmpeg behind', async () => {
    const { id } = await stack.jobs.start('analyzeCuts', { video: 'long.mp4', outputDir: 'cancelled-cuts' });
    await waitFor('some seconds', async () => (await stack.jobs.status(id)).progress.done >= 10);
    await stack.jobs.cancel(id);
    const result = await stack.jobs.result<AnalyzeCutsResult>(id);
    assert.equal(result.outcome, 'cancelled');
    assert.ok('secondsAnalyzed' in result && result.secondsAnalyzed >= 10);
    assert.equal(running('long.mp4'), false);
    // A partial cuts.json, marked so, with the boundaries found before the cancel: the loop's own, to the frame.
    assert.equal(result.results, 'cancelled-cuts/cuts.json');
    const partial = JSON.parse(readFileSync(path.join(dataDir, 'cancelled-cuts/cuts.json'), 'utf8')) as CutAnalysis;
    assert.equal(partial.partial?.reason, 'cancelled');
    assert.ok((partial.partial?.analyzedMs ?? 0) >= 10_000, JSON.stringify(partial.partial));
    assert.equal(partial.boundaries.length, result.boundariesFound);
    assert.ok(partial.boundaries.length >= 3, `boundaries found: ${partial.cutFrames.join(', ')}`);
    // The footage looped: its boundaries in every loop, and the cut where one loop joins the next.
    const loops = Array.from({ length: 10 }, (_, loop) => [
      ...known.map((k) => ({ ...k, frame: k.frame + loop * 1563 })),
      ...(loop > 0 ? [{ frame: loop * 1563, kind: 'cut' as const }] : []),
    ]);
    const { extra } = score(loops.flat(), partial.boundaries);
    assert.deepEqual(extra, [], 'every boundary found is a real one');
    assert.ok(partial.boundaries.every((b) => b.ms <= (partial.partial?.analyzedMs ?? 0)));
  });

  it('counts clips scored while it scores, so status never sits at 100 % with work left', async () => {
    // The real workflow with stand-in activities: detection finds two cuts in 60 s, scoring holds on its first clip.
    const info = { durationMs: 60_000, fps: 25, frameCount: 1500, width: 320, height: 180, codec: 'h264' };
    const segment = (startFrame: number) => ({
      startFrame,
      startMs: startFrame * 40,
      black: false,
      changeSum: 0,
      frames: 1,
    });
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const taskQueue = uniqueTaskQueue('video-progress');
    const worker = await createTestWorker(stack.env, taskQueue, {
      activities: {
        probeVideoFile: async () => ({ ...info, rotation: 0, variableFrameRate: false, startMs: 0 }),
        claimCutsFolder: async () => undefined,
        detectShots: async () => ({
          finished: true,
          result: {
            boundaries: [],
            segments: [segment(0), segment(500), segment(1000)],
            framesAnalyzed: 1500,
            lastFrameMs: 59_960,
            attempts: 1,
          },
          progress: { done: 60, total: 60, unit: 'seconds' },
        }),
        analyzeClipsResumable: async () => {
          Context.current().heartbeat({ checkpoint: { clips: [] }, progress: { done: 1, total: 3, unit: 'clips' } });
          await released;
          const result = { clipsCreated: 3, cutFrames: [500, 1000], clips: [], results: 'progress-cuts/cuts.json' };
          return { finished: true, result, progress: { done: 3, total: 3, unit: 'clips' } };
        },
      },
    });
    const running = worker.run();
    try {
      const jobs = testJobs(stack.env, taskQueue);
      const { id } = await jobs.start('analyzeCuts', { video: 'footage.mp4', outputDir: 'progress-cuts' });
      const scoring = await waitFor('the scoring stage', async () => {
        const view = await jobs.status(id);
        return view.stage === 'scoring clips' && view.progress.done >= 1 ? view : undefined;
      });
      assert.deepEqual(scoring.progress, { done: 1, total: 3, unit: 'clips' });
      release();
      await jobs.result(id);
      assert.deepEqual((await jobs.status(id)).progress, { done: 3, total: 3, unit: 'clips' });
    } finally {
      release();
      worker.shutdown();
      await running;
    }
  });

  it('fails at once, saying why, for a missing video', async () => {
    const { id } = await stack.jobs.start('analyzeCuts', { video: 'nowhere.mp4' });
    await assert.rejects(stack.jobs.result(id), (err: Error & { cause?: Error & { cause?: Error } }) => {
      assert.match(err.cause?.cause?.message ?? '', /The video nowhere\.mp4 does not exist/);
      return true;
    });
  });
});
