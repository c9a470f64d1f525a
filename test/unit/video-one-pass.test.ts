/**
 * One decode for both passes: the detection pass keeps candidate frames (qualities and JPEGs) in the analysis'
 * folder, scoring reads them (no seek, no second decode), a paused or retried detection pass carries the candidates
 * on from its checkpoint, and the candidates file is gone once cuts.json is written.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { analyzeClipsResumable, type CutAnalysis } from '../../src/activities/video/analyze-clips';
import { CANDIDATE_EVERY_MS, candidatesFileIn } from '../../src/activities/video/candidates';
import { detectShots, type DetectCheckpoint, type DetectedShots } from '../../src/activities/video/detect-shots';
import { probeVideoFile, type VideoInfo } from '../../src/activities/video/probe';
import type { ActivityHeartbeat } from '../../src/shared/job-status';
import { runActivity } from '../helpers/activity';
import { makeVideo, SOURCES } from '../helpers/videos';

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
const mock = () => new MockActivityEnvironment(undefined, quiet);

async function detect(video: string, info: VideoInfo, outputDir?: string, resumeFrom?: DetectCheckpoint) {
  const candidates = outputDir ? { outputDir } : undefined;
  const done = await runActivity(mock(), detectShots, { video, info, candidates, resumeFrom });
  assert.ok(done.finished);
  return done.result;
}

async function score(video: string, info: VideoInfo, shots: DetectedShots, outputDir: string): Promise<CutAnalysis> {
  const request = { video, outputDir, info, shots, maxClipSeconds: 4, minClipSeconds: 1 };
  const done = await runActivity(mock(), analyzeClipsResumable, request);
  assert.ok(done.finished);
  return done.result;
}

describe('one decoding pass for detection and scoring', () => {
  let dataDir: string;
  let info: VideoInfo;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-one-pass-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    makeVideo(path.join(dataDir, 'three.mp4'), [
      { source: SOURCES.moving, seconds: 4 },
      { source: SOURCES.bars, seconds: 3 },
      { source: SOURCES.zoom, seconds: 5 },
    ]);
    info = await probeVideoFile({ video: 'three.mp4' });
  });

  it('keeps three candidates a second, and scores every clip from them as the seeking scorer does', async () => {
    const shots = await detect('three.mp4', info, 'one-cuts');
    assert.ok(shots.candidates, 'the pass says where its candidates are');
    // A candidate in every step of CANDIDATE_EVERY_MS, the first frame at or after its start: the 300 frames of this
    // 25 fps video (0 to 11,960 ms) span 36 steps.
    const expected = Math.floor(11_960 / CANDIDATE_EVERY_MS) + 1;
    assert.equal(expected, 36);
    assert.equal(shots.candidates.count, expected, `${shots.candidates.count} candidates in 12 s`);
    assert.equal(shots.candidates.bytes, statSync(path.join(dataDir, shots.candidates.file)).size);
    assert.deepEqual([shots.candidates.width, shots.candidates.height], [320, 180]);

    const seeking = await score('three.mp4', info, await detect('three.mp4', info), 'two-cuts');
    // Scoring must not need the video any more: spoil it (a seek would now find nothing).
    writeFileSync(path.join(dataDir, 'spoiled.mp4'), Buffer.alloc(1000));
    const onePass = await score('spoiled.mp4', info, shots, 'one-cuts');
    assert.deepEqual(onePass.cutFrames, seeking.cutFrames);
    assert.deepEqual(onePass.cutFrames, [100, 175]);
    assert.equal(onePass.clips.length, seeking.clips.length);
    onePass.clips.forEach((clip, i) => {
      const other = seeking.clips[i]!;
      assert.deepEqual([clip.startFrame, clip.endFrame], [other.startFrame, other.endFrame]);
      assert.ok(
        Math.abs(clip.visualScore - other.visualScore) <= 0.05,
        `clip ${i}: ${clip.visualScore} vs ${other.visualScore}`,
      );
    });
    for (const clip of onePass.clips) {
      assert.ok(clip.thumbnail, 'every clip has its thumbnail');
      const { width, height } = await sharp(path.join(dataDir, clip.thumbnail)).metadata();
      assert.deepEqual([width, height], [320, 180]);
    }
    assert.equal(existsSync(candidatesFileIn(path.join(dataDir, 'one-cuts'))), false, 'candidates removed');
  });

  it('carries the candidates on from a checkpoint after a pause, as if never stopped', async () => {
    const whole = await detect('three.mp4', info, 'whole-cuts');
    const env = mock();
    env.on('heartbeat', (beat: ActivityHeartbeat<DetectCheckpoint>) => {
      if (beat.checkpoint.nextIndex >= 150) env.cancel();
    });
    const stopped = await runActivity(env, detectShots, {
      video: 'three.mp4',
      info,
      candidates: { outputDir: 'paused-cuts' },
    });
    assert.ok(!stopped.finished);
    assert.ok((stopped.checkpoint.candidateBytes ?? 0) > 0);
    const resumed = await detect('three.mp4', info, 'paused-cuts', stopped.checkpoint);
    assert.deepEqual(resumed.boundaries, whole.boundaries);
    assert.ok(Math.abs((resumed.candidates?.count ?? 0) - (whole.candidates?.count ?? 0)) <= 1);
    const scored = await score('three.mp4', info, resumed, 'paused-cuts');
    assert.ok(scored.clips.every((clip) => clip.thumbnail));
  });
});
