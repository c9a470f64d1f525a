/** Child processes for end-to-end tests: the `backroom` CLI, worker processes, free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../src/ports';

export const PROJECT_ROOT = path.resolve(__dirname, '../..');

export { freePort };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/backroom ...args` to the end. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runProcess(path.join(PROJECT_ROOT, 'bin/backroom'), args, env);
}

export function runProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 300_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface WorkerProcess {
  process: ChildProcess;
  healthUrl: string;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `npm run worker`'s entry point as its own process and waits until `/healthz` says it is running. */
export async function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const healthPort = await freePort();
  // node itself (not the tsx wrapper), so that a SIGKILL kills the worker and not just a parent process.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, BACKROOM_HEALTH_PORT: String(healthPort), BACKROOM_HEALTH_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`The worker exited early:\n${output}`);
    const ok = await fetch(`${healthUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`The worker did not become healthy in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { process: child, healthUrl, output: () => output, exited };
}

/** Stops a worker process: SIGTERM, up to `graceMs` for it to finish, then SIGKILL. One that has exited is left. */
export async function stopWorkerProcess(worker: WorkerProcess | undefined, graceMs = 15_000): Promise<void> {
  if (!worker || worker.process.exitCode !== null || worker.process.signalCode !== null) return;
  worker.process.kill('SIGTERM');
  await Promise.race([worker.exited, new Promise((resolve) => setTimeout(resolve, graceMs))]);
  worker.process.kill('SIGKILL');
}
