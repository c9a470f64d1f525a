/**
 * Encrypted payloads on a real dev server: a bulk email campaign runs end to end with encryption on, and its raw
 * history (`temporal workflow show -o json`, no codec) holds no subject, body, recipient or file path in clear, while
 * the same command through the HTTP API's codec routes (`--codec-endpoint`, `--codec-auth`) shows them. The CLI
 * can also start a job through `/codec/encode`, and a worker with the key runs it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { startApi, type RunningApi } from '../../src/api/server';
import { TemporalLink } from '../../src/api/temporal-link';
import { Jobs } from '../../src/client/jobs';
import { dataConverter as encryptedConverter } from '../../src/codec/data-converter';
import { EncryptionCodec } from '../../src/codec/encryption-codec';
import { JOB_STATE_KEY } from '../../src/shared/search-attributes';
import { ensureTemporalCli } from '../../src/devserver/temporal-cli';
import { readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type RunningMailSink } from '../../src/mail-sink/sink';
import type { BulkEmailResult } from '../../src/workflows/email';
import { createTestWorker, startTestServer, uniqueTaskQueue } from '../helpers/temporal';

const run = promisify(execFile);
const API_KEY = 'encryption-test-key';
/** Things the campaign's history must not show in clear. */
const SECRETS = {
  subject: 'Q3 payroll adjustment',
  body: 'Your new salary is strictly confidential',
  recipient: 'jane.roe@example.org',
  path: 'payroll-secret/recipients.csv',
};

/** The data of every payload (an object with `metadata` and base64 `data`) in a JSON document, as text. */
function payloadTexts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(payloadTexts);
  if (!value || typeof value !== 'object') return [];
  const record = value as Record<string, unknown>;
  const own =
    typeof record.data === 'string' && 'metadata' in record ? [Buffer.from(record.data, 'base64').toString()] : [];
  return [...own, ...Object.values(record).flatMap(payloadTexts)];
}

