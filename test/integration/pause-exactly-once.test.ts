/**
 * Single-activity jobs obey pause, resume and cancel on a real dev server: processMedia stops between operations
 * and carries on from the next one, restoreDocument's pixel task is aborted and run again, neither completes while
 * paused, and a graceful cancel returns what was done. restoreBatch writes every page exactly once when an attempt
 * dies at any moment of an item's write.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { ProcessImageResult } from '../../src/activities/images/process-media';
import { restoreBatchItemWith, type BatchWritePoint } from '../../src/activities/restoration/batch';
import type { RestoreDocumentResult } from '../../src/activities/restoration/restore-document';
import type { ProcessMediaResult } from '../../src/workflows/media';
import type { RestoreBatchResult, RestoreDocumentOutcome } from '../../src/workflows/restoration';
import {
  createTestWorker,
  sleep,
  startTestStack,
  testJobs,
  uniqueTaskQueue,
  waitFor,
  type TestStack,
} from '../helpers/temporal';

/** Enough wide blurs of a 9-megapixel photo (about a second each here) that the job is mid-way when paused. */
const OPERATIONS = [
  { op: 'thumbnail' as const, width: 300, height: 300 },
  ...Array.from({ length: 20 }, () => ({ op: 'blur' as const, radius: 100 })),
  { op: 'optimize' as const, format: 'webp' as const },
];

