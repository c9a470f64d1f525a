/**
 * sendBulkEmail on object storage, on a real S3-compatible server (SeaweedFS), a real dev server and real SMTP (the
 * mail sink), with two worker processes that share no folder (each its own BACKROOM_DATA_DIR and temporary folder).
 * The recipients file and the template are objects; the campaign's state goes next to them in the bucket. One worker
 * is SIGKILLed in the middle of a batch, and the campaign still completes: every recipient gets the message, the
 * messages the dead worker left in doubt are resent and counted (the report names every recipient that may have two
 * copies, and the count stays within one chunk), the state and the report are in the bucket and nothing of the
 * campaign is on either worker's disk. Started again, the campaign resumes from the bucket and sends nothing twice. A
 * recipients object that does not exist fails the job at once, naming it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { MAX_CHUNK } from '../../src/activities/email/bucket-send-log';
import type { CampaignReport } from '../../src/activities/email/report';
import type { Jobs } from '../../src/client/jobs';
import { readMailbox } from '../../src/mail-sink/mailbox';
import { startMailSink, type RunningMailSink } from '../../src/mail-sink/sink';
import { rootCause } from '../../src/shared/failures';
import type { BulkEmailResult } from '../../src/workflows/email';
import { startWorkerProcess, type WorkerProcess } from '../helpers/processes';
import { filesUnder, makeWorkerDisk, removeWorkerDisk, workerDiskEnv, type WorkerDisk } from '../helpers/disk';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs';
import { sleep, startTestServer, testJobs, uniqueTaskQueue, waitFor } from '../helpers/temporal';

const BUCKET = 'mail-lists';
const RECIPIENTS = 240;
/** "80/s" makes batches of 40, one every half second: the campaign takes about 3 s, time enough to kill mid-batch. */
const RATE = '80/s';
const BATCH = 40;

