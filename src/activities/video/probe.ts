/**
 * What a video is (duration, frame rate, frame count, size, codec, rotation), from ffprobe, with errors a person
 * understands for files that are missing, empty, not a video, audio only, or broken.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { displayPath, resolveDataPath } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { assertReadableFile } from '../images/image-errors';
import { SAFE_INPUT_OPTIONS, ffprobePath, refusedFormat } from './ffmpeg';

const run = promisify(execFile);

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
  /** The first timestamp of the stream (MPEG-TS files start at 1.4 s, for example); times are reported from it. */
  startMs: number;
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
  side_data_list?: { rotation?: number }[];
}

const rate = (text?: string) => {
  const [num, den] = (text ?? '0/1').split('/').map(Number);
  return num && den ? num / den : 0;
};

export async function probeVideo(file: string): Promise<VideoInfo> {
  await assertReadableFile(file, 'video');
  const name = displayPath(file);
  let output: string;
  try {
    const args = ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', ...SAFE_INPUT_OPTIONS, file];
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
    const reason = stderr.split('\n').at(-1)?.replace(`${file}: `, '') || (err as Error).message;
    throw ApplicationFailure.nonRetryable(
      `The video ${name} cannot be read: ${reason} (is it a video file, complete and not corrupt?).`,
      'VideoUnreadable',
    );
  }
  const parsed = JSON.parse(output) as { streams?: ProbeStream[]; format?: { duration?: string; start_time?: string } };
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
  return {
    durationMs,
    fps: Math.round(fps * 1000) / 1000,
    frameCount: Number(video.nb_frames) || Math.round((durationMs / 1000) * fps),
    width: video.width ?? 0,
    height: video.height ?? 0,
    codec: video.codec_name ?? 'unknown',
    rotation: ((rotation % 360) + 360) % 360,
    variableFrameRate: nominal > 0 && Math.abs(nominal - avg) / nominal > 0.01,
    startMs: Math.round(1000 * Number(video.start_time ?? parsed.format?.start_time ?? 0)) || 0,
  };
}

/** Activity: probes a video inside the data dir, heartbeating while ffprobe reads it (a slow disk, a busy machine). */
export async function probeVideoFile(request: { video: string }): Promise<VideoInfo> {
  return heartbeatWhile(probeVideo(resolveDataPath(request.video, 'video')), () => ({ step: 'probing' }));
}
