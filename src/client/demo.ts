/**
 * The `npm start` demo: starts each diagnostics job, shows their progress side by side, pauses and resumes one of
 * them on the way, and prints where to look in the Temporal UI.
 */
import { MultiBar } from 'cli-progress';
import type { JobType } from '../shared/job-catalog';
import { progressLine } from './format';
import type { JobView, Jobs } from './jobs';

const DEMO_JOBS: { type: JobType; input: Record<string, unknown> }[] = [
  { type: 'simpleTest', input: { message: 'demo', durationSeconds: 12 } },
  { type: 'mathCalculation', input: { limit: 300_000_000, chunkSize: 2_000_000 } },
  { type: 'systemHealthCheck', input: {} },
  { type: 'stressTest', input: { count: 200, concurrency: 20, mode: 'activities', rounds: 1000 } },
  { type: 'stressTest', input: { count: 40, concurrency: 10, mode: 'children', rounds: 1000 } },
];

export function workflowUrl(uiUrl: string, namespace: string, id: string): string {
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(id)}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the demo to the end and returns the final view of every job. */
export async function runDemo(jobs: Jobs, options: { uiUrl?: string; namespace: string }): Promise<JobView[]> {
  const out = process.stdout;
  const started = [];
  for (const { type, input } of DEMO_JOBS) started.push(await jobs.start(type, input));
  console.log(`Started ${started.length} demo jobs:`);
  for (const job of started) {
    console.log(
      `  ${job.type.padEnd(18)} ${options.uiUrl ? workflowUrl(options.uiUrl, options.namespace, job.id) : job.id}`,
    );
  }

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

  // Pause the simple test mid-way and resume it, to show that progress holds and then continues.
  const simple = started[0];
  const pauseDemo = (async () => {
    if (!simple) return;
    await sleep(4000);
    await jobs.pause(simple.id);
    const note = `paused ${simple.id} for 3 s (watch its progress hold)`;
    if (bars) bars.log(`${note}\n`);
    else console.log(`  ${note}`);
    await sleep(3000);
    await jobs.resume(simple.id);
    if (bars) bars.log(`resumed ${simple.id}\n`);
    else console.log(`  resumed ${simple.id}`);
  })();

  const finals = await Promise.all(
    started.map((job) =>
      jobs.watch(job.id, (view) => {
        show(view);
        if (!bars) return;
        const total = Math.max(1, view.progress.total);
        const payload = { name: view.type.padEnd(18), line: progressLine(view), state: view.state };
        let bar = barFor.get(job.id);
        if (!bar) {
          bar = bars.create(total, 0, payload);
          barFor.set(job.id, bar);
        }
        bar.setTotal(total);
        bar.update(Math.min(view.progress.done, total), payload);
      }),
    ),
  );
  await pauseDemo;
  bars?.stop();

  console.log('\nResults:');
  for (const view of finals) console.log(`  ${view.type.padEnd(18)} ${view.state.padEnd(10)} ${summarise(view)}`);
  return finals;
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
    default:
      return JSON.stringify(result);
  }
}
