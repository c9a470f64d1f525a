/**
 * Places where a job keeps its files: a folder in the data dir, or a prefix in an allowed S3 bucket. A job names a
 * place, or a file in one, by a location (`restored`, `s3://out/restored/`, `s3://in/scans/page-1.jpg`) and reads,
 * writes, lists and logs through one interface, so its logic does not care where its bytes live.
 *
 * Both kinds keep the same promises:
 * - **Confined, checked right before use.** A data-dir path is checked by where it really leads (`files.ts`); an S3
 *   location is parsed and its bucket checked against `BACKROOM_S3_BUCKETS` here, and again by the storage module on
 *   every request. A refusal is a non-retryable failure that names the location as the user wrote it.
 * - **Whole writes.** A reader sees the old content or all of the new, never a part (a rename into place on disk, a
 *   multipart upload that completes at once in a bucket).
 * - **Logs that show duplicates.** A log is append-only: a file of lines on disk; in a bucket, where nothing can be
 *   appended, one small object per line (`<log>/<key>.<unique>`), so two writes of one line stay two objects.
 * - **Faults say whether to retry.** A missing object or bucket and a denied request are non-retryable (waiting does
 *   not fix them); a network or server fault is thrown as it is, so Temporal retries it.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { dataDir } from '../config';
import { ObjectStorage, storageFailureKind } from '../storage/object-storage';
import {
  assertBucketAllowed,
  formatS3Location,
  isS3Location,
  parseS3Location,
  type S3Location,
  type S3ObjectLocation,
} from '../storage/s3-location';
import { readCached, readCachedVersion } from './file-cache';
import { SCRATCH_PREFIX } from './scratch';
import {
  appendDataFile,
  confirmInDataDir,
  copyFileAtomic,
  displayPath,
  listDataFiles,
  readDataFile,
  registerScratchCopy,
  resolveDataPath,
  writeFileAtomic,
} from './files';

/** An append-only log of a place (see the module comment for how each kind keeps it). */
export interface PlaceLog {
  /** Adds `text` as the line of `key`. */
  append(key: string, text: string): Promise<void>;
  /** Whether the log has a line for `key`. */
  has(key: string): Promise<boolean>;
  /** Removes the whole log. */
  clear(): Promise<void>;
}

/** A folder in the data dir or a prefix in a bucket. `name`s are relative, `/`-separated paths inside the place. */
export interface Place {
  /** The place as users write it: a data-dir path (`restored`) or an S3 prefix (`s3://out/restored/`). */
  readonly location: string;
  /** True for a folder in this worker's data dir; false for a bucket that any worker can reach. */
  readonly local: boolean;
  /** The location of `name` in this place, as users write it. */
  locate(name: string): string;
  /** The place `name` inside this one. */
  folder(name: string): Place;
  /** The bytes of `name`, or undefined when there is no such file. */
  read(name: string, what: string): Promise<Buffer | undefined>;
  /** Writes `name` whole (see the module comment). */
  write(name: string, data: string | Uint8Array, what: string, signal?: AbortSignal): Promise<void>;
  /**
   * Stores the local file `file` as `name`, whole (see the module comment), streamed: a bucket gets a multipart
   * upload, so a large output never sits in memory. `onProgress` gets the bytes sent so far, for heartbeats.
   */
  upload(name: string, file: string, what: string, options?: UploadOptions): Promise<void>;
  /** Whether `name` is a file here, or a folder with something in it. */
  exists(name: string): Promise<boolean>;
  /** Removes `name` and everything under it; nothing there is fine. */
  remove(name: string): Promise<void>;
  /** The files directly in this place (not in sub-folders), hidden ones left out, sorted, as locations. */
  files(): Promise<string[]>;
  /** The log `name` (`writes`: `writes.log` on disk, `writes/` in a bucket). */
  log(name: string): PlaceLog;
}

export interface UploadOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((bytesSent: number) => void) | undefined;
}

/** The one object storage of this process (one S3 client and its connection pool), made when first needed. */
let storage: ObjectStorage | undefined;
export function objectStorage(): ObjectStorage {
  storage ??= ObjectStorage.fromEnv();
  return storage;
}

