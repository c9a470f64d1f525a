/**
 * The parts of a bucket dataset's local mirror (src/activities/training/dataset-mirror.ts) that need no server: which
 * files are mirrored, which names a manifest may give them, and that a mirror's file is readable (and named by its
 * object) only while it is read as a mirror's. The mirror itself, on a real S3 server, is in
 * test/integration/object-storage-training.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { readDatasetImage, DATASET_FORMAT, type DatasetManifest } from '../../src/activities/training/dataset';
import { filesToMirror, unsafeName } from '../../src/activities/training/dataset-mirror';
import { modelLayer, trainModelInput } from '../../src/shared/training-inputs';

const pair = (name: string, clean: string, degraded: string) => ({ name, clean, degraded });

describe('dataset mirrors', () => {
  let dataDir: string;
  let scratch: string;
  const previous = { data: process.env.BACKROOM_DATA_DIR, buckets: process.env.BACKROOM_S3_BUCKETS };

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-mirror-data-'));
    scratch = mkdtempSync(path.join(os.tmpdir(), 'backroom-mirror-scratch-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
    process.env.BACKROOM_S3_BUCKETS = 'bucket';
  });
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
    for (const [name, value] of [
      ['BACKROOM_DATA_DIR', previous.data],
      ['BACKROOM_S3_BUCKETS', previous.buckets],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('mirrors the patches and the held-out pages, not the training pages', () => {
    const manifest = {
      format: DATASET_FORMAT,
      pages: {
        train: [pair('page-0001', 'pages/clean/page-0001.png', 'pages/degraded/page-0001.jpg')],
        val: [pair('page-0002', 'pages/clean/page-0002.png', 'pages/degraded/page-0002.jpg')],
      },
      patches: {
        train: [pair('train/a', 'patches/train/a-clean.png', 'patches/train/a-degraded.png')],
        val: [pair('val/b', 'patches/val/b-clean.png', 'patches/val/b-degraded.png')],
      },
    } as unknown as DatasetManifest;
    assert.deepEqual(filesToMirror(manifest).sort(), [
      'pages/clean/page-0002.png',
      'pages/degraded/page-0002.jpg',
      'patches/train/a-clean.png',
      'patches/train/a-degraded.png',
      'patches/val/b-clean.png',
      'patches/val/b-degraded.png',
    ]);
    // A name that is not a string cannot slip through as "undefined".
    const broken = { ...manifest, patches: { train: [{ name: 'x' }], val: [] } } as unknown as DatasetManifest;
    assert.equal(unsafeName(filesToMirror(broken)), '');
  });

  it('refuses names that would leave the mirror or are not plain paths', () => {
    assert.equal(unsafeName(['patches/train/a-clean.png', 'pages/clean/page-0001.png']), undefined);
    for (const name of ['../outside.png', 'patches/../../x.png', '/etc/passwd', 'a//b.png', './a.png', '', 'a/b/']) {
      assert.equal(unsafeName(['patches/ok.png', name]), name, name);
    }
  });

  it("reads a mirror's file as a scratch copy of its object, and only as such", async () => {
    const dir = path.join(scratch, 'mirror');
    mkdirSync(path.join(dir, 'patches'), { recursive: true });
    const png = await sharp(Buffer.alloc(16 * 16, 90), { raw: { width: 16, height: 16, channels: 1 } })
      .png()
      .toBuffer();
    writeFileSync(path.join(dir, 'patches/a.png'), png);
    writeFileSync(path.join(dir, 'patches/broken.png'), 'not an image');
    const folder = { dir, mirrorOf: 's3://bucket/datasets/tiny/' };
    const image = await readDatasetImage(folder, 'patches/a.png');
    assert.equal(image.width, 16);
    assert.equal(image.data[0], 90);
    // A message about a mirror's file names the object, not the scratch file.
    await assert.rejects(readDatasetImage(folder, 'patches/broken.png'), (err: Error) => {
      assert.match(err.message, /s3:\/\/bucket\/datasets\/tiny\/patches\/broken\.png/);
      assert.doesNotMatch(err.message, new RegExp(scratch));
      return true;
    });
    // The same file read as a data-dir dataset's is outside the data dir, and refused; so is it after the read.
    await assert.rejects(readDatasetImage({ dir }, 'patches/a.png'), { type: 'PathOutsideDataDir' });
  });

  it('trainModel takes a bucket dataset, model folder and checkpoints; folders must end with "/"', () => {
    const parsed = trainModelInput.parse({
      layer: modelLayer.enum.layer1,
      dataset: 's3://bucket/datasets/tiny/',
      modelDir: 's3://bucket/models/tiny/',
      fineTuneFrom: 's3://bucket/models/old/best.json',
      epochs: 1,
    });
    assert.equal(parsed.modelDir, 's3://bucket/models/tiny/');
    const problems = (input: Record<string, unknown>) =>
      trainModelInput
        .safeParse({ layer: 'layer1', dataset: 'datasets/tiny', epochs: 1, ...input })
        .error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) ?? [];
    assert.match(
      problems({ modelDir: 's3://bucket/models/tiny' }).join(),
      /modelDir: .*a folder in a bucket ends with/,
    );
    assert.match(problems({ dataset: 's3://bucket/datasets/tiny' }).join(), /dataset: .*ends with "\/"/);
    assert.match(problems({ fineTuneFrom: 's3://bucket/models/' }).join(), /fineTuneFrom: .*names a folder/);
  });
});
