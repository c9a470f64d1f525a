/**
 * Binarisation quality on real pages: every `test/fixtures/documents/<name>.png` with a `<name>-GroundTruth.png`,
 * scored by the DIBCO measures (F-measure, pseudo-F-measure, PSNR, DRD) for Otsu, Sauvola (two settings), the
 * document binariser, the default restoration pipeline and a guided layer-2 model trained here on synthetic pages
 * only (generateSyntheticData and trainModel's activities, `network: "guided"`); then the document binariser's and
 * the model's time on an A4 page at 300 dpi (the real page tiled to 2480×3508), on one core. Prints Markdown tables.
 * Sizes: BENCH_QUALITY_PAGES (default 8) synthetic pages of BENCH_QUALITY_WIDTH (default 2480, 300 dpi A4) pixels,
 * BENCH_QUALITY_EPOCHS (default 5).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { binaryScores, type BinaryScores } from '../src/activities/restoration/binary-metrics';
import { binarizeOtsu, binarizeSauvola } from '../src/activities/restoration/binarize';
import { binarizeDocument } from '../src/activities/restoration/document-binarize';
import { readGray, type GrayImage } from '../src/activities/restoration/gray-image';
import { restorePixels } from '../src/activities/restoration/restore-image';
import { DEFAULT_RESTORATION_STEPS } from '../src/shared/restoration-inputs';
import { applyCheckpoint, loadModel } from '../src/activities/training/apply-model';
import type { Checkpoint } from '../src/activities/training/checkpoint';
import { cutDatasetPatches, renderDatasetPages, validateDataset } from '../src/activities/training/synthetic-data';
import { prepareTrainingRun, trainEpoch } from '../src/activities/training/train-epoch';
import { FIXTURES_DIR } from '../test/helpers/fixtures';
import { intFromEnv } from './settings';

interface Method {
  name: string;
  run: (page: GrayImage) => GrayImage | Promise<GrayImage>;
}

const METHODS: Method[] = [
  { name: 'Otsu', run: binarizeOtsu },
  { name: 'Sauvola (window 25, k 0.2)', run: (page) => binarizeSauvola(page, { window: 25, k: 0.2 }) },
  { name: "Sauvola (Doxa's 27, 0.10)", run: (page) => binarizeSauvola(page, { window: 27, k: 0.1 }) },
  { name: 'binarizeDocument', run: (page) => binarizeDocument(page) },
  // Its output is grey (no binarize step): the measures read ink as < 128.
  {
    name: 'default pipeline (grey, < 128)',
    run: async (page) => (await restorePixels(page, DEFAULT_RESTORATION_STEPS)).image,
  },
];

/**
 * Trains a guided layer-2 model on synthetic pages only, through the same activities as generateSyntheticData and
 * trainModel (in this process, with the CPU pool), in a data dir of its own; returns its best checkpoint.
 */
async function trainGuidedModel(): Promise<{ checkpoint: Checkpoint; description: string }> {
  const pages = intFromEnv('BENCH_QUALITY_PAGES', 8);
  const width = intFromEnv('BENCH_QUALITY_WIDTH', 2480);
  const epochs = intFromEnv('BENCH_QUALITY_EPOCHS', 5);
  process.env.BACKROOM_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), 'backroom-bench-quality-'));
  const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
  const run = <A extends unknown[], R>(activity: (...args: A) => Promise<R>, ...args: A) =>
    new MockActivityEnvironment(undefined, quiet).run(activity, ...args) as Promise<R>;
  const spec = {
    datasetId: 'quality',
    datasetDir: 'datasets/quality',
    pages,
    patchSize: 64,
    patchesPerPage: 32,
    augment: true,
    width,
    height: Math.round(width * 1.414),
    seed: 5,
    pageFaults: 'document',
  } as const;
  const started = performance.now();
  await run(renderDatasetPages, spec);
  await run(cutDatasetPatches, spec);
  await run(validateDataset, spec);
  const request = { layer: 'layer2', dataset: spec.datasetDir, modelName: 'guided', batchSize: 1024, seed: 1 } as const;
  const prepared = await run(prepareTrainingRun, { ...request, runKey: 'quality', network: 'guided' } as const);
  for (let epoch = 1; epoch <= epochs; epoch++) {
    await run(trainEpoch, {
      ...request,
      layer: 'layer2',
      runDir: prepared.runDir,
      runKey: 'quality',
      epoch,
      epochs,
      learningRate: prepared.learningRate,
    });
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  return {
    checkpoint: await loadModel(path.join(prepared.runDir, 'best.json')),
    description: `guided model (${pages} synthetic pages ${width} wide, ${epochs} epochs, ${seconds} s)`,
  };
}

const A4_WIDTH = 2480;
const A4_HEIGHT = 3508;

