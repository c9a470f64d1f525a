/**
 * Email benchmark, measured side by side in one run against the mail sink running as its own process (as a real
 * SMTP server would be):
 *   1. N messages with no limit: a bare nodemailer loop (same connection reuse, same templates, no Temporal, no send
 *      log) against sendBulkEmail on a real dev server and worker: the cost of durability per message;
 *   2. a rate-limited campaign: the rate achieved (from the sink's receive times) against the rate configured, and
 *      the busiest window.
 * Sizes: BENCH_EMAIL_MESSAGES (default 10000), BENCH_EMAIL_RATE (default "50/s"), BENCH_EMAIL_LIMITED (default 500).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSmtpTransport } from '../src/activities/email/smtp';
import { renderTemplate } from '../src/activities/email/template';
import { busiestWindow, readMailbox } from '../src/mail-sink/mailbox';
import { freePort, isListening } from '../src/ports';
import { parseRate } from '../src/shared/send-plan';
import type { BulkEmailResult } from '../src/workflows/email';
import { PROJECT_ROOT } from '../test/helpers/processes';
import { createTestWorker, sleep, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';

const SUBJECT = 'Hi {{name}}';
const TEMPLATE = 'Hello {{name}},\n\nthis is message {{n}} of the benchmark.\n';

function settingFromEnv(name: string, fallback: string): string {
  return process.env[name] || fallback;
}

async function startSinkProcess(dir: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/mail-sink/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, BACKROOM_MAIL_SINK_PORT: String(port), BACKROOM_MAIL_SINK_DIR: dir },
    stdio: 'ignore',
  });
  while (!(await isListening('127.0.0.1', port))) {
    if (child.exitCode !== null) throw new Error('The mail sink exited early');
    await sleep(100);
  }
  return { url: `smtp://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

function writeRecipients(dataDir: string, file: string, count: number): void {
  const rows = Array.from({ length: count }, (_, i) => `bench${i}@example.com,Reader ${i},${i}`);
  writeFileSync(path.join(dataDir, file), `email,name,n\n${rows.join('\n')}\n`);
}

/** The same messages over one reused connection, one at a time, with nothing durable around them. */
async function bareLoop(count: number): Promise<number> {
  const transport = openSmtpTransport();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const vars = { email: `bare${i}@example.com`, name: `Reader ${i}`, n: String(i) };
    await transport.sendMail({
      from: 'Backroom <noreply@backroom.local>',
      to: vars.email,
      subject: renderTemplate(SUBJECT, vars, 'text'),
      text: renderTemplate(TEMPLATE, vars, 'text'),
    });
  }
  transport.close();
  return (performance.now() - started) / 1000;
}

/**
 * Messages per second over the whole windows from the first arrival: (n − 1) / span would overstate it, since a
 * campaign of exactly k windows' worth can arrive in a little over k − 1 windows.
 */
function achievedRate(times: number[], windowMs: number): number | undefined {
  const first = Math.min(...times);
  const windows = Math.floor((Math.max(...times) - first) / windowMs);
  if (windows < 1) return undefined;
  return times.filter((t) => t < first + windows * windowMs).length / ((windows * windowMs) / 1000);
}

export async function emailBenchmark(): Promise<void> {
  const count = Number(settingFromEnv('BENCH_EMAIL_MESSAGES', '10000'));
  const rateText = settingFromEnv('BENCH_EMAIL_RATE', '50/s');
  const limitedCount = Number(settingFromEnv('BENCH_EMAIL_LIMITED', '500'));
  const rate = parseRate(rateText);
  if (!rate) throw new Error(`BENCH_EMAIL_RATE "${rateText}" is not a rate like "50/s"`);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-email-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  const sinkDir = path.join(dataDir, 'sink');
  const sink = await startSinkProcess(sinkDir);
  process.env.SMTP_URL = sink.url;
  writeRecipients(dataDir, 'unlimited.csv', count);
  writeRecipients(dataDir, 'limited.csv', limitedCount);
  console.log(`\nEmail benchmark: ${count} messages to a local SMTP sink process (${sink.url}), data in ${dataDir}`);

  // The server and worker run during the bare loop too, so both sides share the machine the same way; half the
  // bare loop runs before the campaign and half after, so drift on a noisy machine hits both sides alike.
  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-email');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  try {
    await bareLoop(Math.min(1000, count)); // warm-up: JIT and the sink's parser, measured by neither side
    let bareSeconds = await bareLoop(Math.ceil(count / 2));
    const jobs = testJobs(env, taskQueue);
    const started = performance.now();
    const { id } = await jobs.start('sendBulkEmail', {
      campaignId: 'bench-unlimited',
      recipientsFile: 'unlimited.csv',
      subject: SUBJECT,
      template: TEMPLATE,
    });
    const result = await jobs.result<BulkEmailResult>(id);
    const seconds = (performance.now() - started) / 1000;
    bareSeconds += await bareLoop(Math.floor(count / 2));
    console.log(
      `  bare nodemailer loop     ${(count / bareSeconds).toFixed(0)} messages/s (${bareSeconds.toFixed(1)} s)`,
    );
    const perSecond = result.sent / seconds;
    console.log(
      `  sendBulkEmail, no limit  ${perSecond.toFixed(0)} messages/s (${seconds.toFixed(1)} s, ${result.sent} sent, ` +
        `${result.runs} runs)  → ${(perSecond / (count / bareSeconds)).toFixed(2)} of the bare loop`,
    );

    const { id: limitedId } = await jobs.start('sendBulkEmail', {
      campaignId: 'bench-limited',
      recipientsFile: 'limited.csv',
      subject: SUBJECT,
      template: TEMPLATE,
      rate: rateText,
    });
    const limited = await jobs.result<BulkEmailResult>(limitedId);
    const times = (await readMailbox(sinkDir))
      .filter((m) => m.messageId.startsWith('<bench-limited.'))
      .map((m) => m.receivedAt);
    const configured = (rate.count * 1000) / rate.perMs;
    const achieved = achievedRate(times, rate.perMs);
    const share = achieved
      ? `${achieved.toFixed(1)} messages/s → ${(achieved / configured).toFixed(2)} of`
      : 'under one window: no rate for';
    console.log(
      `  sendBulkEmail at ${rateText.padEnd(7)} ${share} the configured ${configured}/s (${limited.sent} sent); ` +
        `busiest ${rate.perMs / 1000} s window: ${busiestWindow(times, rate.perMs)} (limit ${rate.count})`,
    );
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
    sink.stop();
  }
}
