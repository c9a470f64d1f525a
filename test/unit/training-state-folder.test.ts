/**
 * The state-folder rule (src/activities/state-folder.ts) on a synthetic dataset: the same generateSyntheticData
 * resumes in its folder, another one (other pages, sizes, seed, patches per page...) is refused and changes nothing,
 * and `overwrite: true` starts it fresh.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeCpuPool } from '../../src/activities/cpu-pool';
import { stateRecordFile, type StateRecord } from '../../src/activities/state-record';
import {
  cutDatasetPatches,
  datasetFingerprint,
  renderDatasetPages,
  validateDataset,
  type DatasetSpec,
} from '../../src/activities/training/synthetic-data';
import { generateSyntheticDataInput } from '../../src/shared/training-inputs';
import { activityOfWorkflow, isStateFolderMismatch, runActivity } from '../helpers/activity';

describe('generateSyntheticData state in its dataset folder', () => {
  let dataDir: string;
  const spec: DatasetSpec = {
    datasetId: 'small',
    datasetDir: 'datasets/small',
    pages: 2,
    patchSize: 32,
    patchesPerPage: 2,
    augment: false,
    width: 256,
    height: 256,
    seed: 5,
  };
  const dir = () => path.join(dataDir, spec.datasetDir);
  const readRecord = () => JSON.parse(readFileSync(stateRecordFile(dir()), 'utf8')) as StateRecord;
  const snapshot = () =>
    Object.fromEntries(
      ['manifest.json', 'pages/clean/page-0001.png', 'pages/degraded/page-0002.jpg', '.backroom/job.json'].map(
        (file) => [file, readFileSync(path.join(dir(), file), 'utf8')],
      ),
    );

  async function generate(request: DatasetSpec, env = activityOfWorkflow('dataset-1')) {
    await runActivity(env, renderDatasetPages, request);
    await runActivity(env, cutDatasetPatches, request);
    return runActivity(env, validateDataset, request);
  }

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-dataset-state-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
  });
  after(() => closeCpuPool());

  it('the input schema has overwrite, off by default', () => {
    const parsed = generateSyntheticDataInput.parse({ datasetId: 'x', pages: 2 });
    assert.equal(parsed.overwrite, false);
    assert.equal(generateSyntheticDataInput.parse({ datasetId: 'x', pages: 2, overwrite: true }).overwrite, true);
  });

  it('the same dataset again resumes: its record and files stay', async () => {
    await generate(spec);
    const record = readRecord();
    assert.equal(record.fingerprint, datasetFingerprint(spec));
    assert.match(record.holds, /the dataset small of 2 pages/);
    const before = snapshot();
    // Another start of the very same dataset (another workflow), and a retry of the first.
    await runActivity(activityOfWorkflow('dataset-2'), renderDatasetPages, {
      ...spec,
      datasetDir: `${dataDir}/datasets/small`,
    });
    await runActivity(activityOfWorkflow('dataset-1'), renderDatasetPages, { ...spec, resumeFrom: 1 });
    assert.deepEqual(readRecord(), record, 'the record is kept');
    assert.ok(existsSync(path.join(dir(), 'manifest.json')), 'the manifest is kept');
    assert.equal(snapshot()['.backroom/job.json'], before['.backroom/job.json']);
  });

  it('another dataset into the same folder is refused with what to do, and nothing changes', async () => {
    const before = snapshot();
    const others: [string, DatasetSpec][] = [
      ['other pages', { ...spec, pages: 3 }],
      ['other patch size', { ...spec, patchSize: 48 }],
      ['other page size', { ...spec, width: 300 }],
      ['other seed', { ...spec, seed: 6 }],
      ['other patches per page', { ...spec, patchesPerPage: 3 }],
      ['other augment', { ...spec, augment: true }],
      ['other datasetId', { ...spec, datasetId: 'other' }],
    ];
    for (const [what, request] of others) {
      await assert.rejects(
        runActivity(activityOfWorkflow('dataset-3'), renderDatasetPages, request),
        isStateFolderMismatch(
          /^datasets\/small holds the dataset small of 2 pages \(256×256, seed 5\); this job asks for other datasetId, pages, .*; choose another outputDir or pass overwrite: true\.$/,
        ),
        what,
      );
    }
    assert.deepEqual(snapshot(), before, 'pages, manifest and record unchanged');
  });

  it('with overwrite: true the new dataset starts fresh; its own retry resumes', async () => {
    const second: DatasetSpec = { ...spec, seed: 9, pages: 3, overwrite: true };
    const oldPage = readFileSync(path.join(dir(), 'pages/clean/page-0001.png'));
    // The first step alone: the old dataset's manifest and patches are gone, so nothing of it can be mistaken for
    // the new one while it is made.
    await runActivity(activityOfWorkflow('dataset-4'), renderDatasetPages, second);
    assert.ok(!existsSync(path.join(dir(), 'manifest.json')), 'the old manifest is removed');
    assert.ok(!existsSync(path.join(dir(), 'patches')), 'the old patches are removed');
    assert.equal(readRecord().fingerprint, datasetFingerprint(second));
    assert.notDeepEqual(readFileSync(path.join(dir(), 'pages/clean/page-0001.png')), oldPage, 'page 1 re-rendered');

    await runActivity(activityOfWorkflow('dataset-4'), cutDatasetPatches, second);
    const patches = readdirSync(path.join(dir(), 'patches', 'train')).length;
    // A retry of the overwriting job's first step resumes: it does not clear its own patches again.
    await runActivity(activityOfWorkflow('dataset-4'), renderDatasetPages, { ...second, resumeFrom: 3 });
    assert.equal(readdirSync(path.join(dir(), 'patches', 'train')).length, patches);
    const result = await runActivity(activityOfWorkflow('dataset-4'), validateDataset, second);
    assert.ok(result.finished);
    const manifest = JSON.parse(readFileSync(path.join(dir(), 'manifest.json'), 'utf8')) as { seed: number };
    assert.equal(manifest.seed, 9);
  });

  it('a dataset written before records were kept counts as another dataset', async () => {
    const legacy = { ...spec, datasetId: 'legacy', datasetDir: 'datasets/legacy' };
    mkdirSync(path.join(dataDir, legacy.datasetDir), { recursive: true });
    writeFileSync(path.join(dataDir, legacy.datasetDir, 'manifest.json'), '{}');
    await assert.rejects(
      runActivity(activityOfWorkflow('dataset-5'), renderDatasetPages, legacy),
      isStateFolderMismatch(
        /^datasets\/legacy holds manifest\.json, pages, patches written by an earlier version of Backroom/,
      ),
    );
    await runActivity(activityOfWorkflow('dataset-5'), renderDatasetPages, { ...legacy, overwrite: true });
    assert.ok(!existsSync(path.join(dataDir, legacy.datasetDir, 'manifest.json')));
  });
});