function realPages(): { name: string; page: string; truth: string }[] {
  const dir = path.join(FIXTURES_DIR, 'documents');
  return readdirSync(dir)
    .filter((file) => file.endsWith('-GroundTruth.png'))
    .map((file) => file.slice(0, -'-GroundTruth.png'.length))
    .filter((name) => readdirSync(dir).includes(`${name}.png`))
    .map((name) => ({ name, page: path.join(dir, `${name}.png`), truth: path.join(dir, `${name}-GroundTruth.png`) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The fastest of `runs` runs, in ms, with the last result. */
async function timed(
  run: () => GrayImage | Promise<GrayImage>,
  runs: number,
): Promise<{ ms: number; image: GrayImage }> {
  let best = Infinity;
  let image: GrayImage | undefined;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    image = await run();
    best = Math.min(best, performance.now() - started);
  }
  if (!image) throw new Error('no run');
  return { ms: best, image };
}

function row(page: string, method: string, scores: BinaryScores, ms: number): string {
  const cells = [
    scores.fMeasure.toFixed(2),
    scores.pseudoFMeasure.toFixed(2),
    scores.psnr.toFixed(2),
    scores.drd.toFixed(3),
    ms.toFixed(1),
  ];
  return `| ${page} | ${method} | ${cells.join(' | ')} |`;
}

/** The page repeated across an A4 canvas at 300 dpi: real texture and stroke widths at full size. */
function tiledA4(page: GrayImage): GrayImage {
  const data = new Uint8Array(A4_WIDTH * A4_HEIGHT);
  for (let y = 0; y < A4_HEIGHT; y++) {
    const source = (y % page.height) * page.width;
    for (let x = 0; x < A4_WIDTH; x++) data[y * A4_WIDTH + x] = page.data[source + (x % page.width)] ?? 255;
  }
  return { width: A4_WIDTH, height: A4_HEIGHT, data };
}

export async function qualityBenchmark(): Promise<void> {
  console.log('\nTraining a guided layer-2 model on synthetic pages (no real page is used in training)…');
  const model = await trainGuidedModel();
  const methods: Method[] = [
    ...METHODS,
    { name: model.description, run: (page) => applyCheckpoint(model.checkpoint, page) },
  ];
  const pages = realPages();
  console.log(`\nBinarisation quality on ${pages.length} real page(s) with ground truth (test/fixtures/documents)\n`);
  console.log('| Page | Method | FM % | pseudo-FM % | PSNR dB | DRD | ms |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  const totals = new Map<string, { scores: BinaryScores; ms: number }>();
  let firstPage: GrayImage | undefined;
  for (const { name, page: pagePath, truth: truthPath } of pages) {
    const page = await readGray(readFileSync(pagePath));
    const truth = await readGray(readFileSync(truthPath));
    firstPage ??= page;
    for (const method of methods) {
      const { ms, image } = await timed(() => method.run(page), 3);
      const scores = binaryScores(image, truth);
      console.log(row(name, method.name, scores, ms));
      const sum = totals.get(method.name) ?? {
        scores: { fMeasure: 0, pseudoFMeasure: 0, psnr: 0, drd: 0, precision: 0, recall: 0 },
        ms: 0,
      };
      for (const key of Object.keys(sum.scores) as (keyof BinaryScores)[]) sum.scores[key] += scores[key];
      sum.ms += ms;
      totals.set(method.name, sum);
    }
  }
  if (pages.length > 1) {
    for (const [method, { scores, ms }] of totals) {
      const mean = Object.fromEntries(
        Object.entries(scores).map(([key, value]) => [key, value / pages.length]),
      ) as unknown as BinaryScores;
      console.log(row('mean', method, mean, ms / pages.length));
    }
  }
  if (!firstPage) return;

  const a4 = tiledA4(firstPage);
  const rssBefore = process.resourceUsage().maxRSS;
  const document = await timed(() => binarizeDocument(a4), 5);
  const rssGrowth = (process.resourceUsage().maxRSS - rssBefore) / 1024;
  const guided = await timed(() => applyCheckpoint(model.checkpoint, a4), 5);
  const guidedAlone = await timed(() => applyCheckpoint(model.checkpoint, a4, { shared: false }), 5);
  const sauvola = await timed(() => binarizeSauvola(a4), 1);
  console.log(`\nA4 at 300 dpi (${A4_WIDTH}×${A4_HEIGHT}, the first page tiled), best of 5 (binarisation on one core):`);
  console.log(`  binarizeDocument ${document.ms.toFixed(0)} ms (peak RSS grew ${rssGrowth.toFixed(0)} MB)`);
  console.log(
    `  guided model     ${guided.ms.toFixed(0)} ms (normalisation included; bands on this thread and a helper, ` +
      `guided-bands.ts), ${guidedAlone.ms.toFixed(0)} ms on this thread alone`,
  );
  console.log(`  binarizeSauvola  ${sauvola.ms.toFixed(0)} ms (one run)`);
}
