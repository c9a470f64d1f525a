/**
 * Saturation benchmark: does a worker stay responsive when every activity slot is CPU-bound?
 * A real dev server and a worker process (`npm run worker`'s entry, with its `/healthz`), all its activity slots
 * busy with CPU-heavy jobs for BENCH_SATURATION_SECONDS (default 120; the acceptance run is 600):
 * restoreBatch with the model step, evaluateModel, analyzeCuts and trainModel (layer 1 on a small generated
 * dataset), each started again when it ends. Meanwhile a probe asks `/healthz` every 100 ms and records how long
 * each answer took; afterwards the jobs' histories give the heartbeat timeouts and the activity retries. Measured
 * side by side in one run: the CPU work on the worker's main thread (BACKROOM_CPU_POOL=0, the old path) and on the
 * CPU pool. BENCH_SATURATION_MODES picks them (`main-thread,pool`), BENCH_SATURATION_SLOTS the activity slots
 * (default 8, the worker's default), BENCH_SATURATION_PAGES the pages per batch (12, 1240×1754).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { degradePage, randomDegradation, renderCleanPage } from '../src/activities/restoration/page-generator';
import { writeCheckpoint } from '../src/activities/training/checkpoint';
import { WindowModel } from '../src/activities/training/model';
import { cutDatasetPatches, renderDatasetPages, validateDataset } from '../src/activities/training/synthetic-data';
import { Jobs } from '../src/client/jobs';
import { startDevServer } from '../src/devserver/dev-server';
import { freePort, startWorkerProcess } from '../test/helpers/processes';
import { makeVideo, SOURCES } from '../test/helpers/videos';
import { intFromEnv, percentile } from './settings';

const MODES = { 'main-thread': '0', pool: '1' } as const;
type Mode = keyof typeof MODES;

const PROBE_EVERY_MS = 100;
/** A probe unanswered this long counts at this latency. */
const PROBE_TIMEOUT_MS = 60_000;
const MODEL = 'model/layer1.json';
const DATASET = 'datasets/saturation';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Degraded pages with their clean references, a layer-1 model (its weights do not change its cost), a small training
 * dataset (4 pages of 500×707, 24 patches each: 36 batches of 1024 windows per epoch), a video.
 */
async function makeInputs(dataDir: string, pages: number): Promise<void> {
  mkdirSync(path.join(dataDir, 'pages/clean'), { recursive: true });
  mkdirSync(path.join(dataDir, 'pages/degraded'), { recursive: true });
  for (let index = 0; index < pages; index++) {
    const name = `page-${String(index + 1).padStart(4, '0')}`;
    const seed = 500 + index;
    const clean = await renderCleanPage({ seed });
    writeFileSync(path.join(dataDir, `pages/clean/${name}.png`), clean);
    writeFileSync(
      path.join(dataDir, `pages/degraded/${name}.jpg`),
      await degradePage(clean, randomDegradation(seed), seed),
    );
  }
  const model = await WindowModel.initialize(1);
  try {
    await writeCheckpoint(path.join(dataDir, MODEL), {
      layer: 'layer1',
      architecture: model.architecture,
      weights: await model.weights(),
      learningRate: 0.002,
      optimizer: [],
      position: { firstRunId: 'bench', epoch: 1, batch: 0, lossSum: 0, samples: 0 },
    });
  } finally {
    model.dispose();
  }
  const spec = {
    datasetId: 'saturation',
    datasetDir: DATASET,
    pages: 4,
    patchSize: 64,
    patchesPerPage: 24,
    augment: true,
    width: 500,
    height: 707,
    seed: 1,
  };
  const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
  for (const make of [renderDatasetPages, cutDatasetPatches, validateDataset]) {
    await new MockActivityEnvironment(undefined, quiet).run(make, spec);
  }
  const cycle = [SOURCES.moving, SOURCES.bars, SOURCES.zoom, SOURCES.pan, SOURCES.tinted];
  makeVideo(
    path.join(dataDir, 'video.mp4'),
    Array.from({ length: 12 }, (_, i) => ({
      source: cycle[i % cycle.length]!.replace(/rate=25/g, 'rate=30'),
      seconds: 5,
    })),
    { width: 1280, height: 720, fps: 30 },
  );
}

