/**
 * What a video is (duration, frame rate, frame count, size, codec, rotation), from ffprobe, with errors a person
 * understands for files that are missing, empty, not a video, audio only, or broken.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { displayPath } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { assertReadableFile } from '../images/image-errors';
import { SAFE_INPUT_OPTIONS, ffprobePath, refusedFormat } from './ffmpeg';
import { videoSource, type VideoSource } from './video-source';

const run = promisify(execFile);

/** ffmpeg's words for a URL that could not be read for a while (a dropped connection, a server error, a timeout). */
export const NETWORK_TROUBLE =
  /Connection refused|Connection reset|timed out|Server returned 5\d\d|Input\/output error|Network is unreachable/i;

export interface VideoInfo {
  durationMs: number;
  /** Average frame rate (frames per second). */
  fps: number;
  /** Frames in the stream (counted by the container, or estimated from duration × fps). */
  frameCount: number;
  width: number;
  height: number;
  codec: string;
  /** Display rotation in degrees (phones record portrait video as rotated landscape). */
  rotation: number;
  /** True when frame timing varies (the average and nominal rates differ): timestamps, not counts, place cuts. */
  variableFrameRate: boolean;
  /** The first timestamp of the stream (MPEG-TS files start at 1.4 s, for example). */
  startMs: number;
  /**
   * The container's first timestamp (the earliest of its streams): what players show as 0, and what times in
   * results are measured from. Absent in results probed before it was added (their times count from `startMs`).
   */
  timelineStartMs?: number;
  /** Width of a pixel over its height (16/11 for 704×576 shown at 16:9); 1 for square pixels or when unknown. */
  sampleAspectRatio?: number;
  /**
   * ffmpeg's name for the container (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`...): whether seeks land on keyframes
   * (parallel-frames.ts). Absent in results probed before it was added (their pass decodes in one process).
   */
  formatName?: string;
}

/** The width and height the video is shown at: square pixels, turned upright. */
export function displaySize(info: VideoInfo): { width: number; height: number } {
  const width = Math.round(info.width * (info.sampleAspectRatio ?? 1));
  const quarterTurn = info.rotation === 90 || info.rotation === 270;
  return quarterTurn ? { width: info.height, height: width } : { width, height: info.height };
}

/** Thumbnails are this wide, and as high as the video's shape says. */
export const THUMB_WIDTH = 320;

/** The size of a clip's thumbnail: 320 wide, as the video is shown (704×576 at 16:9 gives 320×180), height even. */
export function thumbnailSize(info: VideoInfo): { width: number; height: number } {
  const shown = displaySize(info);
  return { width: THUMB_WIDTH, height: Math.max(2, Math.round((THUMB_WIDTH * shown.height) / shown.width / 2) * 2) };
}

/** A pixel's aspect ratio from ffprobe's sample (or else display) aspect ratio; 1 when neither says. */
function pixelAspect(stream: ProbeStream): number {
  const sar = ratio(stream.sample_aspect_ratio);
  if (sar > 0) return Math.round(sar * 10000) / 10000;
  const dar = ratio(stream.display_aspect_ratio);
  if (dar > 0 && stream.width && stream.height)
    return Math.round(((dar * stream.height) / stream.width) * 10000) / 10000;
  return 1;
}

function ratio(text?: string): number {
  const [num, den] = (text ?? '').split(':').map(Number);
  return num && den && num > 0 && den > 0 ? num / den : 0;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  tags?: { rotate?: string };
  start_time?: string;
  sample_aspect_ratio?: string;
  display_aspect_ratio?: string;
  side_data_list?: { rotation?: number }[];
}

const rate = (text?: string) => {
  const [num, den] = (text ?? '0/1').split('/').map(Number);
  return num && den ? num / den : 0;
};

