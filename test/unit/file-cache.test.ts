/**
 * The one file cache (src/activities/file-cache.ts): a replaced file is read again, the cache is bounded, and files
 * of different runs read at the same time in one process (two batches' manifests, two training datasets) each get
 * their own content.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { FILE_CACHE_ENTRIES, fileCacheSize, readCached } from '../../src/activities/file-cache';
import { loadManifest, type BatchManifest } from '../../src/activities/restoration/batch';
import { DATASET_FORMAT, loadDataset, type DatasetManifest } from '../../src/activities/training/dataset';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-file-cache-'));
process.env.BACKROOM_DATA_DIR = dataDir;

let parses = 0;
/** A parser that counts its reads (module-level: one parser identity for every call). */
async function countingParse(file: string): Promise<string> {
  parses++;
  return readFile(file, 'utf8');
}

describe('readCached', () => {
  it('parses a file once per version, and again when it is replaced in place', async () => {
    const file = path.join(dataDir, 'note.txt');
    writeFileSync(file, 'first');
    parses = 0;
    assert.equal(await readCached(file, countingParse), 'first');
    assert.equal(await readCached(file, countingParse), 'first');
    assert.equal(parses, 1, 'the same version is parsed once');

    writeFileSync(file, 'second, longer');
    assert.equal(await readCached(file, countingParse), 'second, longer', 'a new size is a new version');
    assert.equal(parses, 2);

    // Same size, new mtime: still a new version.
    writeFileSync(file, 'third, longer!');
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    assert.equal(await readCached(file, countingParse), 'third, longer!');
    assert.equal(parses, 3);
  });

  it('keeps one entry per parser of a file, shares a parse in flight, and forgets a failed one', async () => {
    const file = path.join(dataDir, 'shared.txt');
    writeFileSync(file, 'text');
    const upper = async (name: string) => (await readFile(name, 'utf8')).toUpperCase();
    const [a, b] = await Promise.all([readCached(file, upper), readCached(file, countingParse)]);
    assert.deepEqual([a, b], ['TEXT', 'text']);
    parses = 0;
    await Promise.all([readCached(file, countingParse), readCached(file, countingParse)]);
    assert.equal(parses, 0, 'already cached');

    let attempts = 0;
    const flaky = async () => {
      if (++attempts === 1) throw new Error('not yet');
      return 'ok';
    };
    await assert.rejects(readCached(file, flaky), /not yet/);
    assert.equal(await readCached(file, flaky), 'ok', 'a failed parse is not cached');
  });

  it('a missing file is not cached: the parser reports it', async () => {
    await assert.rejects(
      readCached(path.join(dataDir, 'missing.txt'), countingParse),
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
    );
  });

  it(`is bounded to ${FILE_CACHE_ENTRIES} entries, dropping the least recently used`, async () => {
    const files = Array.from({ length: FILE_CACHE_ENTRIES + 5 }, (_, i) => path.join(dataDir, `many-${i}.txt`));
    for (const [i, file] of files.entries()) writeFileSync(file, String(i));
    parses = 0;
    for (const file of files) await readCached(file, countingParse);
    assert.equal(parses, files.length);
    assert.ok(fileCacheSize() <= FILE_CACHE_ENTRIES, `${fileCacheSize()} entries`);
    await readCached(files.at(-1)!, countingParse);
    assert.equal(parses, files.length, 'a recent one is still there');
    await readCached(files[0]!, countingParse);
    assert.equal(parses, files.length + 1, 'the oldest was dropped');
  });
});

describe('files of different runs read at the same time', () => {
  it('two batches each get their own manifest', async () => {
    const manifests = ['batch-a', 'batch-b'].map((name): [string, BatchManifest] => {
      const dir = path.join(dataDir, name, '.backroom');
      mkdirSync(dir, { recursive: true });
      const manifest: BatchManifest = {
        createdAt: new Date().toISOString(),
        outputDir: name,
        items: [{ input: `${name}/in.png`, output: `${name}/out.png` }],
      };
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
      return [`${name}/.backroom/manifest.json`, manifest];
    });
    const order = [0, 1, 0, 1, 1, 0];
    const read = await Promise.all(order.map((i) => loadManifest(manifests[i]![0])));
    read.forEach((manifest, k) => assert.deepEqual(manifest, manifests[order[k]!]![1]));
  });

  it("two training runs' datasets load side by side, each with its own patches", async () => {
    const makeDataset = async (name: string, shade: number) => {
      const dir = path.join(dataDir, 'datasets', name);
      mkdirSync(path.join(dir, 'patches'), { recursive: true });
      const png = (value: number) =>
        sharp(Buffer.alloc(32 * 32, value), { raw: { width: 32, height: 32, channels: 1 } })
          .png()
          .toBuffer();
      for (const split of ['train', 'val']) {
        writeFileSync(path.join(dir, 'patches', `${split}-clean.png`), await png(255));
        writeFileSync(path.join(dir, 'patches', `${split}-degraded.png`), await png(shade));
      }
      const pair = (split: string) => ({
        name: `${split}/p`,
        clean: `patches/${split}-clean.png`,
        degraded: `patches/${split}-degraded.png`,
      });
      const manifest = {
        format: DATASET_FORMAT,
        datasetId: name,
        patches: { train: [pair('train')], val: [pair('val')] },
      } as unknown as DatasetManifest;
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    };
    await makeDataset('run-a', 40);
    await makeDataset('run-b', 200);
    const order = ['a', 'b', 'a', 'b'];
    const loaded = await Promise.all(order.map((run) => loadDataset(`datasets/run-${run}`)));
    loaded.forEach((dataset, k) => {
      assert.equal(dataset.manifest.datasetId, `run-${order[k]}`);
      assert.equal(dataset.train.inputs[0]?.data[0], order[k] === 'a' ? 40 : 200);
    });
    assert.equal(loaded[0], loaded[2], 'one decode per dataset');
    // Loading another dataset does not evict the first: a run after the other's load still gets its cached patches.
    assert.equal(await loadDataset('datasets/run-a'), loaded[0]);
  });
});