/** The jobs that fill `slots` activity slots: a cut analysis, an evaluation, a training run, batches for the rest. */
function lanes(slots: number, pages: number, mode: Mode): { type: string; input: (run: number) => unknown }[] {
  const pageList = Array.from({ length: pages }, (_, i) => `page-${String(i + 1).padStart(4, '0')}`);
  // The slots left go to batches of up to four lanes each.
  const batchSlots = Math.max(1, slots - 3);
  const batches = Math.ceil(batchSlots / 4);
  const concurrency = (lane: number) => Math.floor(batchSlots / batches) + (lane < batchSlots % batches ? 1 : 0);
  return [
    { type: 'analyzeCuts', input: (run) => ({ video: 'video.mp4', outputDir: `out/${mode}/cuts-${run}` }) },
    {
      type: 'evaluateModel',
      input: (run) => ({
        model: MODEL,
        pages: pageList.map((name) => ({ input: `pages/degraded/${name}.jpg`, reference: `pages/clean/${name}.png` })),
        output: `out/${mode}/evaluation-${run}/evaluation.json`,
      }),
    },
    {
      type: 'trainModel',
      input: (run) => ({
        layer: 'layer1',
        dataset: DATASET,
        epochs: 3,
        modelName: `saturation-${mode}-${run}`,
        evaluate: false,
      }),
    },
    ...Array.from({ length: batches }, (_, lane) => ({
      type: 'restoreBatch',
      input: (run: number) => ({
        inputDir: 'pages/degraded',
        referenceDir: 'pages/clean',
        outputDir: `out/${mode}/batch-${lane}-${run}`,
        concurrency: concurrency(lane),
        steps: ['denoise', 'deskew', 'normalize', 'model'],
        model: MODEL,
      }),
    })),
  ];
}

/** Asks `url` every 100 ms until `stopped()`, each request on its own; returns every latency in ms. */
async function probe(url: string, stopped: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  while (!stopped()) {
    const started = performance.now();
    inFlight.push(
      fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
        .then((response) => response.arrayBuffer())
        .then(
          () => void latencies.push(performance.now() - started),
          () => void latencies.push(PROBE_TIMEOUT_MS),
        ),
    );
    await sleep(PROBE_EVERY_MS);
  }
  await Promise.all(inFlight);
  return latencies;
}

interface HistoryCounts {
  heartbeatTimeouts: number;
  otherTimeouts: number;
  retries: number;
  failedJobs: number;
  completedActivities: Map<string, number>;
}

const HEARTBEAT = temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT;

/** Heartbeat timeouts, other timeouts and retries in every run on `taskQueue`, from their histories. */
async function countFromHistories(client: Client, taskQueue: string): Promise<HistoryCounts> {
  const counts: HistoryCounts = {
    heartbeatTimeouts: 0,
    otherTimeouts: 0,
    retries: 0,
    failedJobs: 0,
    completedActivities: new Map(),
  };
  const timedOut = (failure: temporal.api.failure.v1.IFailure | null | undefined) => {
    const type = failure?.timeoutFailureInfo?.timeoutType;
    if (type === undefined || type === null) return;
    if (type === HEARTBEAT) counts.heartbeatTimeouts++;
    else counts.otherTimeouts++;
  };
  for await (const execution of client.workflow.list({ query: `TaskQueue="${taskQueue}"` })) {
    if (execution.status.name === 'FAILED' || execution.status.name === 'TIMED_OUT') counts.failedJobs++;
    const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    const types = new Map<string, string>();
    for (const event of history.events ?? []) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled) types.set(String(event.eventId), scheduled.activityType?.name ?? '?');
      const started = event.activityTaskStartedEventAttributes;
      // A started event is written once per activity, with the attempt it ended on and why the one before failed.
      if (started && (started.attempt ?? 1) > 1) {
        counts.retries += (started.attempt ?? 1) - 1;
        timedOut(started.lastFailure);
      }
      const timeout = event.activityTaskTimedOutEventAttributes;
      if (timeout) timedOut(timeout.failure?.cause);
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed) {
        const type = types.get(String(completed.scheduledEventId)) ?? '?';
        counts.completedActivities.set(type, (counts.completedActivities.get(type) ?? 0) + 1);
      }
    }
  }
  return counts;
}

interface ModeResult {
  mode: Mode;
  latencies: number[];
  counts: HistoryCounts;
  jobsStarted: number;
}

