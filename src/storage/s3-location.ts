/**
 * `s3://bucket/key` and `s3://bucket/prefix/` locations: parsing, validation and the bucket allow-list. Pure logic
 * (no I/O, no AWS SDK), so a client can refuse a bad location before a job starts, and an activity can check it again
 * just before use.
 */

/** One object: `s3://bucket/key` (the key never ends with `/`). */
export interface S3ObjectLocation {
  kind: 'object';
  bucket: string;
  key: string;
}

/** A "folder": `s3://bucket/prefix/`, or `s3://bucket/` for the whole bucket (prefix ''). */
export interface S3PrefixLocation {
  kind: 'prefix';
  bucket: string;
  /** Empty, or ends with `/`. */
  prefix: string;
}

export type S3Location = S3ObjectLocation | S3PrefixLocation;

/** The environment variable that lists the buckets jobs may use. */
export const BUCKETS_ENV = 'BACKROOM_S3_BUCKETS';

const SCHEME = 's3://';
/** S3's limit on a key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

/** True if `text` names an S3 location (it starts with `s3://`), whether or not it is a valid one. */
export function isS3Location(text: string): boolean {
  return text.startsWith(SCHEME);
}

/**
 * Why `name` is not a valid bucket name (S3's general-purpose bucket rules), or undefined if it is. Lower-case only,
 * so a bucket has exactly one spelling on the allow-list.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name === '') return 'the bucket name is empty';
  if (name.length < 3 || name.length > 63)
    return `bucket names are 3 to 63 characters long ("${name}" has ${name.length})`;
  if (!/^[a-z0-9.-]+$/.test(name)) return `bucket names use only lower-case letters, digits, "." and "-" ("${name}")`;
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return `bucket names begin and end with a letter or digit ("${name}")`;
  }
  if (name.includes('..')) return `bucket names do not contain ".." ("${name}")`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return `a bucket name is not an IP address ("${name}")`;
  if (/^(xn--|sthree-)/.test(name) || /(-s3alias|--ol-s3)$/.test(name)) {
    return `"${name}" uses a prefix or suffix that S3 reserves`;
  }
  return undefined;
}

/**
 * Why `key` (or a prefix without its trailing `/`) is refused, or undefined if it is fine. S3 itself takes almost any
 * string, but keys are also paths: SeaweedFS's filer and tools that mirror a bucket to disk resolve `.` and `..`
 * segments and collapse `//`, so such a key could land outside the prefix a job was given.
 */
function keyProblem(key: string): string | undefined {
  // TextEncoder, not Buffer: input schemas check locations inside workflows too, where Buffer does not exist.
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) return `the key is longer than ${MAX_KEY_BYTES} bytes`;
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'the key contains a control character';
  if (key.includes('\\')) return 'the key contains a backslash';
  for (const segment of key.split('/')) {
    if (segment === '') return 'the key has an empty segment (a leading "/" or "//")';
    if (segment === '.' || segment === '..') return `the key has a "${segment}" segment`;
  }
  return undefined;
}

/**
 * Parses and validates an `s3://bucket/key` (object) or `s3://bucket/prefix/` (prefix) location. The rest after the
 * bucket is taken literally (no percent-decoding), as the AWS CLI does. Throws an Error that quotes the input and says
 * what is wrong.
 */
export function parseS3Location(text: string): S3Location {
  const refuse = (why: string): never => {
    throw new Error(`Invalid S3 location "${text}": ${why}.`);
  };
  if (!isS3Location(text)) refuse('it must start with "s3://" (for example s3://my-bucket/path/file.mp4)');
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '') refuse('it names no bucket');
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem) refuse(bucketProblem);
  if (path === '') return { kind: 'prefix', bucket, prefix: '' };
  const isPrefix = path.endsWith('/');
  const problem = keyProblem(isPrefix ? path.slice(0, -1) : path);
  if (problem) refuse(problem);
  return isPrefix ? { kind: 'prefix', bucket, prefix: path } : { kind: 'object', bucket, key: path };
}

/** Parses an object location; a prefix (`s3://bucket/dir/`) is refused. */
export function parseS3Object(text: string): S3ObjectLocation {
  const location = parseS3Location(text);
  if (location.kind !== 'object') {
    throw new Error(`Invalid S3 location "${text}": it names a prefix (it ends with "/"), not an object.`);
  }
  return location;
}

/** Parses a prefix location (`s3://bucket/dir/` or `s3://bucket/`); an object location is refused. */
export function parseS3Prefix(text: string): S3PrefixLocation {
  const location = parseS3Location(text);
  if (location.kind !== 'prefix') {
    throw new Error(`Invalid S3 location "${text}": a prefix ends with "/" (did you mean "${text}/"?).`);
  }
  return location;
}

/** The `s3://` form of a location (the inverse of {@link parseS3Location}). */
export function formatS3Location(location: S3Location): string {
  return `${SCHEME}${location.bucket}/${location.kind === 'object' ? location.key : location.prefix}`;
}

/**
 * The buckets jobs may use, from {@link BUCKETS_ENV} (comma-separated names; blanks around names are ignored). Unset
 * or empty allows none: object storage is opt-in, bucket by bucket. A malformed name is an error, not skipped.
 */
export function allowedBuckets(env: NodeJS.ProcessEnv = process.env): ReadonlySet<string> {
  const names = (env[BUCKETS_ENV] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  for (const name of names) {
    const problem = bucketNameProblem(name);
    if (problem) throw new Error(`${BUCKETS_ENV} lists "${name}", which is not a valid bucket name: ${problem}.`);
  }
  return new Set(names);
}

/** Throws unless `location`'s bucket is on the allow-list; the message says which variable to set. */
export function assertBucketAllowed(location: S3Location, allowed: ReadonlySet<string>): void {
  if (allowed.has(location.bucket)) return;
  const now = allowed.size === 0 ? 'it is empty or unset' : `it allows ${[...allowed].join(', ')}`;
  throw new Error(
    `S3 location "${formatS3Location(location)}" is refused: bucket "${location.bucket}" is not on the allow-list. ` +
      `Add it to ${BUCKETS_ENV} (comma-separated bucket names; ${now}).`,
  );
}

/** Parses `text` and checks its bucket against the allow-list: what a job does with a location it is given. */
export function resolveS3Location(text: string, allowed: ReadonlySet<string>): S3Location {
  const location = parseS3Location(text);
  assertBucketAllowed(location, allowed);
  return location;
}