describe('sendBulkEmail on object storage, two workers with no shared disk', { timeout: 5 * 60_000 }, () => {
  let s3: SeaweedS3;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;
  let sink: RunningMailSink;
  let sinkDir: string;
  const workers: WorkerProcess[] = [];
  let secondWorker: Promise<WorkerProcess> | undefined;
  const disks: WorkerDisk[] = [];
  const previousBuckets = process.env.BACKROOM_S3_BUCKETS;

  const keys = (prefix: string) => s3.keys(BUCKET, prefix);

  async function text(key: string): Promise<string> {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return (await got.Body?.transformToString('utf8')) ?? '';
  }

  const received = async (campaignId: string) =>
    (await readMailbox(sinkDir)).filter((m) => m.messageId.startsWith(`<${campaignId}.`));

  before(async () => {
    const began = performance.now();
    sinkDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-s3-email-sink-'));
    [s3, env, sink] = await Promise.all([
      startSeaweedS3({ buckets: [BUCKET] }),
      startTestServer(),
      startMailSink({ dir: sinkDir }),
    ]);
    const serversUp = performance.now();
    const taskQueue = uniqueTaskQueue('s3-email');
    // The door (the Jobs client) checks buckets against this process's allow-list, as the workers do against theirs.
    process.env.BACKROOM_S3_BUCKETS = BUCKET;
    jobs = testJobs(env, taskQueue);

    const rows = Array.from({ length: RECIPIENTS }, (_, i) => `person${i}@example.org,Person ${i}`);
    await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'lists/customers.csv', Body: `email,name\n${rows.join('\n')}\n` }),
    );
    await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'templates/welcome.txt', Body: 'Hello {{name}}, welcome.\n' }),
    );

    for (let index = 0; index < 2; index++) disks.push(makeWorkerDisk(`s3-email-worker${index}`));
    const startWorker = (disk: WorkerDisk) =>
      startWorkerProcess({
        ...s3.env,
        TEMPORAL_ADDRESS: env.address,
        BACKROOM_TASK_QUEUE: taskQueue,
        ...workerDiskEnv(disk),
        BACKROOM_S3_BUCKETS: BUCKET,
        SMTP_URL: sink.url,
      });
    // The first worker is awaited; the second comes up while the campaign runs (it is there long before the dead
    // worker's heartbeat times out), so the test does not wait for two starts on a machine of two cores.
    workers.push(await startWorker(disks[0]!));
    secondWorker = startWorker(disks[1]!).then((worker) => {
      workers.push(worker);
      return worker;
    });
    const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);
    console.log(`servers up in ${seconds(began)} s, a worker in ${seconds(serversUp)} s more`);
  });

  after(async () => {
    const began = performance.now();
    await secondWorker?.catch(() => undefined);
    // Nothing of a test worker needs to survive it: no graceful shutdown to wait for.
    for (const worker of workers) {
      if (worker.process.exitCode === null && worker.process.signalCode === null) {
        worker.process.kill('SIGKILL');
        await worker.exited;
      }
    }
    await Promise.all([env?.teardown(), sink?.close(), s3?.stop()]);
    console.log(`stopped in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    for (const disk of disks) removeWorkerDisk(disk);
    rmSync(sinkDir, { recursive: true, force: true });
    if (previousBuckets === undefined) delete process.env.BACKROOM_S3_BUCKETS;
    else process.env.BACKROOM_S3_BUCKETS = previousBuckets;
  });

  it('completes with the worker of a batch killed mid-batch: everyone once, doubts counted, state in the bucket', async () => {
    const campaignId = 'welcome-s3';
    const started = performance.now();
    const { id } = await jobs.start('sendBulkEmail', {
      campaignId,
      recipientsFile: `s3://${BUCKET}/lists/customers.csv`,
      templateFile: `s3://${BUCKET}/templates/welcome.txt`,
      subject: 'Hi {{name}}',
      rate: RATE,
    });
    const handle = env.client.workflow.getHandle(id);
    await waitFor('a batch received', async () => (await received(campaignId)).length >= BATCH, 60_000);

    // Kill the worker of the batch going on while its messages are going out (the sink has part of the batch).
    let killed: { worker: WorkerProcess; receivedAtKill: number } | undefined;
    const deadline = Date.now() + 20_000;
    while (!killed && Date.now() < deadline) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const batch = pending.find((activity) => activity.activityType?.name === 'sendEmailBatch');
      const count = (await received(campaignId)).length;
      const holder = workers.find((worker) => batch?.lastWorkerIdentity?.startsWith(`${worker.process.pid}@`));
      if (holder && count % BATCH >= 3 && count % BATCH <= BATCH - 5) {
        holder.process.kill('SIGKILL');
        killed = { worker: holder, receivedAtKill: count };
      } else {
        await sleep(3);
      }
    }
    assert.ok(killed, 'caught a batch on its way');
    await killed.worker.exited;
    const killedAt = (performance.now() - started) / 1000;
    await secondWorker;

    const result = await jobs.result<BulkEmailResult>(id);
    const seconds = (performance.now() - started) / 1000;
    const messages = await received(campaignId);
    console.log(
      `s3 campaign: ${RECIPIENTS} recipients in ${seconds.toFixed(1)} s, a worker killed at ${killedAt.toFixed(1)} s ` +
        `after ${killed.receivedAtKill} ` +
        `received; ${messages.length - RECIPIENTS} arrived twice, ${result.possiblyDuplicated} reported possibly twice`,
    );
    assert.equal(result.outcome, 'completed');
    assert.deepEqual([result.total, result.sent, result.failed, result.skipped], [RECIPIENTS, RECIPIENTS, 0, 0]);

    // The dead worker's batch went on elsewhere: a sendEmailBatch started again on a later attempt.
    const history = await handle.fetchHistory();
    const retried = (history.events ?? []).filter(
      (event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1,
    );
    assert.ok(retried.length >= 1, 'a batch was taken over after the kill');

    // Every recipient got the message, rendered from the template in the bucket.
    const expected = Array.from({ length: RECIPIENTS }, (_, i) => `person${i}@example.org`);
    assert.deepEqual([...new Set(messages.map((m) => m.to[0]))].sort(), expected.sort());
    const sample = messages.find((m) => m.to[0] === 'person7@example.org');
    assert.equal(sample?.subject, 'Hi Person 7');
    assert.match(readFileSync(path.join(sinkDir, sample.file), 'utf8'), /Hello Person 7, welcome\./);

    // Duplicates are bounded and reported truthfully: every recipient with two copies is named in the report, the
    // result and the report agree, and no more than one chunk of messages was in doubt.
    const copies = new Map<string, number>();
    for (const message of messages) copies.set(message.to[0] ?? '', (copies.get(message.to[0] ?? '') ?? 0) + 1);
    const twice = [...copies].filter(([, count]) => count > 1).map(([email]) => email);
    assert.ok(
      [...copies.values()].every((count) => count <= 2),
      'no message arrived three times',
    );
    const prefix = `email/${campaignId}/`;
    const report = JSON.parse(await text(`${prefix}report.json`)) as CampaignReport;
    for (const email of twice) {
      assert.ok(report.possiblyDuplicatedRecipients.includes(email), `${email} arrived twice and is reported`);
    }
    assert.equal(result.possiblyDuplicated, report.possiblyDuplicated);
    assert.equal(report.possiblyDuplicatedRecipients.length, report.possiblyDuplicated);
    assert.ok(
      report.possiblyDuplicated <= MAX_CHUNK,
      `${report.possiblyDuplicated} possibly duplicated, more than a chunk`,
    );
    assert.deepEqual([report.sent, report.unconfirmed, report.notSent], [RECIPIENTS, 0, 0]);
    assert.equal(report.recipientsFile, `s3://${BUCKET}/lists/customers.csv`);
    assert.match(await text(`${prefix}report.txt`), new RegExp(`${RECIPIENTS} of ${RECIPIENTS} sent`));
    assert.equal(result.report, `s3://${BUCKET}/${prefix}report.json`);

    // The campaign's state is in the bucket: the campaign, and its send log in a few objects per batch.
    const stored = await keys(prefix);
    const campaign = JSON.parse(await text(`${prefix}campaign.json`)) as { recipients: unknown[] };
    assert.equal(campaign.recipients.length, RECIPIENTS);
    const segments = stored.filter((key) => key.startsWith(`${prefix}sends/`));
    assert.deepEqual(
      stored.filter((key) => !segments.includes(key)),
      [`${prefix}campaign.json`, `${prefix}report.json`, `${prefix}report.txt`],
    );
    assert.ok(segments.length >= RECIPIENTS / BATCH, 'every batch logged');
    assert.ok(segments.length <= RECIPIENTS / 4, `${segments.length} log objects for ${RECIPIENTS} messages`);
    assert.ok(
      segments.every((key) => /^email\/welcome-s3\/sends\/\d{6}\.log\/\d{6}\.[0-9a-z]+-[0-9a-f]{8}$/.test(key)),
      segments.join('\n'),
    );

    // Neither worker kept anything of the campaign on its disk.
    for (const disk of disks) {
      const left = [...filesUnder(disk.dataDir), ...filesUnder(disk.tmpDir)].filter((file) =>
        /email|sends|campaign|report|customers|backroom-scratch/.test(file),
      );
      assert.deepEqual(left, [], `campaign files on a worker's disk (${disk.dataDir}, ${disk.tmpDir})`);
    }
  });

  it('the same campaign started again resumes from the bucket: nothing is sent again', async () => {
    const campaignId = 'welcome-s3';
    const before = (await received(campaignId)).length;
    const segmentsBefore = await keys(`email/${campaignId}/sends/`);
    const { id } = await jobs.start('sendBulkEmail', {
      campaignId,
      recipientsFile: `s3://${BUCKET}/lists/customers.csv`,
      templateFile: `s3://${BUCKET}/templates/welcome.txt`,
      subject: 'Hi {{name}}',
      rate: RATE,
    });
    const result = await jobs.result<BulkEmailResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.sent, RECIPIENTS, 'counted from the send log in the bucket');
    assert.equal((await received(campaignId)).length, before, 'no message was sent again');
    assert.deepEqual(await keys(`email/${campaignId}/sends/`), segmentsBefore, 'no batch ran');
  });

  it('fails at once, naming it, when the recipients object does not exist', async () => {
    const started = performance.now();
    const { id } = await jobs.start('sendBulkEmail', {
      campaignId: 'missing-list',
      recipientsFile: `s3://${BUCKET}/lists/nobody.csv`,
      subject: 'Hi',
      template: 'Hello',
    });
    await assert.rejects(jobs.result(id), (err: unknown) => {
      const cause = rootCause(err);
      assert.equal(cause.type, 'EmailInputMissing', cause.message);
      assert.equal(cause.message, `The recipients file s3://${BUCKET}/lists/nobody.csv does not exist.`);
      return true;
    });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 15, `failed in ${seconds.toFixed(1)} s`);
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const attempts = (history.events ?? []).flatMap((event) => event.activityTaskStartedEventAttributes?.attempt ?? []);
    assert.ok(attempts.length >= 1 && attempts.every((attempt) => attempt === 1), 'the failure is not retried');
    assert.deepEqual(await keys('email/missing-list/'), [], 'no campaign state was written');
  });
});
