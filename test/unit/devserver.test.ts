/** Finding the Temporal CLI and the dev server's command line. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { devServerArgs } from '../../src/devserver/dev-server';
import { findTemporalCli } from '../../src/devserver/temporal-cli';

describe('findTemporalCli', () => {
  const saved = { cli: process.env.TEMPORAL_CLI_PATH, path: process.env.PATH };
  afterEach(() => {
    process.env.TEMPORAL_CLI_PATH = saved.cli;
    if (saved.cli === undefined) delete process.env.TEMPORAL_CLI_PATH;
    process.env.PATH = saved.path;
  });

  it('prefers TEMPORAL_CLI_PATH', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const fake = path.join(dir, 'my-temporal');
    writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 });
    process.env.TEMPORAL_CLI_PATH = fake;
    assert.equal(findTemporalCli(), fake);
  });

  it('says clearly when TEMPORAL_CLI_PATH is not an executable', () => {
    process.env.TEMPORAL_CLI_PATH = '/nonexistent/temporal';
    assert.throws(() => findTemporalCli(), /TEMPORAL_CLI_PATH is set to "\/nonexistent\/temporal"/);
  });

  it('finds `temporal` on PATH before the project-local build', () => {
    delete process.env.TEMPORAL_CLI_PATH;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'path-'));
    writeFileSync(path.join(dir, 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    process.env.PATH = `${dir}${path.delimiter}${saved.path}`;
    assert.equal(findTemporalCli(), path.join(dir, 'temporal'));
  });
});

describe('devServerArgs', () => {
  it('persists to the data dir, serves the UI and enables task priorities, fairness and one partition per queue', () => {
    const args = devServerArgs({
      ip: '127.0.0.1',
      port: 7233,
      uiPort: 8233,
      dbFile: '/data/temporal.db',
      namespace: 'default',
    });
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.deepEqual(args.slice(0, 2), ['server', 'start-dev']);
    assert.equal(flag('--port'), '7233');
    assert.equal(flag('--ui-port'), '8233');
    assert.equal(flag('--db-filename'), '/data/temporal.db');
    const dynamic = args.flatMap((arg, i) => (args[i - 1] === '--dynamic-config-value' ? [arg] : []));
    assert.deepEqual(dynamic, [
      'matching.useNewMatcher=true',
      'matching.enableFairness=true',
      'matching.numTaskqueueReadPartitions=1',
      'matching.numTaskqueueWritePartitions=1',
    ]);
    assert.ok(!args.includes('--headless'));
  });
});
