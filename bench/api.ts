/**
 * HTTP API benchmark: what `POST /jobs/{type}` → 202 costs over the bare client's `workflow.start` and over the typed
 * jobs API it wraps, measured in one run, side by side, alone (1 in flight) and under concurrent load on loopback.
 * A second kind is a bare start that asks Temporal to store what a job start stores (the memo with the start mark,
 * the summary and details, the priority, REJECT_DUPLICATE; the job sets its search attributes on its first task, after
 * the start has answered), so the gap splits into what the
 * server stores more and what our layers do. HTTP clients keep their connections alive, as the bare client keeps its
 * gRPC connection. The POST rows differ only in the client: a minimal one (a kept-alive socket, one request written,
 * status and Content-Length body read, as load generators such as wrk do), node:http with a keep-alive agent, and
 * `fetch()`; since the client shares this process and its CPUs, the rows show how much of a POST's time is the
 * client's.
 * Rounds alternate between the kinds so that a noisy moment hits all of them. No worker polls the queue: the jobs
 * only need Temporal to accept them, so every kind measures the start alone, not the machine running the jobs.
 * Sizes come from BENCH_API_* variables. Nothing asserts on timings.
 */
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { buildApi } from '../src/api/server';
import { TemporalLink } from '../src/api/temporal-link';
import { Jobs, temporalPriority } from '../src/client/jobs';
import { START_MARK_MEMO, newStartMark } from '../src/client/start-mark';
import { jobDetails, jobSummary } from '../src/shared/job-summary';
import { SEARCH_ATTRIBUTES_MEMO } from '../src/shared/search-attributes';
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

/** Writes one HTTP/1.1 request on a kept-alive socket and reads the answer's status and Content-Length body. */
function exchange(socket: net.Socket, request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => fail(new Error('the API closed the connection'));
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.toString('latin1', 0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
      if (!Number.isInteger(length)) return fail(new Error(`An answer without Content-Length: ${head}`));
      if (buffered.length < end + 4 + length) return;
      cleanup();
      resolve({ status: Number(head.slice(9, 12)), body: buffered.toString('utf8', end + 4, end + 4 + length) });
    };
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.write(request);
  });
}

/** A minimal keep-alive HTTP/1.1 client (one request at a time per socket), so its own work stays small. */
class LeanHttpClient {
  private readonly idle: net.Socket[] = [];
  private readonly all = new Set<net.Socket>();

  constructor(private readonly port: number) {}