/** Closes the object storage's connections (a worker shutting down, a test ending). */
export function closeObjectStorage(): void {
  storage?.close();
  storage = undefined;
}

/** `what` with a capital letter, to open a sentence. */
const sentence = (what: string) => what.charAt(0).toUpperCase() + what.slice(1);

/** Parses an S3 location and checks its bucket, or fails for good with the reason (naming `what`). */
export function checkedS3(text: string, what: string): S3Location {
  let location: S3Location;
  try {
    location = parseS3Location(text);
    assertBucketAllowed(location, objectStorage().allowedBuckets);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`${sentence(what)}: ${(err as Error).message}`, 'S3LocationRefused');
  }
  return location;
}

/** Like {@link checkedS3}, for a file: a folder location (`…/`) is refused. */
export function checkedS3Object(text: string, what: string): S3ObjectLocation {
  const location = checkedS3(text, what);
  if (location.kind !== 'object') {
    throw ApplicationFailure.nonRetryable(
      `${sentence(what)} "${text}" names a folder (it ends with "/"), not a file.`,
      'S3LocationRefused',
    );
  }
  return location;
}

/** A storage fault as a Temporal failure: non-retryable when waiting cannot fix it, the error itself otherwise. */
export function storageFault(err: unknown, what: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  const kind = storageFailureKind(err);
  if (!kind) return err;
  const type = { 'no-object': 'ObjectNotFound', 'no-bucket': 'BucketNotFound', denied: 'ObjectStorageDenied' }[kind];
  return ApplicationFailure.nonRetryable(`${sentence(what)}: ${(err as Error).message}`, type);
}

/**
 * The place at `location`: a prefix in a bucket (`s3://bucket/prefix/`, checked against the allow-list), or a folder
 * in the data dir (checked by where it really leads). Fails for good, naming `what`, when it is refused.
 */
export function placeAt(location: string, what: string): Place {
  if (isS3Location(location)) {
    const parsed = checkedS3(location, what);
    if (parsed.kind !== 'prefix') {
      throw ApplicationFailure.nonRetryable(
        `${sentence(what)} "${location}" names an object; a folder in a bucket ends with "/" (${location}/).`,
        'S3LocationRefused',
      );
    }
    return new BucketPlace(parsed.bucket, parsed.prefix);
  }
  return new DataDirPlace(resolveDataPath(location, what));
}

/**
 * The place and name of the file at `location`, checked (like {@link placeAt}) before anything is read or written.
 */
export function fileAt(location: string, what: string): { place: Place; name: string } {
  if (isS3Location(location)) {
    const parsed = checkedS3Object(location, what);
    const slash = parsed.key.lastIndexOf('/');
    return {
      place: new BucketPlace(parsed.bucket, parsed.key.slice(0, slash + 1)),
      name: parsed.key.slice(slash + 1),
    };
  }
  const file = resolveDataPath(location, what);
  return { place: new DataDirPlace(path.dirname(file)), name: path.basename(file) };
}

/**
 * `location` in one canonical form, for fingerprints and manifests: a data-dir path relative to the data dir, an S3
 * location as written (a malformed one too: it is refused with its reason when it is used).
 */
export function canonicalLocation(location: string): string {
  if (!isS3Location(location)) return displayPath(path.resolve(dataDir(), location));
  try {
    return formatS3Location(parseS3Location(location));
  } catch {
    return location;
  }
}

/** A file that code reading by path (sharp) can open, and how to let it go. */
export interface LocalFile {
  file: string;
  release(): Promise<void>;
}

export { SCRATCH_PREFIX };

/**
 * The file at `location` as a local file: a data-dir file as it is (checked), an object streamed into a scratch
 * file of this worker (`os.tmpdir()/backroom-scratch-…`) that `release` removes.
 */
