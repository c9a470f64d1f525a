/**
 * The state-folder rule (src/activities/state-folder.ts) on a cut analysis: the same analyzeCuts resumes in its
 * outputDir, another video or other options are refused and change nothing, and `overwrite: true` starts fresh.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { stateRecordFile, type StateRecord } from '../../src/activities/state-record';
import { claimCutsFolder, type ClaimCutsFolderRequest } from '../../src/activities/video/cuts-folder';
import { analyzeCutsInput } from '../../src/shared/video-inputs';
import { activityOfWorkflow, isStateFolderMismatch, runActivity } from '../helpers/activity';

describe('analyzeCuts state in its outputDir', () => {
  let dataDir: string;
  const request: ClaimCutsFolderRequest = {
    video: 'clips/a.mp4',
    outputDir: 'clips/a-cuts',
    maxClipSeconds: 20,
    minClipSeconds: 1,
    threshold: 3,
  };
  const dir = () => path.join(dataDir, request.outputDir);
  const readRecord = () => JSON.parse(readFileSync(stateRecordFile(dir()), 'utf8')) as StateRecord;
  /** What an analysis leaves: a thumbnail and cuts.json (partial after a cancel). */
  const writeOutputs = (outputDir: string, text: string) => {
    mkdirSync(path.join(dataDir, outputDir, 'thumbnails'), { recursive: true });
    writeFileSync(path.join(dataDir, outputDir, 'thumbnails', 'clip-001.jpg'), text);
    writeFileSync(path.join(dataDir, outputDir, 'cuts.json'), JSON.stringify({ text }));
  };
  const snapshot = () =>
    Object.fromEntries(
      ['cuts.json', 'thumbnails/clip-001.jpg', '.backroom/job.json'].map((file) => [
        file,
        readFileSync(path.join(dir(), file), 'utf8'),
      ]),
    );

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-cuts-state-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    mkdirSync(path.join(dataDir, 'clips'));
    writeFileSync(path.join(dataDir, 'clips', 'a.mp4'), 'video a');
    writeFileSync(path.join(dataDir, 'clips', 'b.mp4'), 'video b, another one');
  });

  it('the input schema has overwrite, off by default', () => {
    assert.equal(analyzeCutsInput.parse({ video: 'a.mp4' }).overwrite, false);
    assert.equal(analyzeCutsInput.parse({ video: 'a.mp4', overwrite: true }).overwrite, true);
  });

  it('the same analysis again resumes: its thumbnails, cuts.json and record stay', async () => {
    await runActivity(activityOfWorkflow('cuts-1'), claimCutsFolder, request);
    writeOutputs(request.outputDir, 'first');
    const before = snapshot();
    assert.match(readRecord().holds, /^the cuts of clips\/a\.mp4 \(threshold 3, clips of 1–20 s\)$/);
    // A retry, and another start of the very same analysis (the video named by its absolute path).
    await runActivity(activityOfWorkflow('cuts-1'), claimCutsFolder, request);
    await runActivity(activityOfWorkflow('cuts-2'), claimCutsFolder, { ...request, video: `${dataDir}/clips/a.mp4` });
    assert.deepEqual(snapshot(), before);
  });

  it('another video or other options into the same folder are refused with what to do, and nothing changes', async () => {
    const before = snapshot();
    const others: [string, ClaimCutsFolderRequest][] = [
      ['another video', { ...request, video: 'clips/b.mp4' }],
      ['another threshold', { ...request, threshold: 5 }],
      ['other clip lengths', { ...request, minClipSeconds: 2 }],
      ['other clip lengths', { ...request, maxClipSeconds: 10 }],
    ];
    for (const [what, other] of others) {
      await assert.rejects(
        runActivity(activityOfWorkflow('cuts-3'), claimCutsFolder, other),
        isStateFolderMismatch(
          /^clips\/a-cuts holds the cuts of clips\/a\.mp4 \(threshold 3, clips of 1–20 s\); this job asks for another video, or other .*; choose another outputDir or pass overwrite: true\.$/,
        ),
        what,
      );
    }
    // The same path with other bytes is another video.
    writeFileSync(path.join(dataDir, 'clips', 'a.mp4'), 'video a, re-encoded');
    await assert.rejects(
      runActivity(activityOfWorkflow('cuts-3'), claimCutsFolder, request),
      isStateFolderMismatch(/clips\/a-cuts/),
    );
    writeFileSync(path.join(dataDir, 'clips', 'a.mp4'), 'video a');
    assert.deepEqual(snapshot(), before, 'thumbnails, cuts.json and record unchanged');
  });

  it('with overwrite: true the old thumbnails and cuts.json go and the new analysis starts fresh', async () => {
    const second = { ...request, video: 'clips/b.mp4', overwrite: true };
    await runActivity(activityOfWorkflow('cuts-4'), claimCutsFolder, second);
    assert.ok(!existsSync(path.join(dir(), 'cuts.json')), 'the old cuts.json is removed');
    assert.ok(!existsSync(path.join(dir(), 'thumbnails')), 'the old thumbnails are removed');
    assert.match(readRecord().holds, /clips\/b\.mp4/);
    // Its own retry resumes: what it wrote meanwhile stays.
    writeOutputs(request.outputDir, 'second');
    await runActivity(activityOfWorkflow('cuts-4'), claimCutsFolder, second);
    assert.equal(readFileSync(path.join(dir(), 'thumbnails', 'clip-001.jpg'), 'utf8'), 'second');
  });

  it('cuts written before records were kept count as another analysis', async () => {
    const legacy = { ...request, outputDir: 'clips/legacy-cuts' };
    writeOutputs(legacy.outputDir, 'old');
    await assert.rejects(
      runActivity(activityOfWorkflow('cuts-5'), claimCutsFolder, legacy),
      isStateFolderMismatch(
        /^clips\/legacy-cuts holds cuts\.json, thumbnails written by an earlier version of Backroom/,
      ),
    );
    await runActivity(activityOfWorkflow('cuts-5'), claimCutsFolder, { ...legacy, overwrite: true });
    assert.ok(!existsSync(path.join(dataDir, legacy.outputDir, 'cuts.json')));
  });
});
