/**
 * The second pass: builds clips from the detected shots, samples three frames of each (fast seeks, 320 px wide),
 * scores them, writes a thumbnail per clip from its best frame, and writes `cuts.json` next to them. The outputs go
 * to the output place (a data-dir folder or a prefix in a bucket, `places.ts`), each written whole.
 */
import { spawn } from 'node:child_process';
import { ApplicationFailure, Context } from '@temporalio/activity';
import sharp from 'sharp';
import { resolveDataPath } from '../files';
import { placeAt, type Place } from '../places';
import { planClipSpans } from './clips';
import type { Resumable } from '../../shared/job-status';
import { runCpuTask } from '../cpu-pool';
import { heartbeatWhile } from '../heartbeat-while';
import { runResumableLoop } from '../resumable-loop';
import { CandidateStore, removeCandidates, type Candidate } from './candidates';
import { motionFromChange, visualScore, type ClipComponents, type FrameQuality } from './clip-quality';
import { framesAnalyzedOf, type DetectedShots } from './detect-shots';
import { ffmpegPath } from './ffmpeg';
import { thumbnailScaleFilter } from './frames';
import { NETWORK_TROUBLE, THUMB_WIDTH, thumbnailSize, type VideoInfo } from './probe';
import { candidatesLocation, videoName, videoSource, type VideoSource } from './video-source';

export interface AnalyzeClipsRequest {
  video: string;
  outputDir: string;
  info: VideoInfo;
  shots: DetectedShots;
  maxClipSeconds: number;
  minClipSeconds: number;
}

export interface ClipResult {
  startMs: number;
  endMs: number;
  startFrame: number;
  /** Last frame of the clip (inclusive). */
  endFrame: number;
  visualScore: number;
  components: ClipComponents;
  thumbnail: string;
}

export interface CutAnalysis extends Pick<VideoInfo, 'durationMs' | 'fps' | 'width' | 'height' | 'codec' | 'rotation'> {
  video: string;
  /** Set when the analysis was cancelled: only the video up to `analyzedMs` was searched for boundaries. */
  partial?: { analyzedMs: number; reason: 'cancelled' };
  clipsCreated: number;
  /** Frames decoded (the container's own count can be off). */
  frameCount: number;
  cutFrames: number[];
  cutMs: number[];
  boundaries: DetectedShots['boundaries'];
  clips: ClipResult[];
  results: string;
}

/**
 * The frames at `times` (ms), decoded and scaled to `width` × `height` RGB, from one ffmpeg run (starting ffmpeg
 * costs more than seeking: a dynamically linked build takes a fifth of a second). Times with no frame are left out.
 */
function grabFrames(source: VideoSource, times: number[], width: number, height: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const args = ['-nostdin', '-v', 'error'];
    for (const ms of times) args.push('-ss', String(ms / 1000), ...source.inputOptions, '-i', source.input);
    const chains = times.map((_, i) => `[${i}:v:0]trim=end_frame=1,${thumbnailScaleFilter(width, height)}[f${i}]`);
    const joined = `${times.map((_, i) => `[f${i}]`).join('')}concat=n=${times.length}:v=1:a=0[out]`;
    args.push('-filter_complex', `${chains.join(';')};${joined}`, '-map', '[out]');
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const all = Buffer.concat(chunks);
      const size = width * height * 3;
      const frames = Array.from({ length: Math.floor(all.length / size) }, (_, i) =>
        all.subarray(i * size, (i + 1) * size),
      );
      if (frames.length > 0) resolve(frames);
      else
        reject(new Error(`no frames at ${times.join(', ')} ms: ${source.scrub(stderr.trim()) || 'nothing decoded'}`));
    });
  });
}

/** The clips of the detected shots and the size of their thumbnails. */
function planClips(request: AnalyzeClipsRequest) {
  const { info, shots } = request;
  const clips = planClipSpans(shots, info, request);
  // Thumbnails as the video is shown: upright, and with square pixels (704×576 at 16:9 gives 320×180).
  const thumbHeight = thumbnailSize(info).height;
  return { clips, thumbHeight };
}

