/** The sweep of scratch folders left by killed workers: only Backroom's, only those untouched for long enough. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { STALE_SCRATCH_MS, sweepStaleScratch } from '../../src/activities/scratch';

describe('sweepStaleScratch', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scratch-sweep-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A folder with one file, both last changed `ageMs` ago. */
  function folder(name: string, ageMs: number, fileAgeMs = ageMs): void {
    const at = path.join(dir, name);
    mkdirSync(at);
    writeFileSync(path.join(at, 'copy.jpg'), 'x');
    const seconds = (ago: number) => (Date.now() - ago) / 1000;
    utimesSync(path.join(at, 'copy.jpg'), seconds(fileAgeMs), seconds(fileAgeMs));
    utimesSync(at, seconds(ageMs), seconds(ageMs));
  }

  it('removes stale Backroom scratch folders and nothing else', async () => {
    const day = STALE_SCRATCH_MS;
    folder('backroom-scratch-old', 2 * day);
    folder('backroom-scratch-cuts-abc', 3 * day);
    folder('backroom-scratch-fresh', 60_000);
    // An old folder whose file was written recently is still in use.
    folder('backroom-scratch-in-use', 2 * day, 60_000);
    folder('someone-else-old', 5 * day);
    writeFileSync(path.join(dir, 'backroom-scratch-a-file'), 'not a folder');

    const removed = await sweepStaleScratch({ dir });
    assert.deepEqual(removed.sort(), ['backroom-scratch-cuts-abc', 'backroom-scratch-old']);
    assert.deepEqual(readdirSync(dir).sort(), [
      'backroom-scratch-a-file',
      'backroom-scratch-fresh',
      'backroom-scratch-in-use',
      'someone-else-old',
    ]);
  });

  it('does nothing in a folder that does not exist', async () => {
    assert.deepEqual(await sweepStaleScratch({ dir: path.join(dir, 'missing') }), []);
  });
});
