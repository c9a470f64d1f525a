/**
 * The confinement rule on a real file system: a path is allowed only where it really leads (symlinks resolved),
 * reads and writes through links that leave the data dir are refused, links that stay inside keep working, writes
 * never follow a link at the final name, listed folders report links that lead outside, and no error quotes a file.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parseRecipients } from '../../src/activities/email/recipients';
import {
  appendDataFile,
  listDataFiles,
  readDataFile,
  resolveDataPath,
  writeFileAtomic,
} from '../../src/activities/files';
import { readCheckpoint } from '../../src/activities/training/checkpoint';
import { locateInDataDir } from '../../src/data-paths';
import { dataPath } from '../../src/shared/data-path';

const CANARY = `CANARY-${process.pid}-do-not-leak`;
let outside: string;
let data: string;
let previousDataDir: string | undefined;

/** Asserts `action` is refused as PathOutsideDataDir, naming `userPath`, never quoting the canary. */
function refusesOutside(action: () => unknown, userPath?: string): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'PathOutsideDataDir');
    assert.equal(err.nonRetryable, true);
    if (userPath) assert.ok(err.message.includes(`"${userPath}"`), err.message);
    assert.ok(!err.message.includes(CANARY));
    return true;
  });
}

async function rejectsOutside(action: Promise<unknown>): Promise<void> {
  await assert.rejects(action, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'PathOutsideDataDir');
    return true;
  });
}

function outsideUntouched(): void {
  assert.deepEqual(readdirSync(outside).sort(), ['canary.csv', 'canary.json', 'folder']);
  assert.deepEqual(readdirSync(path.join(outside, 'folder')), ['secret.txt']);
}

