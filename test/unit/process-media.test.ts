/** processMedia's activity on photos (test/fixtures) and on broken files. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { processImage } from '../../src/activities/images/process-media';
import { runActivity } from '../helpers/activity';
import { fixtureFile } from '../helpers/fixtures';

const PHOTO = 'landscape.jpg';

describe('processImage', () => {
  const saved = { dataDir: process.env.BACKROOM_DATA_DIR, maxPixels: process.env.BACKROOM_MAX_INPUT_PIXELS };
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'media-'));
  const inDir = path.join(dataDir, 'in');

  before(() => {
    process.env.BACKROOM_DATA_DIR = dataDir;
    mkdirSync(inDir);
    for (const name of [PHOTO, 'Landscape_6.jpg', 'cmyk.jpg', 'truncated.jpg', 'corrupt-header.jpg']) {
      copyFileSync(fixtureFile(`images/${name}`), path.join(inDir, name));
    }
    writeFileSync(path.join(inDir, 'empty.jpg'), '');
    writeFileSync(path.join(inDir, 'notes.txt'), 'this is not an image\n'.repeat(20));
  });
  after(() => {
    for (const [key, value] of [
      ['BACKROOM_DATA_DIR', saved.dataDir],
      ['BACKROOM_MAX_INPUT_PIXELS', saved.maxPixels],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  const run = (input: string, operations: Parameters<typeof processImage>[0]['operations']) =>
    runActivity(new MockActivityEnvironment(), processImage, { input, outputDir: 'out', operations });

  it('makes a 300×300 thumbnail and an optimized WebP at least 50% smaller than the camera JPEG', async () => {
    const result = await run(`in/${PHOTO}`, [
      { op: 'thumbnail', width: 300, height: 300, fit: 'cover' },
      { op: 'optimize', format: 'webp' },
    ]);
    const [thumb, optimized] = result.outputs;
    assert.deepEqual([thumb?.width, thumb?.height], [300, 300]);
    assert.deepEqual(
      await sharp(path.join(dataDir, thumb?.path ?? ''))
        .metadata()
        .then((m) => [m.width, m.height]),
      [300, 300],
    );
    assert.equal(optimized?.format, 'webp');
    assert.deepEqual([optimized?.width, optimized?.height], [2725, 2225]);
    assert.ok((optimized?.bytes ?? Infinity) <= result.inputBytes * 0.5, `${optimized?.bytes} vs ${result.inputBytes}`);
    assert.equal(statSync(path.join(dataDir, optimized?.path ?? '')).size, optimized?.bytes);
  });

  it('applies filters in order and records each, writing the filtered image at the end', async () => {
    const result = await run(`in/${PHOTO}`, [
      { op: 'blur', radius: 3 },
      { op: 'brightness', factor: 1.3 },
      { op: 'grayscale' },
    ]);
    assert.deepEqual(
      result.operations.map((o) => o.op),
      ['blur', 'brightness', 'grayscale'],
    );
    const output = result.operations.at(-1)?.output;
    assert.ok(output?.endsWith('.processed.jpg'));
    const stats = await sharp(path.join(dataDir, output ?? '')).stats();
    const original = await sharp(path.join(inDir, PHOTO)).stats();
    const [r, g, b] = stats.channels;
    assert.ok(Math.abs((r?.mean ?? 0) - (b?.mean ?? 0)) < 2 && Math.abs((r?.mean ?? 0) - (g?.mean ?? 0)) < 2, 'grey');
    assert.ok((r?.mean ?? 0) > (original.channels[1]?.mean ?? 0), 'brighter than the original');
    assert.ok((stats.sharpness ?? 0) < (original.sharpness ?? 0), 'blurred');
  });

  it('turns EXIF-rotated photos upright and CMYK into sRGB', async () => {
    const rotated = await run('in/Landscape_6.jpg', [{ op: 'optimize', format: 'jpeg' }]);
    assert.deepEqual([rotated.width, rotated.height], [600, 450]);
    const cmyk = await run('in/cmyk.jpg', [{ op: 'optimize', format: 'jpeg' }]);
    const metadata = await sharp(path.join(dataDir, cmyk.outputs[0]?.path ?? '')).metadata();
    assert.equal(metadata.space, 'srgb');
    assert.equal(metadata.channels, 3);
  });

  for (const [name, input, type, message] of [
    [
      'a truncated JPEG',
      'in/truncated.jpg',
      'CorruptImage',
      /corrupt or truncated image \(premature end of JPEG image\)/,
    ],
    ['a corrupt header', 'in/corrupt-header.jpg', 'CorruptImage', /corrupt or truncated image/],
    ['a missing file', 'in/missing.jpg', 'FileNotFound', /in\/missing\.jpg does not exist/],
    ['an empty file', 'in/empty.jpg', 'EmptyFile', /is empty \(0 bytes\)/],
    ['a text file', 'in/notes.txt', 'UnsupportedFormat', /not an image in a supported format/],
    ['a path outside the data dir', '../../etc/passwd', 'PathOutsideDataDir', /outside the data dir/],
  ] as const) {
    it(`refuses ${name} with a clear, non-retryable error`, async () => {
      await assert.rejects(run(input, [{ op: 'grayscale' }]), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, type);
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('refuses an image over the pixel limit (decompression bomb guard)', async () => {
    process.env.BACKROOM_MAX_INPUT_PIXELS = '1000000';
    try {
      await assert.rejects(run(`in/${PHOTO}`, [{ op: 'grayscale' }]), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, 'ImageTooLarge');
        assert.match(err.message, /larger than the limit of 1,000,000 pixels/);
        return true;
      });
    } finally {
      delete process.env.BACKROOM_MAX_INPUT_PIXELS;
    }
  });
});
