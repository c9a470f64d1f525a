/**
 * The `npm start` demo: starts each kind of job, shows their progress side by side, pauses and resumes one of them
 * on the way, and prints where to look in the Temporal UI. Jobs that need another's output (restoration needs the
 * sample pages, training needs its dataset) start when that one completes. The cut analysis runs on a short video
 * the demo makes first with ffmpeg (kept in the data dir and reused), and its cuts and clip scores end the output.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MultiBar } from 'cli-progress';
import type { CutAnalysis } from '../activities/video/analyze-clips';
import { generateSampleVideo, type SampleShot, type SampleVideoResult } from '../activities/video/sample-video';
import { dataDir } from '../config';
import type { JobType } from '../shared/job-catalog';
import { progressLine } from './format';
import type { JobView, Jobs } from './jobs';

/** Each demo run sends its own campaign (a campaign id that was sent already would have nothing left to send). */
const DEMO_CAMPAIGN = `demo-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
const DEMO_RECIPIENTS = 'demo/recipients.csv';
/** Each demo run trains its own model, so an earlier run's checkpoints are left as they were. */
const DEMO_RUN = `demo-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
/** The cut analysis' video: 8 s, four shots of generated footage joined by hard cuts at 2, 4 and 6 s. */
const DEMO_VIDEO = 'demo/cuts-demo.mp4';
const DEMO_VIDEO_SHOTS: SampleShot[] = [
  { source: 'moving', seconds: 2 },
  { source: 'bars', seconds: 2 },
  { source: 'zoom', seconds: 2 },
  { source: 'pan', seconds: 2 },
];

const DEMO_JOBS: { type: JobType; input: Record<string, unknown> }[] = [
  { type: 'simpleTest', input: { message: 'demo', durationSeconds: 12 } },
  { type: 'mathCalculation', input: { limit: 300_000_000, chunkSize: 2_000_000 } },
  { type: 'systemHealthCheck', input: {} },
  { type: 'stressTest', input: { count: 200, concurrency: 20, mode: 'activities', rounds: 1000 } },
  { type: 'stressTest', input: { count: 40, concurrency: 10, mode: 'children', rounds: 1000 } },
  { type: 'generateSamplePages', input: { outputDir: 'demo/samples', count: 6, seed: 42 } },
  // Half-size pages keep the demo's dataset and training to about a minute on two cores.
  {
    type: 'generateSyntheticData',
    input: { datasetId: 'demo', outputDir: 'demo/dataset', pages: 5, width: 620, height: 877, patchesPerPage: 32 },
  },
  {
    type: 'sendBulkEmail',
    input: {
      campaignId: DEMO_CAMPAIGN,
      recipientsFile: DEMO_RECIPIENTS,
      subject: 'Your restored pages are ready, {{name}}',
      template: 'Hello {{name}},\n\nYour documents have been restored.\n\nThe Backroom demo',
      rate: '20/s',
    },
  },
  // The demo's own folder: a video made anew (another size) would be another analysis, so it may replace the old one.
  { type: 'analyzeCuts', input: { video: DEMO_VIDEO, outputDir: 'demo/cuts', overwrite: true } },
];

/**
 * The demo campaign's recipients: 80 readers, one address that is not one (skipped) and one the mail sink refuses
 * with 550 (reported), so the report shows both.
 */
async function writeDemoRecipients(): Promise<void> {
  const rows = Array.from({ length: 80 }, (_, i) => `reader${i + 1}@example.com,Reader ${i + 1}`);
  rows.push('not-an-address,Nobody', 'bounce@reject.test,Bounce');
  const file = path.join(dataDir(), DEMO_RECIPIENTS);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `email,name\n${rows.join('\n')}\n`);
}

