/** The diagnostics jobs end to end on a real dev server: stress test (with continue-as-new) and health check. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Jobs } from '../../src/client/jobs';
import type { StressTestResult, SystemHealthReport } from '../../src/workflows/diagnostics';
import { startTestStack, type TestStack } from '../helpers/temporal';

describe('diagnostics jobs on a real dev server', () => {
  let stack: TestStack;
  let env: TestWorkflowEnvironment;
  let jobs: Jobs;

  before(async () => {
    stack = await startTestStack('diagnostics');
    ({ env, jobs } = stack);
  });
  after(() => stack.stop());

  it('stressTest runs batches of items through a bounded window, continuing as new to keep history small', async () => {
    const input = { count: 45, concurrency: 4, itemsPerRun: 20, rounds: 100, itemsPerActivity: 4 };
    const { id } = await jobs.start('stressTest', input);
    const result = await jobs.result<StressTestResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.completed, 45);
    assert.equal(result.failed, 0);
    assert.equal(result.runs, 3, '45 items at 20 per run take three runs');
    assert.equal(result.itemsPerActivity, 4);
    assert.ok(result.throughputPerSecond > 0);
    const { p50, p95, p99, max } = result.latencyMs;
    assert.ok(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 <= max, JSON.stringify(result.latencyMs));

    // Each run's history stays small: the last run holds only its own 5 items, in two batches (4 + 1).
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes);
    assert.equal(scheduled?.length, 2);
    assert.ok(scheduled.every((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'stressWorkBatch'));
    const view = await jobs.status(id);
    assert.equal(view.progress.done, 45, 'progress carried across runs');
    assert.equal(view.succeeded, 45);
  });

  it('stressTest counts a failed item of a batch on its own, with its index and reason', async () => {
    const input = { count: 12, concurrency: 2, rounds: 10, itemsPerActivity: 5, failItems: [3, 11] };
    const { id } = await jobs.start('stressTest', input);
    const result = await jobs.result<StressTestResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.completed, 10);
    assert.equal(result.failed, 2);
    const view = await jobs.status(id);
    assert.deepEqual(view.progress, { done: 12, total: 12, unit: 'items' });
    assert.deepEqual(
      // Batches run side by side: their failures come in the order the batches end.
      view.errors
        .map((e) => [e.item, e.reason])
        .sort(([a], [b]) => (a ?? '').localeCompare(b ?? '', 'en', { numeric: true })),
      [
        ['item 3', 'item 3 failed on purpose (failItems) (after 3 tries)'],
        ['item 11', 'item 11 failed on purpose (failItems) (after 3 tries)'],
      ],
    );
  });

  it('stressTest in child-workflow mode runs one child per item', async () => {
    const { id } = await jobs.start('stressTest', { count: 6, concurrency: 3, mode: 'children', rounds: 10 });
    const result = await jobs.result<StressTestResult>(id);
    assert.equal(result.completed, 6);
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const started = history.events?.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).length;
    assert.equal(started, 6, 'one child workflow per item');
    for (let index = 0; index < 6; index++) {
      const child = await env.client.workflow.getHandle(`${id}-item-${index}`).describe();
      assert.equal(child.type, 'stressChild');
      assert.equal(child.status.name, 'COMPLETED');
    }
  });

  it('systemHealthCheck reports every check', async () => {
    const { id } = await jobs.start('systemHealthCheck', {});
    const report = await jobs.result<SystemHealthReport>(id);
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['server', 'pollers', 'data-dir', 'native-deps'],
    );
    assert.equal(report.healthy, true, JSON.stringify(report.checks));
    assert.match(report.checks[1]?.detail ?? '', /1 workflow poller\(s\), 1 activity poller\(s\)/);
  });

  it('systemHealthCheck completes with the failing check named when one fails', async () => {
    const { id } = await jobs.start('systemHealthCheck', { minFreeMb: 1_000_000_000 });
    const report = await jobs.result<SystemHealthReport>(id);
    assert.equal(report.healthy, false);
    const view = await jobs.status(id);
    assert.equal(view.state, 'completed');
    assert.equal(view.failed, 1);
    assert.equal(view.errors[0]?.item, 'data-dir');
    assert.match(view.errors[0]?.reason ?? '', /MiB free \(need 1000000000\)/);
  });
});
