/** Worker settings are checked before a worker starts; priorities and tenants map to Temporal's Priority. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkWorkerSettings, workerSettings, WorkerSettingsError, type WorkerSettings } from '../../src/config';
import { ownFairnessKey, priorityView, temporalPriority } from '../../src/client/jobs';
import { formatPriority } from '../../src/client/format';
import { tenantProblem } from '../../src/shared/names';

const base: WorkerSettings = {
  taskQueue: 'backroom',
  maxConcurrentActivities: 8,
  maxConcurrentWorkflowTasks: 4,
  maxCachedWorkflows: 200,
  shutdownGraceSeconds: 10,
  healthPort: 9464,
  healthHost: '0.0.0.0',
};

function problems(settings: Partial<WorkerSettings>): string {
  try {
    checkWorkerSettings({ ...base, ...settings });
    return '';
  } catch (err) {
    assert.ok(err instanceof WorkerSettingsError);
    return err.message;
  }
}

describe('worker settings', () => {
  it('accepts the defaults and the smallest values that work', () => {
    assert.equal(problems({}), '');
    assert.equal(problems({ maxConcurrentActivities: 1, maxConcurrentWorkflowTasks: 2, maxCachedWorkflows: 2 }), '');
    assert.equal(problems({ maxConcurrentWorkflowTasks: 1, maxCachedWorkflows: 0 }), '');
    assert.equal(problems({ maxConcurrentWorkflowTasks: 10, maxCachedWorkflows: 2 }), '');
    assert.equal(problems({ shutdownGraceSeconds: 0, healthPort: 0 }), '');
  });

  it('refuses what the SDK refuses or changes, saying what to set', () => {
    assert.match(
      problems({ maxConcurrentWorkflowTasks: 1 }),
      /BACKROOM_MAX_WORKFLOW_TASKS=1 .*Set .*=2 or more, or BACKROOM_MAX_CACHED_WORKFLOWS=0/,
    );
    assert.match(problems({ maxConcurrentActivities: 0 }), /BACKROOM_MAX_ACTIVITIES=0: set a whole number 1 or more/);
    assert.match(
      problems({ maxConcurrentWorkflowTasks: 0 }),
      /BACKROOM_MAX_WORKFLOW_TASKS=0: set a whole number 1 or more/,
    );
    assert.match(problems({ maxCachedWorkflows: 1 }), /BACKROOM_MAX_CACHED_WORKFLOWS=1: .*Set 0, or 2 or more/);
    assert.match(problems({ healthPort: 70_000 }), /BACKROOM_HEALTH_PORT=70000: set a whole number from 0 to 65535/);
  });

  it('checks the environment when the settings are read', () => {
    const saved = process.env.BACKROOM_MAX_WORKFLOW_TASKS;
    process.env.BACKROOM_MAX_WORKFLOW_TASKS = '1';
    try {
      assert.throws(() => workerSettings(), WorkerSettingsError);
    } finally {
      if (saved === undefined) delete process.env.BACKROOM_MAX_WORKFLOW_TASKS;
      else process.env.BACKROOM_MAX_WORKFLOW_TASKS = saved;
    }
  });
});

describe('priorities and tenants', () => {
  it("map to Temporal's priority key and fairness key", () => {
    assert.deepEqual(temporalPriority('job-1', {}), { priorityKey: 3, fairnessKey: 'job-1' });
    assert.deepEqual(temporalPriority('job-1', { priority: 'high', tenant: 'acme', tenantWeight: 2 }), {
      priorityKey: 1,
      fairnessKey: 'acme',
      fairnessWeight: 2,
    });
  });

  it('show as the status has them, for keys Backroom names and keys it does not', () => {
    assert.deepEqual(priorityView('job-1', {}), { level: 'default', key: 3 });
    assert.deepEqual(priorityView('job-1', { priorityKey: 3, fairnessKey: 'job-1' }), { level: 'default', key: 3 });
    assert.deepEqual(priorityView('job-1', { priorityKey: 5, fairnessKey: 'b', fairnessWeight: 0 }), {
      level: 'low',
      key: 5,
      tenant: 'b',
    });
    assert.deepEqual(priorityView('job-1', { priorityKey: 2 }), { key: 2 });
    assert.equal(
      formatPriority(priorityView('job-1', { priorityKey: 1, fairnessKey: 'acme', fairnessWeight: 2 })),
      'high (key 1) · tenant acme, weight 2',
    );
  });

  it('give a job without a tenant a fairness key of its own, within the 64 bytes Temporal takes', () => {
    assert.equal(ownFairnessKey('simple-test-1'), 'simple-test-1');
    const long = ownFairnessKey('x'.repeat(100));
    assert.ok(Buffer.byteLength(long) <= 64, long);
    assert.notEqual(long, ownFairnessKey(`${'x'.repeat(99)}y`));
    assert.deepEqual(priorityView('x'.repeat(100), { priorityKey: 3, fairnessKey: long }), {
      level: 'default',
      key: 3,
    });
  });

  it("refuses a tenant or a weight that Temporal's limits refuse", () => {
    assert.equal(tenantProblem('acme', 1), undefined);
    assert.match(tenantProblem('x'.repeat(65)) ?? '', /1 to 64 bytes/);
    assert.match(tenantProblem('') ?? '', /1 to 64 bytes/);
    assert.match(tenantProblem('acme', 5000) ?? '', /0.001 to 1000/);
    assert.match(tenantProblem(undefined, 2) ?? '', /needs a tenant/);
  });
});
