/**
 * The SMTP connections a worker keeps for campaigns: one connection serves every batch of a campaign (no new
 * greeting per batch), a fault drops it, and a worker that shuts down closes what it keeps so its sockets do not
 * hold the process open. Counted at the server, which sees each connection open and close.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { SMTPServer } from 'smtp-server';
import { prepareCampaign } from '../../src/activities/email/campaign';
import { sendEmailBatch } from '../../src/activities/email/send-batch';
import { borrowSmtpTransport, closeKeptSmtpTransports, releaseSmtpTransport } from '../../src/activities/email/smtp';
import { releaseActivityResources, loadActivities } from '../../src/workers/lazy-activities';
import { sleep, waitFor } from '../helpers/temporal';
import { runActivity } from '../helpers/activity';

describe('SMTP connections kept across batches', () => {
  let server: SMTPServer;
  let url: string;
  let dataDir: string;
  let opened = 0;
  let closed = 0;
  let received = 0;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-smtp-cache-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      onConnect: (_session, callback) => {
        opened += 1;
        callback();
      },
      onClose: () => {
        closed += 1;
      },
      onData: (stream, _session, callback) => {
        stream.resume();
        stream.on('end', () => {
          received += 1;
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.server.address();
    url = `smtp://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    process.env.SMTP_URL = url;
  });
  after(async () => {
    closeKeptSmtpTransports();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    delete process.env.SMTP_URL;
  });
  beforeEach(() => {
    closeKeptSmtpTransports();
  });

  let campaigns = 0;
  async function newCampaign(count: number) {
    campaigns += 1;
    const file = `cache-${campaigns}.csv`;
    const rows = Array.from({ length: count }, (_, i) => `c${campaigns}u${i}@example.com,User ${i}`);
    writeFileSync(path.join(dataDir, file), `email,name\n${rows.join('\n')}\n`);
    return prepareCampaign({
      campaignId: `cache-${campaigns}`,
      recipientsFile: file,
      subject: 'Hi',
      template: 'Hello',
    });
  }
  const batch = (campaignDir: string, batchStart: number) =>
    runActivity(new MockActivityEnvironment(), sendEmailBatch, {
      campaignDir,
      batchStart,
      batchSize: 3,
      sentBefore: 0,
    });

  it('sends every batch of a campaign over one connection', async () => {
    const prepared = await newCampaign(9);
    const [openedBefore, receivedBefore] = [opened, received];
    for (const start of [0, 3, 6]) {
      const outcome = await batch(prepared.campaignDir, start);
      assert.ok(outcome.finished && outcome.result.sent === 3);
    }
    assert.equal(received - receivedBefore, 9);
    assert.equal(opened - openedBefore, 1, 'three batches, one connection');
  });

  it('gives the same transport back until it is discarded after a fault', () => {
    const first = borrowSmtpTransport('key-a', url);
    releaseSmtpTransport('key-a', first, false, url);
    const again = borrowSmtpTransport('key-a', url);
    assert.equal(again, first, 'kept for the next batch');
    assert.notEqual(borrowSmtpTransport('key-b', url), first, 'another campaign has its own');
    releaseSmtpTransport('key-a', again, true, url);
    assert.notEqual(borrowSmtpTransport('key-a', url), first, 'a discarded one is not handed out again');
  });

  it('closes the kept connections when the worker shuts down, and one in use once it is given back', async () => {
    const prepared = await newCampaign(6);
    await loadActivities();
    const closedBefore = closed;
    await batch(prepared.campaignDir, 0);
    const inUse = borrowSmtpTransport('busy', url);
    let inUseClosed = false;
    const close = inUse.close.bind(inUse);
    inUse.close = () => {
      inUseClosed = true;
      close();
    };
    // What the worker's main does once `worker.run()` has returned.
    await releaseActivityResources();
    await waitFor('the idle campaign connection to close', async () => closed > closedBefore, 5000);
    await sleep(50);
    assert.equal(inUseClosed, false, 'a batch still sending keeps its connection');
    releaseSmtpTransport('busy', inUse, false, url);
    assert.equal(inUseClosed, true, 'closed when given back');
    const openedBefore = opened;
    const outcome = await batch(prepared.campaignDir, 3);
    assert.ok(outcome.finished && outcome.result.sent === 3, 'a later batch opens a new connection');
    assert.equal(opened - openedBefore, 1);
  });
});
