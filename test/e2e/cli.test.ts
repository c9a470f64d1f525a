/**
 * End to end through the `backroom` CLI: a dev server started by `src/devserver` (persistent database), a worker
 * process started like `npm run worker`, and the CLI as a user types it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DevServerSettings } from '../../src/config';
import { startDevServer, type RunningDevServer } from '../../src/devserver/dev-server';
import { freePort, runCli, startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { makeVideo, SOURCES } from '../helpers/videos';

describe('the backroom CLI against a dev server and a worker process', () => {
  let server: RunningDevServer;
  let worker: WorkerProcess;
  let settings: DevServerSettings;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-e2e-'));
    const port = await freePort();
    settings = {
      ip: '127.0.0.1',
      port,
      uiPort: await freePort(),
      dbFile: path.join(dataDir, 'temporal.db'),
      namespace: 'default',
    };
    server = await startDevServer(settings, { logFile: path.join(dataDir, 'server.log') });
    env = {
      TEMPORAL_ADDRESS: server.address,
      BACKROOM_DATA_DIR: dataDir,
      BACKROOM_TASK_QUEUE: 'backroom-e2e',
      BACKROOM_SHUTDOWN_GRACE_SECONDS: '2',
    };
    worker = await startWorkerProcess(env);
  });

  after(async () => {
    worker?.process.kill('SIGKILL');
    await server?.stop();
  });

  const cli = (...args: string[]) => runCli(args, env);
  const statusOf = async (id: string) =>
    JSON.parse((await cli('status', id, '--json')).stdout) as Record<string, unknown>;
  const waitForState = async (id: string, predicate: (view: Record<string, unknown>) => boolean) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const view = await statusOf(id);
      if (predicate(view)) return view;
      if (Date.now() > deadline) throw new Error(`Gave up waiting; last status ${JSON.stringify(view)}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  };

  it('lists the job types with their inputs', async () => {
    const { code, stdout } = await cli('job-types');
    assert.equal(code, 0);
    for (const type of ['simpleTest', 'mathCalculation', 'systemHealthCheck', 'stressTest'])
      assert.match(stdout, new RegExp(`^${type} `, 'm'));
    assert.match(stdout, /durationSeconds: integer \[1\.\.86400\] = 10/);
  });

  it('starts a job from flags and watches it to completion (exit 0)', async () => {
    const { code, stdout } = await cli('start', 'simpleTest', '--duration-seconds', '3', '--message', 'e2e', '--watch');
    assert.equal(code, 0, stdout);
    assert.match(stdout, /Started simpleTest as simple-test-/);
    assert.match(stdout, /state\s+completed/);
    assert.match(stdout, /progress\s+3 \/ 3 seconds \(100%\)/);
    assert.match(stdout, /"secondsCounted":3/);
  });

  it('analyses the cuts of a video with `backroom start analyzeCuts --watch`', async () => {
    const dataDir = env.BACKROOM_DATA_DIR ?? '';
    const { boundaries } = makeVideo(path.join(dataDir, 'e2e-clip.mp4'), [
      { source: SOURCES.moving, seconds: 2 },
      { source: SOURCES.bars, seconds: 2 },
    ]);
    const { code, stdout } = await cli('start', 'analyzeCuts', '--video', 'e2e-clip.mp4', '--watch');
    assert.equal(code, 0, stdout);
    // Progress counts seconds while detecting, then the clips scored (one decode serves both since cuts-one-pass).
    assert.match(stdout, /progress\s+2 \/ 2 clips \(100%\)/);
    assert.match(stdout, /2 clips, 1 boundaries → e2e-clip-cuts\/cuts\.json/);
    const result = JSON.parse(readFileSync(path.join(dataDir, 'e2e-clip-cuts/cuts.json'), 'utf8')) as {
      cutFrames: number[];
    };
    assert.deepEqual(
      result.cutFrames,
      boundaries.map((b) => b.frame),
    );
  });

  it('makes a dataset, trains a model on it and shows its epochs, all with `backroom start ... --watch`', async () => {
    const made = await cli(
      'start',
      'generateSyntheticData',
      '--input',
      '{"datasetId":"e2e","pages":2,"width":400,"height":566,"patchesPerPage":8}',
      '--watch',
    );
    assert.equal(made.code, 0, made.stdout);
    assert.match(made.stdout, /Started generateSyntheticData as dataset-e2e/);
    assert.match(made.stdout, /16 training and 8 validation pairs/);
    const trained = await cli(
      'start',
      'trainModel',
      '--layer',
      'layer1',
      '--dataset',
      'datasets/e2e',
      '--epochs',
      '2',
      '--model-name',
      'e2e',
      '--watch',
    );
    assert.equal(trained.code, 0, trained.stdout);
    assert.match(trained.stdout, /Started trainModel as train-layer1-e2e/);
    assert.match(trained.stdout, /epochs\s+EPOCH\s+TRAIN LOSS\s+VAL LOSS\s+VAL PSNR\s+INPUT PSNR\s+TIME/);
    assert.match(trained.stdout, /^\s+2\s+0\.\d{5}\s+0\.\d{5}\s+[\d.]+ dB/m);
    assert.match(trained.stdout, /PSNR on 1 held-out pages: input [\d.]+ dB, classical [\d.]+ dB, model [\d.]+ dB/);
    assert.ok(existsSync(path.join(env.BACKROOM_DATA_DIR ?? '', 'models/e2e/best.json')));
  });

  it('generates sample pages with `backroom generate-pages`', async () => {
    const { code, stdout } = await cli('generate-pages', '--count', '2', '--output-dir', 'e2e-samples');
    assert.equal(code, 0, stdout);
    assert.match(stdout, /progress\s+2 \/ 2 pages \(100%\)/);
    for (const file of ['clean/page-0002.png', 'degraded/page-0002.jpg', 'manifest.json']) {
      assert.ok(existsSync(path.join(env.BACKROOM_DATA_DIR ?? '', 'e2e-samples', file)), file);
    }
  });

  it('refuses invalid input before starting anything, naming the field (exit 2)', async () => {
    const { code, stderr } = await cli('start', 'simpleTest', '--input', '{"durationSeconds":-5}');
    assert.equal(code, 2);
    assert.match(stderr, /Invalid input for simpleTest: durationSeconds: Too small/);
    const unknown = await cli('start', 'noSuchJob');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown job type "noSuchJob"/);
  });

  it('pauses, resumes and gracefully cancels a job; watch exits 3 and list finds it', async () => {
    const id = `cli-cancel-${Date.now()}`;
    assert.equal((await cli('start', 'simpleTest', '--duration-seconds', '60', '--id', id)).code, 0);
    await waitForState(id, (v) => (v.progress as { done: number }).done >= 1);

    assert.equal((await cli('pause', id)).code, 0);
    const paused = await waitForState(id, (v) => v.state === 'paused' && (v.activities as unknown[]).length === 0);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const held = await statusOf(id);
    assert.deepEqual(held.progress, paused.progress, 'progress holds while paused');

    assert.equal((await cli('resume', id)).code, 0);
    await waitForState(id, (v) => (v.progress as { done: number }).done > (paused.progress as { done: number }).done);

    assert.equal((await cli('cancel', id)).code, 0);
    const watched = await cli('watch', id);
    assert.equal(watched.code, 3, watched.stdout);
    const result = JSON.parse((await cli('result', id)).stdout) as { outcome: string; secondsCounted: number };
    assert.equal(result.outcome, 'cancelled');
    assert.ok(result.secondsCounted > 0 && result.secondsCounted < 60);
    const listed = await cli('list', '--state', 'cancelled');
    assert.match(listed.stdout, new RegExp(`^${id}\\s+simpleTest\\s+cancelled`, 'm'));
  });

  it("cancel --hard uses Temporal's cancellation: the run ends as Canceled", async () => {
    const id = `cli-hard-${Date.now()}`;
    await cli('start', 'simpleTest', '--duration-seconds', '60', '--id', id);
    await waitForState(id, (v) => (v.progress as { done: number }).done >= 1);
    assert.equal((await cli('cancel', id, '--hard')).code, 0);
    assert.equal((await cli('watch', id)).code, 3);
    const view = await statusOf(id);
    assert.equal(view.execution, 'CANCELLED');
    assert.equal(view.state, 'cancelled');
  });

  it('a worker killed mid-job (SIGKILL) leaves the job to a new worker, which resumes from the heartbeat', async () => {
    const limit = 1_000_000_000;
    const id = `cli-kill-${Date.now()}`;
    await cli('start', 'mathCalculation', '--limit', String(limit), '--id', id);
    const before = await waitForState(id, (v) => (v.progress as { done: number }).done > limit / 20);
    worker.process.kill('SIGKILL');
    await worker.exited;
    worker = await startWorkerProcess(env);
    // The dead worker's attempt times out after the activity's heartbeat timeout; then the new worker takes over.
    const watched = await cli('watch', id);
    assert.equal(watched.code, 0, watched.stdout);
    const result = JSON.parse((await cli('result', id)).stdout) as {
      primeCount: number;
      attempts: number;
      resumedFrom: number;
    };
    assert.ok(result.attempts >= 2);
    assert.ok(result.resumedFrom >= (before.progress as { done: number }).done - 1_000_000, JSON.stringify(result));
    assert.equal(result.primeCount, 50_847_534, 'pi(1e9): the resumed answer is exact');
  });

  it('serves /healthz and Prometheus /metrics with job counters, and shuts down cleanly on SIGTERM', async () => {
    assert.equal((await cli('start', 'simpleTest', '--duration-seconds', '1', '--watch')).code, 0);
    const health = await fetch(`${worker.healthUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { state: string }).state, 'RUNNING');
    const metrics = await (await fetch(`${worker.healthUrl}/metrics`)).text();
    assert.match(metrics, /^backroom_jobs_completed\{[^}]*job_type="simpleTest"[^}]*\} [1-9]/m);
    assert.match(metrics, /^backroom_job_duration_count\{[^}]*job_type="simpleTest"/m);
    assert.match(metrics, /^temporal_workflow_completed\{/m);

    worker.process.kill('SIGTERM');
    assert.equal(await worker.exited, 0, worker.output());
    assert.match(worker.output(), /Worker stopped cleanly/);
    await assert.rejects(fetch(`${worker.healthUrl}/healthz`), 'healthz stops answering once the worker is down');
  });

  it('a restarted dev server keeps its jobs (persistent database)', async () => {
    const { stdout } = await cli('list', '--limit', '50', '--json');
    const before = JSON.parse(stdout) as { id: string }[];
    assert.ok(before.length >= 5);
    await server.stop();
    server = await startDevServer(settings, { logFile: path.join(path.dirname(settings.dbFile), 'server.log') });
    const after = JSON.parse((await cli('list', '--limit', '50', '--json')).stdout) as { id: string }[];
    assert.deepEqual(after.map((e) => e.id).sort(), before.map((e) => e.id).sort());
  });
});
