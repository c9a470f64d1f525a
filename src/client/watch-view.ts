/**
 * `backroom watch`: a live progress bar on a terminal, one line per change elsewhere (logs, CI), and an exit code
 * that says how the job ended.
 */
import { SingleBar } from 'cli-progress';
import { progressLine } from './format';
import type { JobView, Jobs } from './jobs';

/** Exit codes of `watch` (and `start --watch`): 0 completed, 1 failed, 3 cancelled. */
export function exitCodeFor(view: JobView): number {
  if (view.state === 'completed') return 0;
  if (view.state === 'cancelled' || view.execution === 'CANCELLED') return 3;
  return 1;
}

export async function watchJob(jobs: Jobs, id: string, out: NodeJS.WriteStream = process.stdout): Promise<JobView> {
  const live = Boolean(out.isTTY);
  const bar = live
    ? new SingleBar(
        {
          format: ' {bar} {percentage}% | {done} / {all} {unit} | {state} | {detail}',
          barsize: 30,
          hideCursor: true,
          stream: out,
        },
        undefined,
      )
    : undefined;
  let started = false;
  let lastLine = '';
  const final = await jobs.watch(id, (view) => {
    const detail = [view.stage, view.message].filter(Boolean).join(' · ').slice(0, 80);
    const fields = {
      done: view.progress.done.toLocaleString('en-US'),
      all: view.progress.total.toLocaleString('en-US'),
      unit: view.progress.unit,
      state: view.state,
      detail,
    };
    if (bar) {
      const total = Math.max(1, view.progress.total);
      if (!started) {
        bar.start(total, Math.min(view.progress.done, total), fields);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(Math.min(view.progress.done, total), fields);
      }
      return;
    }
    const line = `${view.state} · ${progressLine(view)} · ${detail}`;
    if (line !== lastLine) out.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
    lastLine = line;
  });
  bar?.stop();
  return final;
}
