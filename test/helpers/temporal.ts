/**
 * A real Temporal dev server for tests (the CLI of `src/devserver`, never a download), the workers' cached workflow
 * bundle, and Backroom workers on a task queue of the test's own.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { ensureTemporalCli } from '../../src/devserver/temporal-cli';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/devserver/dev-server';
import { createBackroomWorker, type BackroomWorkerOptions } from '../../src/workers/worker';
import { cachedWorkflowBundle } from '../../src/workers/workflow-bundle-cache';
import { Jobs } from '../../src/client/jobs';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  runtimeInstalled = true;
}

export async function startTestServer(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  // Jobs write into a data dir of the test's own, never the project's.
  process.env.BACKROOM_DATA_DIR ??= mkdtempSync(path.join(os.tmpdir(), 'backroom-test-'));
  const cli = await ensureTemporalCli();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      extraArgs: DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
    },
  });
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
