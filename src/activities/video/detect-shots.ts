/**
 * The shot-detection pass: decodes the whole video once, small, and feeds the frames to the detector. It
 * heartbeats every second of video with a checkpoint (frame, time, detector state), so a pause, a cancel or a dead
 * worker costs at most that second: the next attempt seeks ffmpeg to the checkpoint instead of decoding from the
 * start. Aborting kills ffmpeg at once.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { cpuPoolSettings } from '../../config';
import type { Resumable } from '../../shared/job-status';
import { displayPath } from '../files';
import { runResumableLoop } from '../resumable-loop';
import { DecodeError } from './frames';
import { CANDIDATE_EVERY_MS } from './candidates';
import { startDetection, type DetectionRun } from './detection-thread';
import type { DetectionStep } from './detection-worker';
import { NETWORK_TROUBLE, thumbnailSize, type VideoInfo } from './probe';
import { candidatesLocation, videoSource } from './video-source';
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

/** ffmpeg processes one detection pass runs at most (see parallel-frames.ts). */
const MAX_DECODERS = 4;

export interface DetectShotsRequest {
  video: string;
  info: VideoInfo;
  /** Adaptive threshold (how many times its neighbours' change a cut's change must be). */
  threshold?: number | undefined;
  resumeFrom?: DetectCheckpoint | undefined;
  /**
   * Keep candidate frames for scoring, from the same decoding pass (see candidates.ts): scoring then needs no second
   * decode. They go beside the thumbnails in a data-dir outputDir, in the worker's scratch for a bucket
   * (video-source.ts). Absent in requests of runs from before (two passes).
   */
  candidates?: { outputDir: string } | undefined;
}

export interface DetectCheckpoint {
  nextIndex: number;
  nextMs: number;
  detector: DetectorState;
  finished: boolean;
  /** Bytes of the candidates file that belong to the frames before `nextIndex`. */
  candidateBytes?: number;
}

/** Where the detection pass left the scoring candidates. */
export interface CandidatesFile {
  /** The file: a path in the data dir, or (for an outputDir in a bucket) the worker's scratch file, absolute. */
  file: string;
  bytes: number;
  /** How many (when the attempt that finished kept them). */
  count?: number;
  width: number;
  height: number;
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
  /** The scoring candidates the pass kept, when asked to. */
  candidates?: CandidatesFile;
}

/** A stream that stops well before its stated duration is truncated or corrupt: say so rather than half-analyse. */
function assertComplete(name: string, reachedMs: number, info: VideoInfo): void {
  if (reachedMs >= info.durationMs * 0.9 - 1000) return;
  throw ApplicationFailure.nonRetryable(
    `The video ${name} ends after ${(reachedMs / 1000).toFixed(1)} s of the ` +
      `${(info.durationMs / 1000).toFixed(1)} s it declares: the stream is truncated or corrupt.`,
    'VideoTruncated',
  );
}

export async function detectShots(request: DetectShotsRequest): Promise<Resumable<DetectCheckpoint, DetectedShots>> {
  // A data-dir path, or a presigned URL of an object (fresh for each attempt): the video is streamed, not copied.
  const source = await videoSource(request.video);
  const options = { ...DEFAULT_DETECTOR, ...(request.threshold !== undefined && { threshold: request.threshold }) };
  const totalSeconds = Math.round(request.info.durationMs / 1000);
  const thumbnail = thumbnailSize(request.info);
  const kept = request.candidates && candidatesLocation(request.candidates.outputDir);
  // The pass runs in the detection thread (see detection-thread.ts), started at this attempt's first step; each
  // step here takes its next checkpoint.
  let run: DetectionRun | undefined;
  let last: DetectionStep | undefined;
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
        run ??= startDetection({
          file: source.input,
          decode: {
            width: ANALYSIS_WIDTH,
            height: ANALYSIS_HEIGHT,
            fromMs: checkpoint.nextMs,
            firstIndex: checkpoint.nextIndex,
            // The last frame analysed before (a checkpoint's nextMs is one past it): the candidates carry on in step.
            previousMs: checkpoint.nextIndex > 0 ? checkpoint.nextMs - 1 : undefined,
            // Times on the container's timeline (what players show), so a stream that starts late has late cuts.
            startMs: request.info.timelineStartMs ?? request.info.startMs ?? 0,
            candidates: kept ? { ...thumbnail, everyMs: CANDIDATE_EVERY_MS } : undefined,
            sourceWidth: request.info.width,
            inputOptions: source.inputOptions,
            // One decoder per core the worker gives CPU work (stretches of the video at once, frames still in
            // order), at most MAX_DECODERS: one analysis should not take a big machine's every core from the others.
            lanes: Math.min(MAX_DECODERS, cpuPoolSettings().threads),
            fps: request.info.fps,
            durationMs: request.info.durationMs,
            isUrl: source.isUrl,
            formatName: request.info.formatName,
          },
          detector: options,
          from: checkpoint,
          // A second of video a step (at least 10 frames).
          framesPerStep: Math.max(10, Math.ceil(request.info.fps)),
          candidates: kept && { ...kept, ...thumbnail },
        });
        const step = await run.next(signal);
        // The pass ends early when a pause or cancel stops it: that is an interruption, not the end of the video.
        signal.throwIfAborted();
        if (!step) throw new Error('The detection thread ended the pass before its last step.');
        if (step.checkpoint.finished) assertComplete(source.name, step.checkpoint.nextMs, request.info);
        last = step;
        return step.checkpoint;
      },
      finish: (checkpoint) => ({
        boundaries: checkpoint.detector.boundaries,
        segments: checkpoint.detector.segments,
        framesAnalyzed: checkpoint.nextIndex,
        lastFrameMs: Math.max(last?.lastMs ?? 0, checkpoint.nextMs - 1),
        attempts: Context.current().info.attempt,
        // (An attempt that starts from a finished checkpoint ran no pass: the checkpoint says how far it got.)
        ...(kept && {
          candidates: {
            file: kept.scratch ? kept.file : displayPath(kept.file),
            bytes: checkpoint.candidateBytes ?? 0,
            ...(last?.candidateCount !== undefined && { count: last.candidateCount }),
            ...thumbnail,
          },
        }),
      }),
    });
  } catch (err) {
    if (err instanceof DecodeError) {
      const reason = source.scrub(err.message);
      if (source.isUrl && NETWORK_TROUBLE.test(err.message)) {
        // Reading the object failed (the network, the server), not decoding it: the next attempt resumes.
        throw ApplicationFailure.retryable(`Reading the video ${source.name} failed: ${reason}`, 'VideoReadFailed');
      }
      throw ApplicationFailure.nonRetryable(
        `The video ${source.name} could not be decoded: ${reason}. It may be corrupt or truncated.`,
        'VideoCorrupt',
      );
    }
    throw err;
  } finally {
    run?.stop();
  }
}
