/** How jobs look in a terminal: status blocks, list rows and the progress line. */
import type { EpochMetrics } from '../shared/training-inputs';
import type { ReceivedMessage } from '../mail-sink/sink';
import type { JobListEntry, JobView } from './jobs';

export function percent(done: number, total: number): string {
  return total > 0 ? `${Math.min(100, Math.floor((100 * done) / total))}%` : '';
}

/** `12 / 30 seconds (40%)`. */
export function progressLine(view: Pick<JobView, 'progress'>): string {
  const { done, total, unit } = view.progress;
  const share = percent(done, total);
  return `${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} ${unit}${share ? ` (${share})` : ''}`;
}

export function formatStatus(view: JobView): string {
  const lines = [
    `${view.id}  ${view.type}`,
    `  state     ${view.state}${view.execution !== 'RUNNING' ? ` (Temporal: ${view.execution})` : ''}`,
    `  progress  ${progressLine(view)}`,
    `  stage     ${view.stage}${view.message ? ` · ${view.message}` : ''}`,
    `  priority  ${formatPriority(view.priority)}`,
  ];
  if (view.stale)
    lines.push(`  stale     no worker answered in time; this is the last known status, as of ${view.updatedAt}`);
  if (view.succeeded || view.failed) lines.push(`  items     ${view.succeeded} succeeded, ${view.failed} failed`);
  for (const error of view.errors.slice(-10)) {
    lines.push(`  error     ${error.item}: ${error.reason}${error.type ? ` (${error.type})` : ''}`);
  }
  for (const activity of view.activities) {
    const progress = activity.progress ? ` ${progressLine(activity as Pick<JobView, 'progress'>)}` : '';
    const retry = activity.attempt > 1 ? ` (attempt ${activity.attempt})` : '';
    lines.push(`  activity  ${activity.type}${retry}${progress}${activity.message ? ` · ${activity.message}` : ''}`);
    if (activity.waiting) lines.push(`            waiting: ${activity.waiting}`);
    else if (activity.lastFailure) {
      const type = activity.lastFailureType ? ` (${activity.lastFailureType})` : '';
      lines.push(`            last failure: ${activity.lastFailure}${type}`);
    }
  }
  if (view.epochs?.length) lines.push(...formatEpochs(view.epochs.slice(-10)));
  lines.push(`  started   ${view.startedAt}`, `  updated   ${view.updatedAt}`);
  if (view.result !== undefined) lines.push(`  result    ${JSON.stringify(view.result)}`);
  return lines.join('\n');
}

/** `high (key 1) · tenant acme`, `key 2`, `default (key 3) · tenant b, weight 2`. */
export function formatPriority(priority: JobView['priority']): string {
  const level = priority.level ? `${priority.level} (key ${priority.key})` : `key ${priority.key}`;
  if (!priority.tenant) return level;
  return `${level} · tenant ${priority.tenant}${priority.tenantWeight ? `, weight ${priority.tenantWeight}` : ''}`;
}

/** A training job's latest epochs, one row each, under the status. */
function formatEpochs(epochs: EpochMetrics[]): string[] {
  const rows = epochs.map((e) => [
    String(e.epoch),
    e.trainLoss.toFixed(5),
    e.valLoss.toFixed(5),
    `${e.valPsnr.toFixed(2)} dB`,
    `${e.inputPsnr.toFixed(2)} dB`,
    `${e.seconds.toFixed(1)} s`,
  ]);
  const table = formatTable(['EPOCH', 'TRAIN LOSS', 'VAL LOSS', 'VAL PSNR', 'INPUT PSNR', 'TIME'], rows);
  return table.split('\n').map((line, i) => `${i === 0 ? '  epochs    ' : '            '}${line}`);
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}

const utc = (time: string | number) => new Date(time).toISOString().replace('T', ' ').slice(0, 19);

export function formatList(entries: JobListEntry[]): string {
  if (entries.length === 0) return 'No jobs found.';
  const rows = entries.map((e) => [e.id, e.type, e.state, utc(e.startedAt)]);
  return formatTable(['ID', 'TYPE', 'STATE', 'STARTED (UTC)'], rows);
}

/** The mail sink's messages as a table, with where they are stored. */
export function formatMailbox(messages: ReceivedMessage[], matching: number, dir: string): string {
  if (matching === 0) return `No messages in ${dir}.`;
  const rows = messages.map((m) => [utc(m.receivedAt), m.to.join(', '), m.subject.slice(0, 50), m.messageId]);
  const table = formatTable(['RECEIVED (UTC)', 'TO', 'SUBJECT', 'MESSAGE-ID'], rows);
  return `${table}\n${messages.length} of ${matching} shown; the messages are .eml files in ${dir}`;
}
