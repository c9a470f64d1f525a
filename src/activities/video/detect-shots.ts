/**
 * The shot-detection pass: decodes the whole video once, small, and feeds the frames to the detector. It
 * heartbeats every second of video with a checkpoint (frame, time, detector state), so a pause, a cancel or a dead
 * worker costs at most that second: the next attempt seeks ffmpeg to the checkpoint instead of decoding from the
 * start. Aborting kills ffmpeg at once.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Resumable } from '../../shared/job-status';
import { runCpuTask } from '../cpu-pool';
import { displayPath, resolveDataPath } from '../files';
import { runResumableLoop } from '../resumable-loop';
import { DecodeError, decodeFrames, type DecodedFrame } from './frames';
import type { VideoInfo } from './probe';
import {
  DEFAULT_DETECTOR,
  initialDetectorState,
  type Boundary,
  type DetectorState,
  type Segment,
} from './shot-detector';

/** Analysis frames: small enough to decode and compare fast, big enough to see what changes. */
export const ANALYSIS_WIDTH = 96;
export const ANALYSIS_HEIGHT = 54;

export interface DetectShotsRequest {
  video: string;
  info: VideoInfo;
  /** Adaptive threshold (how many times its neighbours' change a cut's change must be). */
  threshold?: number | undefined;
  resumeFrom?: DetectCheckpoint | undefined;
}

export interface DetectCheckpoint {
  nextIndex: number;
  nextMs: number;
  detector: DetectorState;
  finished: boolean;
}

/** The frames the detection pass decoded, from a result of this code or of the code before the rename. */
export function framesAnalyzedOf(shots: DetectedShots): number {
  return shots.framesAnalyzed ?? shots.framesAnalysed ?? 0;
}

export interface DetectedShots {
  boundaries: Boundary[];
  segments: Segment[];
  framesAnalyzed: number;
  /** What `framesAnalyzed` was called in results recorded before it was renamed (a job in flight across the deploy). */
  framesAnalysed?: number;
  /** Time of the last frame decoded: short of the duration when the stream is broken. */
  lastFrameMs: number;
  attempts: number;
}

/** A stream that stops well before its stated duration is truncated or corrupt: say so rather than half-analyse. */
function assertComplete(file: string, reachedMs: number, info: VideoInfo): void {
  if (reachedMs >= info.durationMs * 0.9 - 1000) return;
  throw ApplicationFailure.nonRetryable(
    `The video ${displayPath(file)} ends after ${(reachedMs / 1000).toFixed(1)} s of the ` +
      `${(info.durationMs / 1000).toFixed(1)} s it declares: the stream is truncated or corrupt.`,
    'VideoTruncated',
  );
}

export async function detectShots(request: DetectShotsRequest): Promise<Resumable<DetectCheckpoint, DetectedShots>> {
  const file = resolveDataPath(request.video, 'video');
  const options = { ...DEFAULT_DETECTOR, ...(request.threshold !== undefined && { threshold: request.threshold }) };
  const totalSeconds = Math.round(request.info.durationMs / 1000);
  const framesPerStep = Math.max(10, Math.ceil(request.info.fps));
  let frames: AsyncGenerator<DecodedFrame> | undefined;
  // One decoder per attempt; each step hands back the detector's state as its checkpoint.
  let lastMs = 0;
  try {
    return await runResumableLoop<DetectCheckpoint, DetectedShots>({
      initial: { nextIndex: 0, nextMs: 0, detector: initialDetectorState(), finished: false },
      resumeFrom: request.resumeFrom,
      isDone: (checkpoint) => checkpoint.finished,
      progress: (checkpoint) => ({
        done: checkpoint.finished ? totalSeconds : Math.min(totalSeconds, Math.floor(checkpoint.nextMs / 1000)),
        total: totalSeconds,
        unit: 'seconds',
      }),
      describe: (checkpoint) =>
        `${(checkpoint.nextMs / 1000).toFixed(1)} s of ${(request.info.durationMs / 1000).toFixed(1)} s analysed, ` +
        `${checkpoint.detector.boundaries.length} boundaries`,
      step: async (checkpoint, signal) => {
        frames ??= decodeFrames(file, {
          width: ANALYSIS_WIDTH,
          height: ANALYSIS_HEIGHT,
          fromMs: checkpoint.nextMs,
          firstIndex: checkpoint.nextIndex,
          startMs: request.info.startMs ?? 0,
          signal,
        });
        let { nextIndex, nextMs } = checkpoint;
        const batch: DecodedFrame[] = [];
        let finished = false;
        while (batch.length < framesPerStep) {
          const next = await frames.next();
          if (next.done) {
            // ffmpeg ends early when a pause or cancel kills it: that is an interruption, not the end of the video.
            signal.throwIfAborted();
            assertComplete(file, nextMs, request.info);
            finished = true;
            break;
          }
          batch.push(next.value);
          lastMs = next.value.ms;
          nextIndex = next.value.index + 1;
          nextMs = next.value.ms + 1;
        }
        // The detector runs on the CPU pool, a second of frames at a time, from the checkpoint's state.
        const detector = await runCpuTask('detectInBatch', {
          options,
          state: checkpoint.detector,
          frames: batch,
          finish: finished,
        });
        return { nextIndex, nextMs, detector, finished };
      },
      finish: (checkpoint) => ({
        boundaries: checkpoint.detector.boundaries,
        segments: checkpoint.detector.segments,
        framesAnalyzed: checkpoint.nextIndex,
        lastFrameMs: Math.max(lastMs, checkpoint.nextMs - 1),
        attempts: Context.current().info.attempt,
      }),
    });
  } catch (err) {
    if (err instanceof DecodeError) {
      throw ApplicationFailure.nonRetryable(
        `The video ${displayPath(file)} could not be decoded: ${err.message}. It may be corrupt or truncated.`,
        'VideoCorrupt',
      );
    }
    throw err;
  } finally {
    await frames?.return(undefined);
  }
}
