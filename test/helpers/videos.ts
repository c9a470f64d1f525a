/**
 * Test videos made with ffmpeg: segments of different sources joined at known frames, so a test knows exactly
 * where every cut and fade is.
 */
import { execFileSync } from 'node:child_process';
import { ffmpegPath } from '../../src/activities/video/ffmpeg';

export interface VideoSegment {
  /** An ffmpeg lavfi source with its filters, at any size (it is scaled to the video's size). */
  source: string;
  seconds: number;
  /** How the segment starts: a hard cut (default), or out of black. */
  kind?: 'cut' | 'fade-in' | 'black';
}

export interface KnownBoundary {
  frame: number;
  kind: 'cut' | 'fade-out' | 'fade-in';
}

/** Writes the video and returns where its boundaries are. */
export function makeVideo(
  file: string,
  segments: VideoSegment[],
  options: { width?: number; height?: number; fps?: number; preset?: string; keyframeSeconds?: number } = {},
): { boundaries: KnownBoundary[]; frames: number } {
  // ultrafast has no B-frames; veryfast (what cameras and sites give, roughly) reorders frames around them.
  const { width = 320, height = 180, fps = 25, preset = 'ultrafast', keyframeSeconds } = options;
  const args = ['-y', '-v', 'error'];
  for (const segment of segments) args.push('-f', 'lavfi', '-t', String(segment.seconds), '-i', segment.source);
  const chains = segments.map(
    (_, i) => `[${i}:v]scale=${width}:${height},fps=${fps},format=yuv420p,setsar=1,settb=1/${fps}[v${i}]`,
  );
  const graph = `${chains.join(';')};${segments.map((_, i) => `[v${i}]`).join('')}concat=n=${segments.length}:v=1[out]`;
  args.push(
    '-filter_complex',
    graph,
    '-map',
    '[out]',
    '-c:v',
    'libx264',
    '-preset',
    preset,
    '-g',
    String(fps * (keyframeSeconds ?? 2)),
  );
  // Keyframes exactly that far apart (none at the cuts), as in long-GOP footage.
  if (keyframeSeconds) args.push('-keyint_min', String(fps * keyframeSeconds), '-sc_threshold', '0');
  args.push('-pix_fmt', 'yuv420p', file);
  execFileSync(ffmpegPath(), args, { stdio: 'inherit' });

  const boundaries: KnownBoundary[] = [];
  let frame = 0;
  segments.forEach((segment, i) => {
    if (i > 0) {
      const kind = segment.kind === 'black' ? 'fade-out' : segment.kind === 'fade-in' ? 'fade-in' : 'cut';
      boundaries.push({ frame, kind });
    }
    frame += Math.round(segment.seconds * fps);
  });
  return { boundaries, frames: frame };
}

/** The sources the tests join: still, moving, zooming and panning footage. */
export const SOURCES = {
  bars: 'smptebars=size=320x180:rate=25',
  hdbars: 'smptehdbars=size=320x180:rate=25',
  moving: 'testsrc2=size=320x180:rate=25',
  zoom: 'mandelbrot=size=320x180:rate=25',
  pan: "testsrc=size=640x180:rate=25,crop=320:180:'t*100':0",
  tinted: 'testsrc2=size=320x180:rate=25,hue=h=200',
  black: 'color=c=black:size=320x180:rate=25',
};

/**
 * 26 s at `fps` with B-frames and a keyframe every 5 s, none at the cuts (at 4, 7, 12, 15.5 and 22 s): long-GOP
 * footage, where decoding in stretches must start at keyframes and hand the frames on in order.
 */
export function makeLongGopVideo(file: string, fps: number): ReturnType<typeof makeVideo> {
  const cycle = [SOURCES.moving, SOURCES.bars, SOURCES.zoom, SOURCES.pan, SOURCES.tinted, SOURCES.hdbars];
  const seconds = [4, 3, 5, 3.5, 6.5, 4];
  return makeVideo(
    file,
    seconds.map((s, i) => ({ source: cycle[i]!, seconds: s })),
    { fps, preset: 'veryfast', keyframeSeconds: 5 },
  );
}
