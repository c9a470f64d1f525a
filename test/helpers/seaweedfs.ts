/**
 * A real S3-compatible server for tests: SeaweedFS's `weed server -s3` (the pinned build of `src/devserver`), on free
 * ports, in a temporary folder, with one identity whose keys are made up per server, so every request is a real
 * SigV4-signed one and unsigned requests are refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ensureWeed } from '../../src/devserver/seaweedfs';
import { freePort } from '../../src/ports';
import { createS3Client } from '../../src/storage/s3-client';

/** How long the server may take to answer S3 requests (a cold 230 MB binary on a busy 2-core machine). */
const START_DEADLINE_MS = 60_000;
/** Small volumes: a test writes megabytes, and each bucket's collection grows several volumes at once. */
const VOLUME_SIZE_LIMIT_MB = 64;

export interface SeaweedS3 {
  /** The S3 endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The standard AWS variables that point a client at this server with its keys. */
  env: NodeJS.ProcessEnv;
  /** A client with the server's keys (destroyed by `stop`). */
  client: S3Client;
  /** Every key under `prefix` in `bucket` (all pages), sorted. */
  keys(bucket: string, prefix: string): Promise<string[]>;
  /** The bytes of an object. */
  read(bucket: string, key: string): Promise<Buffer>;
  /** Creates a bucket, retrying while the server is still placing its first volumes. */
  createBucket(name: string): Promise<void>;
  /** The server's output so far (its log), for failure messages. */
  output(): string;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts SeaweedFS (master, volume, filer and S3 gateway in one process) and waits until a signed ListBuckets works;
 * then creates `buckets` (names of 3 or more characters). Builds `weed` first if it is missing.
 */
export async function startSeaweedS3(options: { buckets?: string[] } = {}): Promise<SeaweedS3> {
  const weed = await ensureWeed();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backroom-seaweedfs-'));
  const dataDir = path.join(dir, 'data');
  const logDir = path.join(dir, 'logs');
  mkdirSync(dataDir);
  mkdirSync(logDir);
  const accessKeyId = `BR${randomBytes(9).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64url');
  // The S3 gateway's static identities: one admin with this server's keys, and no anonymous access.
  const s3Config = path.join(dir, 's3.json');
  writeFileSync(
    s3Config,
    JSON.stringify({
      identities: [
        {
          name: 'backroom-test',
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    }),
  );
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await Promise.all(
    Array.from({ length: 8 }, () => freePort()),
  );
  const args = [
    `-logdir=${logDir}`,
    'server',
    `-dir=${dataDir}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    `-master.volumeSizeLimitMB=${VOLUME_SIZE_LIMIT_MB}`,
    // No usage reports from a test run to telemetry.seaweedfs.com.
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.max=100',
    // The default waits 10 s between "stop heartbeats" and exiting: nothing to drain in a test.
    '-volume.preStopSeconds=0',
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${path.join(dir, 'filer.sock')}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${path.join(dir, 's3.sock')}`,
    `-s3.config=${s3Config}`,
    // Extra listeners on fixed default ports (Iceberg and Lance catalogs) would collide between servers: off.
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
  ];
  const grpcSockets = Object.entries({ master: masterGrpc, volume: volumeGrpc, filer: filerGrpc, s3: s3Grpc });
  const child = spawn(weed, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log += chunk.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A test process that dies without calling stop() must not leave a server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const endpoint = `http://127.0.0.1:${s3}`;
  const env: NodeJS.ProcessEnv = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
  const client = createS3Client(env);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client.destroy();
    // Killed outright: its folder is removed next, so there is nothing to flush, and weed 4.x waits out SIGTERM for
    // about 10 s per server (measured), which every object-storage test file paid at its end.
    child.kill('SIGKILL');
    await waitForExit(child, 5_000);
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    // weed puts its gRPC sockets in /tmp whatever the flags say, and leaves the master's behind.
    for (const [name, port] of grpcSockets) rmSync(`/tmp/seaweedfs-${name}-grpc-${port}.sock`, { force: true });
  };

  const deadline = Date.now() + START_DEADLINE_MS;
  let lastError: unknown;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`SeaweedFS exited while starting (code ${child.exitCode}, ${child.signalCode}):\n${log}`);
    }
    try {
      await client.send(new ListBucketsCommand({}));
      break;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `SeaweedFS's S3 gateway did not answer at ${endpoint} within ${START_DEADLINE_MS / 1000} s ` +
          `(last error: ${String(lastError)}):\n${log.slice(-5000)}`,
      );
    }
    await sleep(250);
  }

  const createBucket = async (name: string) => {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
        return;
      } catch (err) {
        const errName = (err as Error).name;
        if (errName === 'BucketAlreadyOwnedByYou' || errName === 'BucketAlreadyExists') return;
        if (Date.now() > until) throw new Error(`Could not create bucket "${name}": ${String(err)}`, { cause: err });
      }
      await sleep(250);
    }
  };
  try {
    for (const bucket of options.buckets ?? []) await createBucket(bucket);
  } catch (err) {
    await stop();
    throw err;
  }

  const keys = async (bucket: string, prefix: string) => {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const item of page.Contents ?? []) found.push(item.Key ?? '');
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort();
  };
  const read = async (bucket: string, key: string) => {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from((await got.Body?.transformToByteArray()) ?? []);
  };
  return { endpoint, accessKeyId, secretAccessKey, env, client, keys, read, createBucket, output: () => log, stop };
}
