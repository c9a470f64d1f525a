/**
 * Priorities and tenants on a real dev server (the dynamic config of src/devserver): a backlog of mixed-priority
 * jobs is served in priority order (workflow tasks, activities, child workflows), and one tenant's backlog does not
 * hold another tenant's job up. Orders are asserted, never timings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { countSeconds, stressWork, stressWorkBatch } from '../../src/activities/diagnostics';
import type { StartOptions } from '../../src/client/jobs';
import { PRIORITY_KEYS, type PriorityName } from '../../src/shared/names';
import {
  createTestWorker,
  startTestServer,
  testJobs,
  uniqueTaskQueue,
  waitFor,
  workflowBundle,
} from '../helpers/temporal';

/** Activity starts in the order the worker began them: the workflow id each belongs to. */
function recorder(pauseMs = 0) {
  const starts: string[] = [];
  const record =
    <I, O>(real: (input: I) => Promise<O>) =>
    async (input: I): Promise<O> => {
      starts.push(Context.current().info.workflowExecution?.workflowId ?? '');
      if (pauseMs) await sleep(pauseMs);
      return real(input);
    };
  return {
    starts,
    activities: {
      countSeconds: record(countSeconds),
      stressWork: record(stressWork),
      stressWorkBatch: record(stressWorkBatch),
    },
  };
}

/** A stress child's id is its parent's id plus `-item-<n>`: the child runs with its parent's priority. */
const parentOf = (id: string) => id.replace(/-item-\d+$/, '');

/** True when `keys` never goes from a later priority back to an earlier one. */
const inPriorityOrder = (keys: number[]) => keys.every((key, i) => i === 0 || (keys[i - 1] ?? 0) <= key);

