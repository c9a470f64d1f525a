/**
 * Cut-analysis benchmark on a generated 720p video with known cuts, measured side by side in one run:
 *   1. analyzeCuts through a real dev server and worker: realtime factor (seconds of video per wall-clock second),
 *      for the whole job and for its detection pass alone (as an activity, no Temporal around it);
 *   2. ffmpeg's own scene score (`select='gt(scene,T)'`) on the same video: its speed and the cuts it finds, against
 *      ours and against the truth.
 * Size: BENCH_CUTS_SECONDS (default 60) of 1280×720 at 30 fps; BENCH_CUTS_SCENE (default 0.3) for ffmpeg's threshold.
 *   3. the job against PySceneDetect detect-content and ffmpeg's decode-and-scale floor (cuts-compare.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { CutAnalysis } from '../src/activities/video/analyze-clips';
import { detectShots, type DetectCheckpoint, type DetectedShots } from '../src/activities/video/detect-shots';
import { ffmpegPath } from '../src/activities/video/ffmpeg';
import { probeVideoFile } from '../src/activities/video/probe';
import type { Resumable } from '../src/shared/job-status';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { compareWithPySceneDetect } from './cuts-compare';
import { makeVideo, SOURCES, type VideoSegment } from '../test/helpers/videos';

const FPS = 30;

function segmentsFor(seconds: number): VideoSegment[] {
  const cycle = [SOURCES.moving, SOURCES.bars, SOURCES.zoom, SOURCES.pan, SOURCES.tinted, SOURCES.hdbars];
  const segments: VideoSegment[] = [];
  for (let t = 0, i = 0; t < seconds; i++) {
    const length = Math.min(seconds - t, [7, 4.5, 9, 3, 12, 6][i % 6]!);
    segments.push({ source: cycle[i % cycle.length]!.replace(/rate=25/g, `rate=${FPS}`), seconds: length });
    t += length;
  }
  return segments;
}

/** Frames where ffmpeg's scene score passes `threshold`, and how long it took. */
function ffmpegScenes(file: string, threshold: number): { frames: number[]; seconds: number } {
  const started = performance.now();
  const run = spawnSync(
    ffmpegPath(),
    ['-nostdin', '-hide_banner', '-i', file, '-vf', `select='gt(scene,${threshold})',showinfo`, '-f', 'null', '-'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const seconds = (performance.now() - started) / 1000;
  const frames = [...run.stderr.matchAll(/Parsed_showinfo.*?pts_time:([\d.]+)/g)].map((m) =>
    Math.round(Number(m[1]) * FPS),
  );
  return { frames, seconds };
}

function matchScore(truth: number[], found: number[]) {
  const hits = truth.filter((t) => found.some((f) => Math.abs(f - t) <= 1)).length;
  const precision = found.length
    ? found.filter((f) => truth.some((t) => Math.abs(f - t) <= 1)).length / found.length
    : 0;
  return `${found.length} found, recall ${(hits / truth.length).toFixed(2)}, precision ${precision.toFixed(2)}`;
}

export async function cutsBenchmark(): Promise<void> {
  const seconds = Number(process.env.BENCH_CUTS_SECONDS ?? 60);
  const scene = Number(process.env.BENCH_CUTS_SCENE ?? 0.3);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-cuts-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  console.log(`\nCut analysis benchmark: ${seconds} s of 1280×720 at ${FPS} fps (generating it...)`);
  const { boundaries } = makeVideo(path.join(dataDir, 'bench.mp4'), segmentsFor(seconds), {
    width: 1280,
    height: 720,
    fps: FPS,
  });
  const truth = boundaries.map((b) => b.frame);
  const info = await probeVideoFile({ video: 'bench.mp4' });

  const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
  let started = performance.now();
  const pass = (await new MockActivityEnvironment(undefined, quiet).run(detectShots, {
    video: 'bench.mp4',
    info,
  })) as Resumable<DetectCheckpoint, DetectedShots>;
  const detectSeconds = (performance.now() - started) / 1000;
  if (!pass.finished) throw new Error('the detection pass did not finish');

  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-cuts');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  let result: CutAnalysis;
  let jobSeconds: number;
  try {
    const jobs = testJobs(env, taskQueue);
    started = performance.now();
    const { id } = await jobs.start('analyzeCuts', { video: 'bench.mp4' });
    result = await jobs.result<CutAnalysis>(id);
    jobSeconds = (performance.now() - started) / 1000;
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
  }
  const ffmpeg = ffmpegScenes(path.join(dataDir, 'bench.mp4'), scene);
  const video = info.durationMs / 1000;
  const row = (name: string, took: number, cuts: string) =>
    console.log(
      `  ${name.padEnd(34)} ${(video / took).toFixed(1).padStart(5)}× realtime (${took.toFixed(1)} s)  ${cuts}`,
    );
  console.log(`  ${truth.length} known cuts`);
  row('analyzeCuts (whole job)', jobSeconds, `${matchScore(truth, result.cutFrames)}; ${result.clipsCreated} clips`);
  row(
    'our detection pass alone',
    detectSeconds,
    matchScore(
      truth,
      pass.result.boundaries.map((b) => b.frame),
    ),
  );
  row(`ffmpeg select='gt(scene,${scene})'`, ffmpeg.seconds, matchScore(truth, ffmpeg.frames));
  console.log(`  detection speed, ours / ffmpeg's scene filter: ${(ffmpeg.seconds / detectSeconds).toFixed(2)}`);
  // The job against PySceneDetect (from PyPI, in its own venv) and ffmpeg's decode alone, on 720p files.
  await compareWithPySceneDetect();
}
