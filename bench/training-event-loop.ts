/**
 * How much a training epoch holds up the worker's main thread, and what it computes: layer-1 and layer-2 epochs run
 * as activities (MockActivityEnvironment, no server) on a generated dataset while `monitorEventLoopDelay` watches the
 * main thread. Prints each epoch's event-loop delay (p99, max) and its metrics, a digest of every final checkpoint's
 * weights and optimiser state (equal digests = bit-identical training), and checks that a run cancelled mid-epoch
 * and resumed from `partial.json` ends with the same metrics as an uninterrupted one.
 *
 *   npx tsx bench/training-event-loop.ts                  # the CPU pool as configured (on by default)
 *   BACKROOM_CPU_POOL=0 npx tsx bench/training-event-loop.ts   # everything on the calling thread
 *
 * Sizes: BENCH_TRAINING_LOOP_PAGES (default 4) pages of 500×707 with 24 patches each, batches of 1024 windows.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MockActivityEnvironment } from '@temporalio/testing';
import { closeCpuPool } from '../src/activities/cpu-pool';
import { readCheckpoint } from '../src/activities/training/checkpoint';
import { cutDatasetPatches, renderDatasetPages, validateDataset } from '../src/activities/training/synthetic-data';
import {
  prepareTrainingRun,
  trainEpoch,
  type EpochCursor,
  type EpochRequest,
} from '../src/activities/training/train-epoch';
import { cpuPoolSettings } from '../src/config';
import type { ActivityHeartbeat } from '../src/shared/job-status';
import type { EpochMetrics, ModelLayer } from '../src/shared/training-inputs';
import { intFromEnv } from './settings';

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
const activity = () => new MockActivityEnvironment(undefined, quiet);
const run = <A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A) =>
  env.run(fn, ...args) as Promise<R>;

const DATASET = 'datasets/loop';
const BATCH = 1024;

/** Runs `work` while watching the main thread's event-loop delay; returns its result and the delay in ms. */
async function watched<T>(work: () => Promise<T>): Promise<{ value: T; p99: number; max: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  try {
    const value = await work();
    return { value, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

function digest(values: Float32Array[]): string {
  const hash = createHash('sha256');
  for (const array of values) hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  return hash.digest('hex').slice(0, 16);
}

async function checkpointDigest(dataDir: string, file: string): Promise<string> {
  const checkpoint = await readCheckpoint(path.join(dataDir, file));
  return digest([...Object.values(checkpoint.weights), ...checkpoint.optimizer.map((entry) => entry.data)]);
}

const shown = (m: EpochMetrics) =>
  `trainLoss ${m.trainLoss} valLoss ${m.valLoss} valPsnr ${m.valPsnr} inputPsnr ${m.inputPsnr}`;

async function main(): Promise<void> {
  const pages = intFromEnv('BENCH_TRAINING_LOOP_PAGES', 4);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-training-loop-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  const pool = cpuPoolSettings();
  console.log(
    `Training event-loop benchmark: ${pages} pages of 500×707, batches of ${BATCH}; CPU pool ` +
      (pool.enabled ? `on (${pool.threads} threads)` : 'off') +
      `; ${os.availableParallelism()} cores`,
  );
  const spec = {
    datasetId: 'loop',
    datasetDir: DATASET,
    pages,
    patchSize: 64,
    patchesPerPage: 24,
    augment: true,
    width: 500,
    height: 707,
    seed: 1,
  };
  await run(activity(), renderDatasetPages, spec);
  await run(activity(), cutDatasetPatches, spec);
  await run(activity(), validateDataset, spec);

  const prepare = (modelName: string, layer: ModelLayer, layer1Model?: string) =>
    run(activity(), prepareTrainingRun, {
      layer,
      dataset: DATASET,
      modelName,
      runKey: `key-${modelName}`,
      batchSize: BATCH,
      seed: 1,
      ...(layer1Model && { layer1Model }),
    });
  const request = (modelName: string, layer: ModelLayer, epoch: number, learningRate: number): EpochRequest => ({
    layer,
    dataset: DATASET,
    runDir: `models/${modelName}`,
    runKey: `key-${modelName}`,
    epoch,
    epochs: 2,
    batchSize: BATCH,
    learningRate,
    seed: 1,
  });
  const epoch = async (label: string, req: EpochRequest, env = activity()) => {
    const { value, p99, max } = await watched(() => run(env, trainEpoch, req));
    console.log(
      `  ${label.padEnd(28)} event-loop delay p99 ${p99.toFixed(1).padStart(6)} ms, ` +
        `max ${max.toFixed(1).padStart(6)} ms` +
        (value.finished ? `  ${shown(value.result)}` : `  stopped at batch ${value.checkpoint.batch}`),
    );
    return value;
  };

  const layer1 = await prepare('straight', 'layer1');
  await epoch('layer1 epoch 1 (+ load)', request('straight', 'layer1', 1, layer1.learningRate));
  const straight = await epoch('layer1 epoch 2', request('straight', 'layer1', 2, layer1.learningRate));

  // The same run, cancelled after its first step and resumed from partial.json by a retry.
  await prepare('stopped', 'layer1');
  const env = activity();
  env.on('heartbeat', (beat?: ActivityHeartbeat<EpochCursor>) => {
    if (beat && beat.checkpoint.batch > 0) env.cancel();
  });
  await epoch('layer1 epoch 1, cancelled', request('stopped', 'layer1', 1, layer1.learningRate), env);
  const retry = new MockActivityEnvironment({ attempt: 2 }, quiet);
  await epoch('layer1 epoch 1, resumed', request('stopped', 'layer1', 1, layer1.learningRate), retry);
  const resumed = await epoch('layer1 epoch 2 (resumed run)', request('stopped', 'layer1', 2, layer1.learningRate));

  const layer2 = await prepare('refine', 'layer2', 'models/straight/best.json');
  await epoch('layer2 epoch 1 (+ layer 1)', request('refine', 'layer2', 1, layer2.learningRate));
  await epoch('layer2 epoch 2', request('refine', 'layer2', 2, layer2.learningRate));

  for (const file of [
    'models/straight/epoch-0002.json',
    'models/stopped/epoch-0002.json',
    'models/refine/epoch-0002.json',
  ]) {
    console.log(`  digest ${file.padEnd(32)} ${await checkpointDigest(dataDir, file)}`);
  }
  if (straight.finished && resumed.finished) {
    const same = shown(straight.result) === shown(resumed.result);
    console.log(`  resumed run's final metrics ${same ? 'equal' : 'DIFFER FROM'} the uninterrupted run's`);
  }
  await closeCpuPool();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
