/**
 * A start is a promise, against a real dev server: the same Idempotency-Key and body give the same job (202, then
 * 200, even once it has ended), another body is a 409, no key is a new job each time; a start whose answer is lost
 * (the server started the job, the reply never came) is answered with its job, through the API and through the jobs
 * API the CLI uses; and 300 concurrent starts with retries on 503 / 500 / connection errors make exactly one job
 * per key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, type WorkflowClientInterceptor } from '@temporalio/client';
import { startApi, type RunningApi } from '../../src/api/server';
import { Jobs } from '../../src/client/jobs';
import { TemporalLink } from '../../src/api/temporal-link';
import { sleep, startTestStack, uniqueTaskQueue, waitFor, type TestStack } from '../helpers/temporal';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function post(api: RunningApi, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} } as Answer;
}

/** Every run (not only the latest) that Temporal's visibility holds for a task queue. */
async function runsOn(client: Client, taskQueue: string): Promise<{ id: string; runId: string }[]> {
  const runs: { id: string; runId: string }[] = [];
  for await (const execution of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
    runs.push({ id: execution.workflowId, runId: execution.runId });
  }
  return runs;
}

/**
 * A client whose first `count` starts reach the server and start their workflow, but whose answers are lost: the
 * caller sees gRPC's DEADLINE_EXCEEDED, as when a busy server answers after the deadline.
 */
function losingAnswers(stack: TestStack, count: number): { client: Client; lost: () => number } {
  let lost = 0;
  const interceptor: WorkflowClientInterceptor = {
    async start(input, next) {
      const runId = await next(input);
      if (lost >= count) return runId;
      lost++;
      throw Object.assign(new Error('4 DEADLINE_EXCEEDED: the test dropped this answer'), {
        code: 4,
        details: 'the test dropped this answer',
        metadata: {},
      });
    },
  };
  const client = new Client({
    connection: stack.env.connection,
    namespace: stack.env.namespace ?? 'default',
    interceptors: { workflow: [interceptor] },
  });
  return { client, lost: () => lost };
}