describe('priorities and tenants', { timeout: 600_000 }, () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await startTestServer();
  });
  after(async () => {
    await env?.teardown();
  });

  it('serves a backlog of jobs in priority order: 4 low, 1 default, 1 high, one activity slot', async (t) => {
    const taskQueue = uniqueTaskQueue('priorities');
    const jobs = testJobs(env, taskQueue);
    const priorities: PriorityName[] = ['low', 'low', 'low', 'low', 'default', 'high'];
    const keyOf = new Map<string, number>();
    for (const [i, priority] of priorities.entries()) {
      const { id } = await jobs.start('simpleTest', { message: `${priority} ${i}`, durationSeconds: 1 }, { priority });
      keyOf.set(id, PRIORITY_KEYS[priority]);
    }
    // `status` shows the priority the job was started with (no worker yet: the server's view).
    const [lastId] = [...keyOf.keys()].slice(-1);
    const view = await jobs.status(lastId ?? '', { queryTimeoutMs: 500 });
    assert.deepEqual(view.priority, { level: 'high', key: 1 });

    const { starts, activities } = recorder();
    const worker = await createTestWorker(env, taskQueue, { settings: { maxConcurrentActivities: 1 }, activities });
    await worker.runUntil(Promise.all([...keyOf.keys()].map((id) => env.client.workflow.getHandle(id).result())));
    const order = starts.map((id) => keyOf.get(id) ?? 0);
    t.diagnostic(`activity starts by priority key: ${order.join(', ')}`);
    // Tolerance: the worker's first workflow tasks run side by side (up to its workflow task slots), and the first
    // to schedule its activity gets the idle slot; every later activity comes from a backlog, in priority order.
    assert.ok(inPriorityOrder(order.slice(1)), `activity starts by priority key: ${order.join(', ')}`);
    assert.equal(order.length, priorities.length);
  });

  it('orders workflow tasks by priority, and activities and child workflows inherit it', async (t) => {
    const taskQueue = uniqueTaskQueue('priorities-children');
    const jobs = testJobs(env, taskQueue);
    const started: Array<{ id: string; key: number; children: number }> = [];
    const start = async (type: string, input: object, priority: PriorityName, children = 0) => {
      const { id } = await jobs.start(type, input, { priority });
      started.push({ id, key: PRIORITY_KEYS[priority], children });
    };
    const family = { count: 2, concurrency: 2, mode: 'children', rounds: 0 };
    await start('simpleTest', { durationSeconds: 1 }, 'low');
    await start('stressTest', family, 'low', 2);
    await start('simpleTest', { durationSeconds: 1 }, 'default');
    await start('stressTest', family, 'high', 2);
    await start('simpleTest', { durationSeconds: 1 }, 'low');
    await start('simpleTest', { durationSeconds: 1 }, 'high');

    // A worker with no activities takes workflow tasks only, one at a time (no cache: one poller), until every
    // activity is scheduled: the activity queue then holds the whole backlog, children's activities included.
    const workflowsOnly = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      maxCachedWorkflows: 0,
      maxConcurrentWorkflowTaskExecutions: 1,
    });
    const ids = started.flatMap(({ id, children }) => [
      ...(children ? [] : [id]),
      ...Array.from({ length: children }, (_, i) => `${id}-item-${i}`),
    ]);
    await workflowsOnly.runUntil(
      waitFor(
        'every activity scheduled',
        async () => {
          const described = await Promise.all(ids.map((id) => env.client.workflow.getHandle(id).describe()));
          return described.every((d) => (d.raw.pendingActivities?.length ?? 0) > 0);
        },
        120_000,
      ),
    );

    // Workflow tasks: the first one of each job ran in priority order.
    const firstTask = await Promise.all(
      started.map(async ({ id, key }) => {
        const history = await env.client.workflow.getHandle(id).fetchHistory();
        const event = history.events?.find((e) => e.workflowTaskStartedEventAttributes);
        const at = Number(event?.eventTime?.seconds ?? 0) * 1000 + (event?.eventTime?.nanos ?? 0) / 1e6;
        return { key, at };
      }),
    );
    const taskOrder = firstTask.sort((a, b) => a.at - b.at).map(({ key }) => key);
    t.diagnostic(`first workflow tasks by priority key: ${taskOrder.join(', ')}`);
    assert.ok(inPriorityOrder(taskOrder), `first workflow tasks by priority key: ${taskOrder.join(', ')}`);

    // Children carry their parent's priority.
    for (const { id, key, children } of started.filter((job) => job.children)) {
      for (let i = 0; i < children; i++) {
        const child = await env.client.workflow.getHandle(`${id}-item-${i}`).describe();
        assert.equal(child.priority?.priorityKey, key, `child ${i} of ${id}`);
      }
    }

    // Activities: one slot, a full backlog, strict priority order (children's activities by their parent's key).
    const { starts, activities } = recorder();
    const worker = await createTestWorker(env, taskQueue, { settings: { maxConcurrentActivities: 1 }, activities });
    await worker.runUntil(Promise.all(started.map(({ id }) => env.client.workflow.getHandle(id).result())));
    const keyOf = new Map(started.map(({ id, key }) => [id, key]));
    const order = starts.map((id) => keyOf.get(parentOf(id)) ?? 0);
    t.diagnostic(`activity starts (children by their parent's key): ${order.join(', ')}`);
    assert.equal(order.length, ids.length);
    assert.ok(inPriorityOrder(order), `activity starts by priority key: ${order.join(', ')}`);
  });

  /**
   * Job A puts `items` activities in the queue; once a few have started, job B starts one simpleTest. `tenants`:
   * A and B name tenants `a` and `b`; `none`: neither names one (each job is its own share); `same`: both are
   * tenant `a` (one share, first come first served). Returns how many of A's items had started when B's did.
   */
  async function tenantRun(
    mode: 'tenants' | 'none' | 'same',
    items: number,
  ): Promise<{ before: number; startedWhenBArrived: number }> {
    const taskQueue = uniqueTaskQueue(`tenants-${mode}`);
    const jobs = testJobs(env, taskQueue);
    const { starts, activities } = recorder(100);
    const worker = await createTestWorker(env, taskQueue, { settings: { maxConcurrentActivities: 1 }, activities });
    const tenant = (name: string): StartOptions => (mode === 'none' ? {} : { tenant: mode === 'same' ? 'a' : name });
    return worker.runUntil(async () => {
      // One item per activity: a backlog of `items` activities (by default they would share one).
      const input = { count: items, concurrency: items, rounds: 0, itemsPerActivity: 1 };
      const a = await jobs.start('stressTest', input, tenant('a'));
      await waitFor('a few of A’s items to start', async () => starts.length >= 3);
      const startedWhenBArrived = starts.length;
      const b = await jobs.start('simpleTest', { durationSeconds: 1 }, tenant('b'));
      assert.equal((await jobs.status(b.id)).priority.tenant, mode === 'none' ? undefined : tenant('b').tenant);
      await env.client.workflow.getHandle(b.id).result();
      const before = starts.indexOf(b.id);
      await env.client.workflow.getHandle(a.id).result();
      return { before, startedWhenBArrived };
    });
  }

  it("gives job B a turn before job A's backlog drains, unless both are one tenant", async (t) => {
    const items = 40;
    const runs = {
      tenants: await tenantRun('tenants', items),
      none: await tenantRun('none', items),
      same: await tenantRun('same', items),
    };
    t.diagnostic(
      Object.entries(runs)
        .map(([mode, run]) => `${mode}: B after ${run.before} of A's items (${run.startedWhenBArrived} on arrival)`)
        .join('; '),
    );
    // Tolerance: the items already handed to the worker, or being handed, when B's activity was scheduled.
    for (const mode of ['tenants', 'none'] as const) {
      const run = runs[mode];
      assert.ok(
        run.before <= run.startedWhenBArrived + 3,
        `${mode}: B started after ${run.before} of A's ${items} items (${run.startedWhenBArrived} had started ` +
          `when B arrived)`,
      );
    }
    assert.equal(runs.same.before, items, `one tenant: B waits behind A's whole backlog (${runs.same.before})`);
  });
});
