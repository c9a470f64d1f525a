/**
 * Unit tests of the training pipeline's activities on a tiny generated dataset: the model's two forms agree, the
 * dataset is validated pair by pair, an epoch heartbeats its progress and loss, stops at a checkpoint when
 * cancelled and resumes to exactly the weights of an uninterrupted epoch, and bad inputs fail with clear errors.
 */
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cpuTaskCounts } from '../../src/activities/cpu-pool';
import { readCheckpoint, writeCheckpoint } from '../../src/activities/training/checkpoint';
import { describeModel } from '../../src/activities/training/apply-model';
import { WindowModel, cutWindow, emptyBatch, modelWorkCounts } from '../../src/activities/training/model';
import { tensorflow } from '../../src/activities/training/tensorflow';
import {
  cutDatasetPatches,
  renderDatasetPages,
  validateDataset,
  type DatasetSpec,
} from '../../src/activities/training/synthetic-data';
import {
  prepareTrainingRun,
  trainEpoch,
  type EpochCursor,
  type EpochRequest,
  type PrepareRunRequest,
} from '../../src/activities/training/train-epoch';
import { restoreDocumentImage } from '../../src/activities/restoration/restore-document';
import { evaluateHeldOutPages } from '../../src/activities/training/evaluate';
import type { DatasetManifest } from '../../src/activities/training/dataset';
import { JobInputError, parseJobInput } from '../../src/shared/job-catalog';
import type { ActivityHeartbeat } from '../../src/shared/job-status';
import { restoreDocumentInput } from '../../src/shared/restoration-inputs';
import { trainModelInput } from '../../src/shared/training-inputs';
import { quietActivity, rejectsNonRetryable, runActivity } from '../helpers/activity';
import { fixtureFile } from '../helpers/fixtures';

const activity = quietActivity;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-unit-training-'));
process.env.BACKROOM_DATA_DIR = dataDir;

const spec: DatasetSpec = {
  datasetId: 'tiny',
  datasetDir: 'datasets/tiny',
  pages: 3,
  patchSize: 48,
  patchesPerPage: 6,
  augment: true,
  width: 420,
  height: 594,
  seed: 3,
};

/** Makes a dataset with the three activities, as the workflow does. */
async function makeDataset(datasetSpec: DatasetSpec) {
  await runActivity(activity(), renderDatasetPages, datasetSpec);
  await runActivity(activity(), cutDatasetPatches, datasetSpec);
  return runActivity(activity(), validateDataset, datasetSpec);
}

const runRequest = (modelName: string, extra: Partial<PrepareRunRequest> = {}): PrepareRunRequest => ({
  layer: 'layer1',
  dataset: spec.datasetDir,
  modelName,
  runKey: `key-${modelName}`,
  batchSize: 128,
  seed: 1,
  ...extra,
});

const epochRequest = (modelName: string, epoch: number): EpochRequest => ({
  layer: 'layer1',
  dataset: spec.datasetDir,
  runDir: `models/${modelName}`,
  runKey: `key-${modelName}`,
  epoch,
  epochs: 2,
  batchSize: 128,
  learningRate: 0.002,
  seed: 1,
});

