/**
 * The state-folder rule (src/activities/state-folder.ts) on a batch: the same batch resumes from `<outputDir>/.backroom`,
 * another one into the same folder is refused and changes nothing, and `overwrite: true` starts it fresh.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  prepareBatch,
  restoreBatchItem,
  writeBatchReport,
  type BatchManifest,
  type PrepareBatchRequest,
} from '../../src/activities/restoration/batch';
import { closeCpuPool } from '../../src/activities/cpu-pool';
import { stateFingerprint, useStateFolder } from '../../src/activities/state-folder';
import { qualityThresholds } from '../../src/shared/restoration-inputs';
import { activityOfWorkflow, isStateFolderMismatch, runActivity } from '../helpers/activity';

const thresholds = qualityThresholds.parse(undefined);

/**
 * A small grey page with a dark bar at a place of its own, so every page restores to other bytes. Its paper is
 * noisy and unevenly lit, so denoise and normalize (which skip a page that does not need them) both apply.
 */
async function page(file: string, seed: number): Promise<void> {
  const width = 160;
  const height = 120;
  const data = Buffer.alloc(width * height);
  for (let i = 0; i < data.length; i++) data[i] = 180 + Math.round((50 * (i % width)) / width) + ((i * 7919) % 13) - 6;
  for (let y = 20 + seed * 7; y < 30 + seed * 7; y++) data.fill(30, y * width + 20, y * width + 140);
  writeFileSync(
    file,
    await sharp(data, { raw: { width, height, channels: 1 } })
      .png()
      .toBuffer(),
  );
}

describe('the state-folder rule', () => {
  it('resumes the same request, refuses another, replaces it when asked', () => {
    const fingerprint = stateFingerprint({ b: 1, a: [2] });
    assert.equal(fingerprint, stateFingerprint({ a: [2], b: 1 }), 'key order does not matter');
    const conflict = () => 'another job';
    assert.equal(useStateFolder({ recorded: undefined, fingerprint, conflict }), 'fresh');
    assert.equal(useStateFolder({ recorded: fingerprint, fingerprint, conflict }), 'resume');
    assert.equal(
      useStateFolder({ recorded: fingerprint, fingerprint, overwrite: true, mine: true, conflict }),
      'resume',
    );
    assert.equal(
      useStateFolder({ recorded: fingerprint, fingerprint, overwrite: true, mine: false, conflict }),
      'replace',
    );
    assert.equal(useStateFolder({ recorded: 'other', fingerprint, overwrite: true, conflict }), 'replace');
    assert.throws(
      () => useStateFolder({ recorded: 'other', fingerprint, conflict }),
      isStateFolderMismatch(/another job/),
    );
    assert.throws(
      () => useStateFolder({ recorded: null, fingerprint, conflict }),
      isStateFolderMismatch(/another job/),
    );
  });
});