describe('idempotent starts on a real dev server', () => {
  let stack: TestStack;
  let api: RunningApi;

  before(async () => {
    stack = await startTestStack('idempotency');
    api = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit: 64 * 1024 },
      { link: new TemporalLink({ connect: async () => stack.jobs }) },
    );
  });
  after(async () => {
    await api?.close();
    await stack?.stop();
  });

  it('gives the same job for the same key and body (202, then 200, also once it has ended)', async () => {
    const key = { 'idempotency-key': `order-${Date.now()}` };
    const first = await post(api, '/jobs/simpleTest', { message: 'once', durationSeconds: 1 }, key);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const id = first.body.id as string;
    assert.match(id, /^simple-test-key-[0-9a-f]{24}$/);

    // The same input, written another way (other key order, a default spelled out... or left out): the same job.
    const again = await post(api, '/jobs/simpleTest', { durationSeconds: 1, message: 'once' }, key);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.id, id);
    assert.equal(again.body.runId, first.body.runId);

    await stack.jobs.result(id);
    const ended = await post(api, '/jobs/simpleTest', { message: 'once', durationSeconds: 1 }, key);
    assert.equal(ended.status, 200, 'an ended job is still the job of its key, not a reason to run it again');
    assert.equal(ended.body.id, id);
    assert.equal(ended.body.runId, first.body.runId);
    const runs = (await runsOn(stack.env.client, stack.taskQueue)).filter((run) => run.id === id);
    assert.equal(runs.length, 1, JSON.stringify(runs));
  });

  it('normalises the body: defaults filled in give the same fingerprint', async () => {
    const key = { 'idempotency-key': `"defaults-${Date.now()}"` };
    const first = await post(api, '/jobs/simpleTest', { message: 'defaults' }, key);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const spelled = await post(api, '/jobs/simpleTest', { message: 'defaults', durationSeconds: 10 }, key);
    assert.equal(spelled.status, 200, JSON.stringify(spelled.body));
    assert.equal(spelled.body.id, first.body.id);
    await stack.jobs.cancel(first.body.id as string, { hard: true });
  });

  it('finds the job of its key after it has continued as new, with its first run id', async () => {
    const key = { 'idempotency-key': `stress-${Date.now()}` };
    const input = { count: 40, concurrency: 5, itemsPerRun: 10, rounds: 0 };
    const first = await post(api, '/jobs/stressTest', input, key);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const id = first.body.id as string;
    await waitFor('a second run', async () => {
      const description = await stack.env.client.workflow.getHandle(id).describe();
      return description.runId !== first.body.runId;
    });
    const again = await post(api, '/jobs/stressTest', input, key);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual([again.body.id, again.body.runId], [id, first.body.runId]);
  });

  it('refuses the same key with another body (409 IdempotencyKeyReused) and starts nothing', async () => {
    const key = { 'idempotency-key': `reused-${Date.now()}` };
    const first = await post(api, '/jobs/simpleTest', { message: 'first', durationSeconds: 1 }, key);
    assert.equal(first.status, 202);
    const other = await post(api, '/jobs/simpleTest', { message: 'second', durationSeconds: 1 }, key);
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.equal(other.body.error, 'IdempotencyKeyReused');
    assert.match(other.body.message as string, new RegExp(`job "${first.body.id as string}" with another body`));
    const runs = (await runsOn(stack.env.client, stack.taskQueue)).filter((run) => run.id === first.body.id);
    assert.equal(runs.length, 1);
  });

  it('starts a new job for each start without a key (an ended ?id= too), and refuses a bad key', async () => {
    const body = { message: 'no key', durationSeconds: 1 };
    const one = await post(api, '/jobs/simpleTest', body);
    const two = await post(api, '/jobs/simpleTest', body);
    assert.deepEqual([one.status, two.status], [202, 202]);
    assert.notEqual(one.body.id, two.body.id);

    // Without a key, an ?id= of an ended job starts it again, as before: the id is free once its job has ended.
    const path = `/jobs/simpleTest?id=rerun-${Date.now()}`;
    const first = await post(api, path, body);
    assert.equal(first.status, 202);
    await stack.jobs.result(first.body.id as string);
    const rerun = await post(api, path, body);
    assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
    assert.equal(rerun.body.id, first.body.id);
    assert.notEqual(rerun.body.runId, first.body.runId);

    const empty = await post(api, '/jobs/simpleTest', body, { 'idempotency-key': '""' });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error, 'BadRequest');
    assert.match(empty.body.message as string, /^Invalid Idempotency-Key header: must not be empty/);
  });

  it('answers a start whose answer was lost with its job, not a 503 or a second job (HTTP API)', async () => {
    const taskQueue = uniqueTaskQueue('lost-answer');
    const { client, lost } = losingAnswers(stack, 2);
    const lossy = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit: 64 * 1024 },
      { link: new TemporalLink({ connect: async () => new Jobs(client, taskQueue) }) },
    );
    try {
      // No key and no id: the API chose the id, and its second try finds the job its first one started.
      const generated = await post(lossy, '/jobs/simpleTest', { message: 'lost answer' });
      assert.equal(generated.status, 202, JSON.stringify(generated.body));
      // An id of the caller's: the second try finds its own job, which is no "already running" 409.
      const named = await post(lossy, '/jobs/simpleTest?id=lost-answer-named', { message: 'lost answer' });
      assert.equal(named.status, 202, JSON.stringify(named.body));
      assert.equal(named.body.id, 'lost-answer-named');
      assert.equal(lost(), 2, 'both first answers were dropped');

      // A second start of the running job is still refused.
      const repeated = await post(lossy, '/jobs/simpleTest?id=lost-answer-named', { message: 'lost answer' });
      assert.equal(repeated.status, 409);
      assert.equal(repeated.body.error, 'JobAlreadyRunning');

      const runs = await waitFor('both jobs in visibility', async () => {
        const found = await runsOn(stack.env.client, taskQueue);
        return found.length >= 2 && found;
      });
      assert.deepEqual(runs.map((run) => run.id).sort(), [generated.body.id, 'lost-answer-named'].sort());
    } finally {
      await lossy.close();
      for (const run of await runsOn(stack.env.client, taskQueue)) {
        await stack.env.client.workflow.getHandle(run.id).terminate('test cleanup');
      }
    }
  });

  it('retries a start whose answer was lost with the same id in the jobs API the CLI uses', async () => {
    const taskQueue = uniqueTaskQueue('lost-cli');
    const { client, lost } = losingAnswers(stack, 1);
    const jobs = new Jobs(client, taskQueue);
    const started = await jobs.start('simpleTest', { message: 'cli' }, { attempts: 3 });
    assert.equal(lost(), 1);
    assert.equal(started.created, true);
    const runs = await waitFor('the job in visibility', async () => {
      const found = await runsOn(stack.env.client, taskQueue);
      return found.length >= 1 && found;
    });
    assert.deepEqual(
      runs.map((run) => run.id),
      [started.id],
    );
    await stack.env.client.workflow.getHandle(started.id).terminate('test cleanup');
  });

  it(
    'makes exactly one job per key from 300 concurrent starts that retry on 503, 500 and lost connections',
    { timeout: 180_000 },
    async () => {
      const taskQueue = uniqueTaskQueue('load');
      // Counts the tries whose answer did not come in time (the server may have started their job all the same).
      let lostAnswers = 0;
      const counting = new Client({
        connection: stack.env.connection,
        namespace: stack.env.namespace ?? 'default',
        interceptors: {
          workflow: [
            {
              start: (input, next) =>
                next(input).catch((err: unknown) => {
                  if ((err as { cause?: { code?: number } }).cause?.code === 4) lostAnswers++;
                  throw err;
                }),
            },
          ],
        },
      });
      // No worker polls this queue: the jobs stay running, so only the starts load the machine. A deadline this
      // short provokes lost answers (and 503s) under this load, which is the point.
      const loaded = await startApi(
        { host: '127.0.0.1', port: 0, bodyLimit: 64 * 1024 },
        {
          link: new TemporalLink({
            connect: async () => new Jobs(counting, taskQueue),
            callTimeoutMs: Number(process.env.IDEMPOTENCY_TEST_DEADLINE_MS ?? 200),
          }),
        },
      );
      const keys = 60;
      const perKey = 5;
      const tally = { tries: 0, 503: 0, 500: 0, connection: 0, other: 0 };
      const began = Date.now();
      try {
        const clients = Array.from({ length: keys * perKey }, async (_, index) => {
          const key = `load-${index % keys}`;
          const body = { message: `order ${index % keys}`, durationSeconds: 3600 };
          // Backs off as a web backend would: exponentially, with jitter.
          for (let tries = 0; ; tries++) {
            const backOff = () => sleep(Math.min(2000, 100 * 2 ** tries) * (0.5 + Math.random()));
            tally.tries++;
            let answer: Answer;
            try {
              answer = await post(loaded, '/jobs/simpleTest', body, { 'idempotency-key': key });
            } catch {
              tally.connection++;
              await backOff();
              continue;
            }
            if (answer.status < 300 || answer.status === 409) return { key, ...answer };
            if (answer.status === 503 || answer.status === 500) tally[answer.status]++;
            else tally.other++;
            await backOff();
          }
        });
        const answers = await Promise.all(clients);
        const seconds = (Date.now() - began) / 1000;

        assert.equal(tally.other, 0, JSON.stringify(tally));
        const byKey = new Map<string, Answer[]>();
        for (const answer of answers) byKey.set(answer.key, [...(byKey.get(answer.key) ?? []), answer]);
        assert.equal(byKey.size, keys);
        let unanswered = 0;
        for (const [key, got] of byKey) {
          assert.ok(
            got.every((answer) => answer.status === 202 || answer.status === 200),
            `${key}: ${JSON.stringify(got)}`,
          );
          assert.equal(new Set(got.map((answer) => answer.body.id)).size, 1, `${key}: one id for every client`);
          const creators = got.filter((answer) => answer.status === 202).length;
          assert.ok(creators <= 1, `${key}: ${creators} clients were told that they created the job`);
          // The request that started the job was answered 503: a start that happened, answered as unknown.
          if (creators === 0) unanswered++;
        }

        // Every key got its job, so visibility will hold at least one run per key; any more would be duplicates.
        const runs = await waitFor('every job in visibility', async () => {
          const found = await runsOn(stack.env.client, taskQueue);
          return found.length >= keys && found;
        });
        assert.equal(runs.length, keys, 'exactly one run per key');
        assert.deepEqual(runs.map((run) => run.id).sort(), [...byKey.values()].map((got) => got[0]?.body.id).sort());
        console.log(
          `# idempotency load: ${keys * perKey} clients, ${keys} keys, ${tally.tries} tries in ${seconds.toFixed(1)} s: ` +
            `${lostAnswers} tries whose answer came after the deadline; ` +
            `${tally[503]} × 503, ${tally[500]} × 500, ${tally.connection} connection errors; ` +
            `${unanswered} keys whose creating request was answered 503; ${runs.length} workflows`,
        );
      } finally {
        await loaded.close();
        for (const run of await runsOn(stack.env.client, taskQueue)) {
          await stack.env.client.workflow
            .getHandle(run.id)
            .terminate('test cleanup')
            .catch(() => undefined);
        }
      }
    },
  );
});