describe('training: model, dataset, epochs', () => {
  let manifest: DatasetManifest;

  before(async () => {
    const validated = await makeDataset(spec);
    assert.ok(validated.finished);
    manifest = JSON.parse(
      readFileSync(path.join(dataDir, spec.datasetDir, 'manifest.json'), 'utf8'),
    ) as DatasetManifest;
  });

  it('runs the same weights as dense layers over windows and as convolutions over an image', async () => {
    const model = await WindowModel.initialize(7);
    const image = { width: 40, height: 30, data: Uint8Array.from({ length: 1200 }, (_, i) => (i * 37) % 256) };
    const [convolved] = model.predict([image]);
    const points = [
      [0, 0],
      [5, 7],
      [39, 29],
      [20, 3],
    ] as const;
    const batch = emptyBatch(points.length);
    points.forEach(([x, y], slot) => cutWindow(image, x, y, batch, slot));
    const dense = model.predictWindows(batch);
    points.forEach(([x, y], slot) =>
      assert.ok(Math.abs((convolved?.[y * 40 + x] ?? NaN) - (dense[slot] ?? NaN)) < 1e-5, `pixel ${x},${y}`),
    );
    model.dispose();
  });

  it("leaves the process's error handlers alone (the wasm glue adds ones that rethrow)", async () => {
    await tensorflow();
    const listeners = [...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')];
    const rethrowers = listeners.filter((listener) => String(listener).includes('ExitStatus'));
    assert.equal(rethrowers.length, 0, rethrowers.map(String).join('\n'));
  });

  it('makes a dataset of aligned pairs, splits by page and writes statistics to the manifest', () => {
    // 2 training pages × 6 patches × (original + augmented copy); 1 held-out page × 6 patches.
    assert.equal(manifest.patches.train.length, 24);
    assert.equal(manifest.patches.val.length, 6);
    assert.deepEqual(
      manifest.pages.val.map((page) => page.name),
      ['page-0003'],
    );
    assert.ok(manifest.patches.val.every((pair) => pair.name.startsWith('val/page-0003')));
    assert.ok(manifest.stats.degradedPsnr > 5 && manifest.stats.degradedPsnr < 30, JSON.stringify(manifest.stats));
    assert.ok(manifest.stats.inkFraction > 0);
  });

  it('rejects a missing partner and a corrupt patch, names them, and keeps the rest', async () => {
    const broken = { ...spec, datasetId: 'broken', datasetDir: 'datasets/broken', pages: 2, augment: false };
    await runActivity(activity(), renderDatasetPages, broken);
    await runActivity(activity(), cutDatasetPatches, broken);
    const dir = path.join(dataDir, broken.datasetDir, 'patches', 'train');
    rmSync(path.join(dir, 'page-0001-001-clean.png'));
    writeFileSync(path.join(dir, 'page-0001-002-degraded.png'), 'not a png');
    // A patch replaced by a link to a real image outside the data dir: rejected with the reason, not read.
    const outside = mkdtempSync(path.join(os.tmpdir(), 'backroom-outside-'));
    renameSync(path.join(dir, 'page-0001-003-clean.png'), path.join(outside, 'patch.png'));
    symlinkSync(path.join(outside, 'patch.png'), path.join(dir, 'page-0001-003-clean.png'));
    const validated = await runActivity(activity(), validateDataset, broken);
    assert.ok(validated.finished);
    const written = JSON.parse(
      readFileSync(path.join(dataDir, broken.datasetDir, 'manifest.json'), 'utf8'),
    ) as DatasetManifest;
    assert.deepEqual(
      written.rejected.map((entry) => entry.name),
      ['train/page-0001-001', 'train/page-0001-002', 'train/page-0001-003'],
    );
    assert.match(written.rejected[0]?.reason ?? '', /clean patch is missing/);
    assert.match(written.rejected[1]?.reason ?? '', /degraded patch cannot be used/);
    assert.match(written.rejected[2]?.reason ?? '', /clean patch cannot be used .*leads outside the data dir/);
    assert.equal(written.patches.train.length, 3);
  });

  it('heartbeats batch progress and the running loss, and lowers the validation loss over two epochs', async () => {
    const prepared = await runActivity(activity(), prepareTrainingRun, runRequest('beats'));
    assert.equal(prepared.batchesPerEpoch, Math.ceil((24 * 256) / 128));
    const env = activity();
    const beats: ActivityHeartbeat<EpochCursor>[] = [];
    // Heartbeats without details only keep the activity alive while it loads or validates.
    env.on('heartbeat', (beat?: ActivityHeartbeat<EpochCursor>) => beat && beats.push(beat));
    const first = await runActivity(env, trainEpoch, epochRequest('beats', 1));
    const second = await runActivity(activity(), trainEpoch, epochRequest('beats', 2));
    assert.ok(first.finished && second.finished);
    assert.ok(
      beats.some((beat) => /epoch 1\/2 · batch \d+\/48 · loss 0\.\d+/.test(beat.message ?? '')),
      beats.at(-1)?.message,
    );
    assert.equal(beats.at(-1)?.progress.done, 48);
    assert.equal(beats.at(-1)?.progress.total, 96);
    assert.ok(second.result.valLoss < first.result.valLoss, `${first.result.valLoss} → ${second.result.valLoss}`);
    const best = await readCheckpoint(path.join(dataDir, 'models/beats/best.json'));
    assert.equal(best.metrics?.epoch, 2);
  });

  it('stops at a partial checkpoint when cancelled and resumes to the same weights as an uninterrupted epoch', async () => {
    await runActivity(activity(), prepareTrainingRun, runRequest('straight'));
    await runActivity(activity(), prepareTrainingRun, runRequest('stopped'));
    const straight = await runActivity(activity(), trainEpoch, epochRequest('straight', 1));
    assert.ok(straight.finished);

    const env = activity();
    env.on('heartbeat', (beat?: ActivityHeartbeat<EpochCursor>) => {
      if (beat && beat.checkpoint.batch > 0) env.cancel();
    });
    const stopped = await runActivity(env, trainEpoch, epochRequest('stopped', 1));
    assert.equal(stopped.finished, false);
    const partial = await readCheckpoint(path.join(dataDir, 'models/stopped/partial.json'));
    assert.ok(partial.position.batch > 0 && partial.position.batch < 48, `stopped at batch ${partial.position.batch}`);
    assert.ok(partial.optimizer.length > 0, 'the optimiser state is saved with the weights');

    // A retry after a dead worker (attempt 2, stale heartbeat) also starts from the partial checkpoint.
    const resumedEnv = quietActivity({ attempt: 2, heartbeatDetails: { checkpoint: { batch: 0 } } });
    const first: ActivityHeartbeat<EpochCursor>[] = [];
    resumedEnv.on('heartbeat', (beat?: ActivityHeartbeat<EpochCursor>) => beat && first.push(beat));
    const resumed = await runActivity(resumedEnv, trainEpoch, epochRequest('stopped', 1));
    assert.ok(resumed.finished);
    assert.equal(first[0]?.checkpoint.batch, partial.position.batch, 'resumed where the partial checkpoint stood');
    const a = await readCheckpoint(path.join(dataDir, 'models/straight/epoch-0001.json'));
    const b = await readCheckpoint(path.join(dataDir, 'models/stopped/epoch-0001.json'));
    for (const name of ['w1', 'w1n', 'w3'] as const) {
      const largest = a.weights[name].reduce(
        (max, value, i) => Math.max(max, Math.abs(value - (b.weights[name][i] ?? 0))),
        0,
      );
      assert.ok(largest < 1e-4, `${name} differs by ${largest}`);
    }
    assert.equal(resumed.result.trainLoss, straight.result.trainLoss);
  });

  it("trains, runs layer 1 and validates on the CPU pool, never on the worker's main thread", async () => {
    const pool = process.env.BACKROOM_CPU_POOL;
    process.env.BACKROOM_CPU_POOL = '1';
    try {
      const here = { ...modelWorkCounts };
      const tasks = ['initialWeights', 'layer2Patches', 'trainSteps', 'validateModel'] as const;
      const before = tasks.map((task) => cpuTaskCounts(task));
      await runActivity(activity(), prepareTrainingRun, runRequest('pooled'));
      await runActivity(
        activity(),
        prepareTrainingRun,
        runRequest('pooled-layer2', { layer: 'layer2', layer1Model: 'models/beats/best.json' }),
      );
      const trained = await runActivity(activity(), trainEpoch, {
        ...epochRequest('pooled-layer2', 1),
        layer: 'layer2',
      });
      assert.ok(trained.finished);
      // The model's own counters on this (the main) thread: a batch trained or a patch predicted here shows.
      assert.deepEqual(modelWorkCounts, here, 'model work ran on the main thread');
      tasks.forEach((task, i) => {
        const after = cpuTaskCounts(task);
        assert.ok(after.pool > (before[i]?.pool ?? 0), `${task} did not run on the pool`);
        assert.equal(after.calling, before[i]?.calling, `${task} ran on the calling thread`);
      });
    } finally {
      if (pool === undefined) delete process.env.BACKROOM_CPU_POOL;
      else process.env.BACKROOM_CPU_POOL = pool;
    }
  });

  it('trains to the same bits on the calling thread with the pool off (BACKROOM_CPU_POOL=0)', async () => {
    const pool = process.env.BACKROOM_CPU_POOL;
    process.env.BACKROOM_CPU_POOL = '0';
    try {
      const here = modelWorkCounts.trainBatches;
      await runActivity(activity(), prepareTrainingRun, runRequest('inline'));
      const inline = await runActivity(activity(), trainEpoch, epochRequest('inline', 1));
      assert.ok(inline.finished);
      assert.ok(modelWorkCounts.trainBatches > here, 'with the pool off, training runs on this thread');
      const a = await readCheckpoint(path.join(dataDir, 'models/straight/epoch-0001.json'));
      const b = await readCheckpoint(path.join(dataDir, 'models/inline/epoch-0001.json'));
      assert.deepEqual(b.weights, a.weights);
      assert.deepEqual(b.optimizer, a.optimizer);
      // Everything but the time it took and the file it is in.
      const measured = (m: typeof a.metrics) => m && [m.epoch, m.trainLoss, m.valLoss, m.valPsnr, m.inputPsnr];
      assert.deepEqual(measured(b.metrics), measured(a.metrics));
    } finally {
      if (pool === undefined) delete process.env.BACKROOM_CPU_POOL;
      else process.env.BACKROOM_CPU_POOL = pool;
    }
  });

  it('fine-tunes from the given weights, with a smaller default learning rate', async () => {
    const source = path.join(dataDir, 'models/beats/best.json');
    const prepared = await runActivity(
      activity(),
      prepareTrainingRun,
      runRequest('tuned', { fineTuneFrom: 'models/beats/best.json' }),
    );
    assert.equal(prepared.learningRate, 0.0005);
    const start = await readCheckpoint(path.join(dataDir, 'models/tuned/epoch-0000.json'));
    const from = await readCheckpoint(source);
    assert.deepEqual(start.weights.w1, from.weights.w1);
    assert.deepEqual(start.weights.b3, from.weights.b3);
    // A retry of the same run keeps its start; another model under the same modelName (here: not fine-tuned) is
    // refused by the state-folder rule, and with overwrite starts over from its own weights.
    await runActivity(activity(), prepareTrainingRun, runRequest('tuned', { fineTuneFrom: 'models/beats/best.json' }));
    assert.deepEqual(
      (await readCheckpoint(path.join(dataDir, 'models/tuned/epoch-0000.json'))).weights.w1,
      from.weights.w1,
    );
    await assert.rejects(
      runActivity(activity(), prepareTrainingRun, { ...runRequest('tuned'), runKey: 'another run' }),
      /models\/tuned holds a layer1 model trained on datasets\/tiny from models\/beats\/best\.json/,
    );
    await runActivity(activity(), prepareTrainingRun, {
      ...runRequest('tuned'),
      runKey: 'another run',
      overwrite: true,
    });
    const restarted = await readCheckpoint(path.join(dataDir, 'models/tuned/epoch-0000.json'));
    assert.equal(restarted.position.firstRunId, 'another run');
    assert.notDeepEqual(restarted.weights.w1, from.weights.w1);
  });

  it('refuses corrupt checkpoints, missing or empty datasets, and a layer-2 run without a layer-1 model', async () => {
    const models = path.join(dataDir, 'models');
    writeFileSync(
      path.join(models, 'truncated.json'),
      readFileSync(path.join(models, 'beats/best.json'), 'utf8').slice(0, 500),
    );
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('x', { fineTuneFrom: 'models/truncated.json' })),
      'CorruptCheckpoint',
      /models\/truncated\.json is not a valid checkpoint \(not JSON/,
    );
    const wrongSize = await readCheckpoint(path.join(models, 'beats/best.json'));
    await writeCheckpoint(path.join(models, 'short.json'), {
      ...wrongSize,
      weights: { ...wrongSize.weights, w2: new Float32Array(3) },
    });
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('x', { fineTuneFrom: 'models/short.json' })),
      'CorruptCheckpoint',
      /weight "w2" has 3 values/,
    );
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('x', { dataset: 'datasets/nowhere' })),
      'DatasetNotFound',
      /does not exist\. Make one with generateSyntheticData/,
    );
    mkdirSync(path.join(dataDir, 'datasets/empty'), { recursive: true });
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('x', { dataset: 'datasets/empty' })),
      'DatasetIncomplete',
      /no readable manifest\.json/,
    );
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('x', { layer: 'layer2' })),
      'Layer1Missing',
      /train layer1 first/,
    );
    await rejectsNonRetryable(
      runActivity(
        activity(),
        prepareTrainingRun,
        runRequest('x', { layer: 'layer2', layer1Model: 'models/none.json' }),
      ),
      'FileNotFound',
      /layer-1 model models\/none\.json does not exist/,
    );
  });

  it('checks the numbers of a training input before anything runs', () => {
    const issues = (input: Record<string, unknown>) => {
      try {
        parseJobInput('trainModel', trainModelInput, { layer: 'layer1', dataset: 'd', epochs: 3, ...input });
        return '';
      } catch (err) {
        assert.ok(err instanceof JobInputError);
        return err.issues.join('; ');
      }
    };
    assert.match(issues({ epochs: 0 }), /epochs: .*>=1/);
    assert.match(issues({ epochs: -2 }), /epochs/);
    assert.match(issues({ epochs: 2.5 }), /epochs: must be a whole number/);
    assert.match(issues({ batchSize: 0 }), /batchSize/);
    assert.match(issues({ learningRate: 0 }), /learningRate: must be a positive number/);
    assert.match(issues({ learningRate: 'fast' }), /learningRate: must be a number/);
    assert.match(issues({ layer: 'layer2' }), /layer1Model: a layer2 run refines a layer-1 model/);
    assert.equal(issues({ batchSize: 64, learningRate: 0.001 }), '');
  });

  it('evaluates a layer-2 model on a real manuscript page against its hand-made ground truth', async (t) => {
    mkdirSync(path.join(dataDir, 'real'), { recursive: true });
    for (const name of ['2JohnC1V3.png', '2JohnC1V3-GroundTruth.png']) {
      copyFileSync(fixtureFile(`documents/${name}`), path.join(dataDir, 'real', name));
    }
    await runActivity(
      activity(),
      prepareTrainingRun,
      runRequest('binary', { layer: 'layer2', layer1Model: 'models/beats/best.json' }),
    );
    const trained = await runActivity(activity(), trainEpoch, { ...epochRequest('binary', 1), layer: 'layer2' });
    assert.ok(trained.finished);
    const evaluated = await runActivity(activity(), evaluateHeldOutPages, {
      model: 'models/binary/best.json',
      pages: [{ input: 'real/2JohnC1V3.png', reference: 'real/2JohnC1V3-GroundTruth.png' }],
    });
    assert.ok(evaluated.finished);
    const { input, classical, model, classicalSteps } = evaluated.result;
    assert.deepEqual(classicalSteps, ['denoise', 'normalize', 'binarize']);
    for (const scores of [input, classical, model]) assert.ok(Number.isFinite(scores.psnr) && scores.psnr > 0);
    assert.ok(existsSync(path.join(dataDir, 'models/binary/evaluation/001-2JohnC1V3.png')));
    t.diagnostic(`2JohnC1V3 PSNR: input ${input.psnr}, classical ${classical.psnr}, model ${model.psnr} dB`);
    // A job asked to run the model says what this evaluation on a real page found.
    const described = await runActivity(activity(), describeModel, { model: 'models/binary/best.json' });
    assert.deepEqual(described.onGivenPages, { pages: 1, modelPsnr: model.psnr, classicalPsnr: classical.psnr });
    if (model.psnr < classical.psnr) {
      assert.match(
        described.warning ?? '',
        /restored the 1 real page\(s\) it was evaluated on worse than the classical/,
      );
    } else {
      assert.equal(described.warning, undefined);
    }
    // A model evaluated on nothing real says so too.
    const synthetic = await runActivity(activity(), describeModel, { model: 'models/beats/best.json' });
    assert.equal(synthetic.onGivenPages, undefined);
    assert.match(synthetic.warning ?? '', /^models\/beats\/best\.json has not been evaluated on real pages/);
    await rejectsNonRetryable(
      runActivity(activity(), evaluateHeldOutPages, {
        model: 'models/binary/best.json',
        pages: [{ input: 'real/2JohnC1V3.png', reference: 'real/missing.png' }],
      }),
      'FileNotFound',
      /reference real\/missing\.png does not exist/,
    );
  });

  it('runs a trained model as a restoreDocument step, and refuses the step without a model', async () => {
    const page = manifest.pages.val[0];
    assert.ok(page);
    const result = await runActivity(activity(), restoreDocumentImage, {
      input: path.join(spec.datasetDir, page.degraded),
      reference: path.join(spec.datasetDir, page.clean),
      output: 'restored/with-model.png',
      steps: ['model'],
      model: 'models/beats/best.json',
      thresholds: { minPsnrGainDb: 0, minSsim: 0, maxResidualSkewDegrees: 0.5, maxNoiseSigma: 8 },
    });
    assert.match(result.steps[0]?.detail ?? '', /layer1 model, epoch 2/);
    const reference = result.metrics.reference;
    assert.ok(reference && reference.outputPsnr > reference.inputPsnr, JSON.stringify(reference));
    assert.throws(
      () => parseJobInput('restoreDocument', restoreDocumentInput, { input: 'a.png', steps: ['denoise', 'model'] }),
      /model: the "model" step needs a model checkpoint/,
    );
  });
});
