/**
 * Unit tests of the email pieces: rate pacing (simulated against the sliding-window rule), recipients files,
 * templates, and the batch activity against a real SMTP server (the mail sink) in a mock activity context.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { prepareCampaign, type PrepareCampaignRequest } from '../../src/activities/email/campaign';
import { parseRecipients } from '../../src/activities/email/recipients';
import { writeCampaignReport } from '../../src/activities/email/report';
import { batchLogFile, sendEmailBatch, type SendBatchRequest } from '../../src/activities/email/send-batch';
import { renderTemplate, checkTemplateVariables } from '../../src/activities/email/template';
import { busiestWindow, readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type RunningMailSink } from '../../src/mail-sink/sink';
import type { ActivityHeartbeat } from '../../src/shared/job-status';
import { sendBulkEmailInput } from '../../src/shared/email-inputs';
import {
  earliestSend,
  keepRecentEnds,
  keepRecentReplies,
  nextBatchStart,
  parseRate,
  planSending,
  type Rate,
} from '../../src/shared/send-plan';
import { freePort } from '../../src/ports';
import { runActivity } from '../helpers/activity';

describe('parseRate', () => {
  it('reads counts per second, minute, hour and day', () => {
    assert.deepEqual(parseRate('10/min'), { count: 10, perMs: 60_000 });
    assert.deepEqual(parseRate('5/s'), { count: 5, perMs: 1000 });
    assert.deepEqual(parseRate('1000/h'), { count: 1000, perMs: 3_600_000 });
    assert.deepEqual(parseRate(' 20 / seconds '), { count: 20, perMs: 1000 });
    for (const bad of ['0/s', 'ten/min', '5/fortnight', '5', '-1/s', '1.5/s']) assert.equal(parseRate(bad), undefined);
  });
});

/**
 * Plays a campaign the way the workflow paces it (a batch starts at `nextBatchStart` or a little later, and takes a
 * random time) and returns the most messages, overall and to one domain, found in any window.
 */
function simulate(rate: Rate | undefined, perDomain: Rate | undefined, messages: number, seed: number) {
  const plan = planSending(rate, perDomain);
  let random = seed;
  const next = () => (random = (random * 16807) % 2147483647) / 2147483647;
  const domains = Array.from({ length: messages }, () => (next() < 0.7 ? 'big.example' : `d${Math.floor(next() * 5)}`));
  const times: { at: number; domain: string }[] = [];
  let ends: number[] = [];
  let index = 0;
  while (index < messages) {
    let at = Math.max(ends.at(-1) ?? 0, nextBatchStart(plan, ends)) + next() * 50; // dispatch may run late
    const counts = new Map<string, number>();
    for (let inBatch = 0; inBatch < plan.batchSize && index < messages; inBatch++) {
      const domain = domains[index]!;
      if (plan.perDomainPerBatch !== undefined && (counts.get(domain) ?? 0) >= plan.perDomainPerBatch) break;
      counts.set(domain, (counts.get(domain) ?? 0) + 1);
      at += next() * 20; // each message takes up to 20 ms
      times.push({ at, domain });
      index += 1;
    }
    ends = keepRecentEnds(plan, ends, at);
  }
  const all = times.map((t) => t.at);
  const big = times.filter((t) => t.domain === 'big.example').map((t) => t.at);
  return {
    plan,
    overall: rate ? busiestWindow(all, rate.perMs) : 0,
    perDomain: perDomain ? busiestWindow(big, perDomain.perMs) : 0,
    seconds: ((all.at(-1) ?? 0) - (all[0] ?? 0)) / 1000,
  };
}

