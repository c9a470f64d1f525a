/** What a worker left on its disk: object-storage tests check that a job kept nothing of its own there. */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** Every file under `dir` (relative paths); none when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}
