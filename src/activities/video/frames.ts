/**
 * Decoded frames from ffmpeg, downscaled and raw (RGB), with their timestamps, as an async stream: ffmpeg does
 * the decoding (any codec it knows), we do the analysis. Timestamps come from ffmpeg's `showinfo` filter, so
 * variable-frame-rate video is placed by time, not by frame count. Aborting kills ffmpeg at once (no orphans).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { SAFE_INPUT_OPTIONS, ffmpegPath } from './ffmpeg';

export interface DecodedFrame {
  /** Ordinal of the frame in the video (0-based). */
  index: number;
  ms: number;
  /** RGB; often a view of a larger chunk of ffmpeg's output (see FrameCutter). */
  pixels: Buffer;
  /** The same frame at the candidates' size, when it is one (see {@link DecodeOptions.candidates}). */
  candidate?: CandidateFrame;
}

/** A candidate frame: raw RGB to measure, and the JPEG it would make as a thumbnail (ffmpeg's encoder). */
export interface CandidateFrame {
  pixels: Buffer;
  jpeg: Buffer;
}

/**
 * Frames for scoring, from the same decoding pass: ffmpeg splits each decoded picture in two, one branch scaled for
 * detection, the other keeping a frame every `everyMs` scaled to `width` × `height` (no second decode, no seek), raw
 * and as a JPEG. ffmpeg's JPEG encoder costs next to nothing there; sharp, encoding the same frames in the worker,
 * cost ~2 ms of CPU each (0.4 CPU-s a minute of video) and main-thread time besides.
 * The frame kept is the first at or after each multiple of `everyMs` on the frames' timeline: which frames are kept
 * depends on the video alone, not on where a decoder started (a resume, a stretch of a parallel pass).
 */
export interface CandidateFrames {
  width: number;
  height: number;
  everyMs: number;
}

export interface DecodeOptions {
  width: number;
  height: number;
  /** Start at the first frame at or after this time (`firstIndex` is its ordinal). */
  fromMs?: number;
  /** The stream's first timestamp: frame times are reported from it, so they start at 0. */
  startMs?: number;
  firstIndex?: number;
  signal?: AbortSignal;
  candidates?: CandidateFrames | undefined;
  /** The video's coded width (from the probe): decides the decoder's shortcuts (see detectionDecoderOptions). */
  sourceWidth?: number | undefined;
  /** The options before the input (allowed protocols and formats); local files only unless a URL's are given. */
  inputOptions?: string[] | undefined;
  /**
   * The time of the frame before the first one wanted, when decoding starts mid-video: the first frame is then a
   * candidate only if a multiple of `everyMs` lies after that frame (ffmpeg, starting afresh, cannot tell).
   */
  previousMs?: number | undefined;
  /**
   * Decoding starts at the last keyframe at or before `fromMs` (where the container's index lands a seek), and the
   * frames come from the first one the decoder marks as a keyframe on: pictures shown before it but decoded after
   * it (an open GOP's leading B-frames) are the previous stretch's (see parallel-frames.ts).
   */
  fromKeyframe?: boolean | undefined;
  /** Threads of ffmpeg's decoder and filters; ffmpeg's own choice when absent. */
  threads?: number | undefined;
  /** Decoded frames held for the reader before ffmpeg is made to wait (64 when absent). */
  aheadFrames?: number | undefined;
}

export class DecodeError extends Error {}

/** ffmpeg's JPEG quantiser scale for candidates (2 best … 31): 3 gives ~9 kB at 320×180, within 2 of 255 of the frame on average. */
const CANDIDATE_JPEG_QSCALE = 3;

/**
 * The filter that logs each frame's time (`pts_time`). Without checksums: by default showinfo also sums every byte
 * of the frame twice (an Adler-32 and a mean and deviation per plane) for fields nobody reads, 2.8 % of the whole
 * detection pass's instructions on 720p (valgrind, 5 s of the benchmark's video: 2,030 M against 2,089 M). The option
 * is in every ffmpeg we meet (Debian's 5.1, the npm static 2018 build).
 */
const showTime = (instance?: string) => `showinfo${instance ? `@${instance}` : ''}=checksum=0`;

/** Whether a frame at `ms` is the first at or after a multiple of `everyMs` when the frame before it was at `previousMs`. */
export const startsCandidateStep = (ms: number, previousMs: number, everyMs: number): boolean =>
  Math.floor(ms / everyMs) > Math.floor(previousMs / everyMs);

