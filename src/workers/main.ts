/** `npm run worker`: one Backroom worker, its `/healthz` and `/metrics`, until SIGINT or SIGTERM. */
import os from 'node:os';
import { sweepStaleScratch } from '../activities/scratch';
import { workerSettings } from '../config';
import { startHealthServer } from './health-server';
import { preloadActivities, releaseActivityResources } from './lazy-activities';
import { installRuntimeWithMetrics } from './runtime';
import { connectWorkerConnection, createBackroomWorker } from './worker';

/** How long after polling starts the activity modules load: long enough for the first polls to go out. */
const ACTIVITY_PRELOAD_DELAY_MS = 100;

async function main(): Promise<void> {
  const settings = workerSettings();
  const runtimeMetricsUrl = await installRuntimeWithMetrics();
  const { connection, namespace } = await connectWorkerConnection();
  const worker = await createBackroomWorker({ settings, connection, namespace });
  const health = await startHealthServer({
    worker,
    host: settings.healthHost,
    port: settings.healthPort,
    runtimeMetricsUrl,
  });
  console.log(
    `Backroom worker polling task queue "${settings.taskQueue}" ` +
      `(activities ${settings.maxConcurrentActivities}, workflow tasks ${settings.maxConcurrentWorkflowTasks}, ` +
      `cached workflows ${settings.maxCachedWorkflows}). Health: ${health.url}/healthz, metrics: ${health.url}/metrics`,
  );
  // The SDK shuts the worker down on SIGINT/SIGTERM (waiting up to shutdownGraceTime for activities).
  const running = worker.run();
  // Polling first, then the activity modules (TensorFlow, sharp: seconds on a busy machine). A module that cannot
  // load stops the worker, as it did when they loaded before polling.
  let loadFailure: unknown;
  setTimeout(() => {
    preloadActivities().catch((err: unknown) => {
      loadFailure = err;
      if (worker.getState() === 'RUNNING') worker.shutdown();
    });
  }, ACTIVITY_PRELOAD_DELAY_MS);
  // Scratch folders of workers killed on this machine (days old: see scratch.ts), gone without delaying the start.
  void sweepStaleScratch().then((removed) => {
    if (removed.length > 0) console.log(`Removed ${removed.length} stale scratch folder(s) from ${os.tmpdir()}.`);
  });
  await running;
  await releaseActivityResources();
  await health.close();
  await connection.close();
  if (loadFailure) throw loadFailure;
  console.log('Worker stopped cleanly.');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
