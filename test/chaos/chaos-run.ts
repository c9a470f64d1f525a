/**
 * The chaos run: a mixed load (a restoration batch, a rate-limited campaign, training, cut analysis, a stress test and
 * simple tests) on two worker processes, while a worker is SIGKILLed at random intervals (and restarted a second
 * later, as a supervisor would) and the dev server is SIGKILLed once (and restarted on its database). A third worker
 * on a queue of its own, never killed, runs the same training and cut analysis: the reference the interrupted runs
 * must match exactly. At the end it checks what users were promised (see {@link ChaosCheck}).
 *
 * `npm run chaos` runs the full version (test/chaos/main.ts); test/integration/chaos.test.ts a short one.
 */
import { mkdirSync, mkdtempSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import {
  degradePage,
  randomDegradation,
  renderCleanPage,
  seededRandom,
} from '../../src/activities/restoration/page-generator';
import type { CutAnalysis } from '../../src/activities/video/analyze-clips';
import { Jobs, type JobView } from '../../src/client/jobs';
import { startDevServer, type RunningDevServer } from '../../src/devserver/dev-server';
import { busiestWindow, readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type RunningMailSink } from '../../src/mail-sink/sink';
import { freePort } from '../../src/ports';
import { TERMINAL_STATES } from '../../src/shared/job-status';
import type { EpochMetrics } from '../../src/shared/training-inputs';
import type { BulkEmailResult } from '../../src/workflows/email';
import type { TrainModelResult } from '../../src/workflows/training';
import { startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { makeVideo, SOURCES } from '../helpers/videos';

export interface ChaosSettings {
  /** Seeds the kill schedule (which worker, when). */
  seed: number;
  /** Kills go on this long after the load starts (or until every job has ended). */
  killSeconds: number;
  /** Seconds between two worker kills: uniform in [min, max]. */
  killGapSeconds: [number, number];
  /** Kill the dev server once, this far into the kill period (0..1); undefined: never. */
  serverKillAt?: number;
  pages: number;
  pageWidth: number;
  recipients: number;
  /** Messages per second for the campaign. */
  rate: number;
  epochs: number;
  videoSeconds: number;
  stress: { count: number; concurrency: number; rounds: number };
  simpleTests: number;
  simpleSeconds: number;
  /** The whole run (load, kills and waiting for the jobs) gives up after this long. */
  limitSeconds: number;
}

/** `npm run chaos`: about 8 minutes on a 2-core machine. */
export const FULL_CHAOS: ChaosSettings = {
  seed: 1,
  killSeconds: 300,
  killGapSeconds: [15, 35],
  serverKillAt: 0.4,
  pages: 40,
  pageWidth: 1240,
  recipients: 5000,
  rate: 25,
  epochs: 6,
  videoSeconds: 60,
  stress: { count: 300, concurrency: 20, rounds: 20_000 },
  simpleTests: 20,
  simpleSeconds: 30,
  limitSeconds: 570,
};

/** The version `npm test` runs: two worker kills, a smaller load, no server kill. */
export const SHORT_CHAOS: ChaosSettings = {
  seed: 2,
  killSeconds: 60,
  killGapSeconds: [20, 25],
  pages: 8,
  pageWidth: 800,
  recipients: 1200,
  rate: 20,
  epochs: 2,
  videoSeconds: 24,
  stress: { count: 40, concurrency: 8, rounds: 20_000 },
  simpleTests: 3,
  simpleSeconds: 60,
  limitSeconds: 420,
};

/** A stall longer than this after a worker dies breaks the promise. */
export const MAX_STALL_SECONDS = 60;

export interface ChaosCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ChaosReport {
  settings: ChaosSettings;
  seconds: number;
  workerKills: number;
  serverKills: number;
  /** Seconds from a restarted worker's spawn to its polling (`/healthz` running). */
  restartSeconds: number[];
  /** Per job: the longest time its progress stood still while it was running. */
  longestStall: Record<string, number>;
  /** The job that stood still longest, and what it waited on meanwhile. */
  worstStall?: { id: string; story: string[] };
  checks: ChaosCheck[];
  passed: boolean;
}

const TASK_QUEUE = 'chaos';
const CONTROL_QUEUE = 'chaos-control';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Everything a run starts, so that it can all be stopped whatever happens. */
interface Stack {
  dataDir: string;
  server: RunningDevServer;
  serverSettings: Parameters<typeof startDevServer>[0] & object;
  sink: RunningMailSink;
  workerEnv: NodeJS.ProcessEnv;
  workers: (WorkerProcess | undefined)[];
  control: WorkerProcess;
  connection: Connection;
  jobs: Jobs;
  controlJobs: Jobs;
}

/** Pages, recipients and a video in a fresh data dir. */
async function makeInputs(dataDir: string, settings: ChaosSettings): Promise<void> {
  const width = settings.pageWidth;
  const height = Math.round((width * 1754) / 1240);
  for (const folder of ['pages/degraded', 'pages/clean', 'pages/restored', 'videos']) {
    mkdirSync(path.join(dataDir, folder), { recursive: true });
  }
  for (let index = 0; index < settings.pages; index++) {
    const name = `page-${String(index + 1).padStart(4, '0')}`;
    const seed = 900 + index;
    const clean = await renderCleanPage({ seed, width, height });
    writeFileSync(path.join(dataDir, `pages/clean/${name}.png`), clean);
    writeFileSync(
      path.join(dataDir, `pages/degraded/${name}.jpg`),
      await degradePage(clean, randomDegradation(seed), seed),
    );
  }
  const rows = Array.from({ length: settings.recipients }, (_, i) => `reader${i + 1}@example.com,Reader ${i + 1}`);
  writeFileSync(path.join(dataDir, 'recipients.csv'), ['email,name', ...rows].join('\n'));
  // Shots of moving footage joined by hard cuts and a fade, about 6 s each.
  const kinds = [SOURCES.moving, SOURCES.zoom, SOURCES.pan, SOURCES.tinted, SOURCES.hdbars];
  const shots = Math.max(2, Math.round(settings.videoSeconds / 6));
  makeVideo(
    path.join(dataDir, 'videos/footage.mp4'),
    Array.from({ length: shots }, (_, i) => ({
      source: kinds[i % kinds.length] ?? SOURCES.moving,
      seconds: settings.videoSeconds / shots,
      ...(i === Math.floor(shots / 2) && { kind: 'fade-in' as const }),
    })),
  );
}

async function startStack(dataDir: string): Promise<Stack> {
  const port = await freePort();
  const serverSettings = {
    ip: '127.0.0.1',
    port,
    uiPort: await freePort(),
    dbFile: path.join(dataDir, 'temporal.db'),
    namespace: 'default',
  };
  const server = await startDevServer(serverSettings, { logFile: path.join(dataDir, 'temporal.log') });
  const sink = await startMailSink({ dir: path.join(dataDir, 'mail-sink') });
  const workerEnv = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'default',
    BACKROOM_DATA_DIR: dataDir,
    SMTP_URL: sink.url,
  };
  const [first, second, control] = await Promise.all([
    startWorkerProcess({ ...workerEnv, BACKROOM_TASK_QUEUE: TASK_QUEUE }),
    startWorkerProcess({ ...workerEnv, BACKROOM_TASK_QUEUE: TASK_QUEUE }),
    startWorkerProcess({ ...workerEnv, BACKROOM_TASK_QUEUE: CONTROL_QUEUE }),
  ]);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  return {
    dataDir,
    server,
    serverSettings,
    sink,
    workerEnv,
    workers: [first, second],
    control,
    connection,
    jobs: new Jobs(client, TASK_QUEUE),
    controlJobs: new Jobs(client, CONTROL_QUEUE),
  };
}

async function stopStack(stack: Stack): Promise<void> {
  for (const worker of [...stack.workers, stack.control]) worker?.process.kill('SIGKILL');
  await stack.connection.close().catch(() => undefined);
  await stack.sink.close().catch(() => undefined);
  await stack.server.stop().catch(() => undefined);
}

/** Counts the renames onto each page output (a write through `writeFileAtomic` is one). */
function watchWrites(folder: string): { writes: Map<string, number>; watcher: FSWatcher } {
  const writes = new Map<string, number>();
  const watcher = watch(folder, (event, name) => {
    if (event !== 'rename' || !name || name.startsWith('.') || name.includes('.tmp-') || !name.endsWith('.png')) return;
    writes.set(name, (writes.get(name) ?? 0) + 1);
  });
  return { writes, watcher };
}

/** Follows each job's progress: the longest time it stood still while running, and what it was waiting on. */
class StallWatch {
  private readonly last = new Map<string, { done: number; since: number; story: string[] }>();
  readonly longest = new Map<string, number>();
  /** Per job: what its longest stall looked like (each change of its activities' states, with the run's clock). */
  readonly stories = new Map<string, string[]>();
  private readonly ended = new Set<string>();

  constructor(
    private readonly jobs: Jobs,
    private readonly clock: () => string,
  ) {}

  get pending(): string[] {
    return [...this.last.keys()].filter((id) => !this.ended.has(id));
  }

  add(id: string): void {
    this.last.set(id, { done: -1, since: Date.now(), story: [] });
    this.longest.set(id, 0);
  }

  /** One look at every running job; a job whose status cannot be read (the server is down) counts as standing still. */
  async look(): Promise<void> {
    await Promise.all(
      this.pending.map(async (id) => {
        const view: JobView | undefined = await this.jobs.status(id, { queryTimeoutMs: 5000 }).catch(() => undefined);
        const now = Date.now();
        const last = this.last.get(id);
        if (!last) return;
        const scene = view
          ? `${view.state}; ${view.activities.map((a) => `${a.type} attempt ${a.attempt} ${a.state}`).join(', ') || 'no activity'}`
          : 'status unreadable';
        if (last.story.at(-1)?.endsWith(scene) !== true) last.story.push(`${this.clock()} ${scene}`);
        if (now - last.since > (this.longest.get(id) ?? 0)) {
          this.longest.set(id, now - last.since);
          this.stories.set(id, [...last.story]);
        }
        if (!view) return;
        if (TERMINAL_STATES.includes(view.state)) this.ended.add(id);
        const done = view.progress.done + view.activities.reduce((sum, a) => sum + (a.progress?.done ?? 0), 0);
        if (done !== last.done) this.last.set(id, { done, since: now, story: [`${this.clock()} ${scene}`] });
      }),
    );
  }
}

interface StartedLoad {
  batch: string;
  campaign: string;
  training: string;
  cuts: string;
  stress: string;
  simple: string[];
  controlTraining: string;
  controlCuts: string;
}

async function startLoad(stack: Stack, settings: ChaosSettings, dataset: string): Promise<StartedLoad> {
  const { jobs, controlJobs } = stack;
  const training = (modelName: string) => ({ layer: 'layer1', dataset, epochs: settings.epochs, modelName, seed: 7 });
  const cuts = (outputDir: string) => ({ video: 'videos/footage.mp4', outputDir, maxClipSeconds: 20 });
  const start = async (on: Jobs, type: string, input: Record<string, unknown>) => (await on.start(type, input)).id;
  return {
    controlTraining: await start(controlJobs, 'trainModel', training('control')),
    controlCuts: await start(controlJobs, 'analyzeCuts', cuts('videos/control-cuts')),
    batch: await start(jobs, 'restoreBatch', {
      inputDir: 'pages/degraded',
      outputDir: 'pages/restored',
      referenceDir: 'pages/clean',
    }),
    campaign: await start(jobs, 'sendBulkEmail', {
      campaignId: 'chaos',
      recipientsFile: 'recipients.csv',
      subject: 'Hello {{name}}',
      template: 'Hello {{name}}, this is the chaos run.',
      rate: `${settings.rate}/s`,
    }),
    training: await start(jobs, 'trainModel', training('chaos')),
    cuts: await start(jobs, 'analyzeCuts', cuts('videos/chaos-cuts')),
    stress: await start(jobs, 'stressTest', settings.stress),
    simple: await Promise.all(
      Array.from({ length: settings.simpleTests }, () =>
        start(jobs, 'simpleTest', { message: 'chaos', durationSeconds: settings.simpleSeconds }),
      ),
    ),
  };
}

/** The metrics that must not depend on interruptions (times do). */
const epochFigures = (epochs: EpochMetrics[]) =>
  epochs.map(({ epoch, trainLoss, valLoss, valPsnr, inputPsnr }) => ({
    epoch,
    trainLoss,
    valLoss,
    valPsnr,
    inputPsnr,
  }));
const cutFigures = (cuts: CutAnalysis) => ({
  frameCount: cuts.frameCount,
  cutFrames: cuts.cutFrames,
  boundaries: cuts.boundaries,
  clips: cuts.clips.map(({ thumbnail, ...clip }) => ({ ...clip, thumbnail: path.basename(thumbnail) })),
});
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Runs the chaos run with `settings`, printing what happens through `log`. */
export async function runChaos(
  settings: ChaosSettings,
  log: (line: string) => void = console.log,
): Promise<ChaosReport> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-chaos-'));
  const began = Date.now();
  const elapsed = () => `${seconds(Date.now() - began)} s`;
  log(`chaos: inputs in ${dataDir}`);
  await makeInputs(dataDir, settings);
  const stack = await startStack(dataDir);
  const random = seededRandom(settings.seed);
  const restartSeconds: number[] = [];
  let workerKills = 0;
  let serverKills = 0;
  const pages = watchWrites(path.join(dataDir, 'pages/restored'));
  try {
    log(`chaos: stack up at ${elapsed()}; making the training dataset on the control worker`);
    const datasetJob = await stack.controlJobs.start('generateSyntheticData', {
      datasetId: 'chaos',
      pages: 5,
      width: 600,
      height: 800,
      patchesPerPage: 24,
    });
    await stack.controlJobs.result(datasetJob.id);
    const load = await startLoad(stack, settings, 'datasets/chaos');
    const chaosIds = [load.batch, load.campaign, load.training, load.cuts, load.stress, ...load.simple];
    log(`chaos: ${chaosIds.length} jobs started at ${elapsed()}; killing workers for ${settings.killSeconds} s`);
    const stalls = new StallWatch(stack.jobs, elapsed);
    chaosIds.forEach((id) => stalls.add(id));
    const loadStarted = Date.now();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        await stalls.look();
        await sleep(2000);
      }
    })();

    const restarts: Promise<void>[] = [];
    const killUntil = loadStarted + settings.killSeconds * 1000;
    const serverKillTime =
      settings.serverKillAt === undefined
        ? undefined
        : loadStarted + settings.serverKillAt * settings.killSeconds * 1000;
    const [minGap, maxGap] = settings.killGapSeconds;
    let nextKill = loadStarted + (minGap + random() * (maxGap - minGap)) * 1000;
    let serverKilled = false;
    while (Date.now() < killUntil && stalls.pending.length > 0) {
      if (serverKillTime !== undefined && !serverKilled && Date.now() >= serverKillTime) {
        serverKilled = true;
        log(`chaos: ${elapsed()} SIGKILL dev server`);
        stack.server.process.kill('SIGKILL');
        await new Promise((resolve) => stack.server.process.once('exit', resolve));
        serverKills++;
        await sleep(3000);
        stack.server = await startDevServer(stack.serverSettings, { logFile: path.join(dataDir, 'temporal.log') });
        log(`chaos: ${elapsed()} dev server back`);
      }
      if (Date.now() >= nextKill) {
        const alive = stack.workers.flatMap((worker, slot) => (worker ? [slot] : []));
        const slot = alive[Math.floor(random() * alive.length)];
        const victim = slot === undefined ? undefined : stack.workers[slot];
        if (slot !== undefined && victim) {
          victim.process.kill('SIGKILL');
          await victim.exited;
          stack.workers[slot] = undefined;
          workerKills++;
          log(`chaos: ${elapsed()} SIGKILL worker ${slot + 1} (kill ${workerKills})`);
          restarts.push(
            (async () => {
              // As a supervisor would: again a second after each exit (a worker started while the dev server is
              // down exits, saying it cannot reach Temporal).
              while (Date.now() < began + settings.limitSeconds * 1000) {
                await sleep(1000);
                const spawned = Date.now();
                try {
                  stack.workers[slot] = await startWorkerProcess({
                    ...stack.workerEnv,
                    BACKROOM_TASK_QUEUE: TASK_QUEUE,
                  });
                  restartSeconds.push(seconds(Date.now() - spawned));
                  return;
                } catch (err) {
                  log(
                    `chaos: ${elapsed()} worker ${slot + 1} did not start (${String(err).split('\n')[1] ?? err}); again`,
                  );
                }
              }
            })(),
          );
        }
        nextKill = Date.now() + (minGap + random() * (maxGap - minGap)) * 1000;
      }
      await sleep(250);
    }
    await Promise.all(restarts);
    log(`chaos: kills over at ${elapsed()} (${workerKills} worker, ${serverKills} server); waiting for the jobs`);

    const limit = began + settings.limitSeconds * 1000;
    const outcome = async <T>(on: Jobs, id: string) => {
      const result = on.result<T>(id).then(
        (value) => ({ ok: true as const, value }),
        (err: unknown) => ({ ok: false as const, error: err instanceof Error ? err.message : String(err) }),
      );
      // Unreferenced: a run that ends early must not wait for the limit before its process exits.
      const timeout = delay(Math.max(0, limit - Date.now()), undefined, { ref: false }).then(() => ({
        ok: false as const,
        error: `not ended within the run's ${settings.limitSeconds} s`,
      }));
      return Promise.race([result, timeout]);
    };
    const results = await Promise.all(chaosIds.map((id) => outcome<Record<string, unknown>>(stack.jobs, id)));
    const controlTraining = await outcome<TrainModelResult>(stack.controlJobs, load.controlTraining);
    const controlCuts = await outcome<CutAnalysis>(stack.controlJobs, load.controlCuts);
    watching = false;
    await watcher;
    log(`chaos: jobs ended at ${elapsed()}`);

    const checks: ChaosCheck[] = [];
    const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

    const failed = chaosIds.flatMap((id, i) => {
      const result = results[i];
      if (!result?.ok) return [`${id}: ${result?.error}`];
      const value = result.value;
      if (value.outcome !== undefined && value.outcome !== 'completed')
        return [`${id}: outcome ${String(value.outcome)}`];
      if (typeof value.failed === 'number' && value.failed > 0) return [`${id}: ${value.failed} items failed`];
      return [];
    });
    check(
      'no job lost or failed',
      failed.length === 0,
      failed.length ? failed.join('; ') : `${chaosIds.length} of ${chaosIds.length} completed`,
    );

    const expectedPages = Array.from(
      { length: settings.pages },
      (_, i) => `page-${String(i + 1).padStart(4, '0')}.png`,
    );
    const twice = expectedPages.filter((page) => (pages.writes.get(page) ?? 0) > 1);
    const missing = expectedPages.filter((page) => !pages.writes.get(page));
    check(
      'every page written once',
      twice.length === 0 && missing.length === 0,
      `${expectedPages.length - twice.length - missing.length} of ${expectedPages.length} once` +
        (twice.length ? `; twice or more: ${twice.join(', ')}` : '') +
        (missing.length ? `; never: ${missing.join(', ')}` : ''),
    );

    const mailbox = await readMailbox(stack.sink.dir);
    const perRecipient = new Map<string, number>();
    for (const message of mailbox) for (const to of message.to) perRecipient.set(to, (perRecipient.get(to) ?? 0) + 1);
    const undelivered = settings.recipients - perRecipient.size;
    const duplicates = mailbox.length - perRecipient.size;
    const campaign = results[1]?.ok ? (results[1].value as unknown as BulkEmailResult) : undefined;
    const reported = campaign?.possiblyDuplicated ?? 0;
    check(
      'every recipient delivered, duplicates ≤ kills and all reported',
      undelivered === 0 && duplicates <= workerKills + serverKills && duplicates <= reported,
      `${perRecipient.size}/${settings.recipients} delivered, ${duplicates} duplicates ` +
        `(kills ${workerKills + serverKills}, reported possibly duplicated ${reported})`,
    );
    const busiest = busiestWindow(
      mailbox.map((message) => message.receivedAt),
      999,
    );
    check(
      'the 1 s window never above the rate',
      busiest <= settings.rate,
      `busiest 1 s: ${busiest} (rate ${settings.rate}/s)`,
    );

    const training = results[2]?.ok ? (results[2].value as unknown as TrainModelResult) : undefined;
    const trainingSame =
      !!training &&
      controlTraining.ok &&
      same(epochFigures(training.epochs), epochFigures(controlTraining.value.epochs)) &&
      same(training.evaluation?.model, controlTraining.value.evaluation?.model);
    check(
      'training metrics identical to an uninterrupted run',
      trainingSame,
      training && controlTraining.ok
        ? `chaos ${JSON.stringify(epochFigures(training.epochs).at(-1))} vs ${JSON.stringify(epochFigures(controlTraining.value.epochs).at(-1))}`
        : 'a training run did not finish',
    );
    const cuts = results[3]?.ok ? (results[3].value as unknown as CutAnalysis) : undefined;
    const cutsSame = !!cuts && controlCuts.ok && same(cutFigures(cuts), cutFigures(controlCuts.value));
    check(
      'cuts identical to an uninterrupted run',
      cutsSame,
      cuts && controlCuts.ok
        ? `${cuts.cutFrames.length} cuts, ${cuts.clips.length} clips vs ${controlCuts.value.cutFrames.length} cuts, ${controlCuts.value.clips.length} clips`
        : 'a cut analysis did not finish',
    );

    const longestStall = Object.fromEntries([...stalls.longest].map(([id, ms]) => [id, seconds(ms)]));
    const worst = Object.entries(longestStall).sort((a, b) => b[1] - a[1])[0];
    check(
      `no job stalled > ${MAX_STALL_SECONDS} s`,
      !worst || worst[1] <= MAX_STALL_SECONDS,
      worst ? `longest: ${worst[1]} s (${worst[0]})` : 'no jobs',
    );

    const report: ChaosReport = {
      settings,
      seconds: seconds(Date.now() - began),
      workerKills,
      serverKills,
      restartSeconds,
      longestStall,
      ...(worst && { worstStall: { id: worst[0], story: stalls.stories.get(worst[0]) ?? [] } }),
      checks,
      passed: checks.every((c) => c.ok),
    };
    return report;
  } finally {
    pages.watcher.close();
    await stopStack(stack);
    if (process.env.BACKROOM_CHAOS_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The report as a table a person reads (and the README quotes). */
export function formatChaosReport(report: ChaosReport): string {
  const restarts = [...report.restartSeconds].sort((a, b) => a - b);
  const lines = [
    `chaos run: ${report.seconds} s, ${report.workerKills} worker kills, ${report.serverKills} dev-server kills` +
      (restarts.length
        ? `; restarted workers polled after ${restarts[0]}–${restarts.at(-1)} s ` +
          `(median ${restarts[Math.floor(restarts.length / 2)]} s)`
        : ''),
    '',
    '| check | result | detail |',
    '|---|---|---|',
    ...report.checks.map((c) => `| ${c.name} | ${c.ok ? 'pass' : 'FAIL'} | ${c.detail} |`),
    '',
    ...(report.worstStall
      ? ['', `longest stall (${report.worstStall.id}):`, ...report.worstStall.story.map((line) => `  ${line}`)]
      : []),
    '',
    report.passed ? 'chaos run: PASSED' : 'chaos run: FAILED',
  ];
  return lines.join('\n');
}