export async function localFile(location: string, what: string, signal?: AbortSignal): Promise<LocalFile> {
  if (!isS3Location(location)) return { file: resolveDataPath(location, what), release: async () => {} };
  const object = checkedS3Object(location, what);
  const folder = await mkdtemp(path.join(os.tmpdir(), SCRATCH_PREFIX));
  // The name keeps a plain extension only: a key's name need not be a valid file name.
  const extension = /^\.[A-Za-z0-9]{1,10}$/.exec(path.posix.extname(formatS3Location(object)))?.[0] ?? '';
  const file = path.join(folder, `${what.replace(/\W+/g, '-')}${extension}`);
  // Messages about the copy (a corrupt image...) name the object, and the data-dir check lets it through.
  const unregister = registerScratchCopy(file, formatS3Location(object));
  const release = async () => {
    unregister();
    await rm(folder, { recursive: true, force: true });
  };
  try {
    const opened = await objectStorage().openRead(object, { signal });
    await pipeline(opened.body, createWriteStream(file, { flags: 'wx' }), { signal });
  } catch (err) {
    await release();
    throw storageFault(err, what);
  }
  return { file, release };
}

/** A presigned GET stays valid this long: longer than any one attempt of an activity that streams from it. */
const PRESIGNED_URL_SECONDS = 12 * 60 * 60;

/**
 * Where a program that reads files or URLs (ffmpeg) finds the file at `location`: a data-dir file as its checked
 * path, an object as a presigned GET URL (valid for {@link PRESIGNED_URL_SECONDS}; the object is checked to exist
 * first, so a missing one fails for good here, not as an HTTP error deep inside the program).
 */
export async function readableSource(location: string, what: string): Promise<{ source: string; isUrl: boolean }> {
  if (!isS3Location(location)) return { source: resolveDataPath(location, what), isUrl: false };
  const object = checkedS3Object(location, what);
  try {
    await objectStorage().stat(object);
    return {
      source: await objectStorage().presignGet(object, { expiresInSeconds: PRESIGNED_URL_SECONDS }),
      isUrl: true,
    };
  } catch (err) {
    throw storageFault(err, what);
  }
}

/** The size in bytes of the file at `location`, or undefined when there is none (for fingerprints). */
export async function sizeOf(location: string, what: string): Promise<number | undefined> {
  if (!isS3Location(location)) {
    return stat(resolveDataPath(location, what)).then(
      (info) => info.size,
      () => undefined,
    );
  }
  const object = checkedS3Object(location, what);
  try {
    return (await objectStorage().stat(object)).size;
  } catch (err) {
    if (storageFailureKind(err) === 'no-object') return undefined;
    throw storageFault(err, what);
  }
}

/** Reads a small file at `location` and parses it once per version of it (see file-cache.ts). */
export async function readParsed<T>(
  location: string,
  what: string,
  parse: (file: string) => Promise<T>,
  parseBytes: (data: Buffer) => T,
): Promise<T> {
  if (!isS3Location(location)) return readCached(resolveDataPath(location, what), parse);
  const object = checkedS3Object(location, what);
  try {
    // One HEAD per read: an object replaced (another batch in the same prefix) has another ETag and is read again.
    const stat = await objectStorage().stat(object);
    return await readCachedVersion(
      formatS3Location(object),
      `${stat.size}:${stat.etag ?? ''}:${stat.lastModified?.getTime() ?? ''}`,
      parseBytes,
      async () => {
        const opened = await objectStorage().openRead(object);
        return Buffer.concat(await opened.body.toArray());
      },
    );
  } catch (err) {
    throw storageFault(err, what);
  }
}

class DataDirPlace implements Place {
  readonly local = true;
  readonly location: string;

  constructor(private readonly dir: string) {
    this.location = displayPath(dir);
  }

  private path(name: string): string {
    return path.join(this.dir, name);
  }

  locate(name: string): string {
    return displayPath(this.path(name));
  }

  folder(name: string): Place {
    return new DataDirPlace(this.path(name));
  }

  async read(name: string, what: string): Promise<Buffer | undefined> {
    return readDataFile(this.path(name), what).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async write(name: string, data: string | Uint8Array, what: string): Promise<void> {
    await writeFileAtomic(this.path(name), data, what);
  }

  async upload(name: string, file: string, what: string): Promise<void> {
    await copyFileAtomic(file, this.path(name), what);
  }

  async exists(name: string): Promise<boolean> {
    return stat(confirmInDataDir(this.path(name), 'job state')).then(
      () => true,
      () => false,
    );
  }

  async remove(name: string): Promise<void> {
    await rm(confirmInDataDir(this.path(name), 'job output'), { recursive: true, force: true });
  }

  async files(): Promise<string[]> {
    return (await listDataFiles(this.dir)).map(displayPath);
  }

  log(name: string): PlaceLog {
    const file = this.path(`${name}.log`);
    return {
      append: (key, text) => appendDataFile(file, `${key}\t${text}\n`),
      has: async (key) => {
        const text = await readDataFile(file, 'log', 'utf8').catch(() => '');
        return text.split('\n').some((line) => line.startsWith(`${key}\t`));
      },
      clear: () => this.remove(`${name}.log`),
    };
  }
}

class BucketPlace implements Place {
  readonly local = false;
  readonly location: string;

