/**
 * The one confinement rule for every path a job touches: a path is allowed only if its *real* location (symlinks
 * resolved; for a path that does not exist yet, the real location of its nearest existing parent) is inside the real
 * data dir. A path's string is not its location: `links/etc/x` is outside when `links/etc` leads to `/etc`.
 * The clients (CLI, HTTP API, `Jobs`) check here at the door and the activities again right before use, since the
 * filesystem can change in between. No I/O but `realpath`/`readlink`, which are cheap system calls.
 */
import { readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { dataDir } from './config';
import { confineS3Locations, pathTextProblem } from './shared/data-path';
import { allowedBuckets, assertBucketAllowed, parseS3Location } from './storage/s3-location';

/** Symbolic links followed before a path counts as a loop (Linux's own limit). */
const MAX_LINK_HOPS = 40;

/**
 * The real location of `absolute`: `realpath` when it exists; otherwise the real location of its parent joined with
 * its name, following a dangling link's target the way the kernel would when creating the file.
 */
export function realLocation(absolute: string, hops = 0): string {
  try {
    return realpathSync.native(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  }
  const parent = path.dirname(absolute);
  if (parent === absolute) return absolute;
  const realParent = realLocation(parent, hops);
  let target: string | undefined;
  try {
    target = readlinkSync(absolute);
  } catch {
    // Not a link (it does not exist at all): the name is created inside the parent.
  }
  if (target === undefined) return path.join(realParent, path.basename(absolute));
  if (hops >= MAX_LINK_HOPS)
    throw Object.assign(new Error(`too many symbolic links at ${absolute}`), { code: 'ELOOP' });
  return realLocation(path.resolve(realParent, target), hops + 1);
}

/** True when `child` is `parent` or lies under it (both absolute and normalised). */
export function isWithin(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!path.isAbsolute(relative) && relative !== '..' && !relative.startsWith(`..${path.sep}`));
}

export type Located = { path: string } | { problem: string };

/**
 * Resolves a job's path (relative to the data dir, or absolute inside it) and checks where it really leads. Returns
 * the absolute path to use (the lexical one: links that stay inside keep their names) or why it is refused, in words
 * that name the path as the user wrote it and never what lies outside.
 */
export function locateInDataDir(userPath: string): Located {
  const textProblem = pathTextProblem(userPath);
  if (textProblem) return { problem: textProblem };
  const root = dataDir();
  const absolute = path.resolve(root, userPath);
  const outside = { problem: `"${userPath}" is outside the data dir (${root}); jobs may only use files inside it` };
  if (!isWithin(root, absolute)) return outside;
  try {
    if (isWithin(realLocation(root), realLocation(absolute))) return { path: absolute };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    return { problem: `"${userPath}" cannot be checked against the data dir (${code})` };
  }
  return {
    problem: `"${userPath}" leads outside the data dir (${root}) through a symbolic link; jobs may only use files inside it`,
  };
}

/**
 * Why an `s3://` location is refused in this process: malformed, or its bucket is not on `BACKROOM_S3_BUCKETS` (read
 * at each call). The S3 counterpart of {@link locateInDataDir}; activities check again right before use (places.ts).
 */
export function s3LocationProblem(value: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    assertBucketAllowed(parseS3Location(value), allowedBuckets(env));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// Where the data dir is known (the clients' door, the activities), the bucket allow-list is too: an `s3://` value of
// a job's input in a bucket that is not allowed is refused by the input schema itself, naming the field.
confineS3Locations(s3LocationProblem);
