/**
 * restoreBatch from and to object storage against the same pages from and to the local data dir, side by side in one
 * run: one real dev server, one real S3-compatible server (SeaweedFS, on this machine), one worker, the same generated
 * pages (with their clean references) in a data-dir folder and in a bucket. A two-page batch warms the worker first
 * (CPU pool, caches) and is not counted; then one local batch and one bucket batch, each timed from start to result.
 * Sizes: BENCH_S3_PAGES (default 24), BENCH_S3_CONCURRENCY (default 4).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { closeObjectStorage } from '../src/activities/places';
import { degradePage, randomDegradation, renderCleanPage } from '../src/activities/restoration/page-generator';
import type { RestoreBatchResult } from '../src/workflows/restoration';
import { startSeaweedS3 } from '../test/helpers/seaweedfs';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { intFromEnv } from './settings';

const IN = 'bench-in';
const OUT = 'bench-out';

export async function objectStorageBenchmark(): Promise<void> {
  const pages = intFromEnv('BENCH_S3_PAGES', 24);
  const concurrency = intFromEnv('BENCH_S3_CONCURRENCY', 4);
  const s3 = await startSeaweedS3({ buckets: [IN, OUT] });
  // The worker runs in this process: it reads the S3 endpoint, keys and allow-list from here.
  Object.assign(process.env, s3.env, { BACKROOM_S3_BUCKETS: `${IN},${OUT}` });
  const env = await startTestServer();
  const dataDir = process.env.BACKROOM_DATA_DIR ?? '';
  const taskQueue = uniqueTaskQueue('bench-object-storage');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  try {
    for (const folder of ['pages/clean', 'pages/degraded', 'warm'])
      mkdirSync(path.join(dataDir, folder), { recursive: true });
    let bytes = 0;
    for (let index = 0; index < pages; index++) {
      const name = `page-${String(index + 1).padStart(4, '0')}`;
      const clean = await renderCleanPage({ seed: 3000 + index });
      const degraded = await degradePage(clean, randomDegradation(3000 + index), 3000 + index);
      bytes += clean.length + degraded.length;
      writeFileSync(path.join(dataDir, `pages/clean/${name}.png`), clean);
      writeFileSync(path.join(dataDir, `pages/degraded/${name}.jpg`), degraded);
      await s3.client.send(new PutObjectCommand({ Bucket: IN, Key: `clean/${name}.png`, Body: clean }));
      await s3.client.send(new PutObjectCommand({ Bucket: IN, Key: `degraded/${name}.jpg`, Body: degraded }));
      if (index < 2) {
        writeFileSync(path.join(dataDir, `warm/${name}.jpg`), degraded);
      }
    }
    const jobs = testJobs(env, taskQueue);
    const timed = async (input: Record<string, unknown>) => {
      const started = performance.now();
      const { id } = await jobs.start('restoreBatch', { ...input, concurrency });
      const result = await jobs.result<RestoreBatchResult>(id);
      // The machine's load over the last minute: a shared machine's other work shows here, not in the figure.
      return { seconds: (performance.now() - started) / 1000, result, load: os.loadavg()[0] ?? 0 };
    };
    await timed({ inputDir: 'warm', outputDir: 'warm-restored' });
    const local = await timed({ inputDir: 'pages/degraded', referenceDir: 'pages/clean', outputDir: 'restored' });
    const bucket = await timed({
      inputDir: `s3://${IN}/degraded/`,
      referenceDir: `s3://${IN}/clean/`,
      outputDir: `s3://${OUT}/restored/`,
    });
    for (const [where, run] of [
      ['local', local],
      ['s3', bucket],
    ] as const) {
      if (run.result.succeeded !== pages) throw new Error(`${where}: restored ${run.result.succeeded} of ${pages}`);
    }
    const rate = (run: { seconds: number }) => pages / run.seconds;
    console.log(
      `Object storage: restoreBatch of ${pages} generated pages (${(bytes / pages / 1024).toFixed(0)} KB in per page, ` +
        `with references), concurrency ${concurrency}, one worker, SeaweedFS on this machine:`,
    );
    for (const [label, run] of [
      ['data dir → data dir', local],
      ['bucket   → bucket  ', bucket],
    ] as const) {
      console.log(
        `  ${label}: ${rate(run).toFixed(2)} pages/s (${run.seconds.toFixed(1)} s; load average ${run.load.toFixed(1)})`,
      );
    }
    console.log(`  ratio bucket / data dir: ${(rate(bucket) / rate(local)).toFixed(3)}`);
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
    closeObjectStorage();
    await s3.stop();
  }
}
