/**
 * Decoded frames from ffmpeg, downscaled and raw (RGB), with their timestamps, as an async stream: ffmpeg does
 * the decoding (any codec it knows), we do the analysis. Timestamps come from ffmpeg's `showinfo` filter, so
 * variable-frame-rate video is placed by time, not by frame count. Aborting kills ffmpeg at once (no orphans).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SAFE_INPUT_OPTIONS, ffmpegPath } from './ffmpeg';

export interface DecodedFrame {
  /** Ordinal of the frame in the video (0-based). */
  index: number;
  ms: number;
  pixels: Buffer;
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
}

export class DecodeError extends Error {}

/** Streams the frames of `file`; ends when the video does, throws a {@link DecodeError} if ffmpeg fails. */
export async function* decodeFrames(file: string, options: DecodeOptions): AsyncGenerator<DecodedFrame> {
  const frameBytes = options.width * options.height * 3;
  const fromMs = options.fromMs ?? 0;
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info'];
  // Keep the original timestamps (the same whether or not we seek); seek a little before the frame wanted
  // (floating point) and drop what is early.
  if (fromMs > 0) args.push('-ss', String(Math.max(0, fromMs - 1) / 1000));
  args.push('-copyts');
  const startMs = options.startMs ?? 0;
  args.push(...SAFE_INPUT_OPTIONS, '-i', file, '-map', '0:v:0', '-an', '-sn', '-vsync', '0');
  args.push('-vf', `scale=${options.width}:${options.height}:flags=area,showinfo`);
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  options.signal?.addEventListener('abort', kill, { once: true });

  const times: number[] = [];
  const frames: Buffer[] = [];
  const stderrTail: string[] = [];
  let partial: Buffer = Buffer.alloc(0);
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  createInterface({ input: child.stderr }).on('line', (line) => {
    const time = /Parsed_showinfo.*\bpts_time:(-?[\d.]+)/.exec(line)?.[1];
    if (time !== undefined) {
      times.push(Math.round(Number(time) * 1000) - startMs);
      notify();
    } else {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    }
  });
  child.stdout.on('data', (chunk: Buffer) => {
    partial = partial.length ? Buffer.concat([partial, chunk]) : chunk;
    while (partial.length >= frameBytes) {
      frames.push(partial.subarray(0, frameBytes));
      partial = partial.subarray(frameBytes);
    }
    if (frames.length > 64) child.stdout.pause(); // the analysis catches up before ffmpeg decodes further
    notify();
  });
  child.on('close', (code, signal) => {
    ended = true;
    if (code !== 0 && !options.signal?.aborted) {
      const detail = stderrTail.filter((l) => !/^\s*(Stream|Input|Output|Duration|Metadata|  )/.test(l)).at(-1);
      failure = new DecodeError(`ffmpeg stopped (${signal ?? `exit ${code}`}): ${detail ?? 'no message'}`);
    }
    notify();
  });
  child.on('error', (err) => {
    failure = err;
    ended = true;
    notify();
  });

  let index = options.firstIndex ?? 0;
  try {
    for (;;) {
      if (frames.length > 0 && (times.length > 0 || ended)) {
        const pixels = Buffer.from(frames.shift()!);
        const ms = times.shift() ?? (times.length ? times[0]! : fromMs);
        if (frames.length < 16) child.stdout.resume();
        if (ms < fromMs) continue; // before the resume point (the seek lands a frame early)
        yield { index: index++, ms, pixels };
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