/** Jobs that need another's output: started once that job has completed. */
const FOLLOWERS: Partial<Record<JobType, { type: JobType; input: Record<string, unknown> }[]>> = {
  generateSyntheticData: [
    { type: 'trainModel', input: { layer: 'layer1', dataset: 'demo/dataset', epochs: 4, modelName: DEMO_RUN } },
  ],
  generateSamplePages: [
    {
      type: 'restoreBatch',
      input: { inputDir: 'demo/samples/degraded', outputDir: 'demo/restored', referenceDir: 'demo/samples/clean' },
    },
    {
      type: 'processMedia',
      input: {
        input: 'demo/samples/clean/page-0001.png',
        outputDir: 'demo/media',
        operations: [
          { op: 'thumbnail', width: 300, height: 300 },
          { op: 'optimize', format: 'webp' },
        ],
      },
    },
  ],
};

export function workflowUrl(uiUrl: string, namespace: string, id: string): string {
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(id)}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the demo to the end and returns the final view of every job. */
export async function runDemo(jobs: Jobs, options: { uiUrl?: string; namespace: string }): Promise<JobView[]> {
  const out = process.stdout;
  // ffmpeg makes the video in a child process (about half a second; nothing when an earlier run made it).
  const [video] = await Promise.all([
    generateSampleVideo({ output: DEMO_VIDEO, shots: DEMO_VIDEO_SHOTS }),
    writeDemoRecipients(),
  ]);
  console.log(
    `${video.created ? 'Made' : 'Reusing'} ${video.video} for the cut analysis: ${seconds(video.durationMs)} s, ` +
      `hard cuts at ${video.cutMs.map(seconds).join(', ')} s.`,
  );
  const started = [];
  for (const { type, input } of DEMO_JOBS) started.push(await jobs.start(type, input));
  const link = (id: string) => (options.uiUrl ? workflowUrl(options.uiUrl, options.namespace, id) : id);
  console.log(`Started ${started.length} demo jobs (restoration and training follow once their data exists):`);
  for (const job of started) console.log(`  ${job.type.padEnd(20)} ${link(job.id)}`);

  const bars = out.isTTY
    ? new MultiBar({ format: ' {name} {bar} {percentage}% | {line} | {state}', barsize: 24, hideCursor: true })
    : undefined;
  const lastLines = new Map<string, string>();
  const show = (view: JobView) => {
    const line = `${view.type.padEnd(18)} ${view.state.padEnd(10)} ${progressLine(view)}`;
    if (lastLines.get(view.id) === line) return;
    lastLines.set(view.id, line);
    if (!bars) console.log(`  ${new Date().toISOString().slice(11, 19)} ${line}`);
  };
  const barFor = new Map<string, ReturnType<MultiBar['create']>>();

  const say = (line: string) => (bars ? bars.log(`${line}\n`) : console.log(`  ${line}`));

  // Pause the simple test mid-way and resume it, to show that progress holds and then continues.
  const simple = started[0];
  const pauseDemo = (async () => {
    if (!simple) return;
    await sleep(4000);
    await jobs.pause(simple.id);
    say(`paused ${simple.id} for 3 s (watch its progress hold)`);
    await sleep(3000);
    await jobs.resume(simple.id);
    say(`resumed ${simple.id}`);
  })();

  const watch = (id: string) =>
    jobs.watch(id, (view) => {
      show(view);
      if (!bars) return;
      const total = Math.max(1, view.progress.total);
      const payload = { name: view.type.padEnd(20), line: progressLine(view), state: view.state };
      let bar = barFor.get(id);
      if (!bar) {
        bar = bars.create(total, 0, payload);
        barFor.set(id, bar);
      }
      bar.setTotal(total);
      bar.update(Math.min(view.progress.done, total), payload);
    });

  const finals = (
    await Promise.all(
      started.map(async (job) => {
        const final = await watch(job.id);
        const next = FOLLOWERS[job.type] ?? [];
        if (next.length === 0 || final.state !== 'completed') return [final];
        const followers = [];
        for (const { type, input } of next) {
          const follower = await jobs.start(type, input);
          say(`started ${type}: ${link(follower.id)}`);
          followers.push(follower);
        }
        return [final, ...(await Promise.all(followers.map((f) => watch(f.id))))];
      }),
    )
  ).flat();
  await pauseDemo;
  bars?.stop();

  console.log('\nResults:');
  for (const view of finals) console.log(`  ${view.type.padEnd(20)} ${view.state.padEnd(10)} ${summarise(view)}`);
  const cuts = finals.find((view) => view.type === 'analyzeCuts')?.result as CutAnalysis | undefined;
  if (cuts?.clips) printCuts(cuts, video);
  return finals;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

/** The cut analysis as a table: each boundary's time, then each clip's span and score. */
function printCuts(analysis: CutAnalysis, video: SampleVideoResult): void {
  const found = analysis.boundaries.filter((b) => b.kind === 'cut').length;
  console.log(
    `\nCuts in ${analysis.video} (${seconds(analysis.durationMs)} s, ${analysis.frameCount} frames): ` +
      `${found} of its ${video.cutMs.length} hard cuts found; ${analysis.results}`,
  );
  console.log(`  ${'boundary'.padEnd(10)} ${'time (s)'.padStart(8)} ${'frame'.padStart(6)}`);
  for (const boundary of analysis.boundaries) {
    console.log(
      `  ${boundary.kind.padEnd(10)} ${seconds(boundary.ms).padStart(8)} ${String(boundary.frame).padStart(6)}`,
    );
  }
  console.log(`  ${'clip'.padEnd(10)} ${'start–end (s)'.padStart(13)} ${'score'.padStart(6)}`);
  for (const [i, clip] of analysis.clips.entries()) {
    const span = `${seconds(clip.startMs)}–${seconds(clip.endMs)}`;
    console.log(`  ${String(i + 1).padEnd(10)} ${span.padStart(13)} ${clip.visualScore.toFixed(3).padStart(6)}`);
  }
}

function summarise(view: JobView): string {
  const result = view.result as Record<string, unknown> | undefined;
  if (!result) return view.message;
  switch (view.type) {
    case 'mathCalculation':
      return `${String(result.primeCount)} primes below ${String(result.limit)}`;
    case 'systemHealthCheck':
      return result.healthy ? 'all checks passed' : `unhealthy: ${view.errors.map((e) => e.item).join(', ')}`;
    case 'stressTest': {
      const latency = result.latencyMs as Record<string, number>;
      return `${String(result.mode)}: ${String(result.throughputPerSecond)} items/s, p50 ${latency.p50} ms, p99 ${latency.p99} ms`;
    }
    case 'generateSamplePages':
      return `${String(result.count)} pages in ${String(result.outputDir)}`;
    case 'restoreBatch':
      return String(result.summary ?? view.message)
        .split('\n')
        .slice(0, 2)
        .join(' ');
    case 'sendBulkEmail':
      return (
        `${String(result.sent)} sent, ${String(result.failed)} refused, ${String(result.skipped)} skipped; ` +
        `report ${String(result.reportText)}; bin/backroom mail --campaign ${String(result.campaignId)}`
      );
    case 'generateSyntheticData': {
      const stats = result.stats as Record<string, number> | undefined;
      return `${String(stats?.trainPairs)} training + ${String(stats?.valPairs)} validation pairs in ${String(result.dataset)}`;
    }
    case 'trainModel': {
      const evaluation = result.evaluation as Record<string, Record<string, number>> | undefined;
      const scores = evaluation
        ? `; held-out PSNR: input ${evaluation.input?.psnr} dB, classical ${evaluation.classical?.psnr} dB, ` +
          `model ${evaluation.model?.psnr} dB`
        : '';
      return `${String(result.epochsCompleted)} epochs → ${String(result.bestCheckpoint)}${scores}`;
    }
    case 'processMedia':
      return `${(result.outputs as unknown[]).length} outputs in demo/media`;
    case 'analyzeCuts': {
      const cuts = result as Partial<CutAnalysis>;
      return `${cuts.clipsCreated} clips, ${cuts.cutMs?.length} boundaries → ${cuts.results}`;
    }
    default:
      return JSON.stringify(result);
  }
}
