/**
 * The detection pass's frames from several ffmpeg processes at once. ffmpeg's own threads keep only about 1.3 of two
 * cores busy on H.264 (frame threads wait on each other); stretches of the video that start at keyframes decode
 * independently, so one single-threaded ffmpeg per core, each on its own stretch, uses them all: 60 s of 720p
 * decoded and scaled in 2.5 s instead of 3.8 s, 300 s in 11.1 s instead of 18.5 s (2 cores, ffmpeg 5.1).
 * Frames still come out in order, one stream, as decodeFrames gives them: the next stretch decodes ahead into
 * memory while the current one is read, so the detector and its checkpoints see no difference.
 * Only where the container has an index that seeks to the keyframe itself (MP4 and QuickTime, the common case) and
 * the file is local; anything else, or a seek that lands elsewhere, decodes in one process as before.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ffprobePath } from './ffmpeg';
import { decodeFrames, startsCandidateStep, type DecodedFrame, type DecodeOptions } from './frames';

/**
 * Stretches shorter than this are not worth an ffmpeg start. Each start costs more than it seems (about 70 ms of CPU
 * to open the file and reach the keyframe, and a fork of the worker's large process on its main thread), so the
 * video is cut into as few stretches as keep every lane busy (see planStretches).
 * 60 s of 720p on 2 cores: six 10 s stretches 2.74 s and 4.8 CPU-s, two 30 s stretches 2.26 s and 4.3 CPU-s.
 */
const MIN_STRETCH_MS = 10_000;

/**
 * A stretch decoded ahead waits in memory for the reader: about 1 MB a second of video (30 small frames and three
 * thumbnail-size candidates a second), so this bounds what one lane holds.
 */
const MAX_STRETCH_MS = 60_000;

/**
 * The keyframe scan reads the file's packets (0.6 s for 300 s of 720p, 52 MB): past this, on a slow disk or a huge
 * file, the pass decodes in one process rather than wait longer before its first frame.
 */
const SCAN_LIMIT_MS = 5_000;

/** Frames a stretch decodes ahead at most (96×54 RGB: 15.5 kB each, so under 50 MB). */
const MAX_AHEAD_FRAMES = 3_000;

/** Containers whose index seeks to a keyframe exactly (ffmpeg's mov demuxer). */
const INDEXED_FORMATS = /^(mov|mp4)\b|,mp4\b/;

interface Stretch {
  fromMs: number;
  /** Where the next stretch starts (a keyframe), or Infinity for the last. */
  toMs: number;
  fromKeyframe: boolean;
}

export interface ParallelDecodeOptions extends DecodeOptions {
  /** ffmpeg processes at once (the CPUs to use); 1 decodes as decodeFrames does. */
  lanes: number;
  fps: number;
  /** The video's duration (from the probe): the stretches share what is left of it evenly. */
  durationMs: number;
  /** A URL is read once, in one process: the keyframe scan would read the whole object first. */
  isUrl: boolean;
}

/**
 * The keyframes' times (ms, on the frames' timeline: minus `startMs`), from the container's packets without
 * decoding; undefined when the container cannot seek to them exactly or ffprobe fails.
 */
export async function keyframeTimes(
  file: string,
  inputOptions: string[],
  startMs: number,
  signal?: AbortSignal,
): Promise<number[] | undefined> {
  const args = ['-v', 'error', ...inputOptions, '-select_streams', 'v:0'];
  args.push('-show_entries', 'format=format_name:packet=pts_time,flags', '-of', 'csv', file);
  const limit = AbortSignal.timeout(SCAN_LIMIT_MS);
  const child = spawn(ffprobePath(), args, {
    stdio: ['ignore', 'pipe', 'ignore'],
    signal: signal ? AbortSignal.any([signal, limit]) : limit,
  });
  const keyframes: number[] = [];
  let indexed = false;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.startsWith('packet,')) {
      const [, time, flags] = line.split(',');
      if (flags?.includes('K') && time !== 'N/A') keyframes.push(Math.round(Number(time) * 1000) - startMs);
    } else if (line.startsWith('format,')) indexed = INDEXED_FORMATS.test(line.slice('format,'.length));
  });
  const code = await new Promise<number | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', () => resolve(null));
  });
  if (code !== 0 || !indexed || keyframes.some((ms) => !Number.isFinite(ms))) return undefined;
  return [...new Set(keyframes)].sort((a, b) => a - b);
}

/**
 * Stretches from `fromMs` to the end (`durationMs`), each starting at a keyframe: a multiple of `lanes` of them, as
 * even as the keyframes allow, each at least MIN_STRETCH_MS and (keyframes permitting) at most MAX_STRETCH_MS, so
 * that the lanes finish together. The k-th boundary is the first keyframe at or after k even lengths from `fromMs`.
 */