/** Probes a video: a data-dir file by its checked path, or a {@link VideoSource} (an object through its URL). */
export async function probeVideo(what: string | VideoSource): Promise<VideoInfo> {
  const source: VideoSource =
    typeof what === 'string'
      ? { input: what, name: displayPath(what), isUrl: false, inputOptions: SAFE_INPUT_OPTIONS, scrub: (t) => t }
      : what;
  const { input: file, name } = source;
  if (!source.isUrl) await assertReadableFile(file, 'video');
  let output: string;
  try {
    const args = [
      '-v',
      'error',
      '-print_format',
      'json',
      '-show_streams',
      '-show_format',
      ...source.inputOptions,
      file,
    ];
    output = (await run(ffprobePath(), args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const crash = (err as { signal?: string }).signal;
    if (crash) {
      // The tool failed, not the file (the static ffprobe builds on npm crash on MPEG-TS input, for one).
      throw ApplicationFailure.nonRetryable(
        `ffprobe (${ffprobePath()}) crashed with ${crash} reading ${name}. Install ffmpeg on the system ` +
          '(Debian: apt-get install ffmpeg) or set FFPROBE_PATH to a working ffprobe.',
        'ProbeCrashed',
      );
    }
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    const refused = refusedFormat(stderr);
    if (refused) {
      throw ApplicationFailure.nonRetryable(
        `The video ${name} is a ${refused} file, which video jobs do not read (a playlist or list makes ffmpeg open ` +
          'other files). Give the video itself: MP4, MOV, MKV, WebM, MPEG-TS, AVI and the like.',
        'UnsupportedVideoFormat',
      );
    }
    const reason = source.scrub(stderr.split('\n').at(-1)?.replace(`${file}: `, '') || (err as Error).message);
    if (source.isUrl && NETWORK_TROUBLE.test(stderr)) {
      // The object was there a moment ago (readableSource checked it): the network or the server failed. Retry.
      throw ApplicationFailure.retryable(`ffprobe could not read the video ${name}: ${reason}`, 'VideoReadFailed');
    }
    throw ApplicationFailure.nonRetryable(
      `The video ${name} cannot be read: ${reason} (is it a video file, complete and not corrupt?).`,
      'VideoUnreadable',
    );
  }
  const parsed = JSON.parse(output) as {
    streams?: ProbeStream[];
    format?: { duration?: string; start_time?: string; format_name?: string };
  };
  const video = parsed.streams?.find(
    (s) => s.codec_type === 'video' && s.codec_name !== 'png' && s.codec_name !== 'mjpeg',
  );
  if (!video) {
    const kinds = [...new Set((parsed.streams ?? []).map((s) => s.codec_type))].join(', ') || 'no streams';
    throw ApplicationFailure.nonRetryable(
      `The file ${name} has no video stream (it has: ${kinds}); cut analysis needs a video.`,
      'NoVideoStream',
    );
  }
  const avg = rate(video.avg_frame_rate);
  const nominal = rate(video.r_frame_rate);
  const fps = avg || nominal;
  const durationMs = Math.round(1000 * Number(video.duration ?? parsed.format?.duration ?? 0));
  if (!fps || !durationMs) {
    throw ApplicationFailure.nonRetryable(
      `The video ${name} reports no duration or frame rate; it may be truncated or corrupt.`,
      'VideoUnreadable',
    );
  }
  const rotation = Number(
    video.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0,
  );
  const startMs = Math.round(1000 * Number(video.start_time ?? parsed.format?.start_time ?? 0)) || 0;
  const formatStart = Math.round(1000 * Number(parsed.format?.start_time ?? Number.NaN));
  return {
    durationMs,
    fps: Math.round(fps * 1000) / 1000,
    frameCount: Number(video.nb_frames) || Math.round((durationMs / 1000) * fps),
    width: video.width ?? 0,
    height: video.height ?? 0,
    codec: video.codec_name ?? 'unknown',
    rotation: ((rotation % 360) + 360) % 360,
    variableFrameRate: nominal > 0 && Math.abs(nominal - avg) / nominal > 0.01,
    startMs,
    timelineStartMs: Number.isFinite(formatStart) ? Math.min(formatStart, startMs) : startMs,
    sampleAspectRatio: pixelAspect(video),
    ...(parsed.format?.format_name && { formatName: parsed.format.format_name }),
  };
}

/**
 * Activity: probes a video, in the data dir or a bucket (through a presigned URL), heartbeating while ffprobe reads it
 * (a slow disk, a busy machine, a far bucket).
 */
export async function probeVideoFile(request: { video: string }): Promise<VideoInfo> {
  return heartbeatWhile(
    videoSource(request.video).then((source) => probeVideo(source)),
    () => ({ step: 'probing' }),
  );
}
