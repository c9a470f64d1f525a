/**
 * Restoration benchmark, measured side by side in one run:
 *   1. restoreBatch on N generated pages (real dev server and worker) against the same restoration code in a bare
 *      loop with the same number of lanes: the cost of orchestration for real per-page work;
 *   2. a blur(3) + brightness(1.3) + JPEG pipeline per image in sharp against Pillow on the same images.
 * Sizes: BENCH_RESTORATION_PAGES (default 100; the figure is 500), BENCH_RESTORATION_LANES (default 2).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { configureSharp } from '../src/activities/images/sharp-settings';
import { restoreDocumentImage } from '../src/activities/restoration/restore-document';
import { degradePage, randomDegradation, renderCleanPage } from '../src/activities/restoration/page-generator';
import { DEFAULT_RESTORATION_STEPS } from '../src/shared/restoration-inputs';
import type { RestoreBatchResult } from '../src/workflows/restoration';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { fixtureFile } from '../test/helpers/fixtures';
import { intFromEnv } from './settings';

const fixed = (value: number, digits = 2) => value.toFixed(digits);

async function generate(dataDir: string, pages: number): Promise<string[]> {
  const names: string[] = [];
  mkdirSync(path.join(dataDir, 'pages/clean'), { recursive: true });
  mkdirSync(path.join(dataDir, 'pages/degraded'), { recursive: true });
  for (let index = 0; index < pages; index++) {
    const name = `page-${String(index + 1).padStart(4, '0')}`;
    const clean = await renderCleanPage({ seed: 1000 + index });
    writeFileSync(path.join(dataDir, `pages/clean/${name}.png`), clean);
    writeFileSync(
      path.join(dataDir, `pages/degraded/${name}.jpg`),
      await degradePage(clean, randomDegradation(1000 + index), 1000 + index),
    );
    names.push(name);
  }
  return names;
}

/** The activity's own code, `lanes` pages at a time, with no Temporal around it. */
async function bareLoop(names: string[], lanes: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    const env = new MockActivityEnvironment(undefined, {
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    while (next < names.length) {
      const name = names[next++];
      await env.run(restoreDocumentImage, {
        input: `pages/degraded/${name}.jpg`,
        reference: `pages/clean/${name}.png`,
        output: `bare/${name}.png`,
        steps: [...DEFAULT_RESTORATION_STEPS],
        thresholds: { minPsnrGainDb: 0, minSsim: 0, maxResidualSkewDegrees: 0.5, maxNoiseSigma: 8 },
      });
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return (performance.now() - started) / 1000;
}

async function orchestrated(pages: number, lanes: number): Promise<{ seconds: number; result: RestoreBatchResult }> {
  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-restoration');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  try {
    const jobs = testJobs(env, taskQueue);
    const started = performance.now();
    const { id } = await jobs.start('restoreBatch', {
      inputDir: 'pages/degraded',
      referenceDir: 'pages/clean',
      outputDir: 'batch',
      concurrency: lanes,
    });
    const result = await jobs.result<RestoreBatchResult>(id);
    const seconds = (performance.now() - started) / 1000;
    if (result.succeeded !== pages) throw new Error(`restoreBatch restored ${result.succeeded} of ${pages}`);
    return { seconds, result };
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
  }
}

/** blur(3) + brightness(1.3) + JPEG, one image at a time, in sharp and in Pillow. */
async function sharpVersusPillow(images: string[], outDir: string): Promise<void> {
  const started = performance.now();
  for (const [index, image] of images.entries()) {
    await sharp(image)
      .rotate()
      .blur(3)
      .modulate({ brightness: 1.3 })
      .jpeg({ quality: 80 })
      .toFile(path.join(outDir, `sharp-${index}.jpg`));
  }
  const sharpSeconds = (performance.now() - started) / 1000;
  const python = '/usr/bin/python3';
  const pillow = spawnSync(python, [path.join(__dirname, 'pillow_pipeline.py'), outDir, ...images], {
    encoding: 'utf8',
  });
  console.log(
    `  sharp  : ${images.length} images in ${fixed(sharpSeconds)} s = ${fixed(images.length / sharpSeconds)} images/s (one lane)`,
  );
  if (pillow.status !== 0) {
    console.log(
      `  Pillow : not measured (${(pillow.stderr || pillow.error?.message || '').trim().split('\n').pop()}).`,
    );
    console.log('           Install it with `apt-get install python3-pil` to compare.');
    return;
  }
  const { seconds } = JSON.parse(pillow.stdout) as { seconds: number };
  console.log(
    `  Pillow : ${images.length} images in ${fixed(seconds)} s = ${fixed(images.length / seconds)} images/s (one process)`,
  );
  console.log(`  ratio sharp / Pillow images per second: ${fixed(seconds / sharpSeconds, 3)}`);
}

export async function restorationBenchmark(): Promise<void> {
  const pages = intFromEnv('BENCH_RESTORATION_PAGES', 100);
  const lanes = intFromEnv('BENCH_RESTORATION_LANES', 2);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bench-restoration-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  configureSharp();
  console.log(
    `\nRestoration benchmark on ${os.availableParallelism()} cores: ${pages} generated pages (1240×1754), ${lanes} lanes`,
  );
  console.log('  set with BENCH_RESTORATION_PAGES and BENCH_RESTORATION_LANES; data in', dataDir);
  const names = await generate(dataDir, pages);
  console.log(`  generated ${names.length} page pairs\n`);

  const bareSeconds = await bareLoop(names, lanes);
  const batch = await orchestrated(pages, lanes);
  const bareRate = pages / bareSeconds;
  const batchRate = pages / batch.seconds;
  console.log(`  bare loop   : ${pages} pages in ${fixed(bareSeconds)} s = ${fixed(bareRate)} pages/s`);
  console.log(
    `  restoreBatch: ${pages} pages in ${fixed(batch.seconds)} s = ${fixed(batchRate)} pages/s (client wall clock, incl. listing and report)`,
  );
  console.log(
    `  mean PSNR ${batch.result.meanInputPsnr} dB -> ${batch.result.meanOutputPsnr} dB (gain ${batch.result.meanPsnrGain} dB)`,
  );
  console.log(`  ratio restoreBatch / bare loop: ${fixed(batchRate / bareRate, 3)}\n`);

  const photo = fixtureFile('images/landscape.jpg');
  const sample = [
    ...Array.from({ length: 10 }, () => photo),
    ...names.slice(0, 10).map((n) => path.join(dataDir, `pages/degraded/${n}.jpg`)),
  ];
  const outDir = path.join(dataDir, 'pipelines');
  mkdirSync(outDir, { recursive: true });
  console.log('blur(3) + brightness(1.3) + JPEG: the camera photo ×10 and 10 pages');
  await sharpVersusPillow(sample, outDir);
}
