/**
 * The detection pass's frames from several ffmpeg processes at once. ffmpeg's own threads keep only about 1.3 of two
 * cores busy on H.264 (frame threads wait on each other); stretches of the video that start at keyframes decode
 * independently, so one single-threaded ffmpeg per core, each on its own stretch, uses them all: 60 s of 720p
 * decoded and scaled in 2.5 s instead of 3.8 s, 300 s in 11.1 s instead of 18.5 s (2 cores, ffmpeg 5.1).
 * Frames still come out in order, one stream, as decodeFrames gives them: the next stretch decodes ahead into
 * memory while the current one is read, so the detector and its checkpoints see no difference.
 * Only where the container has an index that seeks to a keyframe (MP4 and QuickTime, the common case) and the file
 * is local; anything else, or a video whose keyframes are too sparse to share out, decodes in one process as before.
 */
import { decodeFrames, startsCandidateStep, type DecodedFrame, type DecodeOptions } from './frames';

/**
 * Stretches are planned this long at least. Each ffmpeg start costs more than it seems (about 70 ms of CPU to open
 * the file and reach the keyframe, and a fork of the worker's large process on its main thread), so the video is
 * cut into as few stretches as keep every lane busy (see stretchTargets).
 * 60 s of 720p on 2 cores: six 10 s stretches 2.74 s and 4.8 CPU-s, two 30 s stretches 2.26 s and 4.3 CPU-s.
 */
const MIN_STRETCH_MS = 10_000;

/**
 * A stretch's decoder lands on the last keyframe at or before its target; a landing closer than this to where the
 * stretch before it starts (sparse keyframes) is not worth its ffmpeg, and the stretch before it goes on instead.
 */
const MIN_LANDED_MS = MIN_STRETCH_MS / 2;

/**
 * A stretch decoded ahead waits in memory for the reader: about 1 MB a second of video (30 small frames and three
 * thumbnail-size candidates a second), so this bounds what one lane holds.
 */
const MAX_STRETCH_MS = 60_000;

/** Frames a stretch decodes ahead at most (96×54 RGB: 15.5 kB each, so under 50 MB). */
const MAX_AHEAD_FRAMES = 3_000;

/** Containers whose index seeks to a keyframe exactly (ffmpeg's mov demuxer), by ffmpeg's name for them. */
const INDEXED_FORMATS = /^(mov|mp4)\b|,mp4\b/;

export interface ParallelDecodeOptions extends DecodeOptions {
  /** ffmpeg processes at once (the CPUs to use); 1 decodes as decodeFrames does. */
  lanes: number;
  fps: number;
  /** The video's duration (from the probe): the stretches share what is left of it evenly. */
  durationMs: number;
  /** A URL is read once, in one process. */
  isUrl: boolean;
  /** ffmpeg's name for the container (the probe's `formatName`): only an indexed one is cut into stretches. */
  formatName: string | undefined;
}

/**
 * Where the stretches after the first are aimed, from `fromMs` to the end (`durationMs`): a multiple of `lanes` of
 * them, as even as can be, each planned at least MIN_STRETCH_MS and at most MAX_STRETCH_MS long, so that the lanes
 * finish together. Each decoder then lands on the last keyframe at or before its target, which is where the
 * stretch before it ends.
 */
export function stretchTargets(fromMs: number, lanes: number, durationMs: number): number[] {
  const remaining = Math.max(0, durationMs - fromMs);
  const count = lanes * Math.max(1, Math.ceil(remaining / (lanes * MAX_STRETCH_MS)));
  const length = Math.max(MIN_STRETCH_MS, remaining / count);
  const targets: number[] = [];
  for (let k = 1; k < count && fromMs + k * length < durationMs; k++) targets.push(Math.round(fromMs + k * length));
  return targets;
}

interface Lane {
  /** Where the stretch starts: the pass's start for the first, else its keyframe, known from its first frame. */
  fromMs: number;
  /** Decoding from the last keyframe at or before a target (not the pass's own start). */
  fromKeyframe: boolean;
  frames: AsyncGenerator<DecodedFrame>;
  /** The first frame, asked for at once so that ffmpeg starts decoding ahead. */
  first: Promise<IteratorResult<DecodedFrame>>;
  stop: AbortController;
}

