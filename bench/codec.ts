/**
 * Encryption benchmark: what the AES-256-GCM payload codec costs a job start (`workflow.start` latency, p50 / p99,
 * plain client vs encrypting client, rounds alternating so a noisy moment hits both), the codec's own time per
 * payload, and how much bigger a typical job input gets. No worker polls the queue: only the start is measured.
 * Sizes come from BENCH_CODEC_* variables. Nothing asserts on timings.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { EncryptionCodec } from '../src/codec/encryption-codec';
import { startTestServer, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv, percentile } from './settings';

const payloadBytes = (payload: Payload) => temporal.api.common.v1.Payload.encode(payload).finish().length;
const fixed = (value: number, digits = 1) => value.toFixed(digits);

/** Job inputs as users send them: a tiny one, and an email campaign with a real-sized template. */
const INPUTS: [string, unknown][] = [
  ['simpleTest', { message: 'hi', durationSeconds: 30 }],
  [
    'sendBulkEmail',
    {
      campaignId: 'spring-newsletter',
      recipientsFile: 'campaigns/spring/recipients.csv',
      subject: 'Spring news for {{name}}',
      template: `Hello {{name}},\n\n${'Here is what changed this season at the shop, and what comes next. '.repeat(20)}\n`,
      rate: '600/min',
    },
  ],
];

export async function codecBenchmark(): Promise<void> {
  const starts = intFromEnv('BENCH_CODEC_STARTS', 300);
  const rounds = intFromEnv('BENCH_CODEC_ROUNDS', 6);
  console.log(`\nEncryption codec benchmark: ${starts} workflow.start calls per client, 1 in flight, ${rounds} rounds`);
  console.log('  set with BENCH_CODEC_STARTS, BENCH_CODEC_ROUNDS\n');
  const codec = new EncryptionCodec([{ id: 'bench', key: randomBytes(32) }]);

  console.log('payload (job input)   plain bytes  encrypted bytes  ratio  encode µs  decode µs');
  console.log('--------------------  -----------  ---------------  -----  ---------  ---------');
  for (const [name, input] of INPUTS) {
    const payload = defaultPayloadConverter.toPayload(input) as Payload;
    const [encrypted] = await codec.encode([payload]);
    if (!encrypted) throw new Error('the codec returned no payload');
    const times = 5000;
    for (let i = 0; i < 500; i++) await codec.decode(await codec.encode([payload])); // warm-up
    let started = performance.now();
    for (let i = 0; i < times; i++) await codec.encode([payload]);
    const encodeUs = ((performance.now() - started) * 1000) / times;
    started = performance.now();
    for (let i = 0; i < times; i++) await codec.decode([encrypted]);
    const decodeUs = ((performance.now() - started) * 1000) / times;
    const [plain, secret] = [payloadBytes(payload), payloadBytes(encrypted)];
    console.log(
      `${name.padEnd(20)}  ${String(plain).padStart(11)}  ${String(secret).padStart(15)}  ${fixed(secret / plain, 2).padStart(5)}  ` +
        `${fixed(encodeUs).padStart(9)}  ${fixed(decodeUs).padStart(9)}`,
    );
  }

  const env = await startTestServer();
  try {
    const taskQueue = uniqueTaskQueue('bench-codec');
    const namespace = env.namespace ?? 'default';
    const clients: [string, Client][] = [
      ['plain client', new Client({ connection: env.connection, namespace })],
      [
        'encrypting client',
        new Client({ connection: env.connection, namespace, dataConverter: { payloadCodecs: [codec] } }),
      ],
    ];
    const input = INPUTS[1]?.[1];
    const latencies: number[][] = clients.map(() => []);
    let batch = 0;
    const round = async (count: number, record: boolean) => {
      batch++;
      for (const [which, [, client]] of clients.entries()) {
        for (let i = 0; i < count; i++) {
          const before = performance.now();
          await client.workflow.start('sendBulkEmail', {
            taskQueue,
            workflowId: `bench-codec-${batch}-${which}-${i}`,
            args: [input],
          });
          if (record) latencies[which]?.push(performance.now() - before);
        }
      }
    };
    await round(30, false); // warm-up: connections, JIT
    for (let r = 0; r < rounds; r++) await round(Math.ceil(starts / rounds), true);

    console.log('\nworkflow.start of a sendBulkEmail job   starts  p50 ms  p99 ms  mean ms');
    console.log('--------------------------------------  ------  ------  ------  -------');
    const summaries = latencies.map((values) => {
      const sorted = [...values].sort((a, b) => a - b);
      return {
        count: sorted.length,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        mean: sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length,
      };
    });
    for (const [which, summary] of summaries.entries()) {
      console.log(
        `${(clients[which]?.[0] ?? '').padEnd(38)}  ${String(summary.count).padStart(6)}  ${fixed(summary.p50, 2).padStart(6)}  ` +
          `${fixed(summary.p99, 2).padStart(6)}  ${fixed(summary.mean, 2).padStart(7)}`,
      );
    }
    const [plain, encrypted] = summaries;
    if (plain && encrypted) {
      console.log(
        `\nratio encrypted / plain: p50 ${fixed(encrypted.p50 / plain.p50, 2)} (${encrypted.p50 >= plain.p50 ? '+' : ''}` +
          `${fixed(encrypted.p50 - plain.p50, 2)} ms), p99 ${fixed(encrypted.p99 / plain.p99, 2)}, ` +
          `mean ${fixed(encrypted.mean / plain.mean, 2)}\n`,
      );
    }
  } finally {
    await env.teardown();
  }
}
