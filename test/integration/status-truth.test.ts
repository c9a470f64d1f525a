/**
 * The status tells the truth, against a real dev server, real workers and a real TLS SMTP server: a failed job shows
 * its root cause (message and type) in `Jobs.status`, the API, the final event and the CLI; a fault that retrying
 * cannot fix (an untrusted certificate) fails at once and says what to set; the event stream shows a pause; with no
 * worker to answer, the last known status comes back marked stale, never zeros; a job whose worker died says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { SMTPServer } from 'smtp-server';
import { generate as generateCertificate } from 'selfsigned';
import { startApi, type RunningApi } from '../../src/api/server';
import { TemporalLink } from '../../src/api/temporal-link';
import type { Jobs, JobView } from '../../src/client/jobs';
import type { JobProgress } from '../../src/shared/job-status';
import { runCli, startWorkerProcess } from '../helpers/processes';
import { readEvents, type ServerEvent } from '../helpers/server-events';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue, waitFor } from '../helpers/temporal';

/** An SMTP server that offers STARTTLS with a self-signed certificate, as a fresh Postfix does. */
async function startTlsSmtpServer(): Promise<{ url: string; received: string[]; close(): Promise<void> }> {
  const pems = await generateCertificate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  const received: string[] = [];
  const server = new SMTPServer({
    key: pems.private,
    cert: pems.cert,
    authOptional: true,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        received.push(...session.envelope.rcptTo.map((rcpt) => rcpt.address));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as { port: number };
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('status truth on a real dev server', () => {
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  let jobs: Jobs;
  let worker: Worker;
  let running: Promise<void>;
  let api: RunningApi;
  const cliEnv = () => ({ TEMPORAL_ADDRESS: env.address, BACKROOM_TASK_QUEUE: taskQueue });
  // Jobs that later tests read back once no worker is left to answer.
  const ended: {
    failed?: string;
    completed?: { id: string; progress: JobProgress; result: unknown };
    paused?: { id: string; done: number };
  } = {};

  before(async () => {
    env = await startTestServer();
    taskQueue = uniqueTaskQueue('status-truth');
    jobs = testJobs(env, taskQueue);
    worker = await createTestWorker(env, taskQueue);
    running = worker.run();
    const link = new TemporalLink({ connect: async () => jobs });
    api = await startApi({ host: '127.0.0.1', port: 0, bodyLimit: 64 * 1024 }, { link, eventIntervalMs: 200 });
  });
  after(async () => {
    await api?.close();
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await env?.teardown();
  });

  it("a bad input's own message and type reach Jobs.status, GET /jobs/{id}, the final event and the CLI", async () => {
    const { id } = await jobs.start('processMedia', {
      input: 'photos/no-such-photo.jpg',
      operations: [{ op: 'thumbnail' }],
    });
    ended.failed = id;
    const events = await readEvents<JobView>(`${api.url}/jobs/${id}/events`);
    const final = events.at(-1);
    assert.equal(final?.event, 'failed', JSON.stringify(events));
    for (const view of [
      final?.data,
      await jobs.status(id),
      (await (await fetch(`${api.url}/jobs/${id}`)).json()) as JobView,
    ]) {
      assert.equal(view?.state, 'failed');
      assert.match(view?.message ?? '', /^FileNotFound: .*no-such-photo\.jpg does not exist/, JSON.stringify(view));
      assert.doesNotMatch(view?.message ?? '', /Activity task failed/);
      assert.deepEqual(
        view?.errors.map((error) => [error.item, error.type]),
        [['processImageResumable', 'FileNotFound']],
      );
      assert.match(view?.errors[0]?.reason ?? '', /no-such-photo\.jpg does not exist/);
    }
    const status = await runCli(['status', id], cliEnv());
    assert.match(status.stdout, /FileNotFound: .*no-such-photo\.jpg does not exist/, status.stdout + status.stderr);
    assert.match(status.stdout, /error {5}processImageResumable: .*does not exist\. \(FileNotFound\)/);
    const result = await runCli(['result', id], cliEnv());
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`job ${id} failed: FileNotFound: .*no-such-photo\\.jpg does not exist`));
  });

  it('an untrusted TLS certificate fails at once, saying what to set, and the advice works', async () => {
    const smtp = await startTlsSmtpServer();
    const previous = process.env.SMTP_URL;
    try {
      process.env.SMTP_URL = smtp.url;
      const refused = await jobs.start('sendEmail', { to: 'ada@example.com', subject: 'Hi', text: 'Hello' });
      await assert.rejects(jobs.result(refused.id));
      const view = await jobs.status(refused.id);
      assert.equal(view.state, 'failed');
      assert.match(view.message, /^SmtpRefusesAll: .*certificate.*DEPTH_ZERO_SELF_SIGNED_CERT/, view.message);
      assert.match(view.message, /NODE_EXTRA_CA_CERTS/);
      assert.match(view.message, /\?tls\.rejectUnauthorized=false/);
      assert.doesNotMatch(view.message, /unreachable|will retry/);
      assert.equal(view.errors[0]?.type, 'SmtpRefusesAll');

      // The advice for a test server: the same message goes out over TLS that is not verified.
      process.env.SMTP_URL = `${smtp.url}/?tls.rejectUnauthorized=false`;
      const sent = await jobs.start('sendEmail', { to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
      assert.equal(((await jobs.result(sent.id)) as { outcome: string }).outcome, 'sent');
      assert.deepEqual(smtp.received, ['bob@example.com']);
    } finally {
      if (previous === undefined) delete process.env.SMTP_URL;
      else process.env.SMTP_URL = previous;
      await smtp.close();
    }
  });

  it('the event stream shows paused after a pause signal', async () => {
    const { id } = await jobs.start('simpleTest', { message: 'pause me', durationSeconds: 60 });
    let pausedAt = 0;
    const events = await readEvents<JobView>(`${api.url}/jobs/${id}/events`, (event) => {
      if (!pausedAt && event.data.progress.done >= 1) {
        pausedAt = Date.now();
        void jobs.pause(id);
      }
      return event.data.state === 'paused' && event.data.activities.length === 0;
    });
    const first = events.find((event) => event.data.state === 'paused');
    assert.ok(first, JSON.stringify(events.map((event) => event.data.state)));
    console.log(`# paused appeared in the event stream ${(first.at - pausedAt) / 1000} s after the pause was sent`);
    ended.paused = { id, done: (events.at(-1) as ServerEvent<JobView>).data.progress.done };
    assert.ok(ended.paused.done >= 1);
  });

  it('an ended job reports its final counts, even when its last progress report was throttled away', async () => {
    // Validation ends before its first progress report is due: only the activity's result carries the final count.
    const { id } = await jobs.start('generateSyntheticData', {
      datasetId: 'tiny',
      pages: 2,
      width: 256,
      height: 256,
      patchesPerPage: 4,
    });
    await jobs.result(id);
    const view = await jobs.status(id);
    assert.equal(view.state, 'completed');
    assert.equal(view.progress.unit, 'pairs');
    assert.ok(view.progress.total > 0 && view.progress.done === view.progress.total, JSON.stringify(view.progress));
    assert.equal(view.stale, undefined, 'a worker answered');
    ended.completed = { id, progress: view.progress, result: view.result };
  });

  it('with no worker to answer, the last known status comes back marked stale, never zeros', async () => {
    worker.shutdown();
    await running;
    const completed = await jobs.status(ended.completed?.id ?? '', { queryTimeoutMs: 1000 });
    assert.equal(completed.stale, true);
    assert.equal(completed.state, 'completed');
    assert.deepEqual(completed.progress, ended.completed?.progress, 'the final counts, from the memo');
    assert.deepEqual(completed.result, ended.completed?.result, 'the result, from the close event');

    const failed = await jobs.status(ended.failed ?? '', { queryTimeoutMs: 1000 });
    assert.equal(failed.stale, true);
    assert.equal(failed.state, 'failed');
    assert.match(failed.message, /^FileNotFound: .*does not exist/);
    assert.equal(failed.errors[0]?.type, 'FileNotFound');

    const paused = await jobs.status(ended.paused?.id ?? '', { queryTimeoutMs: 1000 });
    assert.equal(paused.stale, true);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.stage, 'counting');
    assert.deepEqual(paused.progress, { done: ended.paused?.done, total: 60, unit: 'seconds' });

    const shown = await runCli(['status', ended.paused?.id ?? ''], cliEnv());
    assert.match(shown.stdout, /stale {5}no worker answered in time/, shown.stdout + shown.stderr);
    assert.doesNotMatch(shown.stdout, /progress {2}0 \//);
  });
});

describe('a worker that died mid-activity', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await startTestServer();
  });
  after(async () => {
    await env?.teardown();
  });

  it('shows "worker lost … attempt 2" and the heartbeat progress while no worker runs', async () => {
    const taskQueue = uniqueTaskQueue('worker-lost');
    const jobs = testJobs(env, taskQueue);
    const processEnv = { TEMPORAL_ADDRESS: env.address, BACKROOM_TASK_QUEUE: taskQueue };
    const worker = await startWorkerProcess(processEnv);
    const { id } = await jobs.start('simpleTest', { message: 'lost', durationSeconds: 600 });
    try {
      await waitFor('2 s counted', async () => (await jobs.status(id)).progress.done >= 2, 60_000);
      worker.process.kill('SIGKILL');
      await worker.exited;
      // The activity's heartbeat timeout (10 s) has to pass before the server gives up on the dead worker.
      const view = await waitFor(
        'the retry to be waiting for a worker',
        async () => {
          const status = await jobs.status(id, { queryTimeoutMs: 1000 });
          return status.activities.some((activity) => activity.waiting) && status;
        },
        90_000,
      );
      assert.equal(view.stale, true, 'no worker answered the query');
      assert.equal(view.state, 'running');
      assert.ok(view.progress.done >= 2 && view.progress.total === 600, JSON.stringify(view.progress));
      assert.equal(view.progress.unit, 'seconds');
      const [activity] = view.activities;
      assert.equal(activity?.attempt, 2);
      assert.equal(activity?.state, 'SCHEDULED');
      assert.equal(activity?.lastFailureType, 'HeartbeatTimeout');
      assert.match(
        view.message,
        /^countSeconds: worker \(.+\) lost at \d\d:\d\d:\d\d UTC \(heartbeat timeout\); attempt 2 starts .*when a worker picks it up$/,
      );
      const shown = await runCli(['status', id], processEnv);
      assert.match(shown.stdout, /waiting: worker \(.+\) lost at .* \(heartbeat timeout\); attempt 2/, shown.stdout);
    } finally {
      await env.client.workflow.getHandle(id).terminate('test over');
    }
  });
});
