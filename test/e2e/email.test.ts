/**
 * Email end to end: a dev server, worker processes started like `npm run worker`, the mail sink, and the
 * `backroom` CLI. A worker killed with SIGKILL mid-campaign leaves the campaigns to a new worker: every recipient
 * gets the message, at most one is sent twice per kill (and the report says which), and the rate limit holds
 * across the restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevServer, type RunningDevServer } from '../../src/devserver/dev-server';
import { busiestWindow, readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type ReceivedMessage, type RunningMailSink } from '../../src/mail-sink/sink';
import type { BulkEmailResult } from '../../src/workflows/email';
import { freePort, runCli, startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { waitFor } from '../helpers/temporal';

describe('email campaigns through the CLI, with a worker killed mid-campaign', () => {
  let server: RunningDevServer;
  let worker: WorkerProcess;
  let sink: RunningMailSink;
  let env: NodeJS.ProcessEnv;
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-e2e-email-'));
    sink = await startMailSink({ dir: path.join(dataDir, 'mail-sink') });
    server = await startDevServer(
      {
        ip: '127.0.0.1',
        port: await freePort(),
        uiPort: await freePort(),
        dbFile: path.join(dataDir, 'temporal.db'),
        namespace: 'default',
      },
      { logFile: path.join(dataDir, 'server.log') },
    );
    env = {
      TEMPORAL_ADDRESS: server.address,
      BACKROOM_DATA_DIR: dataDir,
      BACKROOM_TASK_QUEUE: 'backroom-e2e-email',
      SMTP_URL: sink.url,
    };
    worker = await startWorkerProcess(env);
  });

  after(async () => {
    worker?.process.kill('SIGKILL');
    await server?.stop();
    await sink?.close();
  });

  const cli = (...args: string[]) => runCli(args, env);
  const received = async (campaign: string): Promise<ReceivedMessage[]> =>
    JSON.parse((await cli('mail', '--campaign', campaign, '--limit', '0', '--json')).stdout) as ReceivedMessage[];
  const recipients = (file: string, count: number) => {
    const rows = Array.from({ length: count }, (_, i) => `reader${i}@example.net,Reader ${i}`);
    writeFileSync(path.join(dataDir, file), `email,name\n${rows.join('\n')}\n`);
  };

  it('survives SIGKILL of the worker: everyone gets the message, duplicates ≤ kills, the limit holds', async () => {
    recipients('fast.csv', 1500);
    recipients('slow.csv', 150);
    const start = async (campaignId: string, file: string, rate?: string) => {
      const input = { campaignId, recipientsFile: file, subject: 'Hi {{name}}', template: 'Hello {{name}}' };
      const started = await cli(
        'start',
        'sendBulkEmail',
        '--input',
        JSON.stringify({ ...input, ...(rate && { rate }) }),
      );
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, new RegExp(`Started sendBulkEmail as bulk-email-${campaignId}`));
    };
    await start('fast', 'fast.csv');
    await start('slow', 'slow.csv', '30/s');

    await waitFor('both campaigns under way', async () => (await readMailbox(sink.dir)).length >= 300, 120_000);
    worker.process.kill('SIGKILL');
    await worker.exited;
    const atKill = (await readMailbox(sink.dir)).length;
    worker = await startWorkerProcess(env);

    for (const [campaign, count] of [
      ['fast', 1500],
      ['slow', 150],
    ] as const) {
      const watched = await cli('watch', `bulk-email-${campaign}`);
      assert.equal(watched.code, 0, watched.stdout);
      assert.match(
        watched.stdout,
        // Progress counts emails (the unit sendEmail uses too).
        new RegExp(`${count.toLocaleString('en-US')} / ${count.toLocaleString('en-US')} emails`),
      );
      const result = JSON.parse((await cli('result', `bulk-email-${campaign}`)).stdout) as BulkEmailResult;
      const messages = await received(campaign);
      const unique = new Set(messages.map((m) => m.to[0]));
      const duplicates = messages.length - unique.size;
      console.log(
        `${campaign}: ${messages.length} received for ${count} recipients (${atKill} had arrived at the kill), ` +
          `${duplicates} duplicated, ${result.possiblyDuplicated} reported as possibly duplicated`,
      );
      assert.equal(unique.size, count, 'every recipient got the message');
      assert.equal(result.sent, count);
      assert.ok(duplicates <= 1, `${duplicates} duplicates after one kill`);
      assert.ok(result.possiblyDuplicated >= duplicates, 'every real duplicate is in the report');
      if (campaign === 'slow') {
        const busiest = busiestWindow(
          messages.map((m) => m.receivedAt),
          1000,
        );
        assert.ok(busiest <= 30, `${busiest} messages in one second across the restart`);
      }
    }
  });

  it('lists what the sink received with `backroom mail`', async () => {
    const { code, stdout } = await cli('mail', '--campaign', 'slow', '--limit', '3');
    assert.equal(code, 0);
    assert.match(stdout, /^RECEIVED \(UTC\)\s+TO\s+SUBJECT\s+MESSAGE-ID/m);
    assert.match(stdout, /reader\d+@example\.net\s+Hi Reader \d+\s+<slow\.[0-9a-f]{20}@backroom\.local>/);
    assert.match(stdout, /3 of 15\d shown; the messages are \.eml files in /);
  });
});
