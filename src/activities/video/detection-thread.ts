/**
 * The detection pass runs in a thread of its own (detection-worker.ts), not on the worker's main thread. Reading
 * ffmpeg's output there meant handling every byte of it: a minute of 720p is 1,800 frames of 15.5 kB and 180
 * candidates of 170 kB, read in 64 kB chunks, cut and handed on, about 160 MB of buffers, and every 64 MB or so
 * of them set off a full garbage collection of the main thread's large heap (four to nine a minute of video,
 * each ~60 ms there and as much again on V8's helper threads). The main thread spent ~0.65 s of CPU a minute of
 * video and its helpers ~0.5 s, a fifth of the whole job's CPU. Here it receives one checkpoint a second of video
 * and heartbeats it.
 *
 * One thread for the process, started with the first analysis and kept for the next (it keeps the process alive
 * only while a pass runs); analyses running at once share it, each its own async loop. If the thread dies, each analysis on it
 * fails with a retryable error and the next one starts a new thread.
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { DecodeError } from './frames';
import type {
  DetectionJob,
  DetectionStep,
  FromDetectionThread,
  ThreadError,
  ToDetectionThread,
} from './detection-worker';

function fromThreadError(error: ThreadError): Error {
  if (error.kind === 'decode') return new DecodeError(error.message);
  if (error.kind === 'application') {
    return ApplicationFailure.create({
      message: error.message,
      ...(error.type && { type: error.type }),
      nonRetryable: error.nonRetryable ?? false,
    });
  }
  return new Error(error.message);
}

/** One analysis' detection pass in the thread: its steps, in order, as the thread posts them. */
export class DetectionRun {
  private readonly steps: DetectionStep[] = [];
  private outcome: { error?: Error } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly id: number,
    private readonly send: (message: ToDetectionThread) => void,
    private readonly forget: (id: number) => void,
  ) {}

  /** @internal What the thread posted for this run. */
  receive(message: FromDetectionThread): void {
    if (message.type !== 'step') this.end(message.type === 'failed' ? { error: fromThreadError(message.error) } : {});
    else {
      this.steps.push(message.step);
      this.wake?.();
    }
  }

  /** @internal The run ends (the thread ended it, failed or died). */
  end(outcome: { error?: Error }): void {
    this.outcome ??= outcome;
    this.forget(this.id);
    this.wake?.();
  }

  /**
   * The next step; undefined once the pass has ended (after its last step, the one marked finished). Rejects with the
   * thread's error (a DecodeError for ffmpeg's), or with `signal`'s reason when it aborts first.
   */
  async next(signal: AbortSignal): Promise<DetectionStep | undefined> {
    for (;;) {
      signal.throwIfAborted();
      const step = this.steps.shift();
      if (step) {
        this.send({ type: 'take', id: this.id });
        return step;
      }
      if (this.outcome?.error) throw this.outcome.error;
      if (this.outcome) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Stops the pass (the thread kills its ffmpeg processes at once); nothing more comes. */
  stop(): void {
    if (this.outcome) return;
    this.send({ type: 'stop', id: this.id });
    this.end({});
  }
}

class DetectionThread {
  private readonly worker: Worker;
  private readonly runs = new Map<number, DetectionRun>();
  private lastId = 0;
  private dead = false;

  constructor(onDeath: () => void) {
    // The same TypeScript loader as the CPU pool's threads; the environment shared (data dir, ffmpeg path).
    this.worker = new Worker(require.resolve('./detection-worker'), {
      execArgv: ['--require', require.resolve('tsx/cjs')],
      env: SHARE_ENV,
    });
    this.worker.unref();
    this.worker.on('message', (message: FromDetectionThread) => this.runs.get(message.id)?.receive(message));
    const die = (reason: string) => {
      if (this.dead) return;
      this.dead = true;
      onDeath();
      for (const run of [...this.runs.values()])
        run.end({ error: new Error(`The detection thread stopped: ${reason}`) });
    };
    this.worker.on('error', (err) => die(err.message));
    this.worker.on('exit', (code) => die(`exit code ${code}`));
  }

  /** Ends the thread (its passes fail, as if it had died). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  start(job: DetectionJob): DetectionRun {
    const id = ++this.lastId;
    const run = new DetectionRun(
      id,
      (message) => this.worker.postMessage(message),
      (ended) => {
        // Held while a pass runs (a process waiting for one must not exit), not when idle.
        if (this.runs.delete(ended) && this.runs.size === 0) this.worker.unref();
      },
    );
    if (this.runs.size === 0) this.worker.ref();
    this.runs.set(id, run);
    this.worker.postMessage({ type: 'start', id, job } satisfies ToDetectionThread);
    return run;
  }
}

let thread: DetectionThread | undefined;

/** Starts a detection pass in the detection thread (started first if need be). */
export function startDetection(job: DetectionJob): DetectionRun {
  const current = (thread ??= new DetectionThread(() => {
    if (thread === current) thread = undefined;
  }));
  return current.start(job);
}

/** Ends the detection thread, if any (tests and benchmarks; a worker process just exits). */
export async function closeDetectionThread(): Promise<void> {
  await thread?.close();
}
