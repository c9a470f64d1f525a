/**
 * `npm start`: everything on one machine. Uses the Temporal server at TEMPORAL_ADDRESS if one answers, else starts
 * the local dev server; runs a worker and the HTTP API in this process; runs the demo; serves until Ctrl-C, then
 * stops cleanly.
 * With BACKROOM_DEMO_EXIT=1 it stops after the demo (used by the end-to-end test).
 */
import path from 'node:path';
import { startApi, type RunningApi } from './api/server';
import { TemporalLink } from './api/temporal-link';
import { temporalTarget } from './client/connection';
import { runDemo, workflowUrl } from './client/demo';
import { encryptionCodec, encryptionSummary } from './codec/data-converter';
import { Jobs } from './client/jobs';
import { apiSettings, devServerSettings, mailSinkDir, mailSinkPort, smtpUrl, workerSettings } from './config';
import { startDevServer, type RunningDevServer } from './devserver/dev-server';
import { startMailSink, type RunningMailSink } from './mail-sink/sink';
import { isListening } from './ports';
import { startHealthServer } from './workers/health-server';
import { releaseActivityResources } from './workers/lazy-activities';
import { installRuntimeWithMetrics } from './workers/runtime';
import { createBackroomWorker } from './workers/worker';

async function main(): Promise<void> {
  // A malformed encryption key stops everything here, before anything starts.
  const codec = encryptionCodec();
  if (codec) console.log(encryptionSummary(codec));
  const target = temporalTarget();
  const address = target.connectionOptions.address;
  const [host = '127.0.0.1', port = '7233'] = address.split(':');
  let server: RunningDevServer | undefined;
  let uiUrl: string | undefined;
  if (await isListening(host, Number(port))) {
    console.log(`Using the Temporal server at ${address}.`);
    if (!process.env.TEMPORAL_ADDRESS) uiUrl = `http://${host}:${devServerSettings().uiPort}`;
  } else {
    const settings = devServerSettings();
    if (process.env.TEMPORAL_ADDRESS && process.env.TEMPORAL_ADDRESS !== `${settings.ip}:${settings.port}`) {
      throw new Error(`TEMPORAL_ADDRESS=${address} does not answer, and the local dev server listens elsewhere.`);
    }
    const logFile = path.join(path.dirname(settings.dbFile), 'temporal-dev-server.log');
    console.log(`No Temporal server at ${address}: starting the local dev server (database ${settings.dbFile})...`);
    server = await startDevServer(settings, { logFile });
    console.log(`Dev server on ${server.address}; its log: ${logFile}`);
    uiUrl = server.uiUrl;
  }

  const sink = await ensureMailSink();

  const settings = workerSettings();
  const runtimeMetricsUrl = await installRuntimeWithMetrics('WARN');
  const worker = await createBackroomWorker({ settings });
  const health = await startHealthServer({
    worker,
    host: settings.healthHost,
    port: settings.healthPort,
    runtimeMetricsUrl,
  }).catch(() => startHealthServer({ worker, host: '127.0.0.1', port: 0, runtimeMetricsUrl }));
  const running = worker.run();
  console.log(`Worker polling "${settings.taskQueue}"; health ${health.url}/healthz, metrics ${health.url}/metrics`);
  const jobs = await Jobs.connect();
  // The API shares the demo's client connection: one process, one connection to Temporal.
  const api = await startApiOnFreePort(new TemporalLink({ connect: async () => jobs }));
  console.log(`HTTP API: ${api.url} (OpenAPI: ${api.url}/openapi.json)`);
  if (codec) {
    const endpoint = `${api.url.replace('localhost', '127.0.0.1')}/codec`;
    console.log(`Codec server: ${endpoint} (try \`temporal workflow show -w <id> --codec-endpoint ${endpoint}\`)`);
    if (server?.codecEndpoint !== endpoint)
      console.log(`  the Temporal UI was not started with it: see README, "Encrypted payloads".`);
  }
  if (uiUrl) console.log(`Temporal UI: ${uiUrl}/namespaces/${target.namespace}/workflows\n`);
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nShutting down: worker first (running activities get to checkpoint), then the server...');
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch((err: unknown) => console.error(`Worker stopped with an error: ${String(err)}`));
    // Kept SMTP connections would otherwise hold the process open after the sink stops.
    await releaseActivityResources();
    await api.close();
    await health.close();
    await sink?.close();
    await jobs.client.connection.close();
    await server?.stop();
    console.log('Stopped cleanly.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const finals = await runDemo(jobs, { namespace: target.namespace, ...(uiUrl && { uiUrl }) });
  const allCompleted = finals.every((view) => view.state === 'completed');
  if (uiUrl) {
    console.log(`\nSee every job, its history and its current details in the UI: ${uiUrl}`);
    const first = finals[0];
    if (first) console.log(`For example: ${workflowUrl(uiUrl, target.namespace, first.id)}`);
  }
  console.log('Try: bin/backroom start simpleTest --duration-seconds 60 --watch   (and `bin/backroom --help`)');
  console.log(
    `  or: curl -X POST ${api.url}/jobs/simpleTest -d '{"durationSeconds":30}'   (then curl -N its eventsUrl)`,
  );
  if (process.env.BACKROOM_DEMO_EXIT === '1') {
    await stop(allCompleted ? 0 : 1);
    return;
  }
  console.log('\nServing jobs. Press Ctrl-C to stop.');
}

/** The HTTP API on its configured port, or on a free one when that is taken (say, by another `npm start`). */
async function startApiOnFreePort(link: TemporalLink): Promise<RunningApi> {
  const settings = apiSettings();
  try {
    return await startApi(settings, { link });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    console.log(`Port ${settings.port} is taken (BACKROOM_API_PORT): the HTTP API takes a free one.`);
    return startApi({ ...settings, port: 0 }, { link });
  }
}

/**
 * The local SMTP sink, unless SMTP_URL names a server or something already listens on the sink's port (a sink
 * left running by `npm run mail-sink`, say): email jobs then send there.
 */
async function ensureMailSink(): Promise<RunningMailSink | undefined> {
  if (process.env.SMTP_URL) {
    console.log(`Email jobs send to SMTP_URL (${process.env.SMTP_URL.replace(/\/\/[^@/]*@/, '//***@')}).`);
    return undefined;
  }
  if (await isListening('127.0.0.1', mailSinkPort())) {
    console.log(`Email jobs send to the SMTP server already on ${smtpUrl()}.`);
    return undefined;
  }
  const sink = await startMailSink({ dir: mailSinkDir(), port: mailSinkPort() });
  process.env.SMTP_URL = sink.url;
  console.log(`Mail sink on ${sink.url}: email jobs send there; see what arrived with \`bin/backroom mail\`.`);
  return sink;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
