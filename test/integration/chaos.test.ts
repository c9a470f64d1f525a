/**
 * The short chaos run: the mixed load of `npm run chaos`, smaller, with two worker kills. Every promise it checks
 * must hold (see test/chaos/chaos-run.ts for the checks).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatChaosReport, runChaos, SHORT_CHAOS } from '../chaos/chaos-run';

describe('chaos run (short)', () => {
  it('loses nothing, writes each page once and matches the uninterrupted runs despite two worker kills', async () => {
    const report = await runChaos(SHORT_CHAOS, (line) => console.log(line));
    console.log(formatChaosReport(report));
    assert.ok(report.workerKills >= 2, `two workers were killed (${report.workerKills})`);
    const failed = report.checks.filter((check) => !check.ok);
    assert.deepEqual(failed, [], 'every chaos check passes');
  });
});
