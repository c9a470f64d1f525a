/**
 * Training benchmark on a generated dataset, measured side by side in one run:
 *   1. the bare training loop (trainBatch on random windows, no Temporal) against trainModel through a real dev
 *      server and worker: samples per second, and what the epoch activities, their partial checkpoints and their
 *      validation passes cost;
 *   2. how long training takes to beat the classical pipeline: every epoch's checkpoint restores the held-out pages,
 *      its PSNR against the classical pipeline's, and the time at the first epoch that wins;
 *   3. a layer-2 model on layer 1's best: PSNR on the held-out pages and on the real manuscript page in
 *      test/fixtures against its hand-made ground truth, next to the classical pipeline with Sauvola.
 * Sizes: BENCH_TRAINING_PAGES (default 10) pages of 1240×1754, BENCH_TRAINING_EPOCHS (default 6), and
 * BENCH_TRAINING_BATCHES (default 60) batches of 1024 windows for the bare loop, BENCH_TRAINING_LAYER2_EPOCHS (3).
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { seededRandom } from '../src/activities/restoration/page-generator';
import { loadDataset } from '../src/activities/training/dataset';
import { evaluateHeldOutPages, type EvaluationSummary } from '../src/activities/training/evaluate';
import { WindowModel, cutWindow, emptyBatch } from '../src/activities/training/model';
import { cutDatasetPatches, renderDatasetPages, validateDataset } from '../src/activities/training/synthetic-data';
import { WINDOWS_PER_PATCH, epochFile } from '../src/activities/training/train-epoch';
import type { TrainModelResult } from '../src/workflows/training';
import { fixtureFile } from '../test/helpers/fixtures';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv } from './settings';

const DATASET = 'datasets/bench';
const BATCH = 1024;
const WARMUP_BATCHES = 5;

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
const activity = () => new MockActivityEnvironment(undefined, quiet);
const secondsSince = (started: number) => (performance.now() - started) / 1000;

/** Windows per second of the training loop alone: random windows of the training patches, as trainEpoch draws them. */
async function bareLoop(batches: number): Promise<number> {
  const { train } = await loadDataset(DATASET);
  const model = await WindowModel.initialize(1);
  model.useOptimizer(0.002);
  const random = seededRandom(7);
  const draw = () => {
    const batch = emptyBatch(BATCH);
    for (let slot = 0; slot < BATCH; slot++) {
      const index = Math.floor(random() * train.inputs.length);
      const input = train.inputs[index];
      const target = train.targets[index];
      if (!input || !target) continue;
      const x = Math.floor(random() * input.width);
      const y = Math.floor(random() * input.height);
      cutWindow(input, x, y, batch, slot);
      batch.targets[slot] = (target.data[y * target.width + x] ?? 0) / 255;
    }
    return batch;
  };
  try {
    for (let i = 0; i < WARMUP_BATCHES; i++) await model.trainBatch(draw());
    const started = performance.now();
    for (let i = 0; i < batches; i++) await model.trainBatch(draw());
    return (batches * BATCH) / secondsSince(started);
  } finally {
    model.dispose();
  }
}

