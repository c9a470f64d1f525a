/**
 * The detection pass's thread (see detection-thread.ts for why and for the other side): reads ffmpeg's frames,
 * feeds the detector, measures and keeps the candidates, and posts a checkpoint for each step (a second of video)
 * to the worker's main thread, which heartbeats it. Every frame's bytes stay in this thread, whose small heap
 * collects them cheaply. Several analyses run here at once, each as its own async loop; none runs more than
 * AHEAD_STEPS steps ahead of what the main thread has taken.
 */
import { parentPort } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { CandidateStore } from './candidates';
import { frameQuality } from './clip-quality';
import { DecodeError, type DecodedFrame } from './frames';
import { decodeFramesInParallel, type ParallelDecodeOptions } from './parallel-frames';
import { ShotDetector, type DetectorOptions } from './shot-detector';
import type { DetectCheckpoint } from './detect-shots';

/** Steps a detection may run ahead of the main thread: enough to keep decoding while a heartbeat goes out. */
const AHEAD_STEPS = 2;

export interface DetectionJob {
  file: string;
  decode: Omit<ParallelDecodeOptions, 'signal'>;
  detector: DetectorOptions;
  from: DetectCheckpoint;
  framesPerStep: number;
  /** Where to keep the candidates (a data-dir path already checked, or this worker's scratch), and their size. */
  candidates?: { file: string; scratch: boolean; width: number; height: number } | undefined;
}

export interface DetectionStep {
  checkpoint: DetectCheckpoint;
  /** The time of the last frame decoded. */
  lastMs: number;
  /** Candidates kept so far (in the store this attempt opened). */
  candidateCount?: number;
}

/** An error, as plain data across the thread boundary, and what it was. */
export interface ThreadError {
  kind: 'decode' | 'application' | 'other';
  message: string;
  type?: string | undefined;
  nonRetryable?: boolean | undefined;
}

export type ToDetectionThread =
  { type: 'start'; id: number; job: DetectionJob } | { type: 'take'; id: number } | { type: 'stop'; id: number };

export type FromDetectionThread =
  | { type: 'step'; id: number; step: DetectionStep }
  | { type: 'ended'; id: number }
  | { type: 'failed'; id: number; error: ThreadError };

interface Running {
  stop: AbortController;
  /** Steps posted and not yet taken by the main thread. */
  unread: number;
  wake?: () => void;
}

const running = new Map<number, Running>();

function post(message: FromDetectionThread): void {
  parentPort!.postMessage(message);
}

export function asThreadError(err: unknown): ThreadError {
  if (err instanceof DecodeError) return { kind: 'decode', message: err.message };
  if (err instanceof ApplicationFailure) {
    return {
      kind: 'application',
      message: err.message,
      type: err.type ?? undefined,
      nonRetryable: err.nonRetryable ?? undefined,
    };
  }
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

async function detect(id: number, job: DetectionJob, run: Running): Promise<void> {
  const { signal } = run.stop;
  const frames = decodeFramesInParallel(job.file, { ...job.decode, signal });
  const kept = job.candidates;
  let store: CandidateStore | undefined;
  try {
    store = kept && (await CandidateStore.openForAppend(kept.file, job.from.candidateBytes ?? 0, kept.scratch));
    const detector = new ShotDetector(job.detector, job.from.detector);
    let { nextIndex, nextMs } = job.from;
    let lastMs = 0;
    for (let finished = false; !finished;) {
      while (run.unread >= AHEAD_STEPS && !signal.aborted) await new Promise<void>((resolve) => (run.wake = resolve));
      if (signal.aborted) return;
      const batch: DecodedFrame[] = [];
      while (batch.length < job.framesPerStep) {
        const next = await frames.next();
        if (signal.aborted) return;
        if (next.done) {
          finished = true;
          break;
        }
        batch.push(next.value);
      }
      for (const frame of batch) {
        detector.push(frame.index, frame.ms, frame.pixels);
        lastMs = frame.ms;
        nextIndex = frame.index + 1;
        nextMs = frame.ms + 1;
      }
      if (finished) detector.finish();
      if (store && kept) {
        const measured = batch.flatMap((f) =>
          f.candidate
            ? [{ ms: f.ms, jpeg: f.candidate.jpeg, quality: frameQuality(f.candidate.pixels, kept.width, kept.height) }]
            : [],
        );
        await store.append(measured);
      }
      const checkpoint: DetectCheckpoint = {
        nextIndex,
        nextMs,
        detector: detector.snapshot(),
        finished,
        ...(store && { candidateBytes: store.length }),
      };
      run.unread++;
      post({ type: 'step', id, step: { checkpoint, lastMs, ...(store && { candidateCount: store.index.length }) } });
    }
  } finally {
    await frames.return(undefined);
    await store?.close();
  }
}

parentPort?.on('message', (message: ToDetectionThread) => {
  if (message.type === 'start') {
    const run: Running = { stop: new AbortController(), unread: 0 };
    running.set(message.id, run);
    detect(message.id, message.job, run)
      .then(
        () => post({ type: 'ended', id: message.id }),
        (err: unknown) => post({ type: 'failed', id: message.id, error: asThreadError(err) }),
      )
      .finally(() => running.delete(message.id));
    return;
  }
  const run = running.get(message.id);
  if (!run) return;
  if (message.type === 'take') run.unread--;
  else {
    run.stop.abort();
    running.delete(message.id);
  }
  run.wake?.();
  run.wake = undefined;
});
