/**
 * Finding ffmpeg and ffprobe: FFMPEG_PATH / FFPROBE_PATH, else on PATH, else the static builds that ship inside the
 * `@ffmpeg-installer` / `@ffprobe-installer` npm packages (nothing is downloaded at run time).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

// The installer packages have no types and are optional: load them only when nothing else is found.
const loadOptional = createRequire(__filename);

function onPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() || undefined : undefined;
}

function packaged(name: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe'): string | undefined {
  try {
    return (loadOptional(name) as { path: string }).path;
  } catch {
    return undefined;
  }
}

const cache = new Map<string, string>();

function locate(tool: 'ffmpeg' | 'ffprobe'): string {
  const cached = cache.get(tool);
  if (cached) return cached;
  const env = tool === 'ffmpeg' ? process.env.FFMPEG_PATH : process.env.FFPROBE_PATH;
  const found =
    env || onPath(tool) || packaged(tool === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe');
  if (!found) {
    throw new Error(
      `No ${tool} found: set ${tool.toUpperCase()}_PATH, put ${tool} on PATH, or run npm ci (it installs a static build).`,
    );
  }
  cache.set(tool, found);
  return found;
}

export const ffmpegPath = () => locate('ffmpeg');
export const ffprobePath = () => locate('ffprobe');

/**
 * The containers video jobs read. A playlist (HLS `.m3u8`), a concat list or an image sequence is a text file
 * that makes ffmpeg open other files, anywhere on the machine, so a video inside the data dir could read videos
 * outside it: ffmpeg and ffprobe refuse every demuxer not listed here, and every protocol but local files.
 */
export const VIDEO_DEMUXERS = [
  'mov,mp4,m4a,3gp,3g2,mj2',
  'matroska,webm',
  'mpegts',
  'avi',
  'flv',
  'ogg',
  'mpeg',
  'mpegvideo',
  'mxf',
  'asf',
  'h264',
  'hevc',
  'm4v',
  'dv',
  'nut',
  'yuv4mpegpipe',
].join(',');

/** Input options that go before every video input (`-i` for ffmpeg, the file for ffprobe). */
export const SAFE_INPUT_OPTIONS = ['-protocol_whitelist', 'file', '-format_whitelist', VIDEO_DEMUXERS];

/** The demuxer ffmpeg refused when a file is a playlist or another format it may not read, else undefined. */
export function refusedFormat(stderr: string): string | undefined {
  return /\[(\w+) @ [^\]]*\] Format not on whitelist/.exec(stderr)?.[1];
}
