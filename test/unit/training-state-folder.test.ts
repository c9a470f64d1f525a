/**
 * The state-folder rule (src/activities/state-folder.ts) on a synthetic dataset: the same generateSyntheticData
 * resumes in its folder, another one (other pages, sizes, seed, patches per page...) is refused and changes nothing,
 * and `overwrite: true` starts it fresh; the same for a trained model in `models/<modelName>/`.
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
import {
  modelFingerprint,
  prepareTrainingRun,
  type PrepareRunRequest,
} from '../../src/activities/training/train-epoch';
import { generateSyntheticDataInput, trainModelInput } from '../../src/shared/training-inputs';
import { activityOfWorkflow, isStateFolderMismatch, runActivity } from '../helpers/activity';

/** A dataset small enough to make in a second. */
const small: DatasetSpec = {
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

describe('generateSyntheticData state in its dataset folder', () => {
  let dataDir: string;
  const spec = small;
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

describe('trainModel state in its model folder', () => {
  let dataDir: string;
  const dataset: DatasetSpec = { ...small, datasetId: 'for-model', datasetDir: 'datasets/for-model', seed: 2 };
  const run: PrepareRunRequest = {
    layer: 'layer1',
    dataset: dataset.datasetDir,
    modelName: 'm1',
    runKey: 'first-run',
    batchSize: 8,
    seed: 3,
  };
  const dir = (name = 'm1') => path.join(dataDir, 'models', name);
  const readRecord = () => JSON.parse(readFileSync(stateRecordFile(dir()), 'utf8')) as StateRecord;
  const start = () => readFileSync(path.join(dir(), 'epoch-0000.json'), 'utf8');

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-model-state-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    const env = activityOfWorkflow('dataset-for-model');
    await runActivity(env, renderDatasetPages, dataset);
    await runActivity(env, cutDatasetPatches, dataset);
    await runActivity(env, validateDataset, dataset);
  });

  it('the input schema has overwrite, off by default', () => {
    const input = { layer: 'layer1', dataset: 'd', epochs: 1 };
    assert.equal(trainModelInput.parse(input).overwrite, false);
    assert.equal(trainModelInput.parse({ ...input, overwrite: true }).overwrite, true);
  });

  it('the same model again resumes: its record stays', async () => {
    await runActivity(activityOfWorkflow('train-1'), prepareTrainingRun, run);
    const record = readRecord();
    assert.equal(record.fingerprint, modelFingerprint(run));
    assert.equal(record.holds, 'a layer1 model trained on datasets/for-model (seed 3)');
    // Another start of the very same model (another workflow), and a retry of the first.
    await runActivity(activityOfWorkflow('train-2'), prepareTrainingRun, { ...run, runKey: 'second-run' });
    await runActivity(activityOfWorkflow('train-1'), prepareTrainingRun, run);
    assert.deepEqual(readRecord(), record, 'the record is kept');
  });

  it('another model under the same name is refused with what to do, and nothing changes', async () => {
    const before = start();
    const others: [string, PrepareRunRequest][] = [
      ['other seed', { ...run, seed: 4 }],
      ['other batch size', { ...run, batchSize: 16 }],
      ['other learning rate', { ...run, learningRate: 0.01 }],
      ['other layer-1 model', { ...run, layer1Model: 'models/none/best.json', layer: 'layer1' }],
    ];
    for (const [what, request] of others) {
      await assert.rejects(
        runActivity(activityOfWorkflow('train-3'), prepareTrainingRun, { ...request, runKey: 'third-run' }),
        isStateFolderMismatch(
          /^models\/m1 holds a layer1 model trained on datasets\/for-model \(seed 3\); this job asks for another layer, dataset, .*; choose another modelName or pass overwrite: true\.$/,
        ),
        what,
      );
    }
    assert.equal(start(), before, 'the starting checkpoint is unchanged');
  });

  it('with overwrite: true the new model starts fresh: the old checkpoints are gone', async () => {
    writeFileSync(path.join(dir(), 'best.json'), '{}');
    writeFileSync(path.join(dir(), 'epoch-0001.json'), '{}');
    const second = { ...run, seed: 4, runKey: 'fourth-run', overwrite: true };
    await runActivity(activityOfWorkflow('train-4'), prepareTrainingRun, second);
    assert.ok(!existsSync(path.join(dir(), 'best.json')), 'the old best checkpoint is removed');
    assert.ok(!existsSync(path.join(dir(), 'epoch-0001.json')), 'the old epoch is removed');
    assert.equal(readRecord().fingerprint, modelFingerprint(second));
    assert.ok(existsSync(path.join(dir(), 'epoch-0000.json')), 'its own starting checkpoint is written');
  });

  it('a model written before records were kept counts as another model', async () => {
    mkdirSync(dir('legacy'), { recursive: true });
    writeFileSync(path.join(dir('legacy'), 'epoch-0000.json'), '{}');
    const legacy = { ...run, modelName: 'legacy', runKey: 'legacy-run' };
    await assert.rejects(
      runActivity(activityOfWorkflow('train-5'), prepareTrainingRun, legacy),
      isStateFolderMismatch(/^models\/legacy holds epoch-0000\.json written by an earlier version of Backroom/),
    );
  });
});
