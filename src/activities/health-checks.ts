/**
 * The checks of `systemHealthCheck`, one activity each, so a failing check is reported on its own and the others
 * still run. Each returns a report rather than throwing: an unhealthy system is a result, not an error.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { dataDir } from '../config';

export interface CheckReport {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

async function timed(name: string, check: () => Promise<string>): Promise<CheckReport> {
  const started = performance.now();
  try {
    const detail = await check();
    return { name, ok: true, detail, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { name, ok: false, detail, ms: Math.round(performance.now() - started) };
  }
}

/** The Temporal server answers and says which version it runs. */
export async function checkServer(): Promise<CheckReport> {
  return timed('server', async () => {
    const context = Context.current();
    const info = await context.client.workflowService.getSystemInfo({});
    const version = info.serverVersion || '(version not reported)';
    return `Temporal server ${version} reachable; namespace ${context.info.workflowNamespace}`;
  });
}

/** Workers poll the Backroom task queue for both workflow and activity tasks. */
export async function checkPollers(): Promise<CheckReport> {
  return timed('pollers', async () => {
    const context = Context.current();
    const { workflowService } = context.client;
    const namespace = context.info.workflowNamespace;
    // The queue this very activity came from is the one the jobs use.
    const queue = context.info.taskQueue;
    const counts: string[] = [];
    for (const [label, type] of [
      ['workflow', temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW],
      ['activity', temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
    ] as const) {
      const answer = await workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: queue },
        taskQueueType: type,
      });
      const pollers = answer.pollers ?? [];
      if (pollers.length === 0)
        throw new Error(`No ${label} pollers on task queue "${queue}": start a worker (npm run worker)`);
      counts.push(`${pollers.length} ${label} poller(s)`);
    }
    return `Task queue "${queue}": ${counts.join(', ')}`;
  });
}

/** The data dir exists, takes a write, and has at least `minFreeMb` free. */
export async function checkDataDir(minFreeMb: number): Promise<CheckReport> {
  return timed('data-dir', async () => {
    const dir = dataDir();
    await mkdir(dir, { recursive: true });
    const probe = path.join(dir, `.health-${randomUUID()}`);
    await writeFile(probe, 'ok');
    await rm(probe);
    const fs = await statfs(dir);
    const freeMb = Math.floor((fs.bavail * fs.bsize) / 2 ** 20);
    if (freeMb < minFreeMb) throw new Error(`${dir} is writable but has only ${freeMb} MiB free (need ${minFreeMb})`);
    return `${dir} writable, ${freeMb.toLocaleString('en-US')} MiB free`;
  });
}

/** Native dependencies load and do real work (sharp: decode and encode a small image). */
export async function checkNativeDependencies(): Promise<CheckReport> {
  return timed('native-deps', async () => {
    const { default: sharp } = await import('sharp');
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const { width } = await sharp(png).metadata();
    if (width !== 8) throw new Error(`sharp decoded a wrong width: ${width}`);
    return `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`;
  });
}
