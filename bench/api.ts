/**
 * HTTP API benchmark: what `POST /jobs/{type}` → 202 costs over the bare client's `workflow.start` and over the typed
 * jobs API it wraps, measured in one run, side by side, alone (1 in flight) and under concurrent load on loopback.
 * Rounds alternate between the kinds so that a noisy moment hits all of them. No worker polls the queue: the jobs
 * only need Temporal to accept them, so every kind measures the start alone, not the machine running the jobs.
 * Sizes come from BENCH_API_* variables. Nothing asserts on timings.
 */
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { buildApi } from '../src/api/server';
import { TemporalLink } from '../src/api/temporal-link';
import { Jobs } from '../src/client/jobs';
import { startTestServer, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv, percentile } from './settings';

interface Measured {
  latencies: number[];
  seconds: number;
}

/** Runs `start` `count` times with `concurrency` in flight; returns each call's latency and the wall time. */
async function underLoad(
  count: number,
  concurrency: number,
  start: (index: number) => Promise<void>,
): Promise<Measured> {
  const latencies: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      const before = performance.now();
      await start(index);
      latencies.push(performance.now() - before);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

function summary(measured: Measured[]) {
  const sorted = measured.flatMap((m) => m.latencies).sort((a, b) => a - b);
  const seconds = measured.reduce((sum, m) => sum + m.seconds, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    mean: sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length,
    perSecond: sorted.length / seconds,
  };
}

type Starter = (index: number) => Promise<void>;

/** Alternates rounds of each starter at one concurrency; returns each one's summary, in order. */
async function sideBySide(starters: Starter[], total: number, concurrency: number, rounds: number) {
  const perRound = Math.ceil(total / rounds);
  const runs: Measured[][] = starters.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [which, start] of starters.entries()) {
      const offset = round * perRound;
      runs[which]?.push(await underLoad(perRound, concurrency, (index) => start(offset + index)));
    }
  }
  return runs.map(summary);
}

const fixed = (value: number, digits = 1) => value.toFixed(digits);

export async function apiBenchmark(): Promise<void> {
  const total = intFromEnv('BENCH_API_STARTS', 600);
  const concurrency = intFromEnv('BENCH_API_CONCURRENCY', 16);
  const rounds = intFromEnv('BENCH_API_ROUNDS', 6);
  console.log(
    `\nHTTP API benchmark: ${total} starts of each kind, alone (1 in flight) and under load (${concurrency} in flight)`,
  );
  console.log(
    `  ${rounds} rounds alternate the kinds; load generator, API and client share this process; dev server in a child`,
  );
  console.log('  set with BENCH_API_STARTS, BENCH_API_CONCURRENCY, BENCH_API_ROUNDS\n');

  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-api');
  const jobs = new Jobs(env.client, taskQueue);
  // All three share one client connection, so the differences are the layers' own work.
  const link = new TemporalLink({ connect: async () => jobs });
  const app = buildApi({ link, bodyLimit: 1024 * 1024 });
  // Time inside the API (request in → response out), to tell its own cost from the HTTP client's.
  const arrivals = new WeakMap<object, number>();
  let inServer = { ms: 0, count: 0 };
  app.addHook('onRequest', async (request) => void arrivals.set(request, performance.now()));
  app.addHook('onResponse', async (request) => {
    inServer.ms += performance.now() - (arrivals.get(request) ?? performance.now());
    inServer.count++;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const input = { message: 'bench', durationSeconds: 60 };
  let batch = 0;
  try {
    const kinds: [string, (id: string) => Promise<void>][] = [
      [
        'client workflow.start (bare)',
        async (id) => {
          await env.client.workflow.start('simpleTest', { taskQueue, workflowId: id, args: [input] });
        },
      ],
      [
        'typed jobs API (Jobs.start)',
        async (id) => {
          await jobs.start('simpleTest', input, { id });
        },
      ],
      [
        'POST /jobs/simpleTest -> 202',
        async (id) => {
          const response = await fetch(`${apiUrl}/jobs/simpleTest?id=${id}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(input),
          });
          if (response.status !== 202) {
            throw new Error(`POST /jobs/simpleTest answered ${response.status}: ${await response.text()}`);
          }
          await response.body?.cancel();
        },
      ],
    ];
    const starters = () => {
      batch++;
      return kinds.map(
        ([, start], which): Starter =>
          (index) =>
            start(`bench-${batch}-${which}-${index}`),
      );
    };
    // Warm up every path (connections, JIT) before measuring.
    await sideBySide(starters(), concurrency * 4, concurrency, 1);
    console.log('measure                          in flight  starts  p50 ms  p99 ms  starts/s');
    console.log('-------------------------------  ---------  ------  ------  ------  --------');
    const ratios: string[] = [];
    for (const inFlight of [1, concurrency]) {
      inServer = { ms: 0, count: 0 };
      const [bare, typed, viaApi] = await sideBySide(starters(), total, inFlight, rounds);
      for (const [index, measured] of [bare, typed, viaApi].entries()) {
        if (!measured) continue;
        console.log(
          `${(kinds[index]?.[0] ?? '').padEnd(31)}  ${String(inFlight).padStart(9)}  ${String(measured.count).padStart(6)}  ` +
            `${fixed(measured.p50).padStart(6)}  ${fixed(measured.p99).padStart(6)}  ${fixed(measured.perSecond).padStart(8)}`,
        );
      }
      if (bare && typed && viaApi) {
        ratios.push(
          `  ${inFlight} in flight: API / bare p50 ${fixed(viaApi.p50 / bare.p50, 2)} (+${fixed(viaApi.p50 - bare.p50)} ms), ` +
            `p99 ${fixed(viaApi.p99 / bare.p99, 2)}, throughput ${fixed(viaApi.perSecond / bare.perSecond, 2)}; ` +
            `API / typed jobs API p50 ${fixed(viaApi.p50 / typed.p50, 2)} (+${fixed(viaApi.p50 - typed.p50)} ms)`,
          `    mean time inside the API per POST ${fixed(inServer.ms / inServer.count, 2)} ms vs Jobs.start ` +
            `${fixed(typed.mean, 2)} ms: the API's own work is the difference, the rest is the HTTP client`,
        );
      }
    }
    console.log(`\nratios:\n${ratios.join('\n')}\n`);
  } finally {
    await app.close();
    await env.teardown();
  }
}
