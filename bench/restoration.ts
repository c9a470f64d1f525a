/**
 * Restoration benchmark, measured side by side in one run:
 *   1. restoreBatch on N generated pages (real dev server and worker) against the same restoration code in a bare
 *      loop with the same number of lanes: the cost of orchestration for real per-page work;
 *   2. a blur(3) + brightness(1.3) + JPEG pipeline per image in sharp (processMedia's filters) against Pillow (one
 *      process and a two-process pool) on the same images, with the PSNR of sharp's blur against the exact Gaussian.
 * Sizes: BENCH_RESTORATION_PAGES (default 100; the figure is 500), BENCH_RESTORATION_LANES (default 2).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { BLUR_MIN_PSNR_DB, BLUR_PRECISION, applyFilter } from '../src/activities/images/process-media';
import { configureSharp } from '../src/activities/images/sharp-settings';
import { psnr } from '../src/activities/restoration/quality';
import { restoreDocumentImage } from '../src/activities/restoration/restore-document';
import { degradePage, randomDegradation, renderCleanPage } from '../src/activities/restoration/page-generator';
import { DEFAULT_RESTORATION_STEPS, type MediaOperation } from '../src/shared/restoration-inputs';
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

/** The seed pipeline, as processMedia's operations. */
const SEED_OPERATIONS: MediaOperation[] = [
  { op: 'blur', radius: 3 },
  { op: 'brightness', factor: 1.3 },
];

/**
 * JPEG as Pillow writes it by default (bench/pillow_pipeline.py spells the same out): quality 80, baseline (not
 * progressive), 4:2:0 chroma subsampling, no Huffman-table optimisation; libjpeg-turbo on both sides.
 */
const JPEG_LIKE_PILLOW: sharp.JpegOptions = {
  quality: 80,
  progressive: false,
  chromaSubsampling: '4:2:0',
  optimiseCoding: false,
  mozjpeg: false,
};

const BENCH_ROUNDS = 3;

/**
 * processMedia's own filters (applyFilter) in one sharp pipeline: blur comes before linear in sharp's fixed order,
 * which is the order the seed pipeline asks for.
 */
function seedPipeline(image: string): sharp.Sharp {
  return SEED_OPERATIONS.reduce((pipeline, operation) => applyFilter(pipeline, operation), sharp(image).rotate());
}

/** Seconds for all `images` through the seed pipeline, `lanes` images in flight (one libvips thread each). */
async function sharpRun(images: string[], outDir: string, lanes: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < images.length) {
      const index = next++;
      await seedPipeline(images[index]!)
        .jpeg(JPEG_LIKE_PILLOW)
        .toFile(path.join(outDir, `sharp-${index}.jpg`));
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return (performance.now() - started) / 1000;
}

/** The Python with Pillow: BENCH_PYTHON, else the venv under .tools/ (see the README), else Debian's python3. */
function findPython(): string {
  const candidates = [process.env.BENCH_PYTHON, path.join(__dirname, '../.tools/pillow-venv/bin/python')];
  return (
    candidates.find((candidate): candidate is string => !!candidate && existsSync(candidate)) ?? '/usr/bin/python3'
  );
}

/** Seconds for all `images` through bench/pillow_pipeline.py with `processes` processes, or why it failed. */
function pillowRun(python: string, images: string[], outDir: string, processes: number): number | string {
  const script = path.join(__dirname, 'pillow_pipeline.py');
  const run = spawnSync(python, [script, '--processes', String(processes), outDir, ...images], { encoding: 'utf8' });
  if (run.status !== 0) return (run.stderr || run.error?.message || '').trim().split('\n').pop() ?? 'failed';
  return (JSON.parse(run.stdout) as { seconds: number }).seconds;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/** PSNR of the seed pipeline's pixels (before JPEG) against the same with the exact (float) Gaussian. */
async function psnrAgainstExact(image: string): Promise<{ pipeline: number; blur: number }> {
  const pixels = async (pipeline: sharp.Sharp) => {
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width * info.channels, height: info.height };
  };
  const exactBlur = () => sharp(image).rotate().blur({ sigma: 3, precision: 'float' });
  const brightness = SEED_OPERATIONS[1]!;
  return {
    pipeline: psnr(await pixels(seedPipeline(image)), await pixels(applyFilter(exactBlur(), brightness))),
    blur: psnr(await pixels(applyFilter(sharp(image).rotate(), SEED_OPERATIONS[0]!)), await pixels(exactBlur())),
  };
}

