/**
 * Email jobs on a real dev server, sending over real SMTP to the mail sink: a 1,000-recipient campaign arrives
 * exactly, the rate limit holds in every window (judged from the sink's receive times), pause holds sending,
 * invalid and refused recipients are reported while the rest go out, and a down server makes the job wait.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { busiestWindow, readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type RunningMailSink } from '../../src/mail-sink/sink';
import { freePort } from '../../src/ports';
import type { BulkEmailResult, SendEmailResult } from '../../src/workflows/email';
import { sleep, startTestStack, waitFor, type TestStack } from '../helpers/temporal';

describe('email jobs on a real dev server and SMTP', () => {
  let stack: TestStack;
  let sink: RunningMailSink;
  let dataDir: string;

  before(async () => {
    stack = await startTestStack('email');
    dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    sink = await startMailSink({ dir: path.join(dataDir, 'sink') });
    process.env.SMTP_URL = sink.url;
  });
  after(async () => {
    await stack.stop();
    await sink.close();
  });

  const writeRecipients = (file: string, count: number, extra = '') => {
    const rows = Array.from({ length: count }, (_, i) => `person${i}@example.org,Person ${i}`);
    writeFileSync(path.join(dataDir, file), `email,name\n${rows.join('\n')}\n${extra}`);
  };
  const received = async (campaignId: string) =>
    (await readMailbox(sink.dir)).filter((m) => m.messageId.startsWith(`<${campaignId}.`));

  it('delivers a 1,000-recipient campaign exactly: every recipient once, variables rendered', async () => {
    writeRecipients('thousand.csv', 1000);
    const { id } = await stack.jobs.start('sendBulkEmail', {
      campaignId: 'thousand',
      recipientsFile: 'thousand.csv',
      subject: 'Hi {{name}}',
      template: 'Hello {{name}}, your address is {{email}}.',
      // Batches of 100 (from the rate), two per run: the campaign continues as new several times on the way.
      rate: '500/s',
      batchesPerRun: 2,
    });
    assert.equal(id, 'bulk-email-thousand', 'the campaign names the workflow, so it cannot run twice');
    const live = await waitFor('progress in status', async () => {
      const view = await stack.jobs.status(id);
      return view.progress.done > 0 && view.state === 'running' ? view : undefined;
    });
    assert.equal(live.progress.unit, 'emails');
    assert.equal(live.progress.total, 1000);
    assert.match(live.message, /^\d+ \/ 1,000 sent/);

    const result = await stack.jobs.result<BulkEmailResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.deepEqual([result.sent, result.failed, result.skipped, result.possiblyDuplicated], [1000, 0, 0, 0]);
    assert.ok(result.runs >= 3, `continued as new (runs: ${result.runs})`);
    const messages = await received('thousand');
    assert.equal(messages.length, 1000, 'no duplicates');
    const expected = Array.from({ length: 1000 }, (_, i) => `person${i}@example.org`);
    assert.deepEqual(messages.map((m) => m.to[0]).sort(), expected.sort());
    for (const message of messages) {
      const index = /person(\d+)@/.exec(message.to[0] ?? '')?.[1];
      assert.equal(message.subject, `Hi Person ${index}`);
    }
    const sample = readFileSync(path.join(sink.dir, messages[0]!.file), 'utf8');
    assert.match(sample, new RegExp(`Hello Person \\d+, your address is ${messages[0]!.to[0]}\\.`));
  });

  it('holds a "20/s" limit in every one-second window, at close to the limit', async () => {
    writeRecipients('limited.csv', 90);
    const { id } = await stack.jobs.start('sendBulkEmail', {
      campaignId: 'limited',
      recipientsFile: 'limited.csv',
      subject: 'Limited',
      template: 'Hello {{name}}',
      rate: '20/s',
    });
    const result = await stack.jobs.result<BulkEmailResult>(id);
    assert.equal(result.sent, 90);
    const times = (await received('limited')).map((m) => m.receivedAt);
    const busiest = busiestWindow(times, 1000);
    console.log(`20/s campaign: busiest 1 s window ${busiest}`);
    assert.ok(busiest <= 20, `${busiest} messages in one second`);
    assert.ok(busiest >= 15, 'the limit is used, not wasted');
  });

  it('pause holds sending, resume continues, and nothing is sent twice', async () => {
    writeRecipients('paused.csv', 100);
    const { id } = await stack.jobs.start('sendBulkEmail', {
      campaignId: 'paused',
      recipientsFile: 'paused.csv',
      subject: 'Paused',
      template: 'Hello {{name}}',
      rate: '40/s',
    });
    await waitFor('some messages', async () => (await received('paused')).length >= 30);
    await stack.jobs.pause(id);
    await waitFor('paused', async () => (await stack.jobs.status(id)).state === 'paused');
    // A running batch hears of the pause at its next heartbeat (the worker sends them at most once a second), so
    // the batch on its way may still go out; after that, nothing.
    await sleep(2000);
    const atPause = (await received('paused')).length;
    await sleep(2500);
    assert.equal((await received('paused')).length, atPause, 'nothing is sent while paused');
    assert.ok(atPause < 100);
    const view = await stack.jobs.status(id);
    assert.equal(view.progress.done, atPause, 'status counts what the sink received');
    await stack.jobs.resume(id);
    const result = await stack.jobs.result<BulkEmailResult>(id);
    assert.equal(result.sent, 100);
    const messages = await received('paused');
    assert.equal(messages.length, 100);
    assert.equal(new Set(messages.map((m) => m.to[0])).size, 100);
  });

  it('reports invalid addresses and a 550 refusal, and delivers everyone else', async () => {
    writeRecipients('mixed.csv', 20, 'not-an-address,Nobody\nbounce@reject.test,Bounce\n,Empty\n');
    const { id } = await stack.jobs.start('sendBulkEmail', {
      campaignId: 'mixed',
      recipientsFile: 'mixed.csv',
      subject: 'Mixed',
      template: 'Hello {{name}}',
    });
    const result = await stack.jobs.result<BulkEmailResult>(id);
    assert.deepEqual([result.sent, result.failed, result.skipped], [20, 1, 2]);
    assert.equal((await received('mixed')).length, 20);
    const report = readFileSync(path.join(dataDir, result.reportText ?? ''), 'utf8');
    assert.match(report, /bounce@reject\.test: rejected by the server: 550/);
    assert.match(report, /row 22 not-an-address: not a valid email address/);
    assert.match(report, /row 24 \(empty\): no email address/);
    const view = await stack.jobs.status(id);
    assert.ok(view.errors.some((e) => e.item === 'bounce@reject.test' && /550/.test(e.reason)));
  });

  it('fails at once, naming the problem, on a missing recipients file or a template variable nobody has', async () => {
    writeRecipients('small.csv', 2);
    const cases = [
      [{ recipientsFile: 'missing.csv', subject: 'x', template: 'y' }, /recipients file missing\.csv does not exist/],
      [{ recipientsFile: 'small.csv', subject: 'x', template: 'Hi {{nick}}' }, /no value for \{\{nick\}\}/],
    ] as const;
    for (const [input, pattern] of cases) {
      const { id } = await stack.jobs.start('sendBulkEmail', input);
      await assert.rejects(stack.jobs.result(id), (err: Error & { cause?: Error & { cause?: Error } }) => {
        const message = err.cause?.cause?.message ?? err.cause?.message ?? err.message;
        assert.match(message, pattern);
        return true;
      });
    }
  });

  it('sendEmail waits and retries while the SMTP server is down, then delivers once it is up', async () => {
    const port = await freePort();
    process.env.SMTP_URL = `smtp://127.0.0.1:${port}`;
    try {
      const { id } = await stack.jobs.start('sendEmail', { to: 'late@example.org', subject: 'Later', text: 'hi' });
      const waiting = await waitFor('a failed attempt', async () => {
        const view = await stack.jobs.status(id);
        return view.activities.find((a) => a.attempt >= 2 && /ECONNREFUSED/.test(a.lastFailure ?? ''));
      });
      assert.ok(waiting);
      const lateSink = await startMailSink({ dir: path.join(dataDir, 'late-sink'), port });
      try {
        const result = await stack.jobs.result<SendEmailResult>(id);
        assert.equal(result.outcome, 'sent');
        const messages = await readMailbox(lateSink.dir);
        assert.deepEqual(
          messages.map((m) => [m.to[0], m.messageId]),
          [['late@example.org', `<${id}@backroom.local>`]],
        );
      } finally {
        await lateSink.close();
      }
    } finally {
      process.env.SMTP_URL = sink.url;
    }
  });
});