export async function trainingBenchmark(): Promise<void> {
  const pages = intFromEnv('BENCH_TRAINING_PAGES', 10);
  const epochs = intFromEnv('BENCH_TRAINING_EPOCHS', 6);
  const bareBatches = intFromEnv('BENCH_TRAINING_BATCHES', 60);
  const layer2Epochs = intFromEnv('BENCH_TRAINING_LAYER2_EPOCHS', 3);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-training-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  console.log(`\nTraining benchmark: ${pages} pages of 1240×1754, ${epochs} epochs of layer 1 (generating data...)`);

  const spec = {
    datasetId: 'bench',
    datasetDir: DATASET,
    pages,
    patchSize: 64,
    patchesPerPage: 48,
    augment: true,
    width: 1240,
    height: 1754,
    seed: 1,
  };
  let started = performance.now();
  await activity().run(renderDatasetPages, spec);
  await activity().run(cutDatasetPatches, spec);
  const validated = (await activity().run(validateDataset, spec)) as Awaited<ReturnType<typeof validateDataset>>;
  if (!validated.finished) throw new Error('dataset validation did not finish');
  const { stats } = validated.result;
  console.log(
    `  dataset: ${stats.trainPairs} train / ${stats.valPairs} val pairs, degraded PSNR ${stats.degradedPsnr} dB ` +
      `(${secondsSince(started).toFixed(1)} s to generate)`,
  );

  const bare = await bareLoop(bareBatches);
  const batchesPerEpoch = Math.ceil((stats.trainPairs * WINDOWS_PER_PATCH) / BATCH);

  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-training');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  let result: TrainModelResult;
  let layer2: TrainModelResult;
  let jobSeconds: number;
  let jobStartedAt: number; // wall clock, to compare with the checkpoints' modification times
  try {
    const jobs = testJobs(env, taskQueue);
    jobStartedAt = Date.now();
    started = performance.now();
    const input = { layer: 'layer1', dataset: DATASET, epochs, modelName: 'bench', evaluate: false };
    const { id } = await jobs.start('trainModel', input);
    result = await jobs.result<TrainModelResult>(id);
    jobSeconds = secondsSince(started);
    const second = await jobs.start('trainModel', {
      layer: 'layer2',
      dataset: DATASET,
      epochs: layer2Epochs,
      modelName: 'bench-layer2',
      layer1Model: 'models/bench/best.json',
    });
    layer2 = await jobs.result<TrainModelResult>(second.id);
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
  }
  const epochSeconds = result.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0);
  const samples = result.epochsCompleted * batchesPerEpoch * BATCH;
  const orchestrated = samples / jobSeconds;
  const rate = (name: string, value: number) =>
    `  ${name.padEnd(34)} ${Math.round(value).toLocaleString('en-US').padStart(7)} samples/s`;
  console.log(rate(`bare loop (${bareBatches} batches of ${BATCH})`, bare));
  console.log(
    rate(`trainModel job (${result.epochsCompleted} × ${batchesPerEpoch} batches)`, orchestrated) +
      `  (${jobSeconds.toFixed(1)} s: ${epochSeconds.toFixed(1)} s in epoch activities, ` +
      `${(jobSeconds - epochSeconds).toFixed(1)} s preparing and orchestrating)`,
  );
  console.log(`  orchestrated / bare: ${(orchestrated / bare).toFixed(2)}`);

  console.log('  held-out pages, per epoch checkpoint:');
  console.log('    epoch  training s  job wall s  classical dB  model dB');
  let cumulative = 0;
  let winner: { epoch: number; training: number; wall: number } | undefined;
  let last: EvaluationSummary | undefined;
  for (const metrics of result.epochs) {
    const model = epochFile('models/bench', metrics.epoch);
    const evaluated = (await activity().run(evaluateHeldOutPages, {
      model,
      dataset: DATASET,
      output: `models/bench/eval-${metrics.epoch}.json`,
    })) as Awaited<ReturnType<typeof evaluateHeldOutPages>>;
    if (!evaluated.finished) throw new Error(`the evaluation of ${model} did not finish`);
    last = evaluated.result;
    const { classical, model: scores } = last;
    cumulative += metrics.seconds;
    // From the job's start to the checkpoint on disk: includes preparation and the workflow's own work.
    const wall = ((await stat(path.join(dataDir, model))).mtimeMs - jobStartedAt) / 1000;
    if (!winner && scores.psnr > classical.psnr) winner = { epoch: metrics.epoch, training: cumulative, wall };
    console.log(
      `    ${String(metrics.epoch).padStart(5)}  ${cumulative.toFixed(1).padStart(10)}  ${wall.toFixed(1).padStart(10)}` +
        `  ${classical.psnr.toFixed(2).padStart(12)}  ${scores.psnr.toFixed(2).padStart(8)}`,
    );
  }
  console.log(
    winner
      ? `  the model beats the classical PSNR after epoch ${winner.epoch}: ${winner.training.toFixed(1)} s of ` +
          `training, ${winner.wall.toFixed(1)} s after the job started`
      : `  the model never beat the classical PSNR within ${result.epochsCompleted} epochs`,
  );
  if (last) {
    const { input, classical, model } = last;
    const both = (scores: { psnr: number; ssim: number }) => `PSNR ${scores.psnr.toFixed(2)} dB, SSIM ${scores.ssim}`;
    console.log(`  last epoch: input ${both(input)} · classical ${both(classical)} · model ${both(model)}`);
  }
  await layer2Figures(layer2, dataDir);
}

/** Layer 2 (black and white) on the held-out pages, and on the real manuscript page against its ground truth. */
async function layer2Figures(layer2: TrainModelResult, dataDir: string): Promise<void> {
  const row = (name: string, summary: EvaluationSummary) =>
    console.log(
      `  ${name.padEnd(44)} PSNR input ${summary.input.psnr.toFixed(2)} · Sauvola pipeline ` +
        `${summary.classical.psnr.toFixed(2)} · model ${summary.model.psnr.toFixed(2)} dB`,
    );
  const seconds = layer2.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0);
  console.log(`  layer 2: ${layer2.epochsCompleted} epochs in ${seconds.toFixed(1)} s of training`);
  if (layer2.evaluation) row('held-out pages vs the binarised clean page', layer2.evaluation);
  const real = path.join(dataDir, 'real');
  mkdirSync(real, { recursive: true });
  for (const name of ['2JohnC1V3.png', '2JohnC1V3-GroundTruth.png']) {
    copyFileSync(fixtureFile(`documents/${name}`), path.join(real, name));
  }
  const evaluated = (await activity().run(evaluateHeldOutPages, {
    model: 'models/bench-layer2/best.json',
    pages: [{ input: 'real/2JohnC1V3.png', reference: 'real/2JohnC1V3-GroundTruth.png' }],
    output: 'models/bench-layer2/manuscript.json',
  })) as Awaited<ReturnType<typeof evaluateHeldOutPages>>;
  if (evaluated.finished) row('real manuscript 2JohnC1V3 vs its ground truth', evaluated.result);
}