async function measure(
  mode: Mode,
  serverAddress: string,
  client: Client,
  dataDir: string,
  settings: { seconds: number; slots: number; pages: number },
): Promise<ModeResult> {
  const taskQueue = `bench-saturation-${mode}-${Date.now()}`;
  const worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: serverAddress,
    BACKROOM_DATA_DIR: dataDir,
    BACKROOM_TASK_QUEUE: taskQueue,
    BACKROOM_MAX_ACTIVITIES: String(settings.slots),
    BACKROOM_CPU_POOL: MODES[mode],
    BACKROOM_SHUTDOWN_GRACE_SECONDS: '5',
  });
  const jobs = new Jobs(client, taskQueue);
  const deadline = Date.now() + settings.seconds * 1000;
  const stopped = () => Date.now() >= deadline;
  const running = new Set<string>();
  let jobsStarted = 0;
  // Each lane starts its job again as soon as it ends, until the deadline.
  const lane = async (spec: { type: string; input: (run: number) => unknown }) => {
    for (let run = 1; !stopped(); run++) {
      const { id } = await jobs.start(spec.type, spec.input(run));
      jobsStarted++;
      running.add(id);
      // Started as the window closed: it is not part of the measurement.
      if (stopped()) await jobs.cancel(id).catch(() => undefined);
      await jobs.result(id).catch(() => undefined);
      running.delete(id);
    }
  };
  try {
    const lanesDone = Promise.all(lanes(settings.slots, settings.pages, mode).map(lane));
    const latencies = await probe(`${worker.healthUrl}/healthz`, stopped);
    // The window is over: cancel what still runs (gracefully) and let it end.
    await Promise.all([...running].map((id) => jobs.cancel(id).catch(() => undefined)));
    await lanesDone;
    return { mode, latencies, counts: await countFromHistories(client, taskQueue), jobsStarted };
  } finally {
    worker.process.kill('SIGTERM');
    await Promise.race([worker.exited, sleep(30_000).then(() => worker.process.kill('SIGKILL'))]);
  }
}

function report(result: ModeResult): void {
  const sorted = [...result.latencies].sort((a, b) => a - b);
  const ms = (value: number) => `${Math.round(value)} ms`.padStart(9);
  const { counts } = result;
  const work = [...counts.completedActivities.entries()]
    .filter(([type]) =>
      ['restoreBatchItem', 'evaluateHeldOutPages', 'detectShots', 'analyzeClips', 'trainEpoch'].includes(type),
    )
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  console.log(
    `  ${result.mode.padEnd(12)} /healthz p50 ${ms(percentile(sorted, 0.5))}  p99 ${ms(percentile(sorted, 0.99))}  ` +
      `max ${ms(sorted.at(-1) ?? 0)}  (${sorted.length} probes)`,
  );
  console.log(
    `  ${''.padEnd(12)} heartbeat timeouts ${counts.heartbeatTimeouts}, other timeouts ${counts.otherTimeouts}, ` +
      `activity retries ${counts.retries}, failed jobs ${counts.failedJobs} of ${result.jobsStarted}`,
  );
  console.log(`  ${''.padEnd(12)} activities completed: ${work || 'none'}`);
}

export async function saturationBenchmark(): Promise<void> {
  const seconds = intFromEnv('BENCH_SATURATION_SECONDS', 120);
  const slots = intFromEnv('BENCH_SATURATION_SLOTS', 8);
  const pages = intFromEnv('BENCH_SATURATION_PAGES', 12);
  const modes = (process.env.BENCH_SATURATION_MODES || 'main-thread,pool').split(',').map((m) => m.trim());
  for (const mode of modes) {
    if (!(mode in MODES)) throw new Error(`BENCH_SATURATION_MODES: unknown mode "${mode}" (main-thread, pool)`);
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-saturation-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  console.log(
    `\nSaturation benchmark on ${os.availableParallelism()} cores: ${slots} activity slots CPU-bound for ${seconds} s ` +
      `per mode (restoreBatch with the model step on ${pages} pages, evaluateModel, analyzeCuts on 60 s of 720p, ` +
      'trainModel on a small dataset)',
  );
  console.log('  set with BENCH_SATURATION_SECONDS, _SLOTS, _PAGES, _MODES; data in', dataDir);
  await makeInputs(dataDir, pages);

  const server = await startDevServer(
    {
      ip: '127.0.0.1',
      port: await freePort(),
      uiPort: await freePort(),
      dbFile: path.join(dataDir, 'temporal.db'),
      namespace: 'default',
    },
    { logFile: path.join(dataDir, 'server.log') },
  );
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const results: ModeResult[] = [];
    for (const mode of modes as Mode[]) {
      const result = await measure(mode, server.address, client, dataDir, { seconds, slots, pages });
      report(result);
      results.push(result);
    }
    const [before, after] = results;
    if (before && after) {
      const p99 = (r: ModeResult) =>
        percentile(
          [...r.latencies].sort((a, b) => a - b),
          0.99,
        );
      console.log(
        `  ratio /healthz p99, ${before.mode} / ${after.mode}: ${(p99(before) / Math.max(1, p99(after))).toFixed(1)}`,
      );
    }
  } finally {
    await connection.close();
    await server.stop();
  }
}