  async post(path: string, body: string): Promise<{ status: number; body: string }> {
    const socket = this.idle.pop() ?? (await this.connect());
    const request =
      `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    try {
      const answer = await exchange(socket, request);
      this.idle.push(socket);
      return answer;
    } catch (err) {
      socket.destroy();
      this.all.delete(socket);
      throw err;
    }
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true }, () => {
        socket.off('error', reject);
        this.all.add(socket);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  close(): void {
    for (const socket of this.all) socket.destroy();
  }
}

/** Alternates rounds of each starter at one concurrency; returns each one's summary, in order. */
async function sideBySide(starters: Starter[], total: number, concurrency: number, rounds: number) {
  const perRound = Math.ceil(total / rounds);
  const runs: Measured[][] = starters.map(() => []);
  for (let round = 0; round < rounds; round++) {
    // Each round starts with the next kind, so that no kind always follows the same one (a start leaves work on the
    // server for a few milliseconds after its answer, more for a start that stores more).
    for (let turn = 0; turn < starters.length; turn++) {
      const which = (round + turn) % starters.length;
      const start = starters[which]!;
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
    `  alone, the kinds take turns start by start; under load, in ${rounds} rounds; load generator, API and client ` +
      'share this process; dev server in a child',
  );
  console.log('  set with BENCH_API_STARTS, BENCH_API_CONCURRENCY, BENCH_API_ROUNDS\n');

  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-api');
  const jobs = new Jobs(env.client, taskQueue);
  // All three share one client connection, so the differences are the layers' own work.
  const link = new TemporalLink({ connect: async () => jobs });
  const app = buildApi({ link, bodyLimit: 1024 * 1024 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const input = { message: 'bench', durationSeconds: 60 };
  const body = JSON.stringify(input);
  // Connections kept open across requests, as the bare client keeps its one gRPC connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const lean = new LeanHttpClient((app.server.address() as AddressInfo).port);
  const leanPost = async (id: string) => {
    const answer = await lean.post(`/jobs/simpleTest?id=${id}`, body);
    if (answer.status !== 202) throw new Error(`POST /jobs/simpleTest answered ${answer.status}: ${answer.body}`);
  };
  const post = (id: string) =>
    new Promise<void>((resolve, reject) => {
      const request = http.request(
        `${apiUrl}/jobs/simpleTest?id=${id}`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            response.statusCode === 202
              ? resolve()
              : reject(new Error(`POST /jobs/simpleTest answered ${response.statusCode}: ${Buffer.concat(chunks)}`)),
          );
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  // What a job start asks Temporal to store beyond a bare start, made once (the mark's request id is shared: the
  // server stores it all the same).
  const args = { ...input };
  const memo = {
    backroomState: 'running',
    [START_MARK_MEMO]: newStartMark('simpleTest', args),
    ...((await jobs.searchAttributesRegistered()) && { [SEARCH_ATTRIBUTES_MEMO]: true }),
  };
  const stored = {
    memo,
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    staticSummary: jobSummary('simpleTest', args),
    staticDetails: jobDetails('simpleTest'),
  } as const;
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
        'bare + what a job stores',
        async (id) => {
          await env.client.workflow.start('simpleTest', {
            taskQueue,
            workflowId: id,
            args: [input],
            priority: temporalPriority(id, {}),
            ...stored,
          });
        },
      ],
      [
        'typed jobs API (Jobs.start)',
        async (id) => {
          await jobs.start('simpleTest', input, { id });
        },
      ],
      ['POST /jobs/simpleTest -> 202', leanPost],
      ['the same POST with node:http', post],
      [
        'the same POST with fetch()',
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
    const plus = (ms: number) => `${ms < 0 ? '' : '+'}${fixed(ms, 2)} ms`;
    for (const inFlight of [1, concurrency]) {
      // One at a time, the kinds take turns at every start, so that a busy moment of a shared machine hits all alike.
      const measured = await sideBySide(starters(), total, inFlight, inFlight === 1 ? total : rounds);
      for (const [index, one] of measured.entries()) {
        console.log(
          `${(kinds[index]?.[0] ?? '').padEnd(31)}  ${String(inFlight).padStart(9)}  ${String(one.count).padStart(6)}  ` +
            `${fixed(one.p50, 2).padStart(6)}  ${fixed(one.p99).padStart(6)}  ${fixed(one.perSecond).padStart(8)}`,
        );
      }
      const [bare, stores, typed, viaApi, viaHttp, viaFetch] = measured;
      if (bare && stores && typed && viaApi && viaHttp && viaFetch) {
        ratios.push(
          `  ${inFlight} in flight: POST / bare p50 ${fixed(viaApi.p50 / bare.p50, 2)} (${plus(viaApi.p50 - bare.p50)}; issue 16 asks ≤ +1.5 ms alone), ` +
            `p99 ${fixed(viaApi.p99 / bare.p99, 2)}, throughput ${fixed(viaApi.perSecond / bare.perSecond, 2)}`,
          `    of the p50 gap: Temporal storing a job's memo, attributes and metadata ${plus(stores.p50 - bare.p50)}; ` +
            `Jobs.start's own work ${plus(typed.p50 - stores.p50)}; HTTP API and client ${plus(viaApi.p50 - typed.p50)}`,
          `    POST over a bare start that stores the same: ${plus(viaApi.p50 - stores.p50)}; ` +
            `with node:http as the client ${plus(viaHttp.p50 - bare.p50)}, with fetch() ${plus(viaFetch.p50 - bare.p50)} over bare`,
        );
      }
    }
    console.log(`\nratios:\n${ratios.join('\n')}\n`);
  } finally {
    agent.destroy();
    lean.close();
    await app.close();
    await env.teardown();
  }
}
