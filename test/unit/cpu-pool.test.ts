/**
 * The CPU pool: a task gives the same bytes on a pool thread as on the calling thread, an aborted task stops, an
 * activity waiting on the pool is cancelled at once instead of finishing its page, and the pool's threads are shared
 * fairly between jobs (a job's short tasks are not stuck behind another job's backlog).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { closeCpuPool, runCpuTask } from '../../src/activities/cpu-pool';
import { FairShare } from '../../src/activities/fair-share';
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

/** A mock activity of the workflow run `job` (the pool's unit of fairness). */
function activityOf(job: string): MockActivityEnvironment {
  return new MockActivityEnvironment(
    { activityId: `${job}-activity`, workflowExecution: { workflowId: job, runId: `${job}-run` } },
    quiet,
  );
}

describe('the CPU pool shared between jobs', () => {
  const threads = process.env.BACKROOM_CPU_THREADS;
  let page: GrayImage;
  /** A few ms of work. */
  const tiny: GrayImage = { width: 32, height: 32, data: new Uint8Array(32 * 32).fill(200) };

  before(async () => {
    const cleanPng = await renderCleanPage({ seed: 32, width: 600, height: 800 });
    page = await readGray(await degradePage(cleanPng, randomDegradation(32), 32));
    await closeCpuPool();
    process.env.BACKROOM_CPU_THREADS = '2';
    // Both threads up and warm, so the order below is the queue's, not the threads' start-up.
    await Promise.all([0, 1].map(() => runCpuTask('restoreAndMeasure', { page, steps: ['deskew'] })));
  });
  after(async () => {
    await closeCpuPool();
    if (threads === undefined) delete process.env.BACKROOM_CPU_THREADS;
    else process.env.BACKROOM_CPU_THREADS = threads;
  });

  it("runs a job's short tasks before another job's backlog of long ones drains", async () => {
    const finished: string[] = [];
    const submit = (job: string, count: number, image: GrayImage, steps: ['deskew'] | ['binarize']) =>
      activityOf(job).run(async () =>
        Promise.all(
          Array.from({ length: count }, (_, i) =>
            runCpuTask('restoreAndMeasure', { page: image, steps }).then(() => void finished.push(`${job}${i}`)),
          ),
        ),
      );
    // Job a queues 8 deskews of a page (0.2–0.4 s each), then job b 3 tiny tasks: in arrival order b would end last.
    const longOnes = submit('a', 8, page, ['deskew']);
    const shortOnes = submit('b', 3, tiny, ['binarize']);
    await Promise.all([longOnes, shortOnes]);
    const lastOfB = Math.max(...['b0', 'b1', 'b2'].map((name) => finished.indexOf(name)));
    const aAfterB = finished.slice(lastOfB + 1).filter((name) => name.startsWith('a'));
    assert.ok(aAfterB.length >= 4, `job b waited for job a's backlog: ${finished.join(' ')}`);
  });

  it('drops a waiting task from the queue at once when its activity is cancelled', async () => {
    const events: string[] = [];
    const busy = activityOf('a').run(async () =>
      Promise.all(
        [0, 1, 2].map((i) =>
          runCpuTask('restoreAndMeasure', { page, steps: ['deskew'] }).then(() => void events.push(`a${i}`)),
        ),
      ),
    );
    const cancelled = activityOf('b');
    const waiting = cancelled.run(async () => runCpuTask('restoreAndMeasure', { page: tiny, steps: ['binarize'] }));
    cancelled.cancel();
    await assert.rejects(waiting, (err: Error) => {
      events.push('b aborted');
      return err.name === 'AbortError' && err.message === 'The task has been aborted';
    });
    await busy;
    assert.equal(events[0], 'b aborted', events.join(' '));
    // An explicit signal works the same, and the queue goes on without the dropped task.
    const controller = new AbortController();
    const blocking = [0, 1].map(() => runCpuTask('restoreAndMeasure', { page, steps: ['deskew'] }));
    const dropped = runCpuTask('restoreAndMeasure', { page: tiny, steps: ['binarize'] }, { signal: controller.signal });
    const after = runCpuTask('restoreAndMeasure', { page: tiny, steps: ['binarize'] });
    controller.abort();
    await assert.rejects(dropped, (err: Error) => err.name === 'AbortError');
    await Promise.all([...blocking, after]);
  });
});

describe('fair sharing of slots', () => {
  const aborted = (reason: unknown) => new Error('aborted', { cause: reason });

  it('runs at most `slots` tasks at once, and rejects the waiting ones when closed', async () => {
    const share = new FairShare(2, aborted);
    let running = 0;
    let most = 0;
    const task = async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => share.run(i % 2 ? 'x' : 'y', task)));
    assert.equal(most, 2);
    const held = [0, 1].map(() => share.run('x', () => new Promise((resolve) => setTimeout(resolve, 20))));
    const waiting = share.run('y', task);
    share.close(new Error('closed'));
    await assert.rejects(waiting, /closed/);
    await Promise.all(held);
  });
});
