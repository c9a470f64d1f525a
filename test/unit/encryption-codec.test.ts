/**
 * The encryption codec and its keys: round trip, the key id each payload carries, rotation (old keys keep
 * decrypting), clear errors for an unknown key, tampering and malformed key settings, pass-through when off; the
 * dev server's UI wiring; and the codec routes over HTTP (protocol, API key, CORS limited to the UI's origin).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import Fastify from 'fastify';
import { codecRoutes } from '../../src/api/codec-routes';
import { buildApi } from '../../src/api/server';
import { TemporalLink } from '../../src/api/temporal-link';
import { dataConverter, encryptionCodec, uiCodecEndpoint } from '../../src/codec/data-converter';
import {
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  KEY_ID_METADATA,
  PayloadDecryptionError,
} from '../../src/codec/encryption-codec';
import { EncryptionKeyError, configuredKeys, keyFingerprint, parseEncryptionKeys } from '../../src/codec/keys';
import { devServerSettings } from '../../src/config';
import { devServerArgs } from '../../src/devserver/dev-server';

const newKey = (id: string) => ({ id, key: randomBytes(32) });
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const SECRET = { subject: 'Q3 payroll for Jane Roe', to: 'jane.roe@example.org', input: 'hr/salaries-2025.csv' };
const plain = (value: unknown = SECRET) => defaultPayloadConverter.toPayload(value) as Payload;

const ENV_NAMES = [
  'BACKROOM_ENCRYPTION_KEY',
  'BACKROOM_ENCRYPTION_KEYS',
  'BACKROOM_ENCRYPTION_KEY_FILE',
  'BACKROOM_UI_ORIGIN',
  'BACKROOM_CODEC_ENDPOINT',
];
const savedEnv = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
afterEach(() => {
  for (const name of ENV_NAMES) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
});
function setEnv(values: Record<string, string | undefined>): void {
  for (const name of ENV_NAMES) delete process.env[name];
  for (const [name, value] of Object.entries(values)) if (value !== undefined) process.env[name] = value;
}

describe('EncryptionCodec', () => {
  it('round-trips a payload, hiding all of it, metadata included, and names its key', async () => {
    const codec = new EncryptionCodec([newKey('2025-06')]);
    const original = plain();
    const [encrypted] = await codec.encode([original]);
    assert.ok(encrypted);
    assert.equal(text(encrypted.metadata?.encoding), ENCRYPTED_ENCODING);
    assert.equal(text(encrypted.metadata?.[KEY_ID_METADATA]), '2025-06');
    assert.deepEqual(Object.keys(encrypted.metadata ?? {}).sort(), ['encoding', KEY_ID_METADATA].sort());
    const wire = Buffer.from(encrypted.data ?? []).toString('latin1');
    for (const secret of [...Object.values(SECRET), 'json/plain']) assert.ok(!wire.includes(secret), secret);

    const [decrypted] = await codec.decode([encrypted]);
    assert.ok(decrypted);
    assert.equal(text(decrypted.metadata?.encoding), 'json/plain');
    assert.deepEqual(defaultPayloadConverter.fromPayload(decrypted), SECRET);
  });

  it('uses a fresh IV each time: the same payload encrypts differently', async () => {
    const codec = new EncryptionCodec([newKey('a')]);
    const [one, two] = await codec.encode([plain(), plain()]);
    assert.notDeepEqual(Buffer.from(one?.data ?? []), Buffer.from(two?.data ?? []));
  });

  it('keeps decrypting with an old key after a new one is added first (rotation)', async () => {
    const old = newKey('old');
    const [underOld] = await new EncryptionCodec([old]).encode([plain()]);
    assert.ok(underOld);
    const rotated = new EncryptionCodec([newKey('new'), old]);
    assert.equal(rotated.encryptingKeyId, 'new');
    const [decrypted] = await rotated.decode([underOld]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decrypted as Payload), SECRET);
    const [underNew] = await rotated.encode([plain()]);
    assert.equal(text(underNew?.metadata?.[KEY_ID_METADATA]), 'new');
  });

  it('refuses a payload of an unknown key with a message naming the key and the fix', async () => {
    const [encrypted] = await new EncryptionCodec([newKey('retired')]).encode([plain()]);
    await assert.rejects(new EncryptionCodec([newKey('current')]).decode([encrypted as Payload]), (err: Error) => {
      assert.ok(err instanceof PayloadDecryptionError);
      assert.match(err.message, /key "retired", which is not among the configured keys \(current\)/);
      assert.match(err.message, /BACKROOM_ENCRYPTION_KEYS/);
      return true;
    });
  });

  it('detects tampering with the ciphertext, and with the key id', async () => {
    const a = newKey('a');
    const b = newKey('b');
    const codec = new EncryptionCodec([a, b]);
    const [encrypted] = await codec.encode([plain()]);
    assert.ok(encrypted?.data);
    const flipped = Buffer.from(encrypted.data);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    await assert.rejects(codec.decode([{ ...encrypted, data: flipped }]), /fails authentication/);
    const relabelled = { ...encrypted, metadata: { ...encrypted.metadata, [KEY_ID_METADATA]: Buffer.from('b') } };
    await assert.rejects(codec.decode([relabelled]), /key "b" fails authentication/);
    await assert.rejects(codec.decode([{ ...encrypted, data: Buffer.alloc(10) }]), /too short/);
  });

  it('passes payloads that are not encrypted through decode (history from before encryption)', async () => {
    const codec = new EncryptionCodec([newKey('a')]);
    const original = plain();
    const [decoded] = await codec.decode([original]);
    assert.equal(decoded, original);
  });
});

describe('encryption keys', () => {
  const base64 = randomBytes(32).toString('base64');

  it('reads one key with or without an id; without one, the id is its fingerprint', () => {
    const [bare] = parseEncryptionKeys(base64, 'BACKROOM_ENCRYPTION_KEY');
    assert.equal(bare?.id, keyFingerprint(Buffer.from(base64, 'base64')));
    assert.match(bare?.id ?? '', /^k[0-9a-f]{12}$/);
    assert.equal(parseEncryptionKeys(`prod-2025:${base64}`, 'x')[0]?.id, 'prod-2025');
    assert.equal(parseEncryptionKeys(`prod-2025=${base64}`, 'x')[0]?.id, 'prod-2025');
    const urlSafe = randomBytes(32).toString('base64url');
    assert.equal(parseEncryptionKeys(urlSafe, 'x')[0]?.key.toString('base64url'), urlSafe);
  });

  it('reads a list (comma- or line-separated, comments skipped), newest first', () => {
    const other = randomBytes(32).toString('base64');
    const keys = parseEncryptionKeys(`# rotated in June\nnew:${base64}\n\n old : ${other} \n`, 'file');
    assert.deepEqual(
      keys.map((k) => k.id),
      ['new', 'old'],
    );
    assert.deepEqual(
      parseEncryptionKeys(`new:${base64},old:${other}`, 'x').map((k) => k.id),
      ['new', 'old'],
    );
  });

  it('refuses malformed keys with messages that say what is wrong and never show the key', () => {
    const cases: [string, RegExp][] = [
      ['', /holds no key: make one with `openssl rand -base64 32`/],
      [randomBytes(16).toString('base64'), /must be 32 random bytes in base64 \(16 bytes\)/],
      ['not base64!', /not base64/],
      [`bad id:${base64}`, /key id must be 1 to 64 letters/],
      [`a:${base64},a:${randomBytes(32).toString('base64')}`, /"a" is listed twice/],
      [`a:${base64},b:short`, /BACKROOM_ENCRYPTION_KEYS, key 2: a key must be 32/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => parseEncryptionKeys(value, 'BACKROOM_ENCRYPTION_KEYS'),
        (err: Error) => err instanceof EncryptionKeyError && message.test(err.message) && !err.message.includes(base64),
        value,
      );
    }
  });

  it('comes from exactly one of the variables or a key file; none means off', () => {
    setEnv({});
    assert.equal(configuredKeys(), undefined);
    assert.equal(encryptionCodec(), undefined);
    assert.equal(dataConverter(), undefined, 'no key: clients and workers keep the default data converter');
    assert.equal(uiCodecEndpoint(), undefined);

    setEnv({ BACKROOM_ENCRYPTION_KEY: `one:${base64}` });
    assert.deepEqual(
      configuredKeys()?.map((k) => k.id),
      ['one'],
    );
    const converter = dataConverter();
    assert.ok(converter?.payloadCodecs?.[0] instanceof EncryptionCodec);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'backroom-keys-'));
    const file = path.join(dir, 'keys');
    writeFileSync(file, `two:${randomBytes(32).toString('base64')}\none:${base64}\n`);
    setEnv({ BACKROOM_ENCRYPTION_KEY_FILE: file });
    assert.deepEqual(
      configuredKeys()?.map((k) => k.id),
      ['two', 'one'],
    );
    setEnv({ BACKROOM_ENCRYPTION_KEY_FILE: path.join(dir, 'missing') });
    assert.throws(() => configuredKeys(), /BACKROOM_ENCRYPTION_KEY_FILE=.*missing cannot be read \(ENOENT\)/);
    setEnv({ BACKROOM_ENCRYPTION_KEY: base64, BACKROOM_ENCRYPTION_KEYS: base64 });
    assert.throws(() => configuredKeys(), /Both BACKROOM_ENCRYPTION_KEY and BACKROOM_ENCRYPTION_KEYS are set/);
  });

  it('wires the dev server UI to the codec endpoint only when encryption is on', () => {
    const settings = devServerSettings();
    assert.ok(!devServerArgs(settings).includes('--ui-codec-endpoint'));
    const args = devServerArgs(settings, { codecEndpoint: 'http://127.0.0.1:8088/codec' });
    assert.deepEqual(args.slice(args.indexOf('--ui-codec-endpoint')), [
      '--ui-codec-endpoint',
      'http://127.0.0.1:8088/codec',
    ]);
    setEnv({ BACKROOM_ENCRYPTION_KEY: base64 });
    assert.match(uiCodecEndpoint() ?? '', /^http:\/\/127\.0\.0\.1:\d+\/codec$/);
    setEnv({ BACKROOM_ENCRYPTION_KEY: base64, BACKROOM_CODEC_ENDPOINT: 'https://codec.example.org/codec/' });
    assert.equal(uiCodecEndpoint(), 'https://codec.example.org/codec');
  });
});

describe('codec routes over HTTP', () => {
  const UI = 'http://127.0.0.1:8233';
  const API_KEY = 'codec-test-key';
  const codec = new EncryptionCodec([newKey('http')]);
  // The API with a link that is never used: the codec routes need no Temporal.
  const api = () =>
    buildApi({
      link: new TemporalLink({ connect: () => Promise.reject(new Error('no Temporal in this test')) }),
      bodyLimit: 1024 * 1024,
      apiKey: API_KEY,
      codec: { codec, allowedOrigins: [UI] },
    });
  const asJson = (payload: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(payload.data ?? []).toString('base64'),
  });
  const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

  it('encodes and decodes in the codec-server format, for the key holder only', async () => {
    const app = api();
    const encoded = await app.inject({
      method: 'POST',
      url: '/codec/encode',
      headers: auth,
      payload: { payloads: [asJson(plain())] },
    });
    assert.equal(encoded.statusCode, 200, encoded.body);
    const body = encoded.json<{ payloads: { metadata: Record<string, string>; data: string }[] }>();
    assert.equal(body.payloads.length, 1);
    assert.equal(Buffer.from(body.payloads[0]?.metadata.encoding ?? '', 'base64').toString(), ENCRYPTED_ENCODING);
    assert.ok(!encoded.body.includes(Buffer.from(JSON.stringify(SECRET)).toString('base64')));

    for (const headers of [auth, { 'x-api-key': API_KEY, 'content-type': 'application/json' }]) {
      const decoded = await app.inject({ method: 'POST', url: '/codec/decode', headers, payload: body });
      assert.equal(decoded.statusCode, 200, decoded.body);
      const [payload] = decoded.json<{ payloads: { metadata: Record<string, string>; data: string }[] }>().payloads;
      assert.deepEqual(JSON.parse(Buffer.from(payload?.data ?? '', 'base64').toString()), SECRET);
    }

    const anonymous = await app.inject({ method: 'POST', url: '/codec/decode', payload: body });
    assert.equal(anonymous.statusCode, 401);
    assert.match(anonymous.json<{ message: string }>().message, /--codec-auth "Bearer <key>"/);
    const wrong = await app.inject({
      method: 'POST',
      url: '/codec/decode',
      headers: { authorization: 'Bearer nope' },
      payload: body,
    });
    assert.equal(wrong.statusCode, 401);
    // The API's own routes still need the key: the codec's exemption is for its routes only.
    assert.equal((await app.inject({ method: 'OPTIONS', url: '/jobs' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/codec/../jobs' })).statusCode, 401);
    await app.close();
  });

  it('answers a bad body with 400 and an undecryptable payload with 422', async () => {
    const app = api();
    const bad = await app.inject({ method: 'POST', url: '/codec/decode', headers: auth, payload: { payload: [] } });
    assert.equal(bad.statusCode, 400);
    const [foreign] = await new EncryptionCodec([newKey('elsewhere')]).encode([plain()]);
    const unknown = await app.inject({
      method: 'POST',
      url: '/codec/decode',
      headers: auth,
      payload: { payloads: [asJson(foreign as Payload)] },
    });
    assert.equal(unknown.statusCode, 422);
    assert.match(unknown.json<{ message: string }>().message, /key "elsewhere"/);
    await app.close();
  });

  it('lets the UI origin preflight without a key, and gives CORS headers to that origin only', async () => {
    const app = api();
    const preflight = (origin: string) =>
      app.inject({
        method: 'OPTIONS',
        url: '/codec/decode',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-namespace',
        },
      });
    const allowed = await preflight(UI);
    assert.equal(allowed.statusCode, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], UI);
    assert.match(String(allowed.headers['access-control-allow-headers']), /x-namespace/);
    assert.match(String(allowed.headers['access-control-allow-methods']), /POST/);
    const foreign = await preflight('http://evil.example');
    assert.equal(foreign.statusCode, 403);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);

    const [encrypted] = await codec.encode([plain()]);
    const post = (origin: string) =>
      app.inject({
        method: 'POST',
        url: '/codec/decode',
        headers: { ...auth, origin, 'x-namespace': 'default' },
        payload: { payloads: [asJson(encrypted as Payload)] },
      });
    const fromUi = await post(UI);
    assert.equal(fromUi.statusCode, 200);
    assert.equal(fromUi.headers['access-control-allow-origin'], UI);
    assert.match(String(fromUi.headers.vary), /origin/i);
    const fromElsewhere = await post('http://evil.example');
    assert.equal(fromElsewhere.headers['access-control-allow-origin'], undefined);
    // A 401 to the UI still carries CORS headers, so the browser can show why.
    const unauthorized = await app.inject({
      method: 'POST',
      url: '/codec/decode',
      headers: { origin: UI, 'content-type': 'application/json' },
      payload: { payloads: [] },
    });
    assert.equal(unauthorized.statusCode, 401);
    assert.equal(unauthorized.headers['access-control-allow-origin'], UI);
    await app.close();
  });

  it('exists only when there is a codec, and takes the UI origin from BACKROOM_UI_ORIGIN', async () => {
    setEnv({});
    const plainApi = buildApi({ link: new TemporalLink(), bodyLimit: 1024 });
    assert.equal((await plainApi.inject({ method: 'POST', url: '/codec/decode', payload: {} })).statusCode, 404);
    await plainApi.close();

    setEnv({ BACKROOM_ENCRYPTION_KEY: randomBytes(32).toString('base64'), BACKROOM_UI_ORIGIN: 'https://ui.example' });
    const app = Fastify();
    assert.equal(codecRoutes(app), true);
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/codec/encode',
      headers: { origin: 'https://ui.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://ui.example');
    await app.close();
    setEnv({ BACKROOM_UI_ORIGIN: 'https://ui.example/path' });
    assert.throws(() => codecRoutes(Fastify(), { codec }), /not an origin/);
  });
});
