/**
 * The `generateSamplePages` activity: realistic degraded document pages with their clean originals, for demos,
 * tests, benchmarks and training. One page per step, so a retry or resume continues where it stopped.
 */
import type { Resumable } from '../../shared/job-status';
import { placeAt } from '../places';
import { runResumableLoop } from '../resumable-loop';
import { runCpuTask } from '../cpu-pool';
import { randomDegradation, type Degradation } from './page-generator';

export interface SamplePagesRequest {
  outputDir: string;
  count: number;
  seed: number;
  width: number;
  height: number;
  resumeFrom?: number;
}

export interface SamplePagesResult {
  outputDir: string;
  cleanDir: string;
  degradedDir: string;
  manifest: string;
  count: number;
}

const pageName = (index: number) => `page-${String(index + 1).padStart(4, '0')}`;
const pageSeed = (seed: number, index: number) => seed * 100_003 + index;

/** Writes `count` pairs: `clean/page-0001.png` (the reference) and `degraded/page-0001.jpg` (the input). */
export async function generateSamplePages(request: SamplePagesRequest): Promise<Resumable<number, SamplePagesResult>> {
  const outputDir = placeAt(request.outputDir, 'output dir');
  return runResumableLoop<number, SamplePagesResult>({
    initial: 0,
    resumeFrom: request.resumeFrom,
    isDone: (done) => done >= request.count,
    step: async (index) => {
      const seed = pageSeed(request.seed, index);
      const { clean, degraded } = await runCpuTask('renderPagePair', {
        spec: { seed, width: request.width, height: request.height },
        degradation: randomDegradation(seed),
      });
      await outputDir.write(`clean/${pageName(index)}.png`, clean, 'sample page');
      await outputDir.write(`degraded/${pageName(index)}.jpg`, degraded, 'sample page');
      return index + 1;
    },
    progress: (done) => ({ done, total: request.count, unit: 'pages' }),
    describe: (done) => `${done} of ${request.count} pages generated`,
    finish: () => ({
      outputDir: outputDir.location,
      cleanDir: outputDir.locate('clean'),
      degradedDir: outputDir.locate('degraded'),
      manifest: '',
      count: request.count,
    }),
  }).then(async (outcome) => {
    if (!outcome.finished) return outcome;
    // The degradations follow from the seed, so the manifest can be written at the end even after a resume.
    const pages: { name: string; clean: string; degraded: string; degradation: Degradation }[] = [];
    for (let index = 0; index < request.count; index++) {
      pages.push({
        name: pageName(index),
        clean: outputDir.locate(`clean/${pageName(index)}.png`),
        degraded: outputDir.locate(`degraded/${pageName(index)}.jpg`),
        degradation: randomDegradation(pageSeed(request.seed, index)),
      });
    }
    await outputDir.write(
      'manifest.json',
      JSON.stringify({ seed: request.seed, width: request.width, height: request.height, pages }, null, 2),
      'manifest',
    );
    return { ...outcome, result: { ...outcome.result, manifest: outputDir.locate('manifest.json') } };
  });
}