/**
 * Decoder options of the detection pass for a video `sourceWidth` pixels wide. `-skip_loop_filter all` skips
 * H.264's (HEVC's, VP8's...) deblocking, a fifth of the decoding time (300 s of 720p: 15.2 → 12.4 s wall, ffmpeg 5.1
 * on 2 cores). Only where its 8-pixel block edges fall below a pixel at the analysis size and vanish in a
 * thumbnail's downscale (a source at least ten times the analysis width): on smaller video the edges would show in
 * the frames compared, and decoding it is cheap anyway. The bench's floor decodes with the same options.
 */
export function detectionDecoderOptions(sourceWidth: number | undefined, analysisWidth: number): string[] {
  return sourceWidth !== undefined && sourceWidth >= 10 * analysisWidth ? ['-skip_loop_filter', 'all'] : [];
}

/**
 * The filter that shrinks a decoded picture to the analysis size: a cheap two-tap step down to twice the size, then
 * an area average. The area filter alone on a 720p picture costs as much as a quarter of its decoding (300 s of
 * 720p: 10.8 s against 8.1 s for decoding alone); two stages, 9.5 s, and the last stage still averages every pixel
 * it keeps, so the frames stay free of aliasing flicker. A picture already that small is left to the area step.
 */
export function analysisScaleFilter(width: number, height: number): string {
  const halfway = `scale='min(iw,${2 * width})':'min(ih,${2 * height})':flags=fast_bilinear`;
  return `${halfway},scale=${width}:${height}:flags=area`;
}

/**
 * The filter that shrinks a decoded picture to a thumbnail (a scoring candidate): an area average. On 720p it costs
 * a third of what swscale's default bicubic did for the same picture (valgrind's instruction count for 5 s of the
 * benchmark's 720p video: the whole pass 2,089 M instructions against 2,167 M, the thumbnails' scale 26 M against
 * 96 M), and the two thumbnails differ by 43 dB PSNR, below what the eye or the JPEG encoder keep.
 */
export function thumbnailScaleFilter(width: number, height: number): string {
  return `scale=${width}:${height}:flags=area,setsar=1`;
}

/**
 * Cuts a byte stream into fixed-size frames without copying where it can: a frame inside one chunk is a view of it;
 * only a frame that straddles chunks is copied, into a buffer of its own. (Joining each chunk to the partial frame
 * before it, as before, copied every chunk once more: every buffer the worker's main thread allocates brings its next
 * full garbage collection closer.)
 */
export class FrameCutter {
  private pending: Buffer | undefined;
  private filled = 0;

  constructor(private readonly frameBytes: number) {}

  /** The frames completed by `chunk`, in order. */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let at = 0;
    if (this.pending) {
      const take = Math.min(this.frameBytes - this.filled, chunk.length);
      chunk.copy(this.pending, this.filled, 0, take);
      this.filled += take;
      at = take;
      if (this.filled < this.frameBytes) return frames;
      frames.push(this.pending);
      this.pending = undefined;
    }
    for (; at + this.frameBytes <= chunk.length; at += this.frameBytes) {
      frames.push(chunk.subarray(at, at + this.frameBytes));
    }
    if (at < chunk.length) {
      this.pending = Buffer.allocUnsafe(this.frameBytes);
      this.filled = chunk.copy(this.pending, 0, at);
    }
    return frames;
  }
}

/**
 * Cuts a stream of JPEG images (ffmpeg's `image2pipe`) into images: the segments are walked by their lengths up to the
 * scan, whose data ends at the first marker (0xFF not followed by 0x00 or a restart code), until the end-of-image
 * marker. A byte pair 0xFF 0xD9 inside a table is not taken for the end.
 */
export class JpegCutter {
  private pending: Buffer = Buffer.alloc(0);

