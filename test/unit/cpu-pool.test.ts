/**
 * The CPU pool: a task gives the same bytes on a pool thread as on the calling thread, an aborted task stops, and an
 * activity waiting on the pool is cancelled at once instead of finishing its page.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { closeCpuPool, runCpuTask } from '../../src/activities/cpu-pool';
import { readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import { degradePage, randomDegradation, renderCleanPage } from '../../src/activities/restoration/page-generator';
import { restoreAndMeasure } from '../../src/activities/restoration/restore-image';
import { restoreDocumentImage } from '../../src/activities/restoration/restore-document';
import { runActivity } from '../helpers/activity';

const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-unit-cpu-pool-'));
process.env.BACKROOM_DATA_DIR = dataDir;

describe('the CPU pool', () => {
  let page: GrayImage;
  let clean: GrayImage;

  before(async () => {
    const cleanPng = await renderCleanPage({ seed: 31, width: 600, height: 800 });
    const degradedJpeg = await degradePage(cleanPng, randomDegradation(31), 31);
    mkdirSync(path.join(dataDir, 'pages'), { recursive: true });
    writeFileSync(path.join(dataDir, 'pages/clean.png'), cleanPng);
    writeFileSync(path.join(dataDir, 'pages/degraded.jpg'), degradedJpeg);
    page = await readGray(degradedJpeg);
    clean = await readGray(cleanPng);
  });
  after(() => closeCpuPool());

  it('restores a page on a pool thread to the same bytes and metrics as on this thread', async () => {
    const steps = ['denoise', 'deskew', 'normalize', 'binarize'] as const;
    const here = await restoreAndMeasure({ page, reference: clean, steps: [...steps] });
    const pooled = await runCpuTask('restoreAndMeasure', { page, reference: clean, steps: [...steps] });
    assert.deepEqual(Buffer.from(pooled.image.data), Buffer.from(here.image.data));
    assert.deepEqual(pooled.metrics, here.metrics);
    assert.deepEqual(
      pooled.records.map((record) => record.detail),
      here.records.map((record) => record.detail),
    );
  });

  it('stops a task whose signal aborts, before or while it runs', async () => {
    const before = new AbortController();
    before.abort();
    await assert.rejects(
      runCpuTask('restoreAndMeasure', { page, steps: ['denoise'] }, { signal: before.signal }),
      (err: Error) => err.name === 'AbortError',
    );
    const during = new AbortController();
    const running = runCpuTask(
      'restoreAndMeasure',
      { page, steps: ['normalize', 'binarize'] },
      { signal: during.signal },
    );
    setImmediate(() => during.abort());
    await assert.rejects(running, (err: Error) => err.name === 'AbortError');
    // The pool replaces the thread it stopped: the next task runs.
    const next = await runCpuTask('restoreAndMeasure', { page, steps: ['binarize'] });
    assert.equal(next.image.data.length, page.data.length);
  });

  it('cancels an activity waiting on the pool instead of letting it finish the page', async () => {
    const env = new MockActivityEnvironment(undefined, quiet);
    env.once('heartbeat', () => env.cancel());
    await assert.rejects(
      runActivity(env, restoreDocumentImage, {
        input: 'pages/degraded.jpg',
        reference: 'pages/clean.png',
        output: 'restored/page.png',
        steps: ['denoise', 'deskew', 'normalize', 'binarize'],
        thresholds: { minPsnrGainDb: 0, minSsim: 0, maxResidualSkewDegrees: 0.5, maxNoiseSigma: 8 },
      }),
      (err: Error) => err instanceof CancelledFailure || err.name === 'AbortError',
    );
  });
});