type PlannedClip = ReturnType<typeof planClips>['clips'][number];

/** Scores clip `i` from three sampled frames and writes its thumbnail from the best one. */
async function scoreClip(
  video: () => Promise<VideoSource>,
  output: Place,
  clip: PlannedClip,
  i: number,
  thumbHeight: number,
) {
  const span = clip.endMs - clip.startMs;
  const times = [0.2, 0.5, 0.8].map((at) => clip.startMs + Math.round(span * at));
  const source = await video();
  const frames = await grabFrames(source, times, THUMB_WIDTH, thumbHeight).catch((err: Error) => {
    // A clip whose frames cannot be decoded gets no thumbnail; a bucket that could not be reached is retried.
    if (source.isUrl && NETWORK_TROUBLE.test(err.message)) {
      throw ApplicationFailure.retryable(`Reading the video ${source.name} failed: ${err.message}`, 'VideoReadFailed');
    }
    return [] as Buffer[];
  });
  const qualities = await runCpuTask('frameQualities', { frames, width: THUMB_WIDTH, height: thumbHeight });
  const { components, best } = scoreSamples(
    clip,
    frames.map((frame, k) => ({ frame, quality: qualities[k]! })),
  );
  const thumbnail = thumbnailName(i);
  if (best) {
    const jpeg = await sharp(best.frame, { raw: { width: THUMB_WIDTH, height: thumbHeight, channels: 3 } })
      .jpeg({ quality: 82 })
      .toBuffer();
    await output.write(thumbnail, jpeg, 'thumbnail');
  }
  return clipResult(clip, components, best ? output.locate(thumbnail) : '');
}

/**
 * A clip's components from its sampled frames (the mean of each quality, 0 without samples, and the motion of its
 * shot), and the sample whose sharpness × exposure is best: the thumbnail's frame. The same for both scorers.
 */
function scoreSamples<S extends { quality: FrameQuality }>(
  clip: PlannedClip,
  samples: S[],
): { components: ClipComponents; best: S | undefined } {
  const mean = (key: keyof FrameQuality) =>
    samples.length ? Math.round((1000 * samples.reduce((s, x) => s + x.quality[key], 0)) / samples.length) / 1000 : 0;
  const components: ClipComponents = {
    sharpness: mean('sharpness'),
    exposure: mean('exposure'),
    contrast: mean('contrast'),
    colorfulness: mean('colorfulness'),
    motion: motionFromChange(clip.change),
  };
  const best = samples.reduce<S | undefined>(
    (a, b) => (!a || b.quality.sharpness * b.quality.exposure > a.quality.sharpness * a.quality.exposure ? b : a),
    undefined,
  );
  return { components, best };
}

/** Where clip `i`'s thumbnail goes, in the output place. */
function thumbnailName(i: number): string {
  return `thumbnails/clip-${String(i + 1).padStart(3, '0')}.jpg`;
}

/** A scored clip as `cuts.json` lists it (`endFrame` inclusive). */
function clipResult(clip: PlannedClip, components: ClipComponents, thumbnail: string): ClipResult {
  return {
    startMs: clip.startMs,
    endMs: clip.endMs,
    startFrame: clip.startFrame,
    endFrame: clip.endFrame - 1,
    visualScore: visualScore(components),
    components,
    thumbnail,
  };
}

/** The candidates in [startMs, endMs), from an index sorted by time. */
function candidatesWithin(index: Candidate[], startMs: number, endMs: number): Candidate[] {
  let low = 0;
  let high = index.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (index[middle]!.ms < startMs) low = middle + 1;
    else high = middle;
  }
  const inside: Candidate[] = [];
  for (let i = low; i < index.length && index[i]!.ms < endMs; i++) inside.push(index[i]!);
  return inside;
}

/**
 * Scores clip `i` from the candidates the detection pass kept (no decoding): the ones nearest 20 %, 50 % and 80 %
 * of the clip, as the seeking scorer samples; the best one's JPEG becomes the thumbnail. Undefined when the clip has
 * no candidate (shorter than their spacing, or the file is gone): the caller seeks instead.
 */