  /** `prefix` is empty or ends with `/`. */
  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
  ) {
    this.location = `s3://${bucket}/${prefix}`;
  }

  locate(name: string): string {
    return `${this.location}${name}`;
  }

  folder(name: string): Place {
    return new BucketPlace(this.bucket, `${this.prefix}${name.replace(/\/*$/, '/')}`);
  }

  /** The checked object location of `name`: a name that makes no valid key is refused for good. */
  private object(name: string, what: string): S3ObjectLocation {
    return checkedS3Object(this.locate(name), what);
  }

  async read(name: string, what: string): Promise<Buffer | undefined> {
    const object = this.object(name, what);
    try {
      const opened = await objectStorage().openRead(object);
      return Buffer.concat(await opened.body.toArray());
    } catch (err) {
      if (storageFailureKind(err) === 'no-object') return undefined;
      throw storageFault(err, what);
    }
  }

  async write(name: string, data: string | Uint8Array, what: string, signal?: AbortSignal): Promise<void> {
    const object = this.object(name, what);
    try {
      await objectStorage().write(object, Buffer.from(data), { signal });
    } catch (err) {
      throw storageFault(err, what);
    }
  }

  async upload(name: string, file: string, what: string, options: UploadOptions = {}): Promise<void> {
    const object = this.object(name, what);
    try {
      const { size } = await stat(file);
      await objectStorage().write(object, createReadStream(file), {
        contentLength: size,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    } catch (err) {
      throw storageFault(err, what);
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      if (await objectStorage().exists(this.object(name, 'job state'))) return true;
    } catch (err) {
      throw storageFault(err, 'job state');
    }
    const found = this.objectsUnder(`${name}/`);
    const first = await found.next();
    await found.return(undefined);
    return first.done !== true;
  }

  /** Every object of the place (all depths) under `name`, as object locations. */
  private async *objectsUnder(name: string): AsyncGenerator<string> {
    const prefix = checkedS3(`${this.location}${name}`, 'folder');
    const asPrefix = prefix.kind === 'prefix' ? prefix : { ...prefix, kind: 'prefix' as const, prefix: prefix.key };
    try {
      for await (const listed of objectStorage().list(asPrefix)) yield listed.location;
    } catch (err) {
      throw storageFault(err, `the folder ${this.location}${name}`);
    }
  }

  async remove(name: string): Promise<void> {
    // `name` itself, then everything under `name/`.
    const file = this.object(name, 'job output');
    await objectStorage()
      .remove(file)
      .catch((err: unknown) => {
        throw storageFault(err, 'job output');
      });
    for await (const location of this.objectsUnder(`${name}/`)) {
      await objectStorage()
        .remove(location)
        .catch((err: unknown) => {
          throw storageFault(err, 'job output');
        });
    }
  }

  async files(): Promise<string[]> {
    const files: string[] = [];
    for await (const location of this.objectsUnder('')) {
      const name = location.slice(this.location.length);
      // Only the place's own files: not sub-folders (a batch's `.backroom/`), hidden names or folder markers.
      if (name === '' || name.includes('/') || name.startsWith('.')) continue;
      files.push(location);
    }
    return files.sort();
  }

  log(name: string): PlaceLog {
    const folder = this.folder(name) as BucketPlace;
    return {
      append: (key, text) =>
        folder.write(`${key}.${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`, `${key}\t${text}\n`, 'log'),
      has: async (key) => {
        const found = folder.objectsUnder(`${key}.`);
        const first = await found.next();
        await found.return(undefined);
        return first.done !== true;
      },
      clear: () => this.remove(name),
    };
  }
}
