/**
 * Binarisation quality on real pages: every `test/fixtures/documents/<name>.png` with a `<name>-GroundTruth.png`,
 * scored by the DIBCO measures (F-measure, pseudo-F-measure, PSNR, DRD) for Otsu, Sauvola (two settings), the
 * document binariser and the default restoration pipeline; then the document binariser's time and memory on an A4
 * page at 300 dpi (the real page tiled to 2480×3508), on one core. Prints Markdown tables.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { binaryScores, type BinaryScores } from '../src/activities/restoration/binary-metrics';
import { binarizeOtsu, binarizeSauvola } from '../src/activities/restoration/binarize';
import { binarizeDocument } from '../src/activities/restoration/document-binarize';
import { readGray, type GrayImage } from '../src/activities/restoration/gray-image';
import { restorePixels } from '../src/activities/restoration/restore-image';
import { DEFAULT_RESTORATION_STEPS } from '../src/shared/restoration-inputs';
import { FIXTURES_DIR } from '../test/helpers/fixtures';

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
    for (const method of METHODS) {
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
  console.log('\n"model" (a trained checkpoint) is not in the table: it needs a checkpoint file from a training run.');
  if (!firstPage) return;

  const a4 = tiledA4(firstPage);
  const rssBefore = process.resourceUsage().maxRSS;
  const document = await timed(() => binarizeDocument(a4), 5);
  const rssGrowth = (process.resourceUsage().maxRSS - rssBefore) / 1024;
  const sauvola = await timed(() => binarizeSauvola(a4), 1);
  console.log(`\nA4 at 300 dpi (${A4_WIDTH}×${A4_HEIGHT}, the first page tiled), one core, best of 5:`);
  console.log(`  binarizeDocument ${document.ms.toFixed(0)} ms (peak RSS grew ${rssGrowth.toFixed(0)} MB)`);
  console.log(`  binarizeSauvola  ${sauvola.ms.toFixed(0)} ms (one run)`);
}
