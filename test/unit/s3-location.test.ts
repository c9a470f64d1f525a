/**
 * `s3://` locations: what parses (objects, prefixes, whole buckets), what is refused and why (bad buckets, hostile
 * keys), the BACKROOM_S3_BUCKETS allow-list, and the client configuration the standard AWS variables produce.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectStorage } from '../../src/storage/object-storage';
import { s3ClientConfig } from '../../src/storage/s3-client';
import {
  allowedBuckets,
  assertBucketAllowed,
  bucketNameProblem,
  formatS3Location,
  parseS3Location,
  parseS3Object,
  parseS3Prefix,
  resolveS3Location,
} from '../../src/storage/s3-location';

describe('parsing s3:// locations', () => {
  it('parses objects, prefixes and whole buckets, and formats them back', () => {
    assert.deepEqual(parseS3Location('s3://media-in/clips/2026/a.mp4'), {
      kind: 'object',
      bucket: 'media-in',
      key: 'clips/2026/a.mp4',
    });
    assert.deepEqual(parseS3Location('s3://media-in/clips/'), { kind: 'prefix', bucket: 'media-in', prefix: 'clips/' });
    assert.deepEqual(parseS3Location('s3://media-in/'), { kind: 'prefix', bucket: 'media-in', prefix: '' });
    assert.deepEqual(parseS3Location('s3://media-in'), { kind: 'prefix', bucket: 'media-in', prefix: '' });
    for (const text of ['s3://media-in/clips/2026/a.mp4', 's3://media-in/clips/', 's3://media-in/']) {
      assert.equal(formatS3Location(parseS3Location(text)), text);
    }
  });

  it('takes keys literally: spaces, unicode, percent signs, ? and # stay as they are', () => {
    const key = 'scans/Übersicht 100%?v=1#x.tif';
    assert.deepEqual(parseS3Object(`s3://scans.example/${key}`), { kind: 'object', bucket: 'scans.example', key });
    assert.equal(parseS3Object('s3://abc/a%2F..%2Fb').key, 'a%2F..%2Fb');
  });

  it('refuses what is not an s3:// location, and an empty or malformed bucket', () => {
    const refused: Array<[string, RegExp]> = [
      ['/data/a.mp4', /must start with "s3:\/\/"/],
      ['S3://bucket/a', /must start with "s3:\/\/"/],
      ['https://bucket.s3.amazonaws.com/a', /must start with "s3:\/\/"/],
      ['s3://', /names no bucket/],
      ['s3:///key', /names no bucket/],
      ['s3://ab/key', /3 to 63 characters/],
      [`s3://${'a'.repeat(64)}/key`, /3 to 63 characters/],
      ['s3://My-Bucket/key', /lower-case/],
      ['s3://bucket_name/key', /lower-case/],
      ['s3://-bucket/key', /begin and end/],
      ['s3://bucket-/key', /begin and end/],
      ['s3://my..bucket/key', /"\.\."/],
      ['s3://192.168.1.1/key', /IP address/],
      ['s3://xn--bucket/key', /reserves/],
      ['s3://user:pass@bucket/key', /lower-case/],
      ['s3://bucket:9000/key', /lower-case/],
    ];
    for (const [text, why] of refused) {
      assert.throws(() => parseS3Location(text), why, text);
      assert.throws(
        () => parseS3Location(text),
        (err: Error) => err.message.includes(`"${text}"`),
        text,
      );
    }
  });

  it('refuses hostile keys: dot segments, empty segments, backslashes, control characters, oversized keys', () => {
    const refused: Array<[string, RegExp]> = [
      ['s3://bucket/..', /"\.\." segment/],
      ['s3://bucket/../other-bucket/x', /"\.\." segment/],
      ['s3://bucket/in/../../out', /"\.\." segment/],
      ['s3://bucket/in/..', /"\.\." segment/],
      ['s3://bucket/in/../', /"\.\." segment/],
      ['s3://bucket/./a', /"\." segment/],
      ['s3://bucket/a/.', /"\." segment/],
      ['s3://bucket//etc/passwd', /empty segment/],
      ['s3://bucket/a//b', /empty segment/],
      ['s3://bucket/a//', /empty segment/],
      ['s3://bucket/a\\..\\b', /backslash/],
      ['s3://bucket/a\u0000b', /control character/],
      ['s3://bucket/a\nb', /control character/],
      ['s3://bucket/a\rb', /control character/],
      ['s3://bucket/a\u007fb', /control character/],
      [`s3://bucket/${'é'.repeat(513)}`, /longer than 1024 bytes/],
    ];
    for (const [text, why] of refused) assert.throws(() => parseS3Location(text), why, JSON.stringify(text));
    // Dots inside a name are not segments.
    assert.equal(parseS3Object('s3://bucket/a/..b/c..').key, 'a/..b/c..');
    assert.equal(parseS3Object(`s3://bucket/${'é'.repeat(512)}`).key.length, 512);
  });

  it('tells objects and prefixes apart when one of them is required', () => {
    assert.throws(() => parseS3Object('s3://bucket/dir/'), /names a prefix/);
    assert.throws(() => parseS3Object('s3://bucket'), /names a prefix/);
    assert.throws(() => parseS3Prefix('s3://bucket/dir'), /did you mean "s3:\/\/bucket\/dir\/"/);
    assert.equal(parseS3Prefix('s3://bucket/dir/').prefix, 'dir/');
  });

  it('checks bucket names on their own', () => {
    assert.equal(bucketNameProblem('my-bucket.v2'), undefined);
    assert.match(bucketNameProblem('') ?? '', /empty/);
  });
});

describe('the bucket allow-list (BACKROOM_S3_BUCKETS)', () => {
  it('reads comma-separated names, ignoring blanks', () => {
    assert.deepEqual(
      [...allowedBuckets({ BACKROOM_S3_BUCKETS: ' media-in, media-out ,,' })],
      ['media-in', 'media-out'],
    );
    assert.equal(allowedBuckets({}).size, 0);
    assert.equal(allowedBuckets({ BACKROOM_S3_BUCKETS: '' }).size, 0);
  });

  it('refuses a malformed name in the variable instead of skipping it', () => {
    assert.throws(
      () => allowedBuckets({ BACKROOM_S3_BUCKETS: 'media-in,Media_Out' }),
      /BACKROOM_S3_BUCKETS lists "Media_Out"/,
    );
  });

  it('refuses a location outside the list, saying which variable to set', () => {
    const allowed = allowedBuckets({ BACKROOM_S3_BUCKETS: 'media-in,media-out' });
    assert.deepEqual(resolveS3Location('s3://media-in/a.mp4', allowed), {
      kind: 'object',
      bucket: 'media-in',
      key: 'a.mp4',
    });
    assert.throws(
      () => resolveS3Location('s3://secrets/a.mp4', allowed),
      (err: Error) =>
        /bucket "secrets" is not on the allow-list/.test(err.message) &&
        /Add it to BACKROOM_S3_BUCKETS/.test(err.message) &&
        /it allows media-in, media-out/.test(err.message),
    );
    // Unset: everything is refused, and the message says so.
    assert.throws(() => assertBucketAllowed(parseS3Location('s3://media-in/'), new Set()), /empty or unset/);
    // No prefix matching: a longer name is another bucket.
    assert.throws(() => resolveS3Location('s3://media-in-2/a', allowed), /not on the allow-list/);
  });

  it('is checked by ObjectStorage before any request is made', async () => {
    // An endpoint nobody listens on: a request would fail differently (cannot be reached).
    const storage = ObjectStorage.fromEnv({
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      BACKROOM_S3_BUCKETS: 'media-in',
    });
    try {
      await assert.rejects(storage.stat('s3://other/a'), /Add it to BACKROOM_S3_BUCKETS/);
      await assert.rejects(storage.write('s3://other/a', 'x'), /not on the allow-list/);
      await assert.rejects(storage.openRead('s3://media-in/../other/a'), /"\.\." segment/);
      await assert.rejects(async () => {
        for await (const item of storage.list('s3://other/')) assert.fail(`listed ${item.key}`);
      }, /not on the allow-list/);
      await assert.rejects(storage.presignGet('s3://other/a'), /not on the allow-list/);
    } finally {
      storage.close();
    }
  });
});

describe('client configuration from the standard AWS variables', () => {
  it('uses path-style addressing and a default region with a custom endpoint', () => {
    const config = s3ClientConfig({ AWS_ENDPOINT_URL: 'http://127.0.0.1:8333' });
    assert.equal(config.endpoint, 'http://127.0.0.1:8333');
    assert.equal(config.forcePathStyle, true);
    assert.equal(config.region, 'us-east-1');
    // The S3-specific variable wins over the general one.
    assert.equal(
      s3ClientConfig({ AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://b:2' }).endpoint,
      'http://b:2',
    );
    assert.equal(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://a:1', AWS_REGION: 'eu-west-1' }).region, 'eu-west-1');
  });

  it('leaves AWS itself to the SDK: virtual-hosted addressing, region and credentials from its own chain', () => {
    const config = s3ClientConfig({});
    assert.equal(config.endpoint, undefined);
    assert.equal(config.forcePathStyle, undefined);
    assert.equal(config.region, undefined);
    assert.equal(config.credentials, undefined);
    assert.equal(s3ClientConfig({ AWS_PROFILE: 'media' }).profile, 'media');
    assert.equal(
      s3ClientConfig({ AWS_ENDPOINT_URL: 'http://a:1', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }).endpoint,
      undefined,
    );
  });

  it('takes keys from the given environment', () => {
    assert.deepEqual(
      s3ClientConfig({ AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' })
        .credentials,
      { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'token' },
    );
  });

  it('refuses an endpoint that is not an http(s) URL', () => {
    assert.throws(() => s3ClientConfig({ AWS_ENDPOINT_URL: '127.0.0.1:8333' }), /is not a URL|must be an http/);
    assert.throws(() => s3ClientConfig({ AWS_ENDPOINT_URL: 'ftp://host/' }), /must be an http/);
  });
});
