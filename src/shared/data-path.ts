/**
 * The schema of every file or folder a job names: relative to the data dir, or absolute inside it. Activities always
 * confine paths themselves (`resolveDataPath`); a client that knows the data dir (the CLI, the HTTP API) installs a
 * check here as well, so a path outside it is refused at the door, naming the field, before any job starts.
 * Workflows never install one: they cannot see the data dir.
 */
import { z } from 'zod';

/** Returns why a path is refused, or undefined when it is fine. */
export type DataPathCheck = (value: string) => string | undefined;

let installedCheck: DataPathCheck | undefined;

/** Installs (or with undefined, removes) the check that every `dataPath` field of a job input must pass. */
export function confineDataPaths(check: DataPathCheck | undefined): void {
  installedCheck = check;
}

export const dataPath = z
  .string()
  .min(1)
  .superRefine((value, context) => {
    const problem = installedCheck?.(value);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .meta({ description: 'A path inside the data dir: relative to it, or absolute inside it.' });
