/**
 * Process configuration from the environment, in one place. Read by workers, clients, the dev server and
 * activities; never by workflows (they must not see the process environment).
 */
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

/** Resolves a job's path against the data dir; undefined when it leaves the data dir. */
export function pathInDataDir(userPath: string): string | undefined {
  const root = dataDir();
  const resolved = path.resolve(root, userPath);
  const relative = path.relative(root, resolved);
  return relative.startsWith('..') || path.isAbsolute(relative) ? undefined : resolved;
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

export function workerSettings(): WorkerSettings {
  return {
    taskQueue: taskQueue(),
    maxConcurrentActivities: intFromEnv('BACKROOM_MAX_ACTIVITIES', 8),
    maxConcurrentWorkflowTasks: intFromEnv('BACKROOM_MAX_WORKFLOW_TASKS', 4),
    maxCachedWorkflows: intFromEnv('BACKROOM_MAX_CACHED_WORKFLOWS', 200),
    shutdownGraceSeconds: intFromEnv('BACKROOM_SHUTDOWN_GRACE_SECONDS', 10),
    healthPort: intFromEnv('BACKROOM_HEALTH_PORT', 9464),
    healthHost: process.env.BACKROOM_HEALTH_HOST || '0.0.0.0',
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