/**
 * blur(3) + brightness(1.3) + JPEG in sharp (processMedia's filters, one and two images in flight) and in Pillow
 * (one process, and a Pool(2)), alternating, BENCH_ROUNDS rounds; medians in images/s.
 */
async function sharpVersusPillow(images: string[], outDir: string): Promise<void> {
  const python = findPython();
  const seconds: Record<string, number[]> = { sharp1: [], sharp2: [], pillow1: [], pillow2: [] };
  let pillowError: string | undefined;
  await sharpRun(images.slice(0, 2), outDir, 1); // warm-up: libvips' first decode loads its modules
  for (let round = 0; round < BENCH_ROUNDS; round++) {
    seconds.sharp1!.push(await sharpRun(images, outDir, 1));
    seconds.sharp2!.push(await sharpRun(images, outDir, 2));
    for (const processes of [1, 2]) {
      const result = pillowError ? pillowError : pillowRun(python, images, outDir, processes);
      if (typeof result === 'string') pillowError = result;
      else seconds[`pillow${processes}`]!.push(result);
    }
  }
  const rate = (key: string) => images.length / median(seconds[key]!);
  const line = (label: string, key: string, how: string) =>
    console.log(`  ${label}: ${fixed(rate(key))} images/s (${how}; median of ${seconds[key]!.length})`);
  console.log(
    `  JPEG on both sides: quality 80, baseline, 4:2:0, no Huffman optimisation; sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}, one libvips thread per image`,
  );
  line('sharp , one lane       ', 'sharp1', 'one image at a time');
  line('sharp , two lanes      ', 'sharp2', 'two images in flight');
  if (pillowError) {
    console.log(`  Pillow : not measured with ${python} (${pillowError}).`);
    console.log(
      '           Install it with `python3 -m venv .tools/pillow-venv && .tools/pillow-venv/bin/pip install pillow`.',
    );
  } else {
    line('Pillow, one process    ', 'pillow1', python);
    line('Pillow, two processes  ', 'pillow2', 'multiprocessing Pool(2)');
    console.log(`  ratio sharp one lane / Pillow one process: ${fixed(rate('sharp1') / rate('pillow1'), 3)}`);
    console.log(`  ratio sharp two lanes / Pillow two processes: ${fixed(rate('sharp2') / rate('pillow2'), 3)}`);
  }
  const photo = images[0]!;
  const quality = await psnrAgainstExact(photo);
  console.log(
    `  PSNR against the exact (float) Gaussian on ${path.basename(photo)}: blur ${fixed(quality.blur)} dB, blur + brightness ${fixed(quality.pipeline)} dB (tolerance ${BLUR_MIN_PSNR_DB} dB; blur precision '${BLUR_PRECISION}')`,
  );
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
    fixtureFile('images/Landscape_6.jpg'),
    fixtureFile('images/cmyk.jpg'),
    ...names.slice(0, 10).map((n) => path.join(dataDir, `pages/degraded/${n}.jpg`)),
  ];
  const outDir = path.join(dataDir, 'pipelines');
  mkdirSync(outDir, { recursive: true });
  console.log(
    `blur(3) + brightness(1.3) + JPEG: the camera photo ×10 (2725×2225), Landscape_6.jpg, cmyk.jpg and ${sample.length - 12} pages`,
  );
  await sharpVersusPillow(sample, outDir);
}
