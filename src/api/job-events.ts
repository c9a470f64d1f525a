/**
 * A job's live progress as Server-Sent Events: a `status` event whenever the status changes, then one final event
 * named after how the job ended (`completed`, `failed` or `cancelled`) carrying the final status, and the end of the
 * stream. While Temporal is unreachable the stream says so once (`unavailable`) and carries on when it returns;
 * comments keep idle proxies from closing the connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { executionToState, type JobView } from '../client/jobs';
import { TERMINAL_STATES, type JobState } from '../shared/job-status';
import { isUnavailable, type TemporalLink } from './temporal-link';

export interface JobEventsOptions {
  /** How often the status is read. */
  intervalMs: number;
  /** A comment goes out after this long without an event. */
  keepAliveMs: number;
  /** Ends the stream (the client went away, or the API is shutting down). */
  signal: AbortSignal;
}

/** One event in the SSE wire format. */
export function sseEvent(id: number, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** What counts as a change: everything but the timestamps that move on every read. */
export function statusFingerprint(view: Pick<JobView, 'activities'>): string {
  return JSON.stringify({
    ...view,
    updatedAt: undefined,
    activities: view.activities.map((activity) => ({ ...activity, lastHeartbeatAt: undefined })),
  });
}

/** How a job that Temporal reports as closed ended. */
function finalState(view: JobView): JobState {
  return TERMINAL_STATES.includes(view.state) ? view.state : executionToState(view.execution);
}

/**
 * Writes the job's events until it ends or `options.signal` aborts. Returns the final state, or undefined when the
 * stream was stopped before the job ended.
 */
export async function streamJobEvents(
  link: TemporalLink,
  id: string,
  write: (chunk: string) => void,
  options: JobEventsOptions,
): Promise<JobState | undefined> {
  let eventId = 0;
  let last = '';
  let lastWriteAt = Date.now();
  let unavailable = false;
  const send = (event: string, data: unknown) => {
    write(sseEvent(++eventId, event, data));
    lastWriteAt = Date.now();
  };
  write(`retry: ${Math.max(1000, options.intervalMs)}\n\n`);
  // A busy worker must not freeze the stream: past this, the last known status goes out, marked stale.
  const queryTimeoutMs = Math.max(2000, 2 * options.intervalMs);
  while (!options.signal.aborted) {
    try {
      const view = await link.use((jobs) => jobs.status(id, { queryTimeoutMs }));
      unavailable = false;
      if (view.execution !== 'RUNNING') {
        const state = finalState(view);
        send(state, { ...view, state });
        return state;
      }
      const current = statusFingerprint(view);
      // A job whose status already says it ended, while Temporal still has it running, is closing: its final event
      // (with the result) follows at the next look, so no `status` event says `completed` before it.
      if (current !== last && !TERMINAL_STATES.includes(view.state)) {
        send('status', view);
        last = current;
      }
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      if (!unavailable) send('unavailable', { message: err instanceof Error ? err.message : String(err) });
      unavailable = true;
    }
    if (Date.now() - lastWriteAt >= options.keepAliveMs) {
      write(': keep-alive\n\n');
      lastWriteAt = Date.now();
    }
    await sleep(options.intervalMs, undefined, { signal: options.signal }).catch(() => undefined);
  }
  return undefined;
}
