/**
 * Process configuration from the environment, in one place. Read by workers, clients, the dev server and
 * activities; never by workflows (they must not see the process environment).
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TASK_QUEUE } from './shared/names';

/** The project root (where package.json lives), whatever the current directory. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

/** Where jobs read inputs and write outputs, and where the dev server keeps its database. */
export function dataDir(): string {
  return path.resolve(process.env.BACKROOM_DATA_DIR || path.join(PROJECT_ROOT, 'data'));
}

export function taskQueue(): string {
  return process.env.BACKROOM_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

/** Where email jobs send: any SMTP server, as a nodemailer connection URL (smtp://, smtps://, user:pass@, ?options). */
export function smtpUrl(): string {
  return process.env.SMTP_URL || `smtp://127.0.0.1:${mailSinkPort()}`;
}

/** The sender of email jobs that do not name one. */
export function defaultMailFrom(): string {
  return process.env.BACKROOM_MAIL_FROM || 'Backroom <noreply@backroom.local>';
}

/** Port of the local SMTP sink that `npm start` and `npm run mail-sink` run. */
export function mailSinkPort(): number {
  return intFromEnv('BACKROOM_MAIL_SINK_PORT', 2525);
}

/** Where the local SMTP sink stores what it receives. */
export function mailSinkDir(): string {
  return path.resolve(process.env.BACKROOM_MAIL_SINK_DIR || path.join(dataDir(), 'mail-sink'));
}

export interface WorkerSettings {
  taskQueue: string;
  /** Activities one worker runs at once; 2 cores hold a few CPU-bound ones plus many that wait on I/O. */
  maxConcurrentActivities: number;
  maxConcurrentWorkflowTasks: number;
  /** Workflow executions kept in memory between tasks (each holds a V8 context: a few MB). */
  maxCachedWorkflows: number;
  /** How long a shutdown waits for running activities to finish or checkpoint. */
  shutdownGraceSeconds: number;
  /** Port of `/healthz` and `/metrics` (0 picks a free one). */
  healthPort: number;
  healthHost: string;
}

/** The environment variable of each worker setting, for messages that say what to set. */
const WORKER_SETTING_VARIABLES: Record<Exclude<keyof WorkerSettings, 'taskQueue' | 'healthHost'>, string> = {
  maxConcurrentActivities: 'BACKROOM_MAX_ACTIVITIES',
  maxConcurrentWorkflowTasks: 'BACKROOM_MAX_WORKFLOW_TASKS',
  maxCachedWorkflows: 'BACKROOM_MAX_CACHED_WORKFLOWS',
  shutdownGraceSeconds: 'BACKROOM_SHUTDOWN_GRACE_SECONDS',
  healthPort: 'BACKROOM_HEALTH_PORT',
};

/** Worker settings that no worker can run with, each saying what to set instead. */
export class WorkerSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`The worker cannot start with these settings:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'WorkerSettingsError';
  }
}

/**
 * Checks worker settings before anything starts, so that a value the Temporal SDK would refuse (or silently
 * change) stops the worker with what to set instead; every value it lets through works.
 */
export function checkWorkerSettings<S extends WorkerSettings>(settings: S): S {
  const name = WORKER_SETTING_VARIABLES;
  const problems: string[] = [];
  const integer = (key: keyof typeof name, min: number, max: number, why = '') => {
    const value = settings[key];
    if (Number.isInteger(value) && value >= min && value <= max) return true;
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    problems.push(`${name[key]}=${value}: set a whole number ${range}.${why}`);
    return false;
  };
  const unbounded = Number.MAX_SAFE_INTEGER;
  integer('maxConcurrentActivities', 1, unbounded, ' With no activity slot a worker runs no job (the SDK refuses 0).');
  integer('maxConcurrentWorkflowTasks', 1, unbounded, ' With no workflow task slot a worker runs no job.');
  if (integer('maxCachedWorkflows', 0, unbounded) && settings.maxCachedWorkflows === 1) {
    problems.push(
      `${name.maxCachedWorkflows}=1: the Temporal SDK caches 0 workflows (none: every workflow task replays its ` +
        `history) or at least 2. Set 0, or 2 or more.`,
    );
  }
  if (settings.maxConcurrentWorkflowTasks === 1 && settings.maxCachedWorkflows > 0) {
    problems.push(
      `${name.maxConcurrentWorkflowTasks}=1 with ${name.maxCachedWorkflows}=${settings.maxCachedWorkflows}: a worker ` +
        `that caches workflows polls two queues (its sticky queue and the shared one) and needs 2 workflow task ` +
        `slots. Set ${name.maxConcurrentWorkflowTasks}=2 or more, or ${name.maxCachedWorkflows}=0 to run one ` +
        `workflow task at a time without a cache (each task then replays its workflow's history).`,
    );
  }
  integer('shutdownGraceSeconds', 0, unbounded);
  integer('healthPort', 0, 65_535);
  if (!settings.taskQueue) problems.push('BACKROOM_TASK_QUEUE is empty: name a task queue or unset it.');
  if (problems.length) throw new WorkerSettingsError(problems);
  return settings;
}