async function scoreClipFromCandidates(store: CandidateStore, output: Place, clip: PlannedClip, i: number) {
  const inside = candidatesWithin(store.index, clip.startMs, clip.endMs);
  if (inside.length === 0) return undefined;
  const span = clip.endMs - clip.startMs;
  const nearest = (ms: number) =>
    inside.reduce((a, b) => (Math.abs(b.ms - ms) < Math.abs(a.ms - ms) ? b : a), inside[0]!);
  const samples = [...new Set([0.2, 0.5, 0.8].map((at) => nearest(clip.startMs + span * at)))];
  const { components, best } = scoreSamples(clip, samples);
  const thumbnail = thumbnailName(i);
  await output.write(thumbnail, await store.jpeg(best!), 'thumbnail');
  return clipResult(clip, components, output.locate(thumbnail));
}

/** Writes `cuts.json` for `boundaries` and `clips` and returns what it wrote. */
async function writeCuts(
  request: Pick<AnalyzeClipsRequest, 'video' | 'outputDir' | 'info'>,
  found: { boundaries: DetectedShots['boundaries']; framesAnalyzed: number; clips: ClipResult[] },
  partial?: CutAnalysis['partial'],
): Promise<CutAnalysis> {
  const output = placeAt(request.outputDir, 'output dir');
  const { info } = request;
  const cuts = found.boundaries;
  const analysis: CutAnalysis = {
    video: videoName(request.video),
    ...(partial && { partial }),
    clipsCreated: found.clips.length,
    durationMs: info.durationMs,
    fps: info.fps,
    frameCount: found.framesAnalyzed,
    width: info.width,
    height: info.height,
    codec: info.codec,
    rotation: info.rotation,
    cutFrames: cuts.map((c) => c.frame),
    cutMs: cuts.map((c) => c.ms),
    boundaries: cuts,
    clips: found.clips,
    results: output.locate('cuts.json'),
  };
  await output.write('cuts.json', JSON.stringify(analysis, null, 2), 'cuts.json');
  return analysis;
}

/** Scores every clip in one go and writes `cuts.json` (the form runs started before pause reached this pass use). */
export async function analyzeClips(request: AnalyzeClipsRequest): Promise<CutAnalysis> {
  const video = sourceOnce(request.video);
  const output = placeAt(request.outputDir, 'output dir');
  const { clips, thumbHeight } = planClips(request);
  const results: ClipResult[] = [];
  for (const [i, clip] of clips.entries()) {
    // ffmpeg's seeks and the scoring run off the main thread: keep beating while a clip takes its time.
    const details = () => ({ progress: { done: i, total: clips.length, unit: 'clips' } });
    Context.current().heartbeat(details());
    results.push(await heartbeatWhile(scoreClip(video, output, clip, i, thumbHeight), details));
  }
  return writeCuts(request, { ...foundShots(request.shots), clips: results });
}

/** The clips scored so far. */
export interface ScoreCheckpoint {
  clips: ClipResult[];
}

/**
 * Activity: {@link analyzeClips} as one step per clip, so a pause or cancel stops it between two clips and a
 * resume carries on with the next one.
 */