describe('restoreBatch state in <outputDir>/.backroom', () => {
  let dataDir: string;
  const outputDir = 'pages/restored';
  const stateDir = () => path.join(dataDir, outputDir, '.backroom');
  const readManifest = () => JSON.parse(readFileSync(path.join(stateDir(), 'manifest.json'), 'utf8')) as BatchManifest;
  const first: PrepareBatchRequest = {
    inputs: ['pages/a.png', 'pages/b.png'],
    outputDir,
    steps: ['denoise', 'normalize'],
    thresholds,
  };

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-state-folder-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    mkdirSync(path.join(dataDir, 'pages'));
    for (const [index, name] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      await page(path.join(dataDir, 'pages', `${name}.png`), index);
    }
  });
  after(() => closeCpuPool());

  /** Runs a whole batch as the workflow would: prepare, every item, the report. */
  async function runBatch(request: PrepareBatchRequest, env = activityOfWorkflow('batch-1')) {
    const prepared = await runActivity(env, prepareBatch, request);
    const items = [];
    for (let index = 0; index < prepared.count; index++) {
      items.push(
        await runActivity(env, restoreBatchItem, {
          manifest: prepared.manifest,
          index,
          steps: request.steps,
          model: request.model,
          thresholds: request.thresholds,
        }),
      );
    }
    const report = await runActivity(env, writeBatchReport, { manifest: prepared.manifest });
    return { prepared, items, report };
  }
  const snapshot = () =>
    Object.fromEntries(
      ['a.png', 'b.png', 'report.json', '.backroom/manifest.json', '.backroom/writes.log', '.backroom/results/0.json']
        .map((file) => path.join(dataDir, outputDir, file))
        .map((file) => [file, readFileSync(file, 'utf8')]),
    );

  it('the same batch again resumes: same manifest, no item restored twice', async () => {
    const run = await runBatch(first);
    assert.equal(run.report.succeeded, 2, run.report.summary);
    const manifest = readManifest();
    assert.ok(manifest.fingerprint);
    const output = path.join(dataDir, outputDir, 'a.png');
    const written = statSync(output).mtimeMs;

    // A retry, a continue-as-new or another start of the very same batch (other concurrency: not part of it).
    const again = await runBatch({ ...first, inputs: ['pages/a.png', `${dataDir}/pages/b.png`] });
    assert.deepEqual(readManifest(), manifest, 'the manifest is reused');
    assert.equal(again.report.succeeded, 2);
    assert.equal(statSync(output).mtimeMs, written, 'no output written again');
    const log = readFileSync(path.join(stateDir(), 'writes.log'), 'utf8').trim().split('\n');
    assert.equal(log.length, 2, 'one write per item');
  });

  it('another batch into the same folder is refused with what to do, and nothing is overwritten', async () => {
    const before = snapshot();
    const others: [string, PrepareBatchRequest][] = [
      ['other inputs', { ...first, inputs: ['pages/c.png', 'pages/d.png', 'pages/e.png'] }],
      ['other steps', { ...first, steps: ['binarize'] }],
      ['other thresholds', { ...first, thresholds: { ...thresholds, minSsim: 0.9 } }],
      ['an input dir', { ...first, inputs: undefined, inputDir: 'pages' }],
    ];
    for (const [what, request] of others) {
      await assert.rejects(
        runActivity(activityOfWorkflow('batch-2'), prepareBatch, request),
        isStateFolderMismatch(
          /^pages\/restored holds a batch of 2 other pages .*choose another outputDir or pass overwrite: true/,
        ),
        what,
      );
    }
    assert.deepEqual(snapshot(), before, 'outputs, manifest, results and log unchanged');
  });

  it('with overwrite: true the new batch starts fresh and reports only its own items', async () => {
    const second: PrepareBatchRequest = {
      ...first,
      inputs: ['pages/c.png', 'pages/a.png', 'pages/d.png'],
      steps: ['normalize'],
      overwrite: true,
    };
    const oldOutput = readFileSync(path.join(dataDir, outputDir, 'a.png'));
    const run = await runBatch(second, activityOfWorkflow('batch-3'));
    const manifest = readManifest();
    assert.deepEqual(
      manifest.items.map((item) => item.input),
      ['pages/c.png', 'pages/a.png', 'pages/d.png'],
    );
    assert.equal(run.report.total, 3);
    assert.equal(run.report.succeeded, 3, run.report.summary);
    const report = JSON.parse(readFileSync(path.join(dataDir, outputDir, 'report.json'), 'utf8')) as {
      items: { input: string; steps: { step: string }[] }[];
    };
    assert.deepEqual(
      report.items.map((item) => [item.input, item.steps.map((step) => step.step)]),
      [
        ['pages/c.png', ['normalize']],
        ['pages/a.png', ['normalize']],
        ['pages/d.png', ['normalize']],
      ],
      'results of the new batch, with its steps',
    );
    assert.notDeepEqual(readFileSync(path.join(dataDir, outputDir, 'a.png')), oldOutput, 'a.png is rewritten');
    const log = readFileSync(path.join(stateDir(), 'writes.log'), 'utf8').trim().split('\n');
    assert.deepEqual(
      log.map((line) => line.split('\t')[0]),
      ['0', '1', '2'],
      'the old log was cleared: one line per new item',
    );
    assert.equal(readdirSync(path.join(stateDir(), 'results')).length, 3);

    // A retry of the overwriting batch's own prepareBatch resumes; it does not clear its own results again.
    const retry = await runActivity(activityOfWorkflow('batch-3'), prepareBatch, second);
    assert.equal(retry.count, 3);
    assert.deepEqual(readManifest(), manifest);
    assert.equal(readdirSync(path.join(stateDir(), 'results')).length, 3);
  });

  it('a manifest written before fingerprints were recorded counts as another batch', async () => {
    const legacyDir = 'pages/legacy';
    await runBatch({ ...first, outputDir: legacyDir });
    const file = path.join(dataDir, legacyDir, '.backroom/manifest.json');
    const legacy = JSON.parse(readFileSync(file, 'utf8')) as BatchManifest;
    delete legacy.fingerprint;
    writeFileSync(file, JSON.stringify(legacy));
    await assert.rejects(
      runActivity(activityOfWorkflow('batch-4'), prepareBatch, { ...first, outputDir: legacyDir }),
      isStateFolderMismatch(/pages\/legacy holds a batch of 2 other pages \(written by an earlier version/),
    );
    const fresh = await runBatch({ ...first, outputDir: legacyDir, overwrite: true }, activityOfWorkflow('batch-4'));
    assert.equal(fresh.report.succeeded, 2);
  });
});
