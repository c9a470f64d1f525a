/** `npm run worker`: one Backroom worker, its `/healthz` and `/metrics`, until SIGINT or SIGTERM. */
import { workerSettings } from '../config';
import { startHealthServer } from './health-server';
import { installRuntimeWithMetrics } from './runtime';
import { connectWorkerConnection, createBackroomWorker } from './worker';

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
  await worker.run();
  await health.close();
  await connection.close();
  console.log('Worker stopped cleanly.');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
