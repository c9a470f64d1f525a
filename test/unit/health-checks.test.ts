/** Health checks that need no server: the data dir and the native dependencies. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runActivity } from '../helpers/activity';
import { checkDataDir, checkNativeDependencies } from '../../src/activities/health-checks';

describe('health checks', () => {
  const saved = process.env.BACKROOM_DATA_DIR;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'health-'));
  before(() => {
    process.env.BACKROOM_DATA_DIR = dir;
  });
  after(() => {
    if (saved === undefined) delete process.env.BACKROOM_DATA_DIR;
    else process.env.BACKROOM_DATA_DIR = saved;
  });

  it('finds the data dir writable and reports its free space, leaving nothing behind', async () => {
    const report = await runActivity(new MockActivityEnvironment(), checkDataDir, 1);
    assert.equal(report.ok, true, report.detail);
    assert.match(report.detail, /writable, [\d,]+ MiB free/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('fails the data dir check, saying why, when free space is below the minimum', async () => {
    const report = await runActivity(new MockActivityEnvironment(), checkDataDir, 1_000_000_000);
    assert.equal(report.ok, false);
    assert.match(report.detail, /has only [\d]+ MiB free \(need 1000000000\)/);
  });

  it('loads sharp and round-trips an image', async () => {
    const report = await runActivity(new MockActivityEnvironment(), checkNativeDependencies);
    assert.equal(report.ok, true, report.detail);
    assert.match(report.detail, /^sharp \d+\.\d+\.\d+ \(libvips/);
  });
});
