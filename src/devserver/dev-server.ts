/**
 * Running `temporal server start-dev` with a persistent SQLite database, the UI, and the dynamic config that task
 * priorities need, and waiting until it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { uiCodecEndpoint } from '../codec/data-converter';
import { devServerSettings, type DevServerSettings } from '../config';
import { isListening } from '../ports';
import { SEARCH_ATTRIBUTE_ARGS } from '../shared/search-attributes';
import { ensureTemporalCli } from './temporal-cli';

/**
 * Dynamic config every Backroom dev server runs with (tests and benchmarks too, see test/helpers/temporal.ts):
 * - `matching.useNewMatcher`: the matcher that serves a backlog by priority key;
 * - `matching.enableFairness`: within a priority, tasks are served by fairness key (a job's tenant) in proportion
 *   to their weights, not first come first served (implies the new matcher; the server keeps these tasks in its
 *   `tasks_v2` table);
 * - one partition per task queue: each partition keeps its own priority order and a poller takes whichever
 *   partition answers first, so with the server's default of 4 a backlog came out of priority order (low before
 *   default). One partition limits one queue to what one matching node does, far more than one machine's workers
 *   need; a cluster that needs more raises these per task queue (see the README's Priorities section).
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'matching.useNewMatcher=true',
  'matching.enableFairness=true',
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
];

/** The `temporal server start-dev` arguments; `codecEndpoint` makes the UI decode payloads through a codec server. */
export function devServerArgs(settings: DevServerSettings, options: { codecEndpoint?: string } = {}): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    settings.ip,
    '--port',
    String(settings.port),
    '--ui-port',
    String(settings.uiPort),
    '--db-filename',
    settings.dbFile,
    '--namespace',
    settings.namespace,
    '--log-level',
    'warn',
    ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
    ...SEARCH_ATTRIBUTE_ARGS,
    ...(options.codecEndpoint ? ['--ui-codec-endpoint', options.codecEndpoint] : []),
  ];
}

export interface RunningDevServer {
  address: string;
  uiUrl: string;
  /** The codec endpoint the UI decodes payloads with (set when encryption is on). */
  codecEndpoint?: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts the dev server and resolves once its gRPC port accepts connections. With an encryption key configured, its
 * UI decodes payloads through the codec endpoint (BACKROOM_CODEC_ENDPOINT, by default the HTTP API's /codec).
 */
export async function startDevServer(
  settings: DevServerSettings = devServerSettings(),
  options: { logFile?: string; codecEndpoint?: string } = {},
): Promise<RunningDevServer> {
  const codecEndpoint = options.codecEndpoint ?? uiCodecEndpoint();
  const cli = await ensureTemporalCli();
  mkdirSync(path.dirname(settings.dbFile), { recursive: true });
  if (await isListening(settings.ip, settings.port)) {
    throw new Error(
      `Port ${settings.port} on ${settings.ip} is already in use. If a Temporal server runs there, use it ` +
        `(set TEMPORAL_ADDRESS=${settings.ip}:${settings.port}); else pick another port with BACKROOM_DEV_SERVER_PORT.`,
    );
  }
  // The server's own logs go to a file when asked (npm start), so they don't bury the demo's output.
  const output = options.logFile ? openSync(options.logFile, 'a') : 'inherit';
  const child = spawn(cli, devServerArgs(settings, { codecEndpoint }), { stdio: ['ignore', output, output] });
  if (typeof output === 'number') closeSync(output);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!(await isListening(settings.ip, settings.port))) {
    if (child.exitCode !== null) throw new Error(`The Temporal dev server exited with code ${child.exitCode}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The Temporal dev server did not open its port within 60 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    address: `${settings.ip}:${settings.port}`,
    uiUrl: `http://${settings.ip === '0.0.0.0' ? 'localhost' : settings.ip}:${settings.uiPort}`,
    ...(codecEndpoint && { codecEndpoint }),
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
