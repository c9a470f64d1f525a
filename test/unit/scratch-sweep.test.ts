/**
 * Scratch folders: the sweep of those left by killed workers (only Backroom's, only those untouched for long enough),
 * and the check that a guessable folder in the shared temporary folder is the worker's own before it is used.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { STALE_SCRATCH_MS, isPrivateFolder, makePrivateFolder, sweepStaleScratch } from '../../src/activities/scratch';

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

describe('makePrivateFolder', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'private-folder-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const refused = (err: unknown) =>
    err instanceof ApplicationFailure && err.nonRetryable && err.type === 'ScratchFolderRefused';

  it('makes a folder only its user may enter, and closes one of ours left open', async () => {
    const made = await makePrivateFolder(path.join(dir, 'new', 'deeper'));
    assert.equal(statSync(made).mode & 0o777, 0o700);
    assert.equal(await isPrivateFolder(made), true);
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    assert.equal(await isPrivateFolder(open), false, 'open to others: not read as ours');
    await makePrivateFolder(open);
    assert.equal(statSync(open).mode & 0o777, 0o700);
  });

  it('refuses a link planted at the name, and reads nothing through it', async () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'private-folder-elsewhere-'));
    chmodSync(elsewhere, 0o700);
    const planted = path.join(dir, 'planted');
    symlinkSync(elsewhere, planted);
    await assert.rejects(makePrivateFolder(planted), refused);
    assert.equal(await isPrivateFolder(planted), false);
    assert.equal(await isPrivateFolder(path.join(dir, 'missing')), false);
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it("refuses another user's folder", { skip: process.getuid?.() !== 0 && 'needs root to make one' }, async () => {
    const theirs = path.join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 54321, 54321);
    await assert.rejects(makePrivateFolder(theirs), refused);
    assert.equal(await isPrivateFolder(theirs), false);
  });
});