describe('confinement to the data dir', () => {
  before(() => {
    previousDataDir = process.env.BACKROOM_DATA_DIR;
    const root = mkdtempSync(path.join(os.tmpdir(), 'backroom-confine-'));
    outside = path.join(root, 'outside');
    data = path.join(root, 'data');
    mkdirSync(path.join(outside, 'folder'), { recursive: true });
    writeFileSync(path.join(outside, 'folder', 'secret.txt'), CANARY);
    writeFileSync(path.join(outside, 'canary.csv'), `${CANARY},root:x:0:0\n`);
    writeFileSync(path.join(outside, 'canary.json'), `${CANARY}: not json`);
    mkdirSync(path.join(data, 'inside', 'real'), { recursive: true });
    mkdirSync(path.join(data, 'links'));
    writeFileSync(path.join(data, 'inside', 'real', 'page.txt'), 'fine');
    symlinkSync(path.join(outside, 'folder'), path.join(data, 'links', 'dir-out'));
    symlinkSync(path.join(outside, 'canary.csv'), path.join(data, 'links', 'file-out.csv'));
    symlinkSync('../../outside/folder', path.join(data, 'links', 'relative-out'));
    symlinkSync(path.join(outside, 'not-yet.txt'), path.join(data, 'links', 'dangling-out.txt'));
    symlinkSync(path.join(data, 'links', 'dir-out'), path.join(data, 'links', 'chain-out'));
    symlinkSync(path.join(data, 'inside', 'real'), path.join(data, 'links', 'dir-in'));
    symlinkSync('../inside/real/page.txt', path.join(data, 'links', 'file-in.txt'));
    process.env.BACKROOM_DATA_DIR = data;
  });
  after(() => {
    if (previousDataDir === undefined) delete process.env.BACKROOM_DATA_DIR;
    else process.env.BACKROOM_DATA_DIR = previousDataDir;
  });

  it('refuses paths that leave by name: "..", absolute paths elsewhere', () => {
    refusesOutside(() => resolveDataPath('../outside/canary.csv'), '../outside/canary.csv');
    refusesOutside(() => resolveDataPath('inside/../../outside'), 'inside/../../outside');
    refusesOutside(() => resolveDataPath(path.join(outside, 'canary.csv')));
    assert.equal(resolveDataPath('inside/real/page.txt'), path.join(data, 'inside/real/page.txt'));
    assert.equal(resolveDataPath(path.join(data, 'x')), path.join(data, 'x'));
    // A name that merely starts with two dots is a name, not a step up.
    assert.equal(resolveDataPath('..hidden'), path.join(data, '..hidden'));
  });

  it('refuses paths that leave through links: to a file, to a folder, relative, dangling, chained, for new files too', () => {
    for (const userPath of [
      'links/file-out.csv',
      'links/dir-out',
      'links/dir-out/secret.txt',
      'links/dir-out/new-output.png',
      'links/dir-out/new/deeper/output.png',
      'links/relative-out/secret.txt',
      'links/dangling-out.txt',
      'links/chain-out/secret.txt',
    ]) {
      refusesOutside(() => resolveDataPath(userPath), userPath);
      const located = locateInDataDir(userPath);
      assert.ok('problem' in located && /symbolic link/.test(located.problem), userPath);
    }
  });

  it('keeps links that stay inside working', () => {
    assert.equal(resolveDataPath('links/dir-in/page.txt'), path.join(data, 'links/dir-in/page.txt'));
    assert.equal(resolveDataPath('links/file-in.txt'), path.join(data, 'links/file-in.txt'));
    assert.equal(resolveDataPath('links/dir-in/new.png'), path.join(data, 'links/dir-in/new.png'));
  });

  it('refuses NUL and control characters and absurd lengths in the schema itself (workflows and clients alike)', () => {
    for (const bad of ['a\u0000b.jpg', 'line\nbreak.jpg', 'tab\there', 'x'.repeat(4096), `${'y'.repeat(300)}/z`]) {
      const parsed = dataPath.safeParse(bad);
      assert.equal(parsed.success, false, JSON.stringify(bad.slice(0, 20)));
      refusesOutside(() => resolveDataPath(bad));
    }
    assert.equal(dataPath.safeParse('photos/ok file (1).jpg').success, true);
  });

  it('reads only inside: a read through a link is refused before the file is opened', async () => {
    await rejectsOutside(readDataFile(path.join(data, 'links/file-out.csv'), 'recipients file', 'utf8'));
    await rejectsOutside(readDataFile(path.join(data, 'links/dir-out/secret.txt')));
    assert.equal(await readDataFile(path.join(data, 'links/file-in.txt'), 'page', 'utf8'), 'fine');
  });

  it('writes only inside: through a folder link, into a planted sub-folder link, or at a dangling link', async () => {
    await rejectsOutside(writeFileAtomic(path.join(data, 'links/dir-out/written.png'), 'x'));
    await rejectsOutside(writeFileAtomic(path.join(data, 'links/dir-out/new/deeper/written.png'), 'x'));
    await rejectsOutside(appendDataFile(path.join(data, 'links/dir-out/writes.log'), 'x\n'));
    // A job's own output folder whose sub-folder someone replaced with a link.
    mkdirSync(path.join(data, 'job-out'));
    symlinkSync(path.join(outside, 'folder'), path.join(data, 'job-out', 'clean'));
    await rejectsOutside(writeFileAtomic(path.join(data, 'job-out/clean/page-0001.png'), 'x'));
    outsideUntouched();
    assert.equal(existsSync(path.join(outside, 'not-yet.txt')), false);
  });

  it('replaces a link at the final name instead of writing through it', async () => {
    const planted = path.join(data, 'inside', 'report.json');
    symlinkSync(path.join(outside, 'canary.json'), planted);
    await writeFileAtomic(planted, '{"ok":true}');
    assert.equal(lstatSync(planted).isSymbolicLink(), false);
    assert.equal(readFileSync(planted, 'utf8'), '{"ok":true}');
    assert.equal(readFileSync(path.join(outside, 'canary.json'), 'utf8'), `${CANARY}: not json`);
    await assert.rejects(appendDataFile(path.join(data, 'links', 'file-in.txt'), 'x'), /ELOOP|symbolic/i);
  });

  it('lists links that lead outside as items (to be refused with the reason), not silently skipped', async () => {
    const listed = (await listDataFiles(path.join(data, 'links'))).map((file) => path.basename(file));
    // dir-in is a folder inside: not an item; every other link is.
    assert.deepEqual(listed, [
      'chain-out',
      'dangling-out.txt',
      'dir-out',
      'file-in.txt',
      'file-out.csv',
      'relative-out',
    ]);
  });

  it('never quotes a file that is not what the job expected', async () => {
    const text = readFileSync(path.join(outside, 'canary.csv'), 'utf8');
    for (const [content, name] of [
      [text, 'r.csv'],
      [`"${CANARY}\n`, 'r.csv'],
      [text, 'r.json'],
    ] as const) {
      assert.throws(
        () => parseRecipients(content, name),
        (err: unknown) =>
          err instanceof ApplicationFailure && !err.message.includes(CANARY) && !/root:x/.test(err.message),
      );
    }
    writeFileSync(path.join(data, 'inside', 'not-a-model.json'), readFileSync(path.join(outside, 'canary.json')));
    writeFileSync(path.join(data, 'inside', 'wrong-model.json'), JSON.stringify({ [CANARY]: CANARY, format: CANARY }));
    const env = new MockActivityEnvironment();
    for (const file of ['not-a-model.json', 'wrong-model.json']) {
      await assert.rejects(
        env.run(() => readCheckpoint(path.join(data, 'inside', file), 'model')),
        (err: unknown) =>
          err instanceof ApplicationFailure && err.type === 'CorruptCheckpoint' && !err.message.includes(CANARY),
      );
    }
  });
});