describe('encrypted payloads and the codec server', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let jobs: Jobs;
  let sink: RunningMailSink;
  let api: RunningApi;
  let cli: string;
  let taskQueue: string;
  const codec = new EncryptionCodec([{ id: 'it-2025', key: randomBytes(32) }]);

  /**
   * `temporal workflow show` as JSON, raw or through the codec routes, with every payload's data (base64 in the
   * JSON) decoded after it: whatever a reader of that output could see in clear.
   */
  const show = async (id: string, ...extra: string[]) => {
    const { stdout } = await run(cli, [
      'workflow',
      'show',
      '--workflow-id',
      id,
      '--output',
      'json',
      '--address',
      env.address,
      '--namespace',
      env.namespace ?? 'default',
      ...extra,
    ]);
    return `${stdout}\n${payloadTexts(JSON.parse(stdout)).join('\n')}`;
  };
  const viaCodec = () => ['--codec-endpoint', `${api.url}/codec`, '--codec-auth', `Bearer ${API_KEY}`];

  before(async () => {
    env = await startTestServer();
    cli = await ensureTemporalCli();
    const dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    sink = await startMailSink({ dir: path.join(dataDir, 'sink-encryption') });
    process.env.SMTP_URL = sink.url;
    taskQueue = uniqueTaskQueue('encryption');
    const dataConverter = encryptedConverter(codec);
    worker = await createTestWorker(env, taskQueue, { dataConverter });
    running = worker.run();
    const client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', dataConverter });
    jobs = new Jobs(client, taskQueue);
    api = await startApi(
      { host: '127.0.0.1', port: 0, apiKey: API_KEY, bodyLimit: 1024 * 1024 },
      {
        link: new TemporalLink({ connect: async () => jobs }),
        codec: { codec, allowedOrigins: ['http://127.0.0.1:8233'] },
      },
    );
    mkdirSync(path.join(dataDir, path.dirname(SECRETS.path)), { recursive: true });
    writeFileSync(
      path.join(dataDir, SECRETS.path),
      `email,name\n${SECRETS.recipient},Jane Roe\njohn.doe@example.org,John Doe\n`,
    );
  });
  after(async () => {
    await api?.close();
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await sink?.close();
    await env?.teardown();
  });

  it('runs a campaign whose raw history shows no subject, body, recipient or path, and the codec shows them', async () => {
    const { id } = await jobs.start('sendBulkEmail', {
      campaignId: 'encrypted',
      recipientsFile: SECRETS.path,
      subject: `${SECRETS.subject} for {{name}}`,
      template: `${SECRETS.body}, {{name}}.`,
    });
    const result = await jobs.result<BulkEmailResult>(id);
    assert.equal(result.outcome, 'completed', 'the worker decrypted its input and encrypted its results');
    const attributes = (await jobs.client.workflow.getHandle(id).describe()).typedSearchAttributes;
    assert.equal(attributes.get(JOB_STATE_KEY), 'completed', 'the job read its encrypted memo and set its attributes');
    const mail = (await readMailbox(sink.dir)).filter((m) => m.messageId.startsWith('<encrypted.'));
    assert.equal(mail.length, 2);
    // A single email: its recipient is in the job's input itself.
    const single = await jobs.start('sendEmail', {
      to: SECRETS.recipient,
      subject: SECRETS.subject,
      text: SECRETS.body,
    });
    await jobs.result(single.id);

    for (const jobId of [id, single.id]) {
      const raw = await show(jobId);
      assert.match(raw, /workflowExecutionStartedEventAttributes/);
      assert.ok(raw.includes(Buffer.from('binary/encrypted').toString('base64')), 'payloads are marked encrypted');
      for (const [what, secret] of Object.entries(SECRETS)) {
        assert.ok(!raw.includes(secret), `the raw history of ${jobId} shows the ${what} in clear`);
      }
    }
    assert.ok((await show(single.id, ...viaCodec())).includes(SECRETS.recipient));

    const decoded = await show(id, ...viaCodec());
    assert.ok(decoded.includes(SECRETS.subject), 'the codec endpoint decrypts the input');
    assert.ok(decoded.includes(SECRETS.body));
    assert.ok(decoded.includes(SECRETS.path));
    assert.ok(!decoded.includes(Buffer.from('binary/encrypted').toString('base64')), 'every payload decrypted');

    // The API reads the job through the same codec (status query, memo).
    const status = await fetch(`${api.url}/jobs/${id}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    assert.equal(status.status, 200);
    assert.equal(((await status.json()) as { state: string }).state, 'completed');
  });

  it('encrypts failure messages too: a failed job names its file through the codec only', async () => {
    const missing = 'payroll-secret/missing-scan.jpg';
    const { id } = await jobs.start('processMedia', { input: missing, operations: [{ op: 'grayscale' }] });
    await assert.rejects(jobs.result(id), (err: unknown) => {
      // The client decodes the failure with the same converter: the user still reads the reason.
      let messages = '';
      for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
        messages += ` ${e.message ?? ''}`;
      }
      assert.match(messages, /missing-scan\.jpg does not exist/);
      return true;
    });
    const raw = await show(id);
    assert.match(raw, /workflowExecutionFailedEventAttributes/);
    assert.ok(!raw.includes('payroll-secret'), 'the raw history shows the failing path in clear');
    assert.ok((await show(id, ...viaCodec())).includes('missing-scan.jpg does not exist'));
  });

  it('refuses to decode for the CLI without the API key', async () => {
    const outcome = await show(
      'bulk-email-encrypted',
      '--codec-endpoint',
      `${api.url}/codec`,
      '--command-timeout',
      '3s',
    ).then(
      (stdout) => ({ ok: true, text: stdout }),
      (err: { stderr?: string; message: string }) => ({ ok: false, text: `${err.stderr ?? ''}${err.message}` }),
    );
    // The codec answers 401, and the CLI gives up rather than show anything.
    assert.equal(outcome.ok, false, outcome.text);
    assert.ok(!outcome.text.includes(SECRETS.subject), 'no key, no clear text');
    const direct = await fetch(`${api.url}/codec/decode`, { method: 'POST', body: '{"payloads":[]}' });
    assert.equal(direct.status, 401);
  });

  it('lets the CLI start a job through /codec/encode: it reaches Temporal encrypted and the worker runs it', async () => {
    const id = `simple-test-cli-${randomBytes(3).toString('hex')}`;
    const message = 'Launch code 4-8-15-16-23-42';
    await run(cli, [
      'workflow',
      'start',
      '--type',
      'simpleTest',
      '--task-queue',
      taskQueue,
      '--workflow-id',
      id,
      '--input',
      JSON.stringify({ message, durationSeconds: 1 }),
      '--address',
      env.address,
      '--namespace',
      env.namespace ?? 'default',
      ...viaCodec(),
    ]);
    await jobs.result(id);
    assert.ok(!(await show(id)).includes(message), 'the CLI encrypted the input through the codec routes');
    assert.ok((await show(id, ...viaCodec())).includes(message));
  });

  it('shows the clear text of a job started without encryption (the check above can see it)', async () => {
    const id = `simple-test-plain-${randomBytes(3).toString('hex')}`;
    const message = 'Nothing to hide here';
    await env.client.workflow.start('simpleTest', {
      taskQueue: `${taskQueue}-plain`,
      workflowId: id,
      args: [{ message, durationSeconds: 1 }],
    });
    assert.ok((await show(id)).includes(message));
    await env.client.workflow.getHandle(id).terminate('test done');
  });
});
