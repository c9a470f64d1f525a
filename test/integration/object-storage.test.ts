/**
 * The storage module against a real S3-compatible server (SeaweedFS, built from Go modules if missing), with real
 * SigV4-signed requests: a 12 MB multipart stream up and back, ranged reads, paginated listing, stat, a presigned GET
 * fetched without credentials, aborted and failed uploads that leave nothing behind, keys from a profile, and the
 * bucket allow-list. A cold build of SeaweedFS takes minutes, hence the long timeout.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ObjectStorage } from '../../src/storage/object-storage';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';

const MIB = 1024 * 1024;

/** `size` pseudo-random bytes as a stream of 64 KiB chunks, made as they are read; `sha256()` once it has ended. */
function randomStream(size: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = randomBytes(Math.min(64 * 1024, size - sent));
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { hex: hash.digest('hex'), bytes };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('object storage against a real SeaweedFS', { timeout: 30 * 60_000 }, () => {
  let server: SeaweedS3;
  let storage: ObjectStorage;
  /** Names of the S3 commands `storage` sent, in order. */
  const sent: string[] = [];

  before(async () => {
    server = await startSeaweedS3({ buckets: ['media-in', 'not-listed'] });
    storage = ObjectStorage.fromEnv({ ...server.env, BACKROOM_S3_BUCKETS: 'media-in,media-gone' });
    storage.client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
  });

  after(async () => {
    storage?.close();
    await server?.stop();
  });

  async function pendingUploads(bucket: string, key: string): Promise<number> {
    const out = await server.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    return (out.Uploads ?? []).filter((upload) => upload.Key === key).length;
  }

  async function headStatus(bucket: string, key: string): Promise<number> {
    try {
      await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return 200;
    } catch (err) {
      return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
    }
  }

  it('streams 12 MB up as a multipart upload and back, byte for byte', async () => {
    const size = 12 * MIB;
    const { stream, sha256 } = randomStream(size);
    const progress: number[] = [];
    sent.length = 0;
    const written = await storage.write('s3://media-in/videos/big.bin', stream, {
      partSize: 5 * MIB,
      contentType: 'application/octet-stream',
      onProgress: (bytes) => progress.push(bytes),
    });
    assert.equal(written.location, 's3://media-in/videos/big.bin');
    assert.deepEqual(
      sent.filter((name) => name !== 'UploadPartCommand'),
      ['CreateMultipartUploadCommand', 'CompleteMultipartUploadCommand'],
    );
    assert.equal(sent.filter((name) => name === 'UploadPartCommand').length, 3, '12 MiB in 5 MiB parts');
    assert.equal(progress.at(-1), size);

    const read = await storage.openRead('s3://media-in/videos/big.bin');
    assert.equal(read.size, size);
    const back = await sha256Of(read.body);
    assert.equal(back.bytes, size);
    assert.equal(back.hex, sha256());

    // A read resumed from an offset (what a retried activity does) gets the rest only.
    const tail = await storage.openRead('s3://media-in/videos/big.bin', { start: size - 1000 });
    assert.equal(tail.size, 1000);
    assert.equal((await sha256Of(tail.body)).bytes, 1000);
  });

  it('writes a small body in one PUT, and stats it', async () => {
    sent.length = 0;
    const written = await storage.write('s3://media-in/notes/hello.txt', 'hello, object storage\n', {
      contentType: 'text/plain',
    });
    assert.deepEqual(sent, ['PutObjectCommand']);
    const stat = await storage.stat('s3://media-in/notes/hello.txt');
    assert.equal(stat.size, 22);
    assert.equal(stat.contentType, 'text/plain');
    assert.equal(stat.etag, createHash('md5').update('hello, object storage\n').digest('hex'));
    assert.equal(stat.etag, written.etag);
    assert.ok(stat.lastModified instanceof Date);
    assert.equal(await storage.exists('s3://media-in/notes/hello.txt'), true);
    // Empty objects (markers) work from a buffer and from a stream that ends at once.
    await storage.write('s3://media-in/notes/empty-buffer', Buffer.alloc(0));
    await storage.write('s3://media-in/notes/empty-stream', Readable.from([]));
    assert.equal((await storage.stat('s3://media-in/notes/empty-buffer')).size, 0);
    assert.equal((await storage.stat('s3://media-in/notes/empty-stream')).size, 0);
    assert.equal(await storage.exists('s3://media-in/notes/nothing.txt'), false);
    await assert.rejects(
      storage.stat('s3://media-in/notes/nothing.txt'),
      /s3:\/\/media-in\/notes\/nothing\.txt: there is no such object/,
    );
    await assert.rejects(storage.openRead('s3://media-in/notes/nothing.txt'), /there is no such object/);
  });

  it('lists a prefix across several pages, and nothing outside it', async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `listing/item-${i}.txt`);
    for (const key of keys) await storage.write(`s3://media-in/${key}`, key);
    await storage.write('s3://media-in/listing-other/outside.txt', 'not under listing/');
    await storage.write('s3://media-in/listing/deeper/item.txt', 'deeper');
    sent.length = 0;
    const listed = await collect(storage.list('s3://media-in/listing/', { pageSize: 3 }));
    assert.deepEqual(
      listed.map((item) => item.key),
      [...keys.slice(0, 1), 'listing/deeper/item.txt', ...keys.slice(1)].sort(),
    );
    assert.equal(sent.filter((name) => name === 'ListObjectsV2Command').length, 3, '8 objects, 3 per page');
    const first = listed.find((item) => item.key === 'listing/item-0.txt');
    assert.equal(first?.location, 's3://media-in/listing/item-0.txt');
    assert.equal(first?.size, 'listing/item-0.txt'.length);
    // A prefix with no objects lists nothing; a bucket on the list that does not exist says so.
    assert.deepEqual(await collect(storage.list('s3://media-in/empty/')), []);
    await assert.rejects(collect(storage.list('s3://media-gone/')), /bucket "media-gone" does not exist/);
  });

  it('hands out a presigned GET that works without credentials, where an unsigned request is refused', async () => {
    const data = randomBytes(300_000);
    await storage.write('s3://media-in/clips/for ffmpeg.mp4', data, { contentType: 'video/mp4' });
    const url = await storage.presignGet('s3://media-in/clips/for ffmpeg.mp4', { expiresInSeconds: 300 });
    assert.ok(url.startsWith(`${server.endpoint}/media-in/clips/for%20ffmpeg.mp4?`), url);
    assert.match(url, /X-Amz-Signature=/);
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(data));
    // The same object without the signature, and with a tampered one: refused, so the server really checks.
    const unsigned = await fetch(url.split('?')[0]!);
    assert.equal(unsigned.status, 403);
    await unsigned.arrayBuffer();
    const tampered = await fetch(
      url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`),
    );
    assert.equal(tampered.status, 403);
    await tampered.arrayBuffer();
    await assert.rejects(storage.presignGet('s3://media-in/a', { expiresInSeconds: 8 * 24 * 3600 }), /7 days/);
  });

  it('leaves no object when an upload is aborted midway, and keeps the one it would have replaced', async () => {
    const key = 'aborted/partial.bin';
    await storage.write(`s3://media-in/${key}`, 'the old version');
    const controller = new AbortController();
    // A body that sends 6 MiB (one part goes up) and then waits for more that never comes.
    const body = new Readable({ read() {} });
    body.push(randomBytes(6 * MIB));
    let partsUp = 0;
    sent.length = 0;
    const writing = storage.write(`s3://media-in/${key}`, body, {
      partSize: 5 * MIB,
      signal: controller.signal,
      onProgress: () => (partsUp += 1),
    });
    const deadline = Date.now() + 30_000;
    while (!sent.includes('UploadPartCommand') || partsUp === 0) {
      assert.ok(Date.now() < deadline, `no part went up: ${sent.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Midway: a multipart upload is open, and the old object is still what readers see.
    assert.equal(await pendingUploads('media-in', key), 1);
    assert.equal((await storage.stat(`s3://media-in/${key}`)).size, 'the old version'.length);

    controller.abort();
    await assert.rejects(
      writing,
      /The write to s3:\/\/media-in\/aborted\/partial\.bin was aborted; nothing was written/,
    );
    assert.ok(body.destroyed);
    assert.ok(sent.includes('AbortMultipartUploadCommand'), sent.join(', '));
    assert.ok(!sent.includes('CompleteMultipartUploadCommand'));
    assert.equal(await pendingUploads('media-in', key), 0);
    const kept = await storage.openRead(`s3://media-in/${key}`);
    assert.equal(Buffer.concat(await collect(kept.body as AsyncIterable<Buffer>)).toString(), 'the old version');

    // A signal that is already aborted sends nothing at all.
    sent.length = 0;
    await assert.rejects(
      storage.write('s3://media-in/aborted/never.bin', 'x', { signal: AbortSignal.abort() }),
      /aborted before it started/,
    );
    assert.deepEqual(sent, []);
  });

  it('leaves no object when the body fails midway', async () => {
    const key = 'failed/broken-source.bin';
    let pushed = 0;
    const body = new Readable({
      read() {
        if (pushed >= 7 * MIB) return void this.destroy(new Error('disk read error (simulated)'));
        pushed += MIB;
        this.push(randomBytes(MIB));
      },
    });
    await assert.rejects(storage.write(`s3://media-in/${key}`, body, { partSize: 5 * MIB }), (err: Error) => {
      assert.match(err.message, /Cannot write s3:\/\/media-in\/failed\/broken-source\.bin/);
      assert.match(err.message, /disk read error \(simulated\)/);
      return true;
    });
    assert.equal(await headStatus('media-in', key), 404);
    assert.equal(await pendingUploads('media-in', key), 0);
    assert.deepEqual(await collect(storage.list('s3://media-in/failed/')), []);
  });

  it('refuses a bucket that is not on the allow-list, though the server has it', async () => {
    // The server holds the bucket and the keys may use it; the refusal is Backroom's own, before any request.
    await server.client.send(new PutObjectCommand({ Bucket: 'not-listed', Key: 'x.txt', Body: 'x' }));
    sent.length = 0;
    for (const attempt of [
      storage.stat('s3://not-listed/x.txt'),
      storage.openRead('s3://not-listed/x.txt'),
      storage.write('s3://not-listed/y.txt', 'y'),
      storage.presignGet('s3://not-listed/x.txt'),
      collect(storage.list('s3://not-listed/')),
    ]) {
      await assert.rejects(attempt, /bucket "not-listed" is not on the allow-list\. Add it to BACKROOM_S3_BUCKETS/);
    }
    assert.deepEqual(sent, []);
    assert.equal(await headStatus('not-listed', 'y.txt'), 404);
  });

  it('takes keys from a named profile in the AWS credentials file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backroom-aws-profile-'));
    const credentials = path.join(dir, 'credentials');
    writeFileSync(
      credentials,
      `[backroom-test]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`,
    );
    // The SDK reads where its files are from the process environment itself; restored below.
    const saved = { file: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
    process.env.AWS_SHARED_CREDENTIALS_FILE = credentials;
    process.env.AWS_CONFIG_FILE = path.join(dir, 'config-none');
    const viaProfile = ObjectStorage.fromEnv({
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_PROFILE: 'backroom-test',
      BACKROOM_S3_BUCKETS: 'media-in',
    });
    try {
      assert.equal((await viaProfile.stat('s3://media-in/notes/hello.txt')).size, 22);
    } finally {
      viaProfile.close();
      for (const [name, value] of [
        ['AWS_SHARED_CREDENTIALS_FILE', saved.file],
        ['AWS_CONFIG_FILE', saved.config],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says access is denied when the keys are wrong', async () => {
    const wrong = ObjectStorage.fromEnv({
      ...server.env,
      AWS_SECRET_ACCESS_KEY: 'not-the-secret',
      BACKROOM_S3_BUCKETS: 'media-in',
    });
    try {
      await assert.rejects(wrong.stat('s3://media-in/notes/hello.txt'), /access denied by http:\/\/127\.0\.0\.1:\d+/);
      await assert.rejects(collect(wrong.list('s3://media-in/')), /access denied .*Check the credentials/);
    } finally {
      wrong.close();
    }
  });
});