export function planStretches(keyframesMs: number[], fromMs: number, lanes: number, durationMs: number): Stretch[] {
  const remaining = Math.max(0, durationMs - fromMs);
  const count = lanes * Math.max(1, Math.ceil(remaining / (lanes * MAX_STRETCH_MS)));
  const length = Math.max(MIN_STRETCH_MS, remaining / count);
  const stretches: Stretch[] = [{ fromMs, toMs: Infinity, fromKeyframe: false }];
  for (const keyframe of keyframesMs) {
    const last = stretches.at(-1)!;
    const boundary = fromMs + stretches.length * length;
    if (keyframe < boundary || keyframe - last.fromMs < MIN_STRETCH_MS) continue;
    last.toMs = keyframe;
    stretches.push({ fromMs: keyframe, toMs: Infinity, fromKeyframe: true });
  }
  return stretches;
}

interface Running {
  stretch: Stretch;
  frames: AsyncGenerator<DecodedFrame>;
  /** The first frame, asked for at once so that ffmpeg starts decoding ahead. */
  first: Promise<IteratorResult<DecodedFrame>>;
  stop: AbortController;
}

/** decodeFrames' frames, decoded by up to `lanes` ffmpeg processes at once (see above). */
export async function* decodeFramesInParallel(
  file: string,
  options: ParallelDecodeOptions,
): AsyncGenerator<DecodedFrame> {
  const { lanes, fps, durationMs, isUrl, ...decode } = options;
  if (lanes < 2 || isUrl) {
    yield* decodeFrames(file, decode);
    return;
  }
  const running: Running[] = [];
  const startLane = (stretch: Stretch, expectedMs: number) => {
    const stop = new AbortController();
    const signal = decode.signal ? AbortSignal.any([decode.signal, stop.signal]) : stop.signal;
    const frames = decodeFrames(file, {
      ...decode,
      fromMs: stretch.fromMs,
      fromKeyframe: stretch.fromKeyframe,
      // The frame before a later stretch is known once the stretch before it is read (see below).
      previousMs: stretch.fromKeyframe ? undefined : decode.previousMs,
      signal,
      threads: 1,
      aheadFrames: Math.min(MAX_AHEAD_FRAMES, Math.ceil((expectedMs / 1000) * fps * 1.1) + 16),
    });
    const first = frames.next();
    first.catch(() => undefined); // awaited in its turn; an error before then must not go unhandled
    running.push({ stretch, frames, first, stop });
  };
  // The first stretch starts where the pass does, whatever the plan: its ffmpeg starts at once, while ffprobe lists
  // the keyframes (0.1 s for 60 s of 720p, 0.6 s for 300 s), and learns where it ends from the plan.
  const fromMs = decode.fromMs ?? 0;
  const opening: Stretch = { fromMs, toMs: Infinity, fromKeyframe: false };
  startLane(opening, (durationMs - fromMs) / lanes);
  const keyframes = await keyframeTimes(file, decode.inputOptions ?? [], decode.startMs ?? 0, decode.signal);
  const stretches = keyframes ? planStretches(keyframes, fromMs, lanes, durationMs) : [];
  if (decode.signal?.aborted || stretches.length < 2) {
    const [lane] = running.splice(0);
    lane!.stop.abort();
    await lane!.frames.return(undefined).catch(() => undefined);
    // Paused or cancelled during the scan (the reader sees the abort), or nothing to share: one ffmpeg, its own threads.
    if (!decode.signal?.aborted) yield* decodeFrames(file, decode);
    return;
  }
  opening.toMs = stretches[0]!.toMs;
  let planned = 1;
  const startNext = () => {
    const stretch = stretches[planned++]!;
    startLane(stretch, stretch.toMs - stretch.fromMs);
  };
  const stopAll = async () => {
    for (const lane of running.splice(0)) {
      lane.stop.abort();
      await lane.frames.return(undefined).catch(() => undefined);
    }
  };

  let index = decode.firstIndex ?? 0;
  let previousMs = decode.previousMs;
  const everyMs = decode.candidates?.everyMs;
  try {
    while (running.length > 0 || planned < stretches.length) {
      while (running.length < lanes && planned < stretches.length && !decode.signal?.aborted) startNext();
      const lane = running[0];
      if (!lane) break;
      const { stretch } = lane;
      let next = await lane.first;
      if (!next.done && stretch.fromKeyframe && next.value.ms > stretch.fromMs) {
        // The seek did not land on the keyframe: frames would be missing. Decode the rest in one process.
        await stopAll();
        yield* decodeFrames(file, { ...decode, fromMs: stretch.fromMs, firstIndex: index, previousMs });
        return;
      }
      // A stretch's ffmpeg keeps its first frame as a candidate: only the frame before it can say whether it is one.
      if (!next.done && stretch.fromKeyframe && next.value.candidate && everyMs !== undefined) {
        if (previousMs !== undefined && !startsCandidateStep(next.value.ms, previousMs, everyMs)) {
          next = { done: false, value: { ...next.value, candidate: undefined } };
        }
      }
      while (!next.done && next.value.ms < stretch.toMs) {
        previousMs = next.value.ms;
        yield { ...next.value, index: index++ };
        next = await lane.frames.next();
      }
      running.shift();
      lane.stop.abort();
      await lane.frames.return(undefined);
    }
  } finally {
    await stopAll();
  }
}
