/**
 * Where ffmpeg and ffprobe read a video, and where an analysis keeps what only its worker needs.
 *
 * A video is named by a location (`clips/a.mp4`, `s3://media/clips/a.mp4`). A data-dir file is read by its checked
 * path, with ffmpeg allowed local files only. An object is read through a presigned GET URL (`places.ts`
 * `readableSource`: the object is checked to exist first), with ffmpeg allowed HTTP(S) and nothing else, so a
 * video in a bucket is streamed, never copied whole onto the worker. Messages name the video as the user wrote it;
 * the URL (it carries a signature) never appears in one.
 *
 * The scoring candidates of an analysis (candidates.ts) are the worker's own intermediate: beside the thumbnails
 * when the output is in the data dir, in the worker's scratch folder when it is in a bucket (nothing but results goes
 * into a bucket). A worker that does not have them scores by seeking instead.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { displayPath, resolveDataPath } from '../files';
import { canonicalLocation, readableSource, SCRATCH_PREFIX } from '../places';
import { isS3Location } from '../../storage/s3-location';
import { VIDEO_DEMUXERS } from './ffmpeg';
import { candidatesFileIn } from './candidates';

/** A video as ffmpeg reads it. */
export interface VideoSource {
  /** What ffmpeg opens: a checked data-dir path, or a presigned URL. */
  input: string;
  /** The video as users see it: a data-dir path, or its `s3://` location. */
  name: string;
  /** True when `input` is a URL. */
  isUrl: boolean;
  /** Options that go before the input (`-i` for ffmpeg, the file for ffprobe): the allowed protocols and formats. */
  inputOptions: string[];
  /** `text` (ffmpeg's output, an error) with the input replaced by the video's name. */
  scrub(text: string): string;
}

/** ffmpeg's HTTP options for a presigned URL: reconnect after a dropped connection rather than end the video early. */
const HTTP_INPUT_OPTIONS = ['-reconnect', '1', '-reconnect_on_network_error', '1', '-reconnect_delay_max', '10'];

/** The input options for a source: local files only, or HTTP (or HTTPS over TLS) for a URL. Never anything else. */
export function inputOptionsFor(input: string, isUrl: boolean): string[] {
  if (!isUrl) return ['-protocol_whitelist', 'file', '-format_whitelist', VIDEO_DEMUXERS];
  const protocols = input.startsWith('https:') ? 'https,tls,tcp' : 'http,tcp';
  return ['-protocol_whitelist', protocols, ...HTTP_INPUT_OPTIONS, '-format_whitelist', VIDEO_DEMUXERS];
}

/** The video at `location` as ffmpeg reads it (fails for good, naming the location, when it is refused or missing). */
export async function videoSource(location: string): Promise<VideoSource> {
  const { source, isUrl } = await readableSource(location, 'video');
  const name = isUrl ? canonicalLocation(location) : displayPath(source);
  return {
    input: source,
    name,
    isUrl,
    inputOptions: inputOptionsFor(source, isUrl),
    // Any URL at all is replaced: ffmpeg prints its own forms of it (redirects, a query string cut short).
    scrub: (text) =>
      isUrl
        ? text
            .split(source)
            .join(name)
            .replace(/https?:\/\/\S+/g, name)
        : text,
  };
}

/**
 * The video at `location` as users see it and as a fingerprint records it: a data-dir path by where it really is
 * (checked), an object by its canonical `s3://` location.
 */
export function videoName(location: string): string {
  return isS3Location(location) ? canonicalLocation(location) : displayPath(resolveDataPath(location, 'video'));
}

/** The workflow run an activity works for (what scratch candidates belong to). */
export interface WorkflowRun {
  workflowId: string;
  runId: string;
}

/**
 * Where an analysis writing to `outputDir` keeps its scoring candidates, and whether that is the worker's scratch.
 * In scratch, one folder per output location and workflow run (`run`: by default the current activity's): its next
 * activity or attempt on this worker finds it again, and what another run left here (a worker that died, another
 * video analysed into the same prefix) is never taken for its own.
 */
export function candidatesLocation(
  outputDir: string,
  run: WorkflowRun | undefined = currentRun(),
): { file: string; scratch: boolean } {
  if (!isS3Location(outputDir)) {
    return { file: candidatesFileIn(resolveDataPath(outputDir, 'output dir')), scratch: false };
  }
  const owner = JSON.stringify([canonicalLocation(outputDir), run?.workflowId ?? '', run?.runId ?? '']);
  const key = createHash('sha256').update(owner).digest('hex').slice(0, 24);
  return { file: path.join(os.tmpdir(), `${SCRATCH_PREFIX}cuts-${key}`, 'candidates.bin'), scratch: true };
}

/** The workflow run of the current activity, or undefined outside one. */
function currentRun(): WorkflowRun | undefined {
  try {
    return Context.current().info.workflowExecution;
  } catch {
    return undefined;
  }
}
