/**
 * Reading and writing objects in S3 (or an S3-compatible server) by `s3://` location, for activities. Bytes always
 * stream: a read hands back the response stream, a write goes up in parts (lib-storage's Upload), so no object is ever
 * held in memory whole. Every location is checked against the bucket allow-list before any request is made. Failures
 * are plain Errors whose message names the location and the likely fix; the SDK's error is their `cause`.
 */
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Client, customEndpoint } from './s3-client';
import {
  allowedBuckets,
  assertBucketAllowed,
  formatS3Location,
  parseS3Object,
  parseS3Prefix,
  type S3ObjectLocation,
  type S3PrefixLocation,
} from './s3-location';

/** What {@link ObjectStorage.stat} tells about an object. */
export interface ObjectStat {
  /** Size in bytes. */
  size: number;
  /** The ETag without its quotes (a multipart upload's ends with `-<parts>`; it is not an MD5 of the bytes then). */
  etag: string | undefined;
  lastModified: Date | undefined;
  contentType: string | undefined;
}

/** One object found by {@link ObjectStorage.list}. */
export interface ListedObject {
  /** Its `s3://bucket/key` location. */
  location: string;
  /** The key as stored, unchecked: parse `location` before using it to name anything else (a file, an output). */
  key: string;
  size: number;
  etag: string | undefined;
  lastModified: Date | undefined;
}

/** An object opened for reading: its bytes as a stream, and what the response said about it. */
export interface ObjectRead {
  /** The object's bytes (from `start` on). Read it to the end or destroy it: an abandoned stream holds a socket. */
  body: Readable;
  /** Bytes in `body`. */
  size: number | undefined;
  etag: string | undefined;
  contentType: string | undefined;
}

export interface ReadOptions {
  /** First byte to read (for resuming a read after a retry); 0 by default. */
  start?: number;
  signal?: AbortSignal;
}

export interface WriteOptions {
  contentType?: string;
  /** The body's size in bytes when known: it sizes the parts and is checked against what was sent. */
  contentLength?: number;
  /**
   * Stops the upload: the body is destroyed, parts already sent are discarded (AbortMultipartUpload) and the write
   * rejects with no object created. An abort that arrives after the body was read to its end lets the upload finish.
   */
  signal?: AbortSignal;
  /** Bytes per part; 8 MiB by default, more when `contentLength` would need more than S3's 10,000 parts. */
  partSize?: number;
  /** Parts in flight at once (memory held is about partSize × queueSize); 2 by default. */
  queueSize?: number;
  /** Called with the bytes uploaded so far, for heartbeats. */
  onProgress?: (bytesUploaded: number) => void;
}

export interface WriteResult {
  /** The `s3://bucket/key` written. */
  location: string;
  etag: string | undefined;
}

export interface ListOptions {
  /** Objects asked for per request (S3 caps it at 1,000, the default). */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Options of {@link ObjectStorage}'s constructor. */
export interface ObjectStorageOptions {
  client: S3Client;
  /** Buckets that may be used; anything else is refused before a request is made. */
  allowedBuckets: ReadonlySet<string>;
  /** Shown in error messages (where the store is); the AWS default when omitted. */
  endpointLabel?: string;
}

const MIB = 1024 * 1024;
/** S3's minimum part size (all parts but the last). */
const MIN_PART_SIZE = 5 * MIB;
const DEFAULT_PART_SIZE = 8 * MIB;
const MAX_PARTS = 10_000;
/** S3's longest presigned URL lifetime (SigV4): 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1');
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

/**
 * Object storage by `s3://` location: streaming reads and multipart writes, listing, stat and presigned URLs, within
 * an allow-list of buckets. One instance per process is enough (it holds one S3 client and its connection pool).
 */
export class ObjectStorage {
  readonly client: S3Client;
  readonly allowedBuckets: ReadonlySet<string>;
  private readonly endpointLabel: string;

  constructor(options: ObjectStorageOptions) {
    this.client = options.client;
    this.allowedBuckets = options.allowedBuckets;
    this.endpointLabel = options.endpointLabel ?? 'AWS S3';
  }