export async function analyzeClipsResumable(
  request: AnalyzeClipsRequest & {
    resumeFrom?: ScoreCheckpoint | undefined;
    /** The job's status counts clips during scoring: tell it at milestones (heartbeats carry every clip). */
    reportProgress?: boolean | undefined;
  },
): Promise<Resumable<ScoreCheckpoint, CutAnalysis>> {
  const video = sourceOnce(request.video);
  const output = placeAt(request.outputDir, 'output dir');
  const { clips, thumbHeight } = planClips(request);
  // Candidates kept by the detection pass (one decode for both passes); clips without one seek as before. They are
  // this worker's (in its scratch when the output is in a bucket): a worker without them seeks every clip.
  const kept = request.shots.candidates;
  const where = kept && candidatesOf(request.outputDir, kept.file);
  const store = kept && where && (await CandidateStore.openForReading(where.file, kept.bytes, where.scratch));
  const outcome = await runResumableLoop<ScoreCheckpoint, ScoreCheckpoint>({
    initial: { clips: [] },
    resumeFrom: request.resumeFrom,
    isDone: (checkpoint) => checkpoint.clips.length >= clips.length,
    step: async (checkpoint) => {
      const i = checkpoint.clips.length;
      const clip = clips[i]!;
      const scored =
        (store && (await scoreClipFromCandidates(store, output, clip, i))) ??
        (await scoreClip(video, output, clip, i, thumbHeight));
      return { clips: [...checkpoint.clips, scored] };
    },
    // Scoring from candidates takes a millisecond a clip: a heartbeat a second is plenty.
    ...(store && { heartbeatEveryMs: 1000 }),
    progress: (checkpoint) => ({ done: checkpoint.clips.length, total: clips.length, unit: 'clips' }),
    describe: (checkpoint) => `${checkpoint.clips.length} of ${clips.length} clips scored`,
    finish: (checkpoint) => checkpoint,
    // Jobs that count clips in their status while scoring get milestone reports; older runs counted seconds.
    reportToWorkflow: request.reportProgress === true,
  }).finally(() => store?.close());
  if (!outcome.finished) return outcome;
  const result = await writeCuts(request, { ...foundShots(request.shots), clips: outcome.result.clips });
  if (store && where) await removeCandidates(store.file, where.scratch);
  return { ...outcome, result };
}

export interface PartialCutsRequest extends Pick<AnalyzeClipsRequest, 'video' | 'outputDir' | 'info'> {
  boundaries: DetectedShots['boundaries'];
  framesAnalyzed: number;
  /** How far the detection pass got. */
  analyzedMs: number;
  /** Clips scored before the cancel (none when it came during detection). */
  clips?: ClipResult[] | undefined;
}

/** Activity: writes `cuts.json` for a cancelled analysis, marked partial, from the boundaries found so far. */
export async function writePartialCuts(request: PartialCutsRequest | LegacyPartialCutsRequest): Promise<CutAnalysis> {
  const current = 'analyzedMs' in request ? request : { ...request, ...renamedPartialFields(request) };
  // A cancelled analysis does not resume: the candidates its detection pass kept are of no more use.
  const where = candidatesLocation(current.outputDir);
  await removeCandidates(where.file, where.scratch);
  return writeCuts(
    current,
    { boundaries: current.boundaries, framesAnalyzed: current.framesAnalyzed, clips: current.clips ?? [] },
    { analyzedMs: current.analyzedMs, reason: 'cancelled' },
  );
}

/** A request scheduled before `framesAnalysed` and `analysedMs` were renamed (a job in flight across the deploy). */
export type LegacyPartialCutsRequest = Omit<PartialCutsRequest, 'framesAnalyzed' | 'analyzedMs'> & {
  framesAnalysed: number;
  analysedMs: number;
};

function renamedPartialFields(request: LegacyPartialCutsRequest) {
  return { framesAnalyzed: request.framesAnalysed, analyzedMs: request.analysedMs };
}

/** What `cuts.json` needs of the detected shots. */
function foundShots(shots: DetectedShots) {
  return { boundaries: shots.boundaries, framesAnalyzed: framesAnalyzedOf(shots) };
}

/** The video as ffmpeg reads it, found once when a clip first needs it (scoring from candidates never does). */
function sourceOnce(location: string): () => Promise<VideoSource> {
  let source: Promise<VideoSource> | undefined;
  return () => (source ??= videoSource(location));
}

/**
 * Where the candidates of an analysis writing to `outputDir` are on this worker: a data-dir file as the detection
 * pass named it (`file`, checked), or for a bucket the worker's scratch file (never a path taken from the request).
 */
function candidatesOf(outputDir: string, file: string): { file: string; scratch: boolean } {
  const where = candidatesLocation(outputDir);
  return where.scratch ? where : { file: resolveDataPath(file, 'candidates'), scratch: false };
}
