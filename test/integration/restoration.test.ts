/**
 * Restoration jobs on a real dev server: a batch of generated pages plus broken files completes with every item
 * reported, PSNR rises, pause holds, and a worker stopped mid-batch leaves every output written exactly once.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RestoreBatchResult } from '../../src/workflows/restoration';
import type { RestoreDocumentResult } from '../../src/activities/restoration/restore-document';
import { fixtureFile } from '../helpers/fixtures';
import { createTestWorker, sleep, startTestStack, waitFor, type TestStack } from '../helpers/temporal';

interface ReportItem {
  input: string;
  ok: boolean;
  error?: string;
  metrics?: { reference?: { inputPsnr: number; outputPsnr: number } };
}

const BROKEN = ['truncated.jpg', 'corrupt-header.jpg', 'empty.jpg', 'notes.txt'];

describe('restoration jobs on a real dev server', () => {
  let stack: TestStack;
  let dataDir: string;

  before(async () => {
    stack = await startTestStack('restoration');
    dataDir = process.env.BACKROOM_DATA_DIR ?? '';
    const pages = await stack.jobs.start('generateSamplePages', {
      outputDir: 'samples',
      count: 6,
      seed: 7,
      width: 800,
      height: 1100,
    });
    await stack.jobs.result(pages.id);
    // Broken files among the pages: they must be reported, not stop the batch.
    const degraded = path.join(dataDir, 'samples/degraded');
    copyFileSync(fixtureFile('images/truncated.jpg'), path.join(degraded, 'truncated.jpg'));
    copyFileSync(fixtureFile('images/corrupt-header.jpg'), path.join(degraded, 'corrupt-header.jpg'));
    writeFileSync(path.join(degraded, 'empty.jpg'), '');
    writeFileSync(path.join(degraded, 'notes.txt'), 'not an image');
  });
  after(() => stack.stop());

  it('restoreDocument raises PSNR and SSIM against the clean reference and corrects the skew', async () => {
    const manifest = JSON.parse(readFileSync(path.join(dataDir, 'samples/manifest.json'), 'utf8')) as {
      pages: { degradation: { skewDegrees: number } }[];
    };
    const { id } = await stack.jobs.start('restoreDocument', {
      input: 'samples/degraded/page-0001.jpg',
      reference: 'samples/clean/page-0001.png',
      output: 'single/page-0001.png',
    });
    const result = await stack.jobs.result<RestoreDocumentResult>(id);
    const reference = result.metrics.reference;
    assert.ok(reference);
    assert.ok(reference.outputPsnr > reference.inputPsnr + 1, JSON.stringify(reference));
    assert.ok(reference.outputSsim > reference.inputSsim, JSON.stringify(reference));
    const applied = manifest.pages[0]?.degradation.skewDegrees ?? NaN;
    const corrected = result.steps.find((s) => s.step === 'deskew')?.skewDegrees ?? NaN;
    assert.ok(Math.abs(corrected - applied) <= 0.5, `deskew found ${corrected}°, the page was skewed ${applied}°`);
    assert.equal(result.passed, true);
  });

  it('restoreBatch restores every good page, reports each broken one with its reason, and pause holds it', async () => {
    const { id } = await stack.jobs.start('restoreBatch', {
      inputDir: 'samples/degraded',
      outputDir: 'samples/restored',
      referenceDir: 'samples/clean',
      concurrency: 1,
    });
    await waitFor('the first item', async () => (await stack.jobs.status(id)).progress.done >= 1, 120_000);
    await stack.jobs.pause(id);
    const paused = await waitFor('paused', async () => {
      const view = await stack.jobs.status(id);
      return view.state === 'paused' && view;
    });
    // The item in flight when the pause came may finish (on a loaded machine a page takes seconds); nothing new
    // starts. So wait until no page is in flight, then check that nothing moves.
    const handle = stack.env.client.workflow.getHandle(id);
    await waitFor(
      'no page in flight',
      async () => ((await handle.describe()).raw.pendingActivities ?? []).length === 0,
      120_000,
    );
    const held = await stack.jobs.status(id);
    assert.ok(held.progress.done <= paused.progress.done + 1, `${held.progress.done} vs ${paused.progress.done}`);
    await sleep(3000);
    assert.equal(((await handle.describe()).raw.pendingActivities ?? []).length, 0, 'no page started while paused');
    assert.equal((await stack.jobs.status(id)).progress.done, held.progress.done, 'no progress while paused');
    await stack.jobs.resume(id);

    const result = await stack.jobs.result<RestoreBatchResult>(id);
    assert.equal(result.outcome, 'completed');
    assert.equal(result.total, 10);
    assert.equal(result.succeeded, 6);
    assert.equal(result.failed, 4);
    const report = JSON.parse(readFileSync(path.join(dataDir, 'samples/restored/report.json'), 'utf8')) as {
      items: ReportItem[];
      aggregates: { meanPsnrGain: number };
    };
    assert.equal(report.items.length, 10, 'every input is in the report');
    for (const name of BROKEN) {
      const item = report.items.find((i) => i.input.endsWith(name));
      assert.equal(item?.ok, false, name);
      assert.match(item?.error ?? '', /corrupt or truncated|empty \(0 bytes\)|not an image/, name);
    }
    for (const item of report.items.filter((i) => i.ok)) {
      const ref = item.metrics?.reference;
      assert.ok(ref && ref.outputPsnr > ref.inputPsnr, `${item.input}: ${JSON.stringify(ref)}`);
    }
    assert.ok(report.aggregates.meanPsnrGain > 1);
    assert.match(readFileSync(path.join(dataDir, 'samples/restored/report.txt'), 'utf8'), /Restored 6 of 10 documents/);
    const view = await stack.jobs.status(id);
    assert.equal(view.failed, 4);
    assert.ok(view.errors.some((e) => e.item.endsWith('truncated.jpg')));
  });

  it('a worker stopped mid-batch and a new one finish it with every output written exactly once', async () => {
    const { id } = await stack.jobs.start('restoreBatch', {
      inputDir: 'samples/degraded',
      outputDir: 'samples/restored-again',
      concurrency: 2,
      itemsPerRun: 10,
    });
    // Stop the shared worker mid-batch and take over with a fresh one.
    await waitFor('two items', async () => (await stack.jobs.status(id)).progress.done >= 2, 120_000);
    await stack.stopWorker();
    const second = await createTestWorker(stack.env, stack.taskQueue);
    const result = await second.runUntil(stack.jobs.result<RestoreBatchResult>(id));
    assert.equal(result.succeeded, 6);
    assert.equal(result.failed, 4);
    const outputDir = path.join(dataDir, 'samples/restored-again');
    const written = readFileSync(path.join(outputDir, '.backroom/writes.log'), 'utf8').trim().split('\n');
    assert.equal(written.length, 6, written.join('\n'));
    assert.equal(new Set(written).size, 6, 'no output was written twice');
    const pngs = readdirSync(outputDir).filter((name) => name.endsWith('.png'));
    assert.equal(pngs.length, 6);
    assert.ok(!readdirSync(outputDir).some((name) => name.includes('.tmp-')), 'no half-written files');
  });
});