describe('pause, resume and cancel of single-activity jobs; exactly-once batch outputs', () => {
  let stack: TestStack;
  let dataDir: string;

  /** The workflow's own state in Temporal: RUNNING until it completes. */
  const executionStatus = async (id: string) => (await stack.env.client.workflow.getHandle(id).describe()).status.name;

  /** Waits until the job reads `paused` and no activity of it runs any more. */
  const pausedAndIdle = (id: string) =>
    waitFor(
      'paused with no activity running',
      async () => {
        const view = await stack.jobs.status(id);
        return view.state === 'paused' && view.activities.length === 0 && view;
      },
      60_000,
    );

  /** Starts processMedia on the noisy photo into `outputDir` and waits until two of its operations are done. */
  const startMediaPastTwoOperations = async (outputDir: string) => {
    const { id } = await stack.jobs.start('processMedia', {
      input: 'photos/noise.jpg',
      outputDir,
      operations: OPERATIONS,
    });
    await waitFor(
      'two operations done',
      async () => {
        const activity = (await stack.jobs.status(id)).activities.find((a) => a.type === 'processImageResumable');
        return (activity?.progress?.done ?? 0) >= 2;
      },
      120_000,
    );
    return id;
  };

  before(async () => {
    stack = await startTestStack('pause-exactly-once');
    dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    mkdirSync(path.join(dataDir, 'photos'), { recursive: true });
    await sharp({
      create: {
        width: 3000,
        height: 3000,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 60 },
      },
    })
      .jpeg()
      .toFile(path.join(dataDir, 'photos/noise.jpg'));
    const pages = await stack.jobs.start('generateSamplePages', {
      outputDir: 'pages',
      count: 4,
      seed: 3,
      width: 2480,
      height: 3508,
    });
    await stack.jobs.result(pages.id);
  });
  after(() => stack.stop());

  it('processMedia: pause stops it between operations and holds it; resume carries on from the next one', async () => {
    const id = await startMediaPastTwoOperations('media-paused');
    await stack.jobs.pause(id);
    const paused = await pausedAndIdle(id);
    assert.ok(paused.progress.done < OPERATIONS.length, `stopped mid-way: ${JSON.stringify(paused.progress)}`);
    const thumbnail = path.join(dataDir, 'media-paused/noise.thumb-300x300.webp');
    const written = statSync(thumbnail);
    assert.equal(existsSync(path.join(dataDir, 'media-paused/noise.optimized.webp')), false, 'not finished');
    await sleep(3000);
    assert.equal((await stack.jobs.status(id)).state, 'paused');
    assert.equal(await executionStatus(id), 'RUNNING', 'no completion while paused');

    await stack.jobs.resume(id);
    const result = (await stack.jobs.result<ProcessMediaResult>(id)) as ProcessImageResult;
    assert.equal(result.operations.length, OPERATIONS.length);
    assert.deepEqual(
      result.outputs.map((o) => o.path),
      ['media-paused/noise.thumb-300x300.webp', 'media-paused/noise.optimized.webp'],
    );
    assert.equal(statSync(thumbnail).mtimeMs, written.mtimeMs, 'the thumbnail was not written again after resume');
    assert.equal((await stack.jobs.status(id)).state, 'completed');
  });

  it('processMedia: a graceful cancel stops it mid-way and returns the operations done and their outputs', async () => {
    const id = await startMediaPastTwoOperations('media-cancelled');
    await stack.jobs.cancel(id);
    const result = await stack.jobs.result<ProcessMediaResult>(id);
    assert.ok('outcome' in result && result.outcome === 'cancelled', JSON.stringify(result));
    assert.ok(result.operationsDone >= 2 && result.operationsDone < OPERATIONS.length, JSON.stringify(result));
    assert.deepEqual(
      result.outputs.map((o) => o.path),
      ['media-cancelled/noise.thumb-300x300.webp'],
    );
    assert.equal(existsSync(path.join(dataDir, 'media-cancelled/noise.optimized.webp')), false);
    assert.equal((await stack.jobs.status(id)).state, 'cancelled');
  });

  it('restoreDocument: pause aborts the page, holds the job, and resume restores it', async () => {
    const output = 'restored-paused/page-0001.png';
    const { id } = await stack.jobs.start('restoreDocument', {
      input: 'pages/degraded/page-0001.jpg',
      reference: 'pages/clean/page-0001.png',
      output,
      steps: ['denoise', 'deskew', 'normalize', 'binarize'],
    });
    await waitFor(
      'the page on the CPU pool',
      async () => (await stack.jobs.status(id)).activities.some((a) => a.type === 'restoreDocumentResumable'),
      60_000,
    );
    await stack.jobs.pause(id);
    await pausedAndIdle(id);
    assert.equal(existsSync(path.join(dataDir, output)), false, 'the pixel task was aborted before writing');
    await sleep(3000);
    assert.equal((await stack.jobs.status(id)).state, 'paused');
    assert.equal(await executionStatus(id), 'RUNNING', 'no completion while paused');

    await stack.jobs.resume(id);
    const result = (await stack.jobs.result<RestoreDocumentOutcome>(id)) as RestoreDocumentResult;
    assert.equal(result.output, output);
    assert.ok(existsSync(path.join(dataDir, output)));
    const reference = result.metrics.reference;
    assert.ok(reference && reference.outputPsnr > reference.inputPsnr, JSON.stringify(reference));
  });

  it('restoreDocument: a graceful cancel aborts the page and ends the job cancelled, with nothing written', async () => {
    const output = 'restored-cancelled/page-0002.png';
    const { id } = await stack.jobs.start('restoreDocument', {
      input: 'pages/degraded/page-0002.jpg',
      output,
      steps: ['denoise', 'deskew', 'normalize', 'binarize'],
    });
    await waitFor(
      'the page on the CPU pool',
      async () => (await stack.jobs.status(id)).activities.some((a) => a.type === 'restoreDocumentResumable'),
      60_000,
    );
    await stack.jobs.cancel(id);
    const result = await stack.jobs.result<RestoreDocumentOutcome>(id);
    assert.deepEqual(result, { outcome: 'cancelled' });
    assert.equal(existsSync(path.join(dataDir, output)), false, 'the pixel task was aborted before writing');
    assert.equal((await stack.jobs.status(id)).state, 'cancelled');
  });

  it('a job whose last activity finishes while it is paused waits for resume before completing', async () => {
    // An activity that never heartbeats cannot hear the pause: it finishes whatever the job's state.
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const finished = { input: 'photos/noise.jpg', inputBytes: 1, width: 1, height: 1, operations: [], outputs: [] };
    const processImageResumable = async () => {
      await released;
      return { finished: true, result: finished };
    };
    const taskQueue = uniqueTaskQueue('hold-while-paused');
    const worker = await createTestWorker(stack.env, taskQueue, { activities: { processImageResumable } });
    const jobs = testJobs(stack.env, taskQueue);
    await worker.runUntil(async () => {
      const { id } = await jobs.start('processMedia', { input: 'photos/noise.jpg', operations: [{ op: 'grayscale' }] });
      await waitFor('the activity running', async () => (await jobs.status(id)).activities.length > 0);
      await jobs.pause(id);
      await waitFor('paused', async () => (await jobs.status(id)).state === 'paused');
      release();
      await waitFor('the activity finished', async () => (await jobs.status(id)).activities.length === 0);
      await sleep(2000);
      assert.equal((await jobs.status(id)).state, 'paused');
      assert.equal(
        (await stack.env.client.workflow.getHandle(id).describe()).status.name,
        'RUNNING',
        'no completion while paused',
      );
      await jobs.resume(id);
      assert.deepEqual(await jobs.result(id), finished);
      assert.equal((await jobs.status(id)).state, 'completed');
    });
  });

  it('restoreBatch writes every page once when an attempt dies before, at or after its output landed', async () => {
    // Item 0 dies after its "writing" record, before the rename; item 1 right after the rename; item 2 after the
    // audit line too. Each attempt throws there, as a killed worker stops there: nothing after that point runs.
    const crashes = new Map<number, BatchWritePoint>([
      [0, 'recorded-writing'],
      [1, 'output-landed'],
      [2, 'logged'],
    ]);
    const outputDir = path.join(dataDir, 'batch-once');
    const landed = new Map<number, { mtimeMs: number; ino: number }>();
    const crashed: string[] = [];
    const restoreBatchItem = restoreBatchItemWith((point, index) => {
      if (crashes.get(index) !== point) return;
      crashes.delete(index);
      crashed.push(`${index}:${point}`);
      const file = path.join(outputDir, `page-000${index + 1}.png`);
      if (existsSync(file)) landed.set(index, statSync(file));
      throw new Error(`worker killed at ${point} of item ${index}`);
    });
    const taskQueue = uniqueTaskQueue('batch-once');
    const worker = await createTestWorker(stack.env, taskQueue, { activities: { restoreBatchItem } });
    const jobs = testJobs(stack.env, taskQueue);
    const { id } = await jobs.start('restoreBatch', {
      inputDir: 'pages/degraded',
      outputDir: 'batch-once',
      concurrency: 2,
    });
    const result = await worker.runUntil(jobs.result<RestoreBatchResult>(id));

    assert.deepEqual(crashed.sort(), ['0:recorded-writing', '1:output-landed', '2:logged'], 'every crash happened');
    assert.equal(landed.has(0), false, 'item 0 died before its output landed');
    assert.deepEqual([result.outcome, result.succeeded, result.failed], ['completed', 4, 0]);
    const lines = readFileSync(path.join(outputDir, '.backroom/writes.log'), 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((line) => line.split('\t')[0]).sort(),
      ['0', '1', '2', '3'],
      `one audit line per page: ${lines.join(' | ')}`,
    );
    for (const [index, before] of landed) {
      const now = statSync(path.join(outputDir, `page-000${index + 1}.png`));
      assert.deepEqual([now.mtimeMs, now.ino], [before.mtimeMs, before.ino], `page ${index + 1} was not written again`);
    }
    for (const index of [0, 1, 2, 3]) {
      const record = JSON.parse(readFileSync(path.join(outputDir, `.backroom/results/${index}.json`), 'utf8')) as {
        ok: boolean;
        writing?: unknown;
      };
      assert.deepEqual([record.ok, record.writing], [true, undefined], `item ${index} recorded as done`);
    }
    assert.equal(readdirSync(outputDir).filter((name) => name.endsWith('.png')).length, 4);
    assert.ok(!readdirSync(outputDir).some((name) => name.includes('.tmp-')), 'no half-written files');
  });
});
