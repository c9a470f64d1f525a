/**
 * A real Temporal dev server for tests (the CLI of `src/devserver`, never a download), the workers' cached workflow
 * bundle, and Backroom workers on a task queue of the test's own.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { ensureTemporalCli } from '../../src/devserver/temporal-cli';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/devserver/dev-server';
import { SEARCH_ATTRIBUTE_ARGS } from '../../src/shared/search-attributes';
import { createBackroomWorker, type BackroomWorkerOptions } from '../../src/workers/worker';
import { cachedWorkflowBundle } from '../../src/workers/workflow-bundle-cache';
import { Jobs } from '../../src/client/jobs';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  runtimeInstalled = true;
}

/** How long a dev server may take to come up, all attempts together (a cold machine needs far more than 5 s). */
const SERVER_START_DEADLINE_MS = 120_000;

const warmed = new Map<string, Promise<void>>();
/**
 * Reads the CLI's binary once (about 250 MB) and runs `temporal --version`, so its pages are in memory before the
 * SDK's start deadline runs: the SDK waits a fixed 5 s for the server (no option sets it), which a binary still on
 * a cold disk can miss. Once per process and binary; errors are left to the start itself to report.
 */
export function warmTemporalCli(cli: string): Promise<void> {
  let warming = warmed.get(cli);
  if (!warming) {
    warming = new Promise<void>((resolve) => {
      const stream = createReadStream(cli, { highWaterMark: 4 << 20 });
      stream.on('data', () => {});
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
    }).then(
      () =>
        new Promise<void>((resolve) => {
          execFile(cli, ['--version'], { timeout: SERVER_START_DEADLINE_MS }, () => resolve());
        }),
    );
    warmed.set(cli, warming);
  }
  return warming;
}

/**
 * A local dev server on a free port (or `ip`/`port` when given), started from the project's Temporal CLI. The CLI
 * is warmed first; a start that misses the SDK's fixed 5 s deadline is retried until SERVER_START_DEADLINE_MS has
 * passed, and a server that never comes up fails with what was waited for, how long, and each attempt's error.
 */
export async function startTestServer(
  options: { ip?: string; port?: number; dynamicConfig?: string[] } = {},
): Promise<TestWorkflowEnvironment> {
  const { dynamicConfig = [], ...where } = options;
  quietRuntime();
  // Jobs write into a data dir of the test's own, never the project's.
  process.env.BACKROOM_DATA_DIR ??= mkdtempSync(path.join(os.tmpdir(), 'backroom-test-'));
  const cli = await ensureTemporalCli();
  const started = Date.now();
  await warmTemporalCli(cli);
  const errors: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: cli },
          ...where,
          extraArgs: [
            ...serverDynamicConfig(dynamicConfig).flatMap((value) => ['--dynamic-config-value', value]),
            ...SEARCH_ATTRIBUTE_ARGS,
          ],
        },
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      errors.push(`attempt ${attempt} (${((Date.now() - started) / 1000).toFixed(1)} s): ${message}`);
      // Only a start that timed out is worth another try; a missing binary or a bad flag fails at once.
      if (!/did not start within/.test(message) || Date.now() - started > SERVER_START_DEADLINE_MS) {
        throw new Error(
          `The Temporal dev server (${cli} server start-dev${options.port ? ` on port ${options.port}` : ''}) did not ` +
            `come up: waited ${((Date.now() - started) / 1000).toFixed(1)} s of ${SERVER_START_DEADLINE_MS / 1000} s ` +
            `for it to answer on its gRPC port (the CLI's binary warmed first; each attempt has the SDK's fixed 5 s).\n` +
            errors.join('\n'),
          { cause: err },
        );
      }
    }
  }
}

/** The dev server's dynamic config (DEV_SERVER_DYNAMIC_CONFIG) with `overrides` (`key=value`) replacing its keys. */
export function serverDynamicConfig(overrides: string[] = []): string[] {
  const key = (value: string) => value.slice(0, value.indexOf('='));
  const replaced = new Set(overrides.map(key));
  return [...DEV_SERVER_DYNAMIC_CONFIG.filter((value) => !replaced.has(key(value))), ...overrides];
}

const bundles = new Map<string, Promise<WorkflowBundleOption>>();
/**
 * The workflow code, from the workers' on-disk bundle cache (built once until a workflow source changes), and per
 * failure converter: encrypted failures need their own.
 */
export function workflowBundle(failureConverterPath?: string): Promise<WorkflowBundleOption> {
  let bundle = bundles.get(failureConverterPath ?? '');
  if (!bundle) {
    bundle = cachedWorkflowBundle({
      workflowsPath: require.resolve('../../src/workflows'),
      logger: new DefaultLogger('WARN'),
      failureConverterPath,
    }).then((cached) => cached.bundle);
    bundles.set(failureConverterPath ?? '', bundle);
  }
  return bundle;
}

export function uniqueTaskQueue(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

export async function createTestWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  options: Partial<BackroomWorkerOptions> = {},
): Promise<Worker> {
  return createBackroomWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    workflowBundle: await workflowBundle(options.dataConverter?.failureConverterPath),
    ...options,
    settings: { taskQueue, shutdownGraceSeconds: 1, ...options.settings },
  });
}

/** The jobs API on a test's task queue. */
export function testJobs(env: TestWorkflowEnvironment, taskQueue: string): Jobs {
  return new Jobs(env.client, taskQueue);
}

/** Polls `probe` until it returns a truthy value, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A dev server, one worker running on a task queue of its own, and the jobs API on that queue. */
export interface TestStack {
  env: TestWorkflowEnvironment;
  jobs: Jobs;
  taskQueue: string;
  /** Stops the stack's worker (graceful shutdown), leaving the server up. */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestStack(name: string): Promise<TestStack> {
  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue(name);
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  const stopWorker = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  };
  return {
    env,
    taskQueue,
    jobs: testJobs(env, taskQueue),
    stopWorker,
    async stop() {
      await stopWorker();
      await env.teardown();
    },
  };
}
