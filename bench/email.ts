/**
 * Email benchmark, measured side by side in one run against the mail sink running as its own process (as a real
 * SMTP server would be):
 *   1. N messages with no limit: a bare nodemailer loop against sendBulkEmail on a real dev server and worker: the
 *      cost of durability per message. Both sides send the same messages (composeMessage: templates, Message-ID,
 *      header) over the same connection strategy (openSmtpTransport: one pooled connection kept open, PIPELINING as
 *      the server offers it, one message at a time); the bare loop has no Temporal and no send log. After an untimed
 *      warm-up of each side (1,000 messages), measured BENCH_EMAIL_RUNS times (default 3), each campaign between two
 *      halves of a bare loop, and the medians printed with the spread, since the machine may be shared;
 *   2. a rate-limited campaign: the rate achieved (from the sink's receive times) against the rate configured, and
 *      the busiest window of the limit's length and of 1 s.
 * Sizes: BENCH_EMAIL_MESSAGES (default 10000), BENCH_EMAIL_RATE (default "50/s"), BENCH_EMAIL_LIMITED (default 500).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Campaign } from '../src/activities/email/campaign';
import { composeMessage } from '../src/activities/email/send-batch';
import { openSmtpTransport } from '../src/activities/email/smtp';
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

/** CPU seconds a process has used (Linux /proc; 0 elsewhere or once it is gone). */
function processCpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return 0;
  }
}

/** The children of this process named `name` (the Temporal dev server), from /proc. */
function childPids(name: string): number[] {
  try {
    return readdirSync(`/proc/${process.pid}/task`)
      .flatMap((task) => readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number)
      .filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name);
  } catch {
    return [];
  }
}

/**
 * CPU used per message by this process (bare loop, or worker), the sink and the Temporal server, in ms: less
 * sensitive to a busy machine than the rates, since waiting for a core costs no CPU time.
 */
function cpuMeter(sinkPid: number | undefined, serverPids: number[]) {
  const read = () => {
    const own = process.cpuUsage();
    return {
      own: (own.user + own.system) / 1e6,
      sink: processCpuSeconds(sinkPid),
      server: serverPids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
    };
  };
  let start = read();
  const total = { own: 0, sink: 0, server: 0 };
  return {
    resume: () => void (start = read()),
    pause: () => {
      const now = read();
      total.own += now.own - start.own;
      total.sink += now.sink - start.sink;
      total.server += now.server - start.server;
    },
    perMessage: (messages: number) => {
      const ms = (seconds: number) => ((seconds * 1000) / messages).toFixed(2);
      return { own: ms(total.own), sink: ms(total.sink), server: ms(total.server) };
    },
  };
}