async function stopLane(lane: Lane): Promise<void> {
  lane.stop.abort();
  await lane.frames.return(undefined).catch(() => undefined);
}

/**
 * decodeFrames' frames, decoded by up to `lanes` ffmpeg processes at once (see above). No keyframe list is needed
 * first: each stretch after the first seeks to its target, and its first frame (a keyframe) says where it starts,
 * so every lane starts at once. (An ffprobe listing the keyframes took 0.1 s for 60 s of 720p and 0.6 s for 300 s
 * before the second lane could start, and 0.1–0.2 CPU-s.)
 */
export async function* decodeFramesInParallel(
  file: string,
  options: ParallelDecodeOptions,
): AsyncGenerator<DecodedFrame> {
  const { lanes, fps, durationMs, isUrl, formatName, ...decode } = options;
  const fromMs = decode.fromMs ?? 0;
  const targets = stretchTargets(fromMs, lanes, durationMs);
  if (lanes < 2 || isUrl || !INDEXED_FORMATS.test(formatName ?? '') || targets.length === 0) {
    yield* decodeFrames(file, decode);
    return;
  }
  const expectedMs = (durationMs - fromMs) / (targets.length + 1);
  const startLane = (fromKeyframe: boolean, atMs: number): Lane => {
    const stop = new AbortController();
    const signal = decode.signal ? AbortSignal.any([decode.signal, stop.signal]) : stop.signal;
    const frames = decodeFrames(file, {
      ...decode,
      fromMs: atMs,
      fromKeyframe,
      // The frame before a later stretch is known once the stretch before it is read (see below).
      previousMs: fromKeyframe ? undefined : decode.previousMs,
      signal,
      threads: 1,
      aheadFrames: Math.min(MAX_AHEAD_FRAMES, Math.ceil((expectedMs / 1000) * fps * 1.1) + 16),
    });
    const first = frames.next();
    first.catch(() => undefined); // awaited in its turn; an error before then must not go unhandled
    return { fromMs: atMs, fromKeyframe, frames, first, stop };
  };
  // The first stretch starts where the pass does; the others decode ahead into memory while it is read.
  const running: Lane[] = [startLane(false, fromMs)];
  let planned = 0;
  const fill = () => {
    while (running.length < lanes && planned < targets.length && !decode.signal?.aborted) {
      running.push(startLane(true, targets[planned++]!));
    }
  };
  fill();

  let index = decode.firstIndex ?? 0;
  let previousMs = decode.previousMs;
  const everyMs = decode.candidates?.everyMs;
  try {
    while (running.length > 0) {
      const lane = running[0]!;
      // This stretch ends where the next one starts: its first frame, the keyframe its seek landed on.
      let toMs = Infinity;
      for (fill(); running.length > 1; fill()) {
        const after = running[1]!;
        const landed = await after.first;
        if (!landed.done && landed.value.ms >= lane.fromMs + MIN_LANDED_MS) {
          toMs = after.fromMs = landed.value.ms;
          break;
        }
        // Landed too near this stretch's start (sparse keyframes), or found no frame: this stretch goes on.
        running.splice(1, 1);
        await stopLane(after);
      }
      if (!lane.fromKeyframe && toMs === Infinity) {
        // The first stretch, with nothing to share after all: one ffmpeg, its own threads (the reader sees an abort).
        running.splice(0);
        await stopLane(lane);
        if (!decode.signal?.aborted) yield* decodeFrames(file, decode);
        return;
      }
      let next = await lane.first;
      // A stretch's ffmpeg keeps its first frame as a candidate: only the frame before it can say whether it is one.
      if (!next.done && lane.fromKeyframe && next.value.candidate && everyMs !== undefined) {
        if (previousMs !== undefined && !startsCandidateStep(next.value.ms, previousMs, everyMs)) {
          next = { done: false, value: { ...next.value, candidate: undefined } };
        }
      }
      while (!next.done && next.value.ms < toMs) {
        previousMs = next.value.ms;
        yield { ...next.value, index: index++ };
        next = await lane.frames.next();
      }
      running.shift();
      await stopLane(lane);
    }
  } finally {
    for (const lane of running.splice(0)) await stopLane(lane);
  }
}
