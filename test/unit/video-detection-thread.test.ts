/**
 * The detection pass's own thread: its steps carry what a detector fed the same frames on this thread would find,
 * a second of video each, in order; stopping it kills its ffmpeg at once; ffmpeg's errors keep their kind across
 * the thread; and a dead thread fails its passes (for Temporal to retry) and is replaced by the next one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeDetectionThread, startDetection } from '../../src/activities/video/detection-thread';
import type { DetectionJob, DetectionStep } from '../../src/activities/video/detection-worker';
import { SAFE_INPUT_OPTIONS } from '../../src/activities/video/ffmpeg';
import { DecodeError, decodeFrames } from '../../src/activities/video/frames';
import { DEFAULT_DETECTOR, initialDetectorState, ShotDetector } from '../../src/activities/video/shot-detector';
import { makeLongGopVideo } from '../helpers/videos';

const FPS = 25;

function job(file: string, scratchDir: string): DetectionJob {
  return {
    file,
    decode: {
      width: 96,
      height: 54,
      inputOptions: SAFE_INPUT_OPTIONS,
      candidates: { width: 160, height: 90, everyMs: 333 },
      lanes: 2,
      fps: FPS,
      durationMs: 26_000,
      isUrl: false,
      formatName: 'mov,mp4,m4a,3gp,3g2,mj2',
    },
    detector: DEFAULT_DETECTOR,
    from: { nextIndex: 0, nextMs: 0, detector: initialDetectorState(), finished: false },
    framesPerStep: FPS,
    candidates: { file: path.join(scratchDir, 'candidates.bin'), scratch: true, width: 160, height: 90 },
  };
}

/** ffmpeg processes reading `file` now. */
function ffmpegsReading(file: string): number {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(path.basename(file)) && /ffmpeg/.test(line)).length;
}

describe('the detection thread', { timeout: 120_000 }, () => {
  let dir: string;
  let video: string;
  const never = new AbortController().signal;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'backroom-detection-thread-'));
    video = path.join(dir, 'cuts.mp4');
    // Cuts at frames 100, 175, 300, ~387 and ~550.
    makeLongGopVideo(video, FPS);
  });

  after(async () => {
    await closeDetectionThread();
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts a checkpoint a second of video, in order, with what a detector here finds in the same frames', async () => {
    const run = startDetection(job(video, path.join(dir, 'scratch-1')));
    const steps: DetectionStep[] = [];
    for (let step = await run.next(never); step; step = await run.next(never)) steps.push(step);
    // 26 s at 25 fps (a frame more where a segment's length rounds up), 25 frames a step.
    const frames = steps.at(-1)!.checkpoint.nextIndex;
    assert.ok(Math.abs(frames - 650) <= 1, `${frames} frames`);
    assert.deepEqual(
      steps.map((s) => s.checkpoint.nextIndex),
      Array.from({ length: Math.ceil(frames / FPS) }, (_, i) => Math.min(frames, (i + 1) * FPS)),
    );
    assert.deepEqual(
      steps.map((s) => s.checkpoint.finished),
      steps.map((_, i) => i === steps.length - 1),
    );
    const detector = new ShotDetector(DEFAULT_DETECTOR);
    for await (const frame of decodeFrames(video, { width: 96, height: 54 })) {
      detector.push(frame.index, frame.ms, frame.pixels);
    }
    detector.finish();
    const last = steps.at(-1)!.checkpoint.detector;
    assert.deepEqual(last.boundaries, detector.snapshot().boundaries);
    const found = last.boundaries.map((b) => b.frame);
    assert.equal(found.length, 5);
    [100, 175, 300, 387, 550].forEach((known, i) =>
      assert.ok(Math.abs(found[i]! - known) <= 1, `cut ${i}: ${found[i]}`),
    );
    const lastMs = steps.at(-1)!.lastMs;
    assert.equal(steps.at(-1)!.candidateCount, Math.floor(lastMs / 333) + 1, 'a candidate in every 333 ms step');
  });

  it('kills its ffmpeg at once when stopped', async () => {
    const run = startDetection(job(video, path.join(dir, 'scratch-2')));
    assert.ok(await run.next(never));
    assert.ok(ffmpegsReading(video) > 0, 'decoding');
    run.stop();
    for (let waited = 0; ffmpegsReading(video) > 0; waited += 50) {
      assert.ok(waited < 5000, 'ffmpeg still running 5 s after the stop');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it("keeps ffmpeg's errors a DecodeError, and a dead thread fails its passes and is replaced", async () => {
    const broken = path.join(dir, 'broken.mp4');
    writeFileSync(broken, Buffer.alloc(5000, 7));
    const failing = startDetection(job(broken, path.join(dir, 'scratch-3')));
    await assert.rejects(failing.next(never), DecodeError);

    const cut = startDetection(job(video, path.join(dir, 'scratch-4')));
    assert.ok(await cut.next(never));
    await closeDetectionThread();
    await assert.rejects(cut.next(never), /The detection thread stopped/);
    const next = startDetection(job(video, path.join(dir, 'scratch-5')));
    assert.ok(await next.next(never), 'a new thread takes the next pass');
    next.stop();
  });
});