async function startSinkProcess(dir: string): Promise<{ url: string; pid: number | undefined; stop(): void }> {
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
  return { url: `smtp://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

function writeRecipients(dataDir: string, file: string, count: number): void {
  const rows = Array.from({ length: count }, (_, i) => `bench${i}@example.com,Reader ${i},${i}`);
  writeFileSync(path.join(dataDir, file), `email,name,n\n${rows.join('\n')}\n`);
}

/**
 * The same messages as a campaign's (composeMessage), over the same kind of connection (openSmtpTransport), one at a
 * time, with nothing durable around them.
 */
async function bareLoop(count: number, campaignId = 'bench-bare'): Promise<number> {
  const campaign: Pick<Campaign, 'campaignId' | 'from' | 'messageIdDomain' | 'subject' | 'body' | 'format'> = {
    campaignId,
    from: 'Backroom <noreply@backroom.local>',
    messageIdDomain: 'backroom.local',
    subject: SUBJECT,
    body: TEMPLATE,
    format: 'text',
  };
  const transport = openSmtpTransport();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const vars = { email: `bare${i}@example.com`, name: `Reader ${i}`, n: String(i) };
    await transport.sendMail(composeMessage(campaign, vars, vars.email));
  }
  transport.close();
  return (performance.now() - started) / 1000;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** "a (b–c)": the median and the spread of a few runs. */
const spread = (values: number[], digits = 0) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

/**
 * Where a campaign's time went between its batches, from its send logs: the time from one batch's last reply to the
 * next batch's first (minus one message's time, as measured inside the batches) is the cost of ending an activity
 * and dispatching the next one.
 */
function batchGaps(campaignDir: string): { batches: number; gapsMs: number[]; perMessageMs: number } {
  const sends = path.join(campaignDir, 'sends');
  const replies = readdirSync(sends)
    .filter((name) => name.endsWith('.log'))
    .sort()
    .map((name) =>
      readFileSync(path.join(sends, name), 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('A '))
        .map((line) => Number(line.split(' ')[2])),
    )
    .filter((times) => times.length > 0);
  const inside = replies.flatMap((times) => times.slice(1).map((t, i) => t - times[i]!));
  const perMessageMs = inside.reduce((a, b) => a + b, 0) / Math.max(1, inside.length);
  const gapsMs = replies.slice(1).map((times, i) => times[0]! - replies[i]!.at(-1)! - perMessageMs);
  return { batches: replies.length, gapsMs, perMessageMs };
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
  const runs = Math.max(1, Number(settingFromEnv('BENCH_EMAIL_RUNS', '3')));
  const rate = parseRate(rateText);
  if (!rate) throw new Error(`BENCH_EMAIL_RATE "${rateText}" is not a rate like "50/s"`);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-email-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  const sinkDir = path.join(dataDir, 'sink');
  const sink = await startSinkProcess(sinkDir);
  process.env.SMTP_URL = sink.url;
  writeRecipients(dataDir, 'unlimited.csv', count);
  writeRecipients(dataDir, 'limited.csv', limitedCount);
  console.log(
    `\nEmail benchmark: ${count} messages × ${runs} runs to a local SMTP sink process (${sink.url}), ` +
      `data in ${dataDir}`,
  );

  // The server and worker run during the bare loop too, so both sides share the machine the same way; each campaign
  // runs between two halves of a bare loop, so drift on a noisy machine hits both sides alike.
  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-email');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  try {
    // Warm both sides alike, as a worker that has run for days is (JIT, the sink's parser, the workflow's first run
    // and the campaign's code path), measured by neither: the bare loop's warm-up alone left the first campaign to
    // pay for compiling the batch's code while the loop beside it did not.
    const jobs = testJobs(env, taskQueue);
    const warmUp = Math.min(1000, count);
    writeRecipients(dataDir, 'warm-up.csv', warmUp);
    await bareLoop(warmUp, 'bench-warm-up');
    const { id: warmUpId } = await jobs.start('sendBulkEmail', {
      campaignId: 'bench-warm-up-campaign',
      recipientsFile: 'warm-up.csv',
      subject: SUBJECT,
      template: TEMPLATE,
    });
    await jobs.result(warmUpId);
    const bareRates: number[] = [];
    const jobRates: number[] = [];
    const ratios: number[] = [];
    const serverPids = childPids('temporal');
    for (let run = 1; run <= runs; run++) {
      const bareCpu = cpuMeter(sink.pid, serverPids);
      const jobCpu = cpuMeter(sink.pid, serverPids);
      bareCpu.resume();
      let bareSeconds = await bareLoop(Math.ceil(count / 2), `bench-bare-${run}`);
      bareCpu.pause();
      jobCpu.resume();
      const started = performance.now();
      const campaignId = `bench-unlimited-${run}`;
      const { id } = await jobs.start('sendBulkEmail', {
        campaignId,
        recipientsFile: 'unlimited.csv',
        subject: SUBJECT,
        template: TEMPLATE,
      });
      const result = await jobs.result<BulkEmailResult>(id);
      const seconds = (performance.now() - started) / 1000;
      jobCpu.pause();
      bareCpu.resume();
      bareSeconds += await bareLoop(Math.floor(count / 2), `bench-bare-${run}b`);
      bareCpu.pause();
      const bare = count / bareSeconds;
      const perSecond = result.sent / seconds;
      bareRates.push(bare);
      jobRates.push(perSecond);
      ratios.push(perSecond / bare);
      const gaps = batchGaps(path.join(dataDir, 'email', campaignId));
      const gapTotal = gaps.gapsMs.reduce((a, b) => a + b, 0);
      console.log(
        `  run ${run}: bare loop ${bare.toFixed(0)} messages/s, sendBulkEmail ${perSecond.toFixed(0)} messages/s ` +
          `(${seconds.toFixed(1)} s, ${result.sent} sent, ${result.runs} runs) → ${(perSecond / bare).toFixed(3)}; ` +
          `${gaps.batches} batches, ${gaps.perMessageMs.toFixed(2)} ms a message inside them, between them ` +
          `${gaps.gapsMs.map((g) => g.toFixed(0)).join('/')} ms (${((gapTotal / 1000 / seconds) * 100).toFixed(1)} %)`,
      );
      const [b, j] = [bareCpu.perMessage(count), jobCpu.perMessage(result.sent)];
      console.log(
        `         CPU ms a message: bare loop ${b.own} + sink ${b.sink} (Temporal idle ${b.server}); ` +
          `campaign: worker ${j.own} + sink ${j.sink} + Temporal ${j.server}`,
      );
    }
    console.log(`  bare nodemailer loop     ${spread(bareRates)} messages/s (median, min–max of ${runs})`);
    console.log(`  sendBulkEmail, no limit  ${spread(jobRates)} messages/s`);
    console.log(`  → ${spread(ratios, 3)} of the bare loop (median of the runs' ratios)`);

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
      ? `${achieved.toFixed(1)} messages/s → ${(achieved / configured).toFixed(3)} of`
      : 'under one window: no rate for';
    const oneSecond = rate.perMs === 1000 ? '' : `; busiest 1 s window: ${busiestWindow(times, 1000)}`;
    console.log(
      `  sendBulkEmail at ${rateText.padEnd(7)} ${share} the configured ${configured}/s (${limited.sent} sent); ` +
        `busiest ${rate.perMs / 1000} s window: ${busiestWindow(times, rate.perMs)} (limit ${rate.count})${oneSecond}`,
    );
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
    sink.stop();
  }
}
