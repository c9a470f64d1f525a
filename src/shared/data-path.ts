/**
 * The schema of every file or folder a job names: relative to the data dir, or absolute inside it (and, for the
 * fields that take {@link dataLocation}, an `s3://` location in an allowed bucket). Activities always
 * confine paths themselves (`resolveDataPath`); a client that knows the data dir (the CLI, the HTTP API) installs a
 * check here as well, so a path outside it is refused at the door, naming the field, before any job starts.
 * Workflows never install one: they cannot see the data dir, but they do refuse paths no file system should see.
 */
import { z } from 'zod';
import { isS3Location, parseS3Location, type S3Location } from '../storage/s3-location';

/** Longer paths are refused: they are never a real document's name and only ever reach a system limit. */
export const MAX_PATH_LENGTH = 1024;
/** The longest name one folder entry may have (Linux's NAME_MAX, counted in characters here). */
export const MAX_NAME_LENGTH = 255;

/** Why a path's text is refused (NUL or other control characters, too long), or undefined when it is fine. */
export function pathTextProblem(value: string): string | undefined {
  const control = /[\u0000-\u001f\u007f]/.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, '0');
    return `the path contains a control character (U+${code} at position ${control.index}); paths are plain text`;
  }
  if (value.length > MAX_PATH_LENGTH) {
    return `the path is ${value.length} characters long; paths may have up to ${MAX_PATH_LENGTH}`;
  }
  if (value.split(/[\\/]/).some((name) => name.length > MAX_NAME_LENGTH)) {
    return `a name in the path is longer than ${MAX_NAME_LENGTH} characters`;
  }
  return undefined;
}

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
    const problem = pathTextProblem(value) ?? installedCheck?.(value);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .meta({ description: 'A path inside the data dir: relative to it, or absolute inside it.' });

/** Returns why an S3 location is refused (its bucket is not on the allow-list...), or undefined when it is fine. */
export type S3LocationCheck = (value: string) => string | undefined;

let installedS3Check: S3LocationCheck | undefined;

/**
 * Installs (or with undefined, removes) the check that every `s3://` value of a {@link dataLocation} field must pass,
 * besides being a well-formed location: the bucket allow-list, where the environment is known (`data-paths.ts`).
 */
export function confineS3Locations(check: S3LocationCheck | undefined): void {
  installedS3Check = check;
}

/** Why `value` is refused as an S3 location of this kind, or undefined. */
function s3LocationProblem(value: string, kind: 'file' | 'folder'): string | undefined {
  let location: S3Location;
  try {
    location = parseS3Location(value);
  } catch (err) {
    return (err as Error).message;
  }
  if (kind === 'folder' && location.kind !== 'prefix') {
    return `"${value}" names an object; a folder in a bucket ends with "/" (${value}/)`;
  }
  if (kind === 'file' && location.kind !== 'object') return `"${value}" names a folder (it ends with "/"), not a file`;
  return installedS3Check?.(value);
}

/**
 * A file or folder a job may keep in object storage as well as in the data dir: a data-dir path (checked as
 * {@link dataPath} is), or `s3://bucket/key` (a file) / `s3://bucket/prefix/` (a folder: `kind` says which is
 * wanted), well-formed, and on the bucket allow-list where a check is installed.
 */
export function dataLocation(kind: 'file' | 'folder') {
  return z
    .string()
    .min(1)
    .superRefine((value, context) => {
      const problem = isS3Location(value)
        ? s3LocationProblem(value, kind)
        : (pathTextProblem(value) ?? installedCheck?.(value));
      if (problem) context.addIssue({ code: 'custom', message: problem });
    })
    .meta({
      description:
        kind === 'file'
          ? 'A file: a path inside the data dir, or an object in an allowed bucket (s3://bucket/key).'
          : 'A folder: a path inside the data dir, or a prefix in an allowed bucket (s3://bucket/prefix/).',
    });
}
