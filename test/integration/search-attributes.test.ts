/**
 * Job state Temporal can query, on a real dev server that registers Backroom's search attributes (as `npm start` and
 * `npm run server` do): a job starts with a static summary and sets its type, state and progress on its first task
 * (the start itself carries none: that costs Temporal about 0.5 ms a start), its state
 * attribute follows pause, resume and the end (also across continue-as-new), and `list({ state })` is one
 * visibility query. A namespace without the attributes still starts jobs and filters on the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { Jobs } from '../../src/client/jobs';
import {
  JOB_PROGRESS_KEY,
  JOB_STATE_KEY,
  JOB_TYPE_KEY,
  SEARCH_ATTRIBUTES_MEMO,
} from '../../src/shared/search-attributes';
import { startTestStack, waitFor, type TestStack } from '../helpers/temporal';

describe('search attributes and user metadata on a real dev server', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack('search-attributes');
  });
  after(() => stack.stop());

  const indexed = async (id: string) => {
    const description = await stack.env.client.workflow.getHandle(id).describe();
    const attributes = description.typedSearchAttributes;
    return {
      state: attributes.get(JOB_STATE_KEY),
      type: attributes.get(JOB_TYPE_KEY),
      progress: attributes.get(JOB_PROGRESS_KEY),
      summary: await description.staticSummary(),
      details: await description.staticDetails(),
    };
  };
  /** The ids a raw visibility query finds on this stack's task queue (what the UI's filter box runs). */
  const found = async (query: string) => {
    const ids: string[] = [];
    const full = `TaskQueue = '${stack.taskQueue}' AND ${query}`;
    for await (const execution of stack.env.client.workflow.list({ query: full })) ids.push(execution.workflowId);
    return ids;
  };

  it('a job is indexed by its first task and summarised; its state follows pause, resume and cancel', async () => {
    assert.equal(await stack.jobs.searchAttributesRegistered(), true, 'the test server registers them');
    const { id } = await stack.jobs.start('simpleTest', { message: 'index me', durationSeconds: 30 });
    const startEvent = (await stack.env.client.workflow.getHandle(id).fetchHistory()).events?.[0];
    assert.equal(
      startEvent?.workflowExecutionStartedEventAttributes?.searchAttributes?.indexedFields?.[JOB_TYPE_KEY.name],
      undefined,
      'the start carries no search attributes',
    );
    await waitFor('the job to set its search attributes', async () => (await indexed(id)).type !== undefined);
    const started = await indexed(id);
    assert.equal(started.type, 'simpleTest');
    assert.equal(started.state, 'running');
    assert.equal(started.progress, 0);
    assert.equal(started.summary, 'count 30 s');
    assert.match(started.details ?? '', /^\*\*simpleTest\*\*: Counts seconds/);

    await stack.jobs.pause(id);
    await waitFor('BackroomState paused', async () => (await indexed(id)).state === 'paused');
    await waitFor('the paused job in a visibility query', async () =>
      (await found(`BackroomState = 'paused'`)).includes(id),
    );
    assert.deepEqual(
      (await stack.jobs.list({ state: 'paused' })).map((job) => job.id),
      [id],
      'list --state paused is that query',
    );
    assert.ok(!(await found(`BackroomState = 'running'`)).includes(id));

    await stack.jobs.resume(id);
    await waitFor('BackroomState running again', async () => (await indexed(id)).state === 'running');
    await stack.jobs.cancel(id);
    await stack.jobs.result(id);
    const ended = await indexed(id);
    assert.equal(ended.state, 'cancelled');
    assert.ok(ended.progress !== undefined && ended.progress > 0 && ended.progress < 1, `progress ${ended.progress}`);
    await waitFor('the cancelled job in a visibility query', async () =>
      (await found(`BackroomState = 'cancelled' AND BackroomJobType = 'simpleTest'`)).includes(id),
    );
  });

  it('a job that continues as new keeps its attributes and ends completed', async () => {
    const { id } = await stack.jobs.start('stressTest', {
      count: 25,
      concurrency: 5,
      itemsPerRun: 10,
      rounds: 1,
      mode: 'activities',
    });
    const result = await stack.jobs.result<{ runs: number }>(id);
    assert.ok(result.runs >= 3, `ran in ${result.runs} runs`);
    const ended = await indexed(id);
    assert.equal(ended.type, 'stressTest');
    assert.equal(ended.state, 'completed');
    assert.equal(ended.progress, 1);
  });

  it('without the attributes (another namespace) jobs still start, unindexed, and list filters on the client', async () => {
    const namespace = `no-attributes-${Date.now()}`;
    await stack.env.connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    const client = new Client({ connection: stack.env.connection, namespace });
    const jobs = new Jobs(client, stack.taskQueue);
    await waitFor('the new namespace to answer', async () => {
      try {
        await client.workflow.count(`TaskQueue = '${stack.taskQueue}'`);
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(await jobs.searchAttributesRegistered(), false);
    const { id } = await jobs.start('simpleTest', { message: 'plain', durationSeconds: 1 });
    const description = await client.workflow.getHandle(id).describe();
    assert.equal(description.typedSearchAttributes.get(JOB_STATE_KEY), undefined);
    assert.equal(description.memo?.[SEARCH_ATTRIBUTES_MEMO], undefined, 'the job is not asked to set them');
    assert.equal(await description.staticSummary(), 'count 1 s');
    assert.deepEqual(await jobs.list({ state: 'paused' }), []);
    await client.workflow.getHandle(id).terminate('no worker polls this namespace');
  });
});