  /** The images completed by `chunk`, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const images: Buffer[] = [];
    for (let end = jpegEnd(this.pending); end > 0; end = jpegEnd(this.pending)) {
      images.push(Buffer.from(this.pending.subarray(0, end)));
      this.pending = this.pending.subarray(end);
    }
    return images;
  }
}

/** The length of the JPEG image at the start of `data`, or 0 while it is incomplete. */
function jpegEnd(data: Buffer): number {
  if (data.length < 4) return 0;
  if (data[0] !== 0xff || data[1] !== 0xd8) throw new DecodeError('ffmpeg wrote a candidate that is not a JPEG');
  let at = 2;
  while (at + 2 <= data.length) {
    if (data[at] !== 0xff) throw new DecodeError('ffmpeg wrote a malformed JPEG candidate');
    const marker = data[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd9) return at + 2;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    if (at + 4 > data.length) return 0;
    const segmentEnd = at + 2 + data.readUInt16BE(at + 2);
    if (marker !== 0xda) {
      at = segmentEnd;
      continue;
    }
    // Entropy-coded data: 0xFF 0x00 is a stuffed byte, 0xFF 0xD0–0xD7 a restart; any other marker ends it.
    at = segmentEnd;
    while (at + 1 < data.length) {
      const next = data[at + 1]!;
      if (data[at] === 0xff && next !== 0x00 && !(next >= 0xd0 && next <= 0xd7)) break;
      at += 1;
    }
    if (at + 1 >= data.length) return 0;
  }
  return 0;
}

/** Streams the frames of `file` (a path, or a URL with its `inputOptions`); ends when the video does, throws a {@link DecodeError} if ffmpeg fails. */
export async function* decodeFrames(file: string, options: DecodeOptions): AsyncGenerator<DecodedFrame> {
  const frameBytes = options.width * options.height * 3;
  const fromMs = options.fromMs ?? 0;
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info'];
  // Keep the original timestamps (the same whether or not we seek); seek a little before the frame wanted
  // (floating point) and drop what is early. A keyframe is sought without ffmpeg's accurate seek, just past the
  // time: the demuxer lands on the last keyframe at or before it, and nothing decoded from there is dropped.
  if (options.fromKeyframe) args.push('-ss', String((fromMs + 0.5) / 1000), '-noaccurate_seek');
  else if (fromMs > 0) args.push('-ss', String(Math.max(0, fromMs - 1) / 1000));
  args.push('-copyts');
  if (options.threads !== undefined) {
    const threads = String(options.threads);
    args.push('-threads', threads, '-filter_threads', threads, '-filter_complex_threads', threads);
  }
  const aheadFrames = options.aheadFrames ?? 64;
  const startMs = options.startMs ?? 0;
  const decoder = detectionDecoderOptions(options.sourceWidth, options.width);
  args.push(...(options.inputOptions ?? SAFE_INPUT_OPTIONS), ...decoder, '-i', file);
  const shrink = analysisScaleFilter(options.width, options.height);
  const wanted = options.candidates;
  if (wanted) {
    // One decode, two outputs: every frame small for detection (pipe 1), a frame every `everyMs` for scoring (pipe 3).
    // Frame times in whole ms on the frames' timeline, as reported below, so that startsCandidateStep agrees.
    const bucket = (t: string) => `floor((round(${t}*1000)-${startMs})/${wanted.everyMs})`;
    const graph =
      `[0:v:0]split=2[d][c];[d]${shrink},${showTime('det')}[dout];` +
      `[c]select='isnan(prev_t)+gt(${bucket('t')}\\,${bucket('prev_t')})',` +
      `${thumbnailScaleFilter(wanted.width, wanted.height)},${showTime('cand')},split=2[cout][cjpeg]`;
    args.push('-filter_complex', graph, '-vsync', '0');
    args.push('-map', '[dout]', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    args.push('-map', '[cout]', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:3');
    args.push('-map', '[cjpeg]', '-c:v', 'mjpeg', '-q:v', String(CANDIDATE_JPEG_QSCALE), '-f', 'image2pipe', 'pipe:4');
  } else {
    args.push('-map', '0:v:0', '-an', '-sn', '-vsync', '0');
    args.push('-vf', `${shrink},${showTime()}`);
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  }
  // Pipes 3 and 4 carry the candidates, raw and as JPEGs (unused without them).
  const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  const [, stdout, stderr] = child.stdio as unknown as [null, Readable, Readable];
  const kill = () => child.kill('SIGKILL');
  options.signal?.addEventListener('abort', kill, { once: true });

  const times: number[] = [];
  /** Whether each detection frame in `times` is a keyframe (showinfo's `iskey`). */
  const keys: boolean[] = [];
  const frames: Buffer[] = [];
  const stderrTail: string[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  // Candidate frames and their times, paired as both arrive, in order.
  const candidateBytes = wanted ? wanted.width * wanted.height * 3 : 0;
  const candidateTimes: number[] = [];
  const candidateFrames: Buffer[] = [];
  const candidateJpegs: Buffer[] = [];
  const candidates: ({ ms: number } & CandidateFrame)[] = [];
  let candidatesEnded = !wanted;
  let waitingForCandidate = false;
  const pairCandidates = () => {
    while (candidateTimes.length > 0 && candidateFrames.length > 0 && candidateJpegs.length > 0) {
      candidates.push({ ms: candidateTimes.shift()!, pixels: candidateFrames.shift()!, jpeg: candidateJpegs.shift()! });
    }
  };

  createInterface({ input: stderr }).on('line', (line) => {
    const shown = wanted
      ? /^\[showinfo@(det|cand) @[^\]]*\] n:.*\bpts_time:(-?[\d.]+)/.exec(line)
      : /Parsed_showinfo.*\bpts_time:(-?[\d.]+)/.exec(line);
    const time = shown?.at(-1);
    if (time !== undefined) {
      const ms = Math.round(Number(time) * 1000) - startMs;
      if (shown?.[1] === 'cand') candidateTimes.push(ms);
      else {
        times.push(ms);
        keys.push(/\biskey:1\b/.test(line));
      }
      notify();
    } else {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    }
  });
  const detectionFrames = new FrameCutter(frameBytes);
  stdout.on('data', (chunk: Buffer) => {
    for (const frame of detectionFrames.push(chunk)) frames.push(frame);
    // The analysis catches up before ffmpeg decodes further (not while it waits for a candidate ffmpeg has yet to write).
    if (frames.length > aheadFrames && !waitingForCandidate) stdout.pause();
    notify();
  });
  const candidateOutput = wanted ? (child.stdio[3] as Readable | null) : undefined;
  const jpegOutput = wanted ? (child.stdio[4] as Readable | null) : undefined;
  if (candidateOutput && jpegOutput) {
    // Never paused: a frame every `everyMs` is little, and ffmpeg must not block on it while detection waits.
    const cut = new FrameCutter(candidateBytes);
    candidateOutput.on('data', (chunk: Buffer) => {
      for (const frame of cut.push(chunk)) candidateFrames.push(frame);
      notify();
    });
    const images = new JpegCutter();
    jpegOutput.on('data', (chunk: Buffer) => {
      try {
        for (const jpeg of images.push(chunk)) candidateJpegs.push(jpeg);
      } catch (err) {
        failure ??= err as Error;
        kill();
      }
      notify();
    });
    let open = 2;
    const closed = () => {
      candidatesEnded = --open === 0;
      notify();
    };
    candidateOutput.on('close', closed);
    jpegOutput.on('close', closed);
  }
  child.on('close', (code, signal) => {
    ended = true;
    candidatesEnded = true;
    if (code !== 0 && !options.signal?.aborted) {
      const detail = stderrTail.filter((l) => !/^\s*(Stream|Input|Output|Duration|Metadata|  )/.test(l)).at(-1);
      failure ??= new DecodeError(`ffmpeg stopped (${signal ?? `exit ${code}`}): ${detail ?? 'no message'}`);
    }
    notify();
  });
  child.on('error', (err) => {
    failure = err;
    ended = true;
    notify();
  });

  const firstIndex = options.firstIndex ?? 0;
  let index = firstIndex;
  let keyed = false;
  try {
    for (;;) {
      if (frames.length > 0 && (times.length > 0 || ended)) {
        let candidate: CandidateFrame | undefined;
        if (wanted) {
          // This frame's candidate (same time) or a later one must be known first: else wait for ffmpeg.
          const ms = times[0] ?? fromMs;
          pairCandidates();
          while (candidates.length > 0 && candidates[0]!.ms < ms) candidates.shift();
          if (candidates.length === 0 && !candidatesEnded && !ended) {
            waitingForCandidate = true;
            stdout.resume(); // detection frames queue up meanwhile: ffmpeg must not block on them
            await new Promise<void>((resolve) => (wake = resolve));
            waitingForCandidate = false;
            continue;
          }
          if (candidates[0]?.ms === ms) {
            const kept = candidates.shift()!;
            candidate = { pixels: kept.pixels, jpeg: kept.jpeg };
          }
        }
        const pixels = frames.shift()!;
        const ms = times.shift() ?? (times.length ? times[0]! : fromMs);
        const key = keys.shift() ?? false;
        if (frames.length < 16) stdout.resume();
        if (options.fromKeyframe) {
          if (!keyed && !key) continue; // shown before the keyframe: the previous stretch's
          keyed = true;
        } else if (ms < fromMs) continue; // before the resume point (the seek lands a frame early)
        // ffmpeg keeps the first frame it decodes; it is a candidate only if the frame before was in another step.
        const previousMs = index === firstIndex ? options.previousMs : undefined;
        if (candidate && wanted && previousMs !== undefined && !startsCandidateStep(ms, previousMs, wanted.everyMs)) {
          candidate = undefined;
        }
        yield { index: index++, ms, pixels, ...(candidate && { candidate }) };
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    if (failure) throw failure;
  } finally {
    options.signal?.removeEventListener('abort', kill);
    if (child.exitCode === null && child.signalCode === null) kill();
  }
}