/** The worker settings from the environment, checked (see {@link checkWorkerSettings}). */
export function workerSettings(): WorkerSettings {
  return checkWorkerSettings({
    taskQueue: taskQueue(),
    maxConcurrentActivities: intFromEnv('BACKROOM_MAX_ACTIVITIES', 8),
    maxConcurrentWorkflowTasks: intFromEnv('BACKROOM_MAX_WORKFLOW_TASKS', 4),
    maxCachedWorkflows: intFromEnv('BACKROOM_MAX_CACHED_WORKFLOWS', 200),
    shutdownGraceSeconds: intFromEnv('BACKROOM_SHUTDOWN_GRACE_SECONDS', 10),
    healthPort: intFromEnv('BACKROOM_HEALTH_PORT', 9464),
    healthHost: process.env.BACKROOM_HEALTH_HOST || '0.0.0.0',
  });
}

export interface CpuPoolSettings {
  /** False runs CPU tasks on the calling thread (BACKROOM_CPU_POOL=0: the old path, for side-by-side benchmarks). */
  enabled: boolean;
  /** Pool threads: the cores, because the threads run at a lower priority than the main thread (see cpu-pool). */
  threads: number;
}

export function cpuPoolSettings(): CpuPoolSettings {
  return {
    enabled: process.env.BACKROOM_CPU_POOL !== '0',
    threads: Math.max(1, intFromEnv('BACKROOM_CPU_THREADS', os.availableParallelism())),
  };
}

export interface DevServerSettings {
  ip: string;
  port: number;
  uiPort: number;
  dbFile: string;
  namespace: string;
}

export function devServerSettings(): DevServerSettings {
  const port = intFromEnv('BACKROOM_DEV_SERVER_PORT', 7233);
  return {
    ip: process.env.BACKROOM_DEV_SERVER_IP || '127.0.0.1',
    port,
    uiPort: intFromEnv('BACKROOM_DEV_UI_PORT', port + 1000),
    dbFile: path.join(dataDir(), 'temporal.db'),
    namespace: process.env.TEMPORAL_NAMESPACE || 'default',
  };
}

export interface ApiSettings {
  host: string;
  port: number;
  /** When set, every route but /healthz needs `Authorization: Bearer <key>` (or `X-API-Key: <key>`). */
  apiKey?: string;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
}

export function apiSettings(): ApiSettings {
  const apiKey = process.env.BACKROOM_API_KEY;
  return {
    host: process.env.BACKROOM_API_HOST || '127.0.0.1',
    port: intFromEnv('BACKROOM_API_PORT', 8088),
    ...(apiKey && { apiKey }),
    bodyLimit: intFromEnv('BACKROOM_API_BODY_LIMIT', 1024 * 1024),
  };
}

/** The variables that turn payload encryption on (one of them at most); `src/codec/keys.ts` parses the value. */
export const ENCRYPTION_KEY_VARIABLES = [
  'BACKROOM_ENCRYPTION_KEY',
  'BACKROOM_ENCRYPTION_KEYS',
  'BACKROOM_ENCRYPTION_KEY_FILE',
] as const;
export type EncryptionKeyVariable = (typeof ENCRYPTION_KEY_VARIABLES)[number];

/** The encryption key setting in force, or undefined: encryption is off unless one of the variables is set. */
export function encryptionKeySetting(): { name: EncryptionKeyVariable; value: string } | undefined {
  const set = ENCRYPTION_KEY_VARIABLES.filter((name) => process.env[name]);
  if (set.length > 1) {
    throw new Error(
      `Both ${set.join(' and ')} are set: set one. For several keys (a rotation) list them, newest first, in ` +
        `BACKROOM_ENCRYPTION_KEYS="id2:<base64>,id1:<base64>" or one per line in BACKROOM_ENCRYPTION_KEY_FILE.`,
    );
  }
  const name = set[0];
  const value = name && process.env[name];
  return name && value ? { name, value } : undefined;
}

/**
 * Browser origins that may call the codec routes: the Temporal UI's. BACKROOM_UI_ORIGIN (comma-separated) sets them;
 * by default the local dev server's UI, as 127.0.0.1 and as localhost.
 */
export function uiOrigins(): string[] {
  const raw = process.env.BACKROOM_UI_ORIGIN;
  if (raw) {
    return raw
      .split(',')
      .map((value) => value.trim())
      .filter(Boolean)
      .map((value) => {
        let origin: string | undefined;
        try {
          origin = new URL(value).origin;
        } catch {
          origin = undefined;
        }
        if (!origin || origin === 'null' || origin !== value.replace(/\/$/, '')) {
          throw new Error(`BACKROOM_UI_ORIGIN: "${value}" is not an origin such as http://127.0.0.1:8233 (no path)`);
        }
        return origin;
      });
  }
  const { ip, uiPort } = devServerSettings();
  const hosts = ['127.0.0.1', '0.0.0.0', 'localhost'].includes(ip) ? ['127.0.0.1', 'localhost'] : [ip];
  return hosts.map((host) => `http://${host}:${uiPort}`);
}

/**
 * The codec endpoint that the dev server's UI calls when payloads are encrypted (it adds /encode and /decode):
 * BACKROOM_CODEC_ENDPOINT, by default the HTTP API's /codec on this machine.
 */
export function codecEndpoint(): string {
  const fromEnv = process.env.BACKROOM_CODEC_ENDPOINT;
  if (fromEnv) return fromEnv.replace(/\/+$/, '');
  const { host, port } = apiSettings();
  const local = ['0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}/codec`;
}