  /**
   * Object storage as the environment configures it: the standard AWS variables and profile (see `s3-client.ts`)
   * and the {@link allowedBuckets | BACKROOM_S3_BUCKETS} allow-list.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ObjectStorage {
    return new ObjectStorage({
      client: createS3Client(env),
      allowedBuckets: allowedBuckets(env),
      endpointLabel: customEndpoint(env),
    });
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy();
  }

  private object(location: string | S3ObjectLocation): S3ObjectLocation {
    const parsed = typeof location === 'string' ? parseS3Object(location) : location;
    if (parsed.kind !== 'object') throw new Error(`Not an object location: ${formatS3Location(parsed)}`);
    assertBucketAllowed(parsed, this.allowedBuckets);
    return parsed;
  }

  private prefix(location: string | S3PrefixLocation): S3PrefixLocation {
    const parsed = typeof location === 'string' ? parseS3Prefix(location) : location;
    if (parsed.kind !== 'prefix') throw new Error(`Not a prefix location: ${formatS3Location(parsed)}`);
    assertBucketAllowed(parsed, this.allowedBuckets);
    return parsed;
  }

  /** Size, ETag, date and type of an object; an Error saying so if there is none. */
  async stat(location: string | S3ObjectLocation, options: { signal?: AbortSignal } = {}): Promise<ObjectStat> {
    const where = this.object(location);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: where.bucket, Key: where.key }), {
        abortSignal: options.signal,
      });
      return {
        size: head.ContentLength ?? 0,
        etag: unquote(head.ETag),
        lastModified: head.LastModified,
        contentType: head.ContentType,
      };
    } catch (err) {
      throw this.explain('stat', formatS3Location(where), err);
    }
  }

  /** True if the object exists (other failures, such as access denied, still throw). */
  async exists(location: string | S3ObjectLocation, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      await this.stat(location, options);
      return true;
    } catch (err) {
      if (httpStatus((err as Error).cause) === 404 && errorName((err as Error).cause) !== 'NoSuchBucket') return false;
      throw err;
    }
  }

  /** Opens an object for streaming; the bytes are read as the caller consumes `body`. */
  async openRead(location: string | S3ObjectLocation, options: ReadOptions = {}): Promise<ObjectRead> {
    const where = this.object(location);
    const start = options.start ?? 0;
    if (!Number.isSafeInteger(start) || start < 0)
      throw new Error(`A read's start must be a byte offset ≥ 0: ${start}`);
    try {
      const got = await this.client.send(
        new GetObjectCommand({
          Bucket: where.bucket,
          Key: where.key,
          Range: start > 0 ? `bytes=${start}-` : undefined,
        }),
        { abortSignal: options.signal },
      );
      if (!(got.Body instanceof Readable)) throw new Error('the response has no readable body');
      return {
        body: got.Body,
        size: got.ContentLength,
        etag: unquote(got.ETag),
        contentType: got.ContentType,
      };
    } catch (err) {
      throw this.explain('read', formatS3Location(where), err);
    }
  }

  /**
   * Streams `body` into an object with a multipart upload (one PUT when it fits in a part). The object appears only
   * once the whole body is stored; a failed or aborted write discards the parts sent and leaves no object (an object
   * already at that key stays as it was). The body is destroyed if the write does not complete.
   */
  async write(
    location: string | S3ObjectLocation,
    body: Readable | Uint8Array | string,
    options: WriteOptions = {},
  ): Promise<WriteResult> {
    const where = this.object(location);
    const text = formatS3Location(where);
    const { signal } = options;
    const isStream = body instanceof Readable;
    const contentLength = options.contentLength ?? (isStream ? undefined : Buffer.byteLength(body));
    // A stream for every body, so an abort always takes the same road: destroying it fails the upload from inside.
    const source = isStream ? body : Readable.from([typeof body === 'string' ? Buffer.from(body) : body]);
    const partSize = Math.max(
      options.partSize ?? DEFAULT_PART_SIZE,
      MIN_PART_SIZE,
      contentLength === undefined ? 0 : Math.ceil(contentLength / MAX_PARTS),
    );
    if (signal?.aborted) {
      source.destroy();
      throw new Error(`The write to ${text} was aborted before it started; nothing was written.`, {
        cause: abortError(signal),
      });
    }
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: where.bucket,
        Key: where.key,
        Body: source,
        ContentType: options.contentType,
        ContentLength: contentLength,
      },
      partSize,
      queueSize: options.queueSize ?? 2,
      leavePartsOnError: false,
    });
    const { onProgress } = options;
    if (onProgress) upload.on('httpUploadProgress', (progress) => onProgress(progress.loaded ?? 0));
    // Upload.abort() would make done() reject at once while parts are still in flight and before the multipart
    // upload is aborted; a failing body makes done() wait for both, so "rejected" really means "nothing left".
    const onAbort = () => source.destroy(abortError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const done = await upload.done();
      return { location: text, etag: unquote(done.ETag) };
    } catch (err) {
      if (signal?.aborted) {
        throw new Error(`The write to ${text} was aborted; nothing was written.`, { cause: err });
      }
      throw this.explain('write', text, err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!source.readableEnded) source.destroy();
    }
  }

  /** Every object under a prefix (all depths), in key order, fetched a page at a time as the caller iterates. */
  async *list(location: string | S3PrefixLocation, options: ListOptions = {}): AsyncGenerator<ListedObject> {
    const where = this.prefix(location);
    const pageSize = options.pageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new Error(`A list's page size is 1 to 1,000 objects: ${pageSize}`);
    }
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: where.bucket,
            Prefix: where.prefix || undefined,
            MaxKeys: pageSize,
            ContinuationToken: token,
          }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw this.explain('list', formatS3Location(where), err);
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield {
          location: `s3://${where.bucket}/${item.Key}`,
          key: item.Key,
          size: item.Size ?? 0,
          etag: unquote(item.ETag),
          lastModified: item.LastModified,
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes an object; deleting one that does not exist is not an error (as in S3 itself). */
  async remove(location: string | S3ObjectLocation, options: { signal?: AbortSignal } = {}): Promise<void> {
    const where = this.object(location);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: where.bucket, Key: where.key }), {
        abortSignal: options.signal,
      });
    } catch (err) {
      throw this.explain('delete', formatS3Location(where), err);
    }
  }

  /**
   * A URL that GETs the object without credentials until it expires (for tools such as ffmpeg that read HTTP but not
   * S3). Anyone holding the URL can read the object: keep it out of logs and workflow histories.
   */
  async presignGet(location: string | S3ObjectLocation, options: { expiresInSeconds?: number } = {}): Promise<string> {
    const where = this.object(location);
    const expiresIn = options.expiresInSeconds ?? 3600;
    if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_PRESIGN_SECONDS) {
      throw new Error(`A presigned URL lives 1 s to 7 days (${MAX_PRESIGN_SECONDS} s): ${expiresIn}`);
    }
    try {
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: where.bucket, Key: where.key }), {
        expiresIn,
      });
    } catch (err) {
      throw this.explain('presign', formatS3Location(where), err);
    }
  }

  /** A plain Error for a failed request: what failed, where, and what to check; the SDK's error as `cause`. */
  private explain(operation: string, location: string, err: unknown): Error {
    const name = errorName(err);
    const status = httpStatus(err);
    const detail = err instanceof Error ? err.message : String(err);
    const bucket = location.slice('s3://'.length).split('/')[0];
    let message: string;
    if (name === 'AbortError') {
      message = `The ${operation} of ${location} was aborted.`;
    } else if (name === 'NoSuchBucket') {
      message = `Cannot ${operation} ${location}: bucket "${bucket}" does not exist at ${this.endpointLabel}.`;
    } else if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      message = `Cannot ${operation} ${location}: there is no such object.`;
    } else if (name === 'CredentialsProviderError') {
      message =
        `Cannot ${operation} ${location}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and ` +
        `AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (${detail}).`;
    } else if (
      status === 403 ||
      ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(name ?? '')
    ) {
      message =
        `Cannot ${operation} ${location}: access denied by ${this.endpointLabel} (${name ?? status}). Check the ` +
        `credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and their permissions on bucket "${bucket}".`;
    } else if (status === undefined && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET/.test(errorCode(err))) {
      message = `Cannot ${operation} ${location}: ${this.endpointLabel} cannot be reached (${errorCode(err)}).`;
    } else {
      message = `Cannot ${operation} ${location}: ${name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${detail}`;
    }
    return new Error(message, { cause: err });
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  const metadata = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return metadata?.httpStatusCode;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const causeCode = ((err as { cause?: unknown } | undefined)?.cause as { code?: unknown } | undefined)?.code;
  return [code, causeCode].filter((c) => typeof c === 'string').join(' ');
}

/**
 * What a failed request of {@link ObjectStorage} ran into, from the SDK error it carries as `cause`: no such object,
 * no such bucket, access denied, or undefined for anything else (a network fault, a server error: worth a retry).
 */
export function storageFailureKind(err: unknown): 'no-object' | 'no-bucket' | 'denied' | undefined {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  const name = errorName(cause);
  const status = httpStatus(cause);
  if (name === 'NoSuchBucket') return 'no-bucket';
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return 'no-object';
  if (
    status === 403 ||
    ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(name ?? '')
  )
    return 'denied';
  return undefined;
}
