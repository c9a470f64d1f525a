/**
 * Sample videos for demos: shots of ffmpeg's generated footage (lavfi sources) joined by hard cuts, so whoever makes
 * one knows exactly where its cuts are. ffmpeg runs as a child process (the event loop stays free), writes a
 * temporary file that is renamed into place, and a recipe file beside the video records what was made and its size:
 * asking again for the same video finds it and makes nothing.
 *
 * Not an activity yet: `npm start`'s demo calls it in its own process. A `generateSampleVideo` job would wrap it in
 * an activity that heartbeats while ffmpeg runs and passes its cancellation signal on.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { displayPath, makeDataDir, resolveDataPath, writeFileAtomic } from '../files';
import { ffmpegPath } from './ffmpeg';

/** Footage ffmpeg generates, each unlike the others, so a cut between two of them is plain to see. */
export const SAMPLE_SOURCES = {
  moving: 'testsrc2',
  bars: 'smptebars',
  zoom: 'mandelbrot',
  pan: "testsrc=size=640x180,crop=320:180:'t*100':0",
  tinted: 'testsrc2,hue=h=200',
} as const;

export interface SampleShot {
  source: keyof typeof SAMPLE_SOURCES;
  /** Whole frames at the video's rate, so the cut after it falls on a known frame. */
  seconds: number;
}

export interface SampleVideoRequest {
  /** The video to write, inside the data dir (MP4, H.264). */
  output: string;
  shots: SampleShot[];
  width?: number;
  height?: number;
  fps?: number;
  /** Stops ffmpeg (an activity passes its cancellation signal). */
  signal?: AbortSignal;
}

export interface SampleVideoResult {
  video: string;
  bytes: number;
  durationMs: number;
  frames: number;
  /** The first frame of every shot after the first: where the hard cuts are. */
  cutFrames: number[];
  cutMs: number[];
  /** False when the same video was there already. */
  created: boolean;
}

interface Recipe {
  shots: SampleShot[];
  width: number;
  height: number;
  fps: number;
  encoder: string[];
}

/** What the recipe file beside the video holds. */
interface RecipeRecord {
  recipe: Recipe;
  bytes: number;
}

const ENCODER = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

/** Where the recipe of `video` is kept. */
export const recipeFileOf = (video: string) => `${video}.recipe.json`;

/**
 * Makes the video of `request.shots` at `request.output`, unless the video there was made from the same recipe and
 * still has the size it was written with. Returns where its cuts are.
 */
export async function generateSampleVideo(request: SampleVideoRequest): Promise<SampleVideoResult> {
  const { width = 320, height = 180, fps = 25 } = request;
  if (request.shots.length === 0) throw new Error('A sample video needs at least one shot.');
  const recipe: Recipe = { shots: request.shots, width, height, fps, encoder: ENCODER };
  const file = resolveDataPath(request.output, 'video');
  const plan = cutsOf(recipe);
  const existing = await madeBefore(file, recipe);
  if (existing !== undefined) return { video: displayPath(file), bytes: existing, ...plan, created: false };

  const folder = await makeDataDir(path.dirname(file), 'video folder');
  const target = path.join(folder, path.basename(file));
  const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await runFfmpeg(ffmpegArgs(recipe, temporary), request.signal);
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  const { size } = await stat(target);
  await writeFileAtomic(recipeFileOf(target), `${JSON.stringify({ recipe, bytes: size } satisfies RecipeRecord)}\n`);
  return { video: displayPath(file), bytes: size, ...plan, created: true };
}

/** The size of the video at `file` when it was made from `recipe` and has not changed since, else undefined. */
async function madeBefore(file: string, recipe: Recipe): Promise<number | undefined> {
  try {
    const record = JSON.parse(await readFile(recipeFileOf(file), 'utf8')) as RecipeRecord;
    const { size } = await stat(file);
    return size > 0 && size === record.bytes && JSON.stringify(record.recipe) === JSON.stringify(recipe)
      ? size
      : undefined;
  } catch {
    return undefined;
  }
}

function cutsOf(recipe: Recipe) {
  const cutFrames: number[] = [];
  let frames = 0;
  for (const [i, shot] of recipe.shots.entries()) {
    if (i > 0) cutFrames.push(frames);
    frames += Math.round(shot.seconds * recipe.fps);
  }
  const ms = (frame: number) => Math.round((frame * 1000) / recipe.fps);
  return { durationMs: ms(frames), frames, cutFrames, cutMs: cutFrames.map(ms) };
}

/** One lavfi input per shot, each scaled to the video's size and rate, joined with concat. */
function ffmpegArgs(recipe: Recipe, output: string): string[] {
  const { width, height, fps } = recipe;
  const args = ['-nostdin', '-y', '-v', 'error'];
  for (const shot of recipe.shots) {
    const source = SAMPLE_SOURCES[shot.source];
    const [name, ...filters] = source.split(',');
    const sized = name?.includes('=') ? `${name}:rate=${fps}` : `${name}=size=${width}x${height}:rate=${fps}`;
    args.push('-f', 'lavfi', '-t', String(shot.seconds), '-i', [sized, ...filters].join(','));
  }
  const chains = recipe.shots.map(
    (_, i) => `[${i}:v]scale=${width}:${height},fps=${fps},format=yuv420p,setsar=1,settb=1/${fps}[v${i}]`,
  );
  const inputs = recipe.shots.map((_, i) => `[v${i}]`).join('');
  args.push('-filter_complex', `${chains.join(';')};${inputs}concat=n=${recipe.shots.length}:v=1[out]`);
  args.push('-map', '[out]', ...ENCODER, '-g', String(fps * 2), '-f', 'mp4', output);
  return args;
}

function runFfmpeg(args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal && { signal }) });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code, killedBy) => {
      if (code === 0) resolve();
      else
        reject(new Error(`ffmpeg could not make the sample video (${killedBy ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}