describe('planSending', () => {
  const cases = ['20/s', '5/s', '10/min', '1000/h', '7/s', '3/s', '250/min', '100000/h'];
  for (const text of cases) {
    it(`never puts more than ${text} into any window`, () => {
      const rate = parseRate(text)!;
      for (const seed of [1, 2, 3]) {
        const messages = Math.min(rate.count * 4 + 7, 3000);
        const outcome = simulate(rate, undefined, messages, seed);
        assert.ok(
          outcome.overall <= rate.count,
          `${outcome.overall} in one window (plan ${JSON.stringify(outcome.plan)})`,
        );
        assert.ok(outcome.overall >= Math.min(rate.count, messages) * 0.5, 'the pacing uses the allowance');
      }
    });
  }

  it('keeps a per-domain limit too, with or without a campaign limit', () => {
    for (const [overall, domain] of [
      ['20/s', '3/s'],
      [undefined, '2/s'],
      ['100/min', '30/min'],
      [undefined, '500/min'],
    ] as const) {
      const rate = overall ? parseRate(overall) : undefined;
      const perDomain = parseRate(domain)!;
      const outcome = simulate(rate, perDomain, 400, 7);
      assert.ok(outcome.perDomain <= perDomain.count, `${outcome.perDomain} to one domain for ${domain}`);
      if (rate) assert.ok(outcome.overall <= rate.count);
    }
  });

  it('sends without pacing when there is no limit', () => {
    assert.deepEqual(planSending(), { batchSize: 1000, spacingMs: 0 });
  });
});

/**
 * Plays a campaign paced per message, as the workflow and the batch activity do: a batch is dispatched up to a second
 * before `nextBatchStart` (or when the last one ends), and each of its messages starts at `earliestSend` over the replies before it (or when
 * the one before it is done), reaches the server some time after its start and gets its reply some time after that.
 */
function simulatePerMessage(rate: Rate, messages: number, seed: number) {
  const plan = planSending(rate, undefined, { perMessage: true });
  assert.ok(plan.perMessage, JSON.stringify(plan));
  let random = seed;
  const next = () => (random = (random * 16807) % 2147483647) / 2147483647;
  const arrivals: number[] = [];
  let replies: number[] = [];
  let now = 0;
  while (arrivals.length < messages) {
    // The workflow dispatches a batch a second before it may start (or at once), and the dispatch may run late.
    now = Math.max(now, nextBatchStart(plan, [], replies) - 1000) + next() * 50;
    const batch: number[] = [];
    for (let inBatch = 0; inBatch < plan.batchSize && arrivals.length < messages; inBatch++) {
      const start = Math.max(now, earliestSend(plan.perMessage, [...replies, ...batch]));
      arrivals.push(start + next() * 3); // on the wire
      now = start + 3 + next() * 3; // the reply
      batch.push(now);
    }
    replies = keepRecentReplies(plan, replies, batch);
  }
  // Five windows' allowance went out between the first message and message 5 × count, which waits for the last
  // of them: the rate is 5 × count over that time.
  const windows = 5;
  const span = arrivals[windows * rate.count]! - arrivals[0]!;
  return { plan, busiest: busiestWindow(arrivals, rate.perMs), ofLimit: (windows * rate.perMs) / span };
}

describe('per-message pacing', () => {
  for (const text of ['50/s', '20/s', '7/s', '100/min', '200/h']) {
    it(`puts ${text} into the busiest window, never more, and keeps to the limit within 2 %`, () => {
      const rate = parseRate(text)!;
      for (const seed of [1, 2, 3]) {
        const messages = rate.count * 6;
        const outcome = simulatePerMessage(rate, messages, seed);
        assert.equal(outcome.busiest, rate.count, `${outcome.busiest} in one window (${JSON.stringify(outcome.plan)})`);
        const { ofLimit } = outcome;
        assert.ok(ofLimit >= 0.98 && ofLimit <= 1, `${(ofLimit * 100).toFixed(2)} % of the limit`);
      }
    });
  }

  it('is used only where it can remember a window of replies and no per-domain limit applies', () => {
    assert.ok(planSending(parseRate('200/s'), undefined, { perMessage: true }).perMessage);
    assert.equal(planSending(parseRate('201/s'), undefined, { perMessage: true }).perMessage, undefined);
    assert.equal(planSending(parseRate('20/s'), parseRate('5/s'), { perMessage: true }).perMessage, undefined);
    assert.equal(planSending(parseRate('20/s')).perMessage, undefined);
  });
});

