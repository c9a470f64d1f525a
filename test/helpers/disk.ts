/** What a worker left on its disk: object-storage tests check that a job kept nothing of its own there. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A worker process's whole disk as far as a job is concerned: its data dir and its temporary folder. */
export interface WorkerDisk {
  dataDir: string;
  tmpDir: string;
}

/** A fresh data dir and temporary folder for a worker, named after `label`. */
export function makeWorkerDisk(label: string): WorkerDisk {
  return {
    dataDir: mkdtempSync(path.join(os.tmpdir(), `backroom-${label}-data-`)),
    tmpDir: mkdtempSync(path.join(os.tmpdir(), `backroom-${label}-tmp-`)),
  };
}

/** The worker environment that gives it `disk` (and nothing else of this machine's folders). */
export const workerDiskEnv = (disk: WorkerDisk) => ({ BACKROOM_DATA_DIR: disk.dataDir, TMPDIR: disk.tmpDir });

/** Removes a worker's disk. */
export function removeWorkerDisk(disk: WorkerDisk): void {
  rmSync(disk.dataDir, { recursive: true, force: true });
  rmSync(disk.tmpDir, { recursive: true, force: true });
}

/** Every file under `dir` (relative paths); none when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}
