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

  it('stressTest runs every activity through a bounded window, continuing as new to keep history small', async () => {
    const { id } = await jobs.start('stressTest', { count: 45, concurrency: 4, itemsPerRun: 20, rounds: 100 });
    const result = await jobs.result<StressTestResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.completed, 45);
    assert.equal(result.failed, 0);
    assert.equal(result.runs, 3, '45 items at 20 per run take three runs');
    assert.ok(result.throughputPerSecond > 0);
    const { p50, p95, p99, max } = result.latencyMs;
    assert.ok(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 <= max, JSON.stringify(result.latencyMs));

    // Each run's history stays small: the last run holds only its own 5 items.
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes).length;
    assert.equal(scheduled, 5);
    const view = await jobs.status(id);
    assert.equal(view.progress.done, 45, 'progress carried across runs');
    assert.equal(view.succeeded, 45);
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