describe('recipients files', () => {
  it('reads CSV with a header row, skipping invalid and duplicate addresses with the row number', () => {
    const csv = '\uFEFFName,Email\nAda,ada@example.com\nBob,not-an-address\n"Lovelace, A",ADA@example.com\nCy,\n';
    const list = parseRecipients(csv, 'people.csv');
    assert.deepEqual(list.columns, ['Name', 'email']);
    assert.deepEqual(list.recipients, [{ email: 'ada@example.com', vars: { Name: 'Ada', email: 'ada@example.com' } }]);
    assert.deepEqual(list.skipped, [
      { row: 3, email: 'not-an-address', reason: 'not a valid email address' },
      { row: 4, email: 'ADA@example.com', reason: 'duplicate of row 2' },
      { row: 5, email: '', reason: 'no email address' },
    ]);
  });

  it('reads a JSON array of objects or of addresses', () => {
    const objects = parseRecipients(
      '[{"email":"a@x.org","name":"A"},{"email":"b@x.org","name":"B","vip":true}]',
      'r.json',
    );
    assert.deepEqual(objects.columns, ['email', 'name']);
    assert.equal(objects.recipients[1]?.vars.vip, 'true');
    assert.deepEqual(parseRecipients('["a@x.org","b@x.org"]', 'r.json').recipients.length, 2);
  });

  it('refuses a file without an email column, or that is not CSV or JSON, naming the file', () => {
    const refuses = (text: string, file: string, pattern: RegExp) =>
      assert.throws(
        () => parseRecipients(text, file),
        (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && pattern.test(err.message),
      );
    refuses(
      'name,address\nA,a@x.org\n',
      'r.csv',
      /r\.csv has no "email" column in its header row \(it has 2 columns\)/,
    );
    refuses('{"email":"a@x.org"}', 'r.json', /r\.json must hold a JSON array/);
    refuses('[1,', 'r.json', /r\.json is not valid JSON/);
    refuses('email\n"unterminated\n', 'r.csv', /r\.csv is not valid CSV/);
    refuses('email\n', 'r.csv', /has no recipients/);
  });
});

describe('sendBulkEmail inputs on object storage', () => {
  const base = { subject: 'Hi', template: 'Hello' };
  const previousBuckets = process.env.BACKROOM_S3_BUCKETS;
  before(() => {
    process.env.BACKROOM_S3_BUCKETS = 'lists,state';
  });
  after(() => {
    if (previousBuckets === undefined) delete process.env.BACKROOM_S3_BUCKETS;
    else process.env.BACKROOM_S3_BUCKETS = previousBuckets;
  });
  const problem = (input: Record<string, unknown>) => {
    const parsed = sendBulkEmailInput.safeParse({ ...base, ...input });
    return parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };

  it('takes files and the state folder in a bucket as well as in the data dir', () => {
    assert.equal(
      problem({ recipientsFile: 's3://lists/welcome.csv', templateFile: 's3://lists/t.html', template: undefined }),
      undefined,
    );
    assert.equal(
      problem({ recipientsFile: 'lists/welcome.csv', stateDir: 's3://state/campaigns/welcome/' }),
      undefined,
    );
    assert.equal(problem({ recipientsFile: 'lists/welcome.csv', stateDir: 'campaigns/welcome' }), undefined);
  });

  it('refuses a folder as a file, an object as the state folder, and malformed locations', () => {
    assert.match(problem({ recipientsFile: 's3://lists/welcome/' }) ?? '', /^recipientsFile: .*names a folder/);
    assert.match(
      problem({ recipientsFile: 'a.csv', stateDir: 's3://state/welcome' }) ?? '',
      /^stateDir: .*ends with "\/"/,
    );
    assert.match(problem({ recipientsFile: 's3://x/a.csv' }) ?? '', /^recipientsFile: .*bucket names/);
    assert.match(problem({ recipientsFile: 's3://elsewhere/a.csv' }) ?? '', /^recipientsFile: .*not on the allow-list/);
  });
});

describe('templates', () => {
  it('fills in variables, escaping them in HTML only', () => {
    const vars = { name: 'Ada <Countess>', email: 'a@x.org' };
    assert.equal(renderTemplate('Hi {{name}}', vars, 'text'), 'Hi Ada <Countess>');
    assert.equal(renderTemplate('<p>Hi {{name}}</p>', vars, 'html'), '<p>Hi Ada &lt;Countess&gt;</p>');
  });

  it('refuses a template that names a variable the recipients lack', () => {
    assert.throws(
      () => checkTemplateVariables([{ what: 'subject', text: 'Hi {{firstName}}' }], ['email', 'name']),
      /no value for \{\{firstName\}\} in the subject \(their columns: email, name\)/,
    );
    checkTemplateVariables([{ what: 'template', text: 'Hi {{name}} {{#vip}}VIP{{/vip}}' }], ['email', 'name', 'vip']);
  });
});

describe('campaign activities against a real SMTP server', () => {
  let sink: RunningMailSink;
  let dataDir: string;
  const recipients = (count: number, extra = '') =>
    `email,name\n${Array.from({ length: count }, (_, i) => `user${i}@example.com,User ${i}`).join('\n')}\n${extra}`;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-email-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    sink = await startMailSink({ dir: path.join(dataDir, 'sink') });
    process.env.SMTP_URL = sink.url;
  });
  after(async () => {
    await sink.close();
    delete process.env.SMTP_URL;
  });

  let campaigns = 0;
  async function newCampaign(csv: string, extra: Partial<PrepareCampaignRequest> = {}) {
    campaigns += 1;
    const file = `list-${campaigns}.csv`;
    writeFileSync(path.join(dataDir, file), csv);
    const request = {
      campaignId: `unit-${campaigns}`,
      recipientsFile: file,
      subject: 'Hi {{name}}',
      template: 'Hello {{name}}',
      ...extra,
    };
    return { request, prepared: await prepareCampaign(request) };
  }
  const batch = (campaignDir: string, extra: Partial<SendBatchRequest> = {}): SendBatchRequest => ({
    campaignDir,
    batchStart: 0,
    batchSize: 50,
    sentBefore: 0,
    ...extra,
  });
  const receivedBy = async (campaignId: string) =>
    (await readMailbox(sink.dir)).filter((m) => m.messageId.startsWith(`<${campaignId}.`));

  it('sends a batch in order with rendered templates, heartbeating "n / total sent"', async () => {
    const { request, prepared } = await newCampaign(recipients(8, 'nobody,Bad\n'));
    assert.equal(prepared.total, 8);
    assert.equal(prepared.skipped, 1);
    const env = new MockActivityEnvironment();
    const beats: ActivityHeartbeat[] = [];
    env.on('heartbeat', (beat: ActivityHeartbeat) => beats.push(beat));
    const outcome = await runActivity(env, sendEmailBatch, batch(prepared.campaignDir, { batchSize: 5 }));
    assert.ok(outcome.finished);
    assert.equal(outcome.result.sent, 5);
    assert.equal(outcome.result.next, 5);
    assert.equal(beats.at(-1)?.message, '5 / 8 sent');
    const received = await receivedBy(request.campaignId);
    assert.deepEqual(
      received.map((m) => [m.to[0], m.subject]),
      [0, 1, 2, 3, 4].map((i) => [`user${i}@example.com`, `Hi User ${i}`]),
    );
    const stored = await readFile(path.join(sink.dir, received[0]!.file), 'utf8');
    assert.match(stored, /Hello User 0/);
  });

  it('records a 550 for one recipient with the server reply and goes on with the rest', async () => {
    const { prepared } = await newCampaign(recipients(2, 'gone@reject.test,Gone\nlast@example.com,Last\n'));
    const outcome = await runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir));
    assert.ok(outcome.finished);
    assert.equal(outcome.result.sent, 3);
    assert.equal(outcome.result.failed, 1);
    assert.equal(outcome.result.failures[0]?.email, 'gone@reject.test');
    assert.match(outcome.result.failures[0]?.reason ?? '', /rejected by the server: 550 .*mailbox unavailable/);
    const report = await writeCampaignReport({ campaignDir: prepared.campaignDir });
    assert.deepEqual([report.sent, report.failed, report.skipped, report.notSent], [3, 1, 0, 0]);
  });

  it('stops between two messages when cancelled, and the next call carries on without resending', async () => {
    const { request, prepared } = await newCampaign(recipients(20));
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (beat: ActivityHeartbeat) => {
      if (beat.progress.done === 6) env.cancel();
    });
    const first = await runActivity(env, sendEmailBatch, batch(prepared.campaignDir));
    assert.equal(first.finished, false);
    assert.ok(!first.finished && first.checkpoint.next === 6);
    const second = await runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir));
    assert.ok(second.finished);
    assert.equal(second.result.sent, 20, 'the batch counts what it sent before the pause');
    const received = await receivedBy(request.campaignId);
    assert.equal(received.length, 20);
    assert.equal(new Set(received.map((m) => m.to[0])).size, 20, 'no recipient got two messages');
  });

  it('resends the one message a crash left in doubt, and counts it as possibly duplicated', async () => {
    const { request, prepared } = await newCampaign(recipients(4));
    // What a worker killed between the server's reply and the log line leaves behind.
    const logFile = batchLogFile(path.join(dataDir, prepared.campaignDir), 0);
    mkdirSync(path.dirname(logFile), { recursive: true });
    writeFileSync(logFile, `S 0\nA 0 ${Date.now()}\nS 1\n`);
    const outcome = await runActivity(new MockActivityEnvironment({ attempt: 2 }), sendEmailBatch, {
      ...batch(prepared.campaignDir),
    });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.sent, 4);
    assert.equal(outcome.result.possiblyDuplicated, 1);
    assert.deepEqual((await receivedBy(request.campaignId)).map((m) => m.to[0]).sort(), [
      'user1@example.com',
      'user2@example.com',
      'user3@example.com',
    ]);
    const report = await writeCampaignReport({ campaignDir: prepared.campaignDir });
    assert.equal(report.possiblyDuplicated, 1);
  });

  it('paces per message as if a message left in doubt had gone out when the next attempt began', async () => {
    const { request, prepared } = await newCampaign(recipients(4));
    const logFile = batchLogFile(path.join(dataDir, prepared.campaignDir), 0);
    mkdirSync(path.dirname(logFile), { recursive: true });
    writeFileSync(logFile, `S 0\nA 0 ${Date.now() - 60_000}\nS 1\n`);
    const started = Date.now();
    // A first attempt: a pause mid-send leaves the same log as a dead worker, and the next batch activity reads it.
    const outcome = await runActivity(new MockActivityEnvironment(), sendEmailBatch, {
      ...batch(prepared.campaignDir),
      perMessage: { count: 2, ms: 400 },
      recentReplies: [],
    });
    assert.ok(outcome.finished);
    // Message 0's reply, the one in doubt (counted at the retry's start), then the three sent now.
    assert.equal(outcome.result.replies?.length, 5);
    const at = new Map((await receivedBy(request.campaignId)).map((m) => [m.to[0], m.receivedAt]));
    // Message 1 goes at once (message 0 replied a minute ago); message 2 waits a window after the one in doubt,
    // and message 3 a window after message 1.
    assert.ok((at.get('user2@example.com') ?? 0) > started + 400, `${(at.get('user2@example.com') ?? 0) - started} ms`);
    assert.ok((at.get('user3@example.com') ?? 0) > (at.get('user1@example.com') ?? 0) + 400);
  });

  it('counts a message an earlier run left in doubt as the report does, once a restarted run resends it', async () => {
    const { request, prepared } = await newCampaign(recipients(4));
    // The earlier run ended (terminated) while message 1 was on its way: the restart resumes at 1, in a new log.
    const logFile = batchLogFile(path.join(dataDir, prepared.campaignDir), 0);
    mkdirSync(path.dirname(logFile), { recursive: true });
    writeFileSync(logFile, `S 0\nA 0 ${Date.now()}\nS 1\n`);
    const restarted = await prepareCampaign(request);
    assert.deepEqual([restarted.resumeAt, restarted.earlierLogs], [1, ['000000.log']]);
    const outcome = await runActivity(new MockActivityEnvironment(), sendEmailBatch, {
      ...batch(prepared.campaignDir, { batchStart: 1, earlierLogs: restarted.earlierLogs }),
    });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.sent, 3);
    const report = await writeCampaignReport({ campaignDir: prepared.campaignDir });
    assert.deepEqual(
      { running: restarted.possiblyDuplicated + outcome.result.possiblyDuplicated, final: report.possiblyDuplicated },
      { running: 1, final: 1 },
    );
  });

  it('reports a send left in doubt and never resent as unconfirmed, and two such sends as possibly duplicated', async () => {
    const { prepared } = await newCampaign(recipients(4));
    // A campaign cancelled after a worker died mid-send: message 1 once in doubt, message 2 twice.
    const logFile = batchLogFile(path.join(dataDir, prepared.campaignDir), 0);
    mkdirSync(path.dirname(logFile), { recursive: true });
    writeFileSync(logFile, `S 0\nA 0 ${Date.now()}\nS 1\nS 2\nS 2\n`);
    const report = await writeCampaignReport({ campaignDir: prepared.campaignDir });
    assert.deepEqual(
      [report.sent, report.unconfirmed, report.possiblyDuplicated, report.notSent],
      [1, 2, 1, 1],
      'message 3 alone was never sent',
    );
  });

  it('fails the attempt for a retry when the SMTP server is down, without marking the message in doubt', async () => {
    const { prepared } = await newCampaign(recipients(3));
    process.env.SMTP_URL = `smtp://127.0.0.1:${await freePort()}`;
    try {
      await assert.rejects(
        runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir)),
        (err: unknown) =>
          err instanceof ApplicationFailure && !err.nonRetryable && /unreachable.*ECONNREFUSED/.test(err.message),
      );
    } finally {
      process.env.SMTP_URL = sink.url;
    }
    const outcome = await runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir));
    assert.ok(outcome.finished);
    assert.equal(outcome.result.possiblyDuplicated, 0);
  });

  it('stops a batch before a domain has more than its share', async () => {
    const csv = 'email\na1@a.org\na2@a.org\nb1@b.org\na3@a.org\nb2@b.org\n';
    const { prepared } = await newCampaign(csv, { subject: 'Hi', template: 'Hello' });
    const outcome = await runActivity(
      new MockActivityEnvironment(),
      sendEmailBatch,
      batch(prepared.campaignDir, { perDomainPerBatch: 2 }),
    );
    assert.ok(outcome.finished);
    assert.equal(outcome.result.next, 3, 'a3@a.org waits for the next batch');
  });

  it('refuses missing files, bad templates and a reused campaign id with other content', async () => {
    const refuses = async (request: Partial<PrepareCampaignRequest>, pattern: RegExp) =>
      assert.rejects(
        prepareCampaign({
          campaignId: 'refused',
          recipientsFile: 'list-1.csv',
          subject: 'Hi',
          template: 'x',
          ...request,
        }),
        (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && pattern.test(err.message),
      );
    await refuses({ recipientsFile: 'nowhere.csv' }, /recipients file nowhere\.csv does not exist/);
    await refuses({ recipientsFile: '../outside.csv' }, /outside the data dir/);
    await refuses({ template: undefined, templateFile: 'missing.txt' }, /template file missing\.txt does not exist/);
    await refuses({ subject: 'Hi {{nickname}}' }, /no value for \{\{nickname\}\} in the subject/);
    await refuses({ campaignId: 'unit-1', template: 'Other text' }, /Campaign unit-1 already exists/);
  });

  it('picks a re-run campaign up after the last message sent', async () => {
    const { request } = await newCampaign(recipients(6));
    const prepared = await prepareCampaign(request);
    await runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir, { batchSize: 4 }));
    const again = await prepareCampaign(request);
    assert.deepEqual([again.resumeAt, again.sent], [4, 4]);
  });

  it('keeps a campaign where stateDir says, and refuses a stateDir that holds another campaign', async () => {
    const { request, prepared } = await newCampaign(recipients(2), { stateDir: 'campaigns/state-dir' });
    assert.equal(prepared.campaignDir, 'campaigns/state-dir');
    const outcome = await runActivity(new MockActivityEnvironment(), sendEmailBatch, batch(prepared.campaignDir));
    assert.ok(outcome.finished);
    const report = await writeCampaignReport({ campaignDir: prepared.campaignDir });
    assert.equal(report.report, 'campaigns/state-dir/report.json');
    assert.match(await readFile(path.join(dataDir, 'campaigns/state-dir/sends/000000.log'), 'utf8'), /^S 0\nA 0 \d+\n/);
    await assert.rejects(
      prepareCampaign({ ...request, campaignId: 'another' }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'StateFolderMismatch' &&
        /campaigns\/state-dir holds the campaign unit-\d+; give campaign another a stateDir of its own/.test(
          err.message,
        ),
    );
  });
});
