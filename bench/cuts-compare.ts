/**
 * Cut analysis against what users would pick instead, side by side in one run (median of 3 each, in rotation):
 *   - the Backroom `analyzeCuts` job end to end (start → result, through a real dev server and worker);
 *   - PySceneDetect's `detect-content` CLI on the same file (installed from PyPI into a venv of its own under
 *     .tools/: `python3 -m venv`, then `pip install scenedetect opencv-python-headless`);
 *   - ffmpeg decoding and scaling the video alone (to 96×54 RGB, what detection needs): the physical floor of this
 *     design, since every frame must be decoded once.
 * On two generated 1280×720 videos with hard cuts at known frames: one with keyframes 10 s apart (`-g 300`, no
 * keyframe at a cut), where seeking is dear, and a long one (BENCH_CUTS_LONG_SECONDS, default 300 s).
 * Prints seconds and × realtime for each, the ratio PySceneDetect time / job time (above 1: the job is faster), and
 * the cuts each found against the truth. Videos are cached in .tools/bench-cuts/ (made again when the recipe changes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CutAnalysis } from '../src/activities/video/analyze-clips';
import { ANALYSIS_HEIGHT, ANALYSIS_WIDTH } from '../src/activities/video/detect-shots';
import { ffmpegPath } from '../src/activities/video/ffmpeg';
import { analysisScaleFilter, detectionDecoderOptions } from '../src/activities/video/frames';
import { closeCpuPool } from '../src/activities/cpu-pool';
import { createTestWorker, startTestServer, testJobs, uniqueTaskQueue } from '../test/helpers/temporal';
import { SOURCES } from '../test/helpers/videos';
import { intFromEnv } from './settings';

const ROOT = path.resolve(__dirname, '..');
const TOOLS = path.join(ROOT, '.tools');
const VENV = path.join(TOOLS, 'scenedetect-venv');
const DATA = path.join(TOOLS, 'bench-cuts');
const FPS = 30;
const RUNS = 3;

interface BenchVideo {
  name: string;
  what: string;
  seconds: number;
  gop: number;
}

/** PySceneDetect in its own venv, installed from PyPI the first time; returns its CLI. */
function ensureScenedetect(): string {
  const cli = path.join(VENV, 'bin', 'scenedetect');
  if (existsSync(cli)) return cli;
  console.log('  installing PySceneDetect from PyPI into .tools/scenedetect-venv ...');
  mkdirSync(TOOLS, { recursive: true });
  const steps = [
    ['python3', ['-m', 'venv', VENV]],
    [path.join(VENV, 'bin', 'pip'), ['install', '--quiet', 'scenedetect', 'opencv-python-headless']],
  ] as const;
  for (const [command, args] of steps) {
    const run = spawnSync(command, args, { stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${run.status})`);
  }
  return cli;
}

/** Shots cycling through unlike sources, 3–12 s long, so the cuts are known to the frame. */
function shots(seconds: number): { source: string; seconds: number }[] {
  const cycle = [SOURCES.moving, SOURCES.bars, SOURCES.zoom, SOURCES.pan, SOURCES.tinted, SOURCES.hdbars];
  const list: { source: string; seconds: number }[] = [];
  for (let t = 0, i = 0; t < seconds; i++) {
    const length = Math.min(seconds - t, [7, 4.5, 9, 3, 12, 6][i % 6]!);
    list.push({ source: cycle[i % cycle.length]!.replace(/rate=25/g, `rate=${FPS}`), seconds: length });
    t += length;
  }
  return list;
}

/** Makes (or finds, by its recipe) the video; returns its file and its cut frames. */
function makeBenchVideo(video: BenchVideo): { file: string; cuts: number[] } {
  const segments = shots(video.seconds);
  const cuts: number[] = [];
  let frames = 0;
  segments.forEach((segment, i) => {
    if (i > 0) cuts.push(frames);
    frames += Math.round(segment.seconds * FPS);
  });
  const file = path.join(DATA, `${video.name}.mp4`);
  const recipe = JSON.stringify({ segments, gop: video.gop, fps: FPS, size: '1280x720' });
  const recipeFile = `${file}.recipe`;
  if (existsSync(file) && existsSync(recipeFile) && readFileSync(recipeFile, 'utf8') === recipe) return { file, cuts };
  console.log(`  generating ${video.name}.mp4 (${video.what}) ...`);
  mkdirSync(DATA, { recursive: true });
  const args = ['-nostdin', '-y', '-v', 'error'];
  for (const segment of segments) args.push('-f', 'lavfi', '-t', String(segment.seconds), '-i', segment.source);
  const chains = segments.map(
    (_, i) => `[${i}:v]scale=1280:720,fps=${FPS},format=yuv420p,setsar=1,settb=1/${FPS}[v${i}]`,
  );
  const joined = `${segments.map((_, i) => `[v${i}]`).join('')}concat=n=${segments.length}:v=1[out]`;
  args.push('-filter_complex', `${chains.join(';')};${joined}`, '-map', '[out]');
  // No keyframe at the cuts (-sc_threshold 0): keyframes only every `gop` frames, as many real files have.
  args.push('-c:v', 'libx264', '-preset', 'veryfast', '-g', String(video.gop), '-keyint_min', String(video.gop));
  args.push('-sc_threshold', '0', '-pix_fmt', 'yuv420p', file);
  const run = spawnSync(ffmpegPath(), args, { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`ffmpeg could not make ${file}`);
  writeFileSync(recipeFile, recipe);
  return { file, cuts };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** CPU seconds of this process' ended children (Linux: cutime + cstime in /proc/self/stat, at 100 ticks a second). */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU seconds of this process (all its threads: worker, CPU pool, Temporal's core) and of its ended children. */
function cpuNow(): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6 + childrenCpu();
}

/** Runs `command` and returns its wall time and CPU time in seconds. */
function timed(command: string, args: string[]): { seconds: number; cpu: number; stdout: string } {
  const started = performance.now();
  const before = childrenCpu();
  const run = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`${path.basename(command)} failed: ${run.stderr.slice(-2000)}`);
  return { seconds, cpu: childrenCpu() - before, stdout: run.stdout };
}

/** PySceneDetect's detect-content with its defaults; the cut frames (0-based) from its scene list. */
function pySceneDetect(cli: string, file: string): { seconds: number; cpu: number; cuts: number[] } {
  const out = path.join(DATA, 'scenedetect-out');
  rmSync(out, { recursive: true, force: true });
  const { seconds, cpu } = timed(cli, [
    '-i',
    file,
    '-q',
    '-o',
    out,
    'detect-content',
    'list-scenes',
    '-s',
    '-f',
    'scenes.csv',
  ]);
  const rows = readFileSync(path.join(out, 'scenes.csv'), 'utf8').trim().split('\n').slice(1);
  // "Start Frame" is 1-based: scene n starts on frame (Start Frame − 1); every scene after the first starts at a cut.
  const cuts = rows.slice(1).map((row) => Number(row.split(',')[1]) - 1);
  return { seconds, cpu, cuts };
}

/** ffmpeg decoding every frame and scaling it to the detection size: nothing analysed, nothing kept. */
function decodeFloor(file: string, width: number): { seconds: number; cpu: number } {
  // The detection pass's own decoding and shrinking (frames.ts), with nothing else: what this design cannot go below.
  return timed(ffmpegPath(), [
    '-nostdin',
    '-v',
    'error',
    ...detectionDecoderOptions(width, ANALYSIS_WIDTH),
    '-i',
    file,
    '-an',
    '-vf',
    analysisScaleFilter(ANALYSIS_WIDTH, ANALYSIS_HEIGHT),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    '-y',
    '/dev/null',
  ]);
}

/** Found cuts against the truth: within one frame counts as found. */
function against(truth: number[], found: number[]): string {
  const hit = (f: number) => truth.some((t) => Math.abs(t - f) <= 1);
  const missed = truth.filter((t) => !found.some((f) => Math.abs(t - f) <= 1));
  const extra = found.filter((f) => !hit(f));
  return `${found.length} cuts, ${missed.length} missed${missed.length ? ` (${missed.join(', ')})` : ''}, ${extra.length} extra${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

export async function compareWithPySceneDetect(): Promise<void> {
  const long = intFromEnv('BENCH_CUTS_LONG_SECONDS', 300);
  const videos: BenchVideo[] = [
    { name: 'sparse-keyframes-720p', what: '60 s of 1280×720 at 30 fps, keyframes 10 s apart', seconds: 60, gop: 300 },
    {
      name: `long-720p-${long}s`,
      what: `${long} s of 1280×720 at 30 fps, keyframes every 250 frames`,
      seconds: long,
      gop: 250,
    },
  ];
  console.log(`\nCut analysis vs PySceneDetect detect-content (median of ${RUNS}, one run, this machine)`);
  const cli = ensureScenedetect();
  const version = spawnSync(
    path.join(VENV, 'bin', 'python'),
    ['-c', 'import scenedetect; print(scenedetect.__version__)'],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  const made = videos.map((video) => ({ video, ...makeBenchVideo(video) }));

  process.env.BACKROOM_DATA_DIR = DATA;
  const env = await startTestServer();
  const taskQueue = uniqueTaskQueue('bench-cuts-compare');
  const worker = await createTestWorker(env, taskQueue);
  const running = worker.run();
  const rows: string[] = [];
  try {
    const jobs = testJobs(env, taskQueue);
    // A worker runs for days: warm it (workflow bundle, CPU pool threads, sharp) with one untimed job.
    const warm = made[0]!;
    rmSync(path.join(DATA, 'warm-up-cuts'), { recursive: true, force: true });
    const warming = await jobs.start('analyzeCuts', { video: path.basename(warm.file), outputDir: 'warm-up-cuts' });
    await jobs.result(warming.id);
    for (const { video, file, cuts } of made) {
      const job: number[] = [];
      const scene: number[] = [];
      const floor: number[] = [];
      const cpu = { job: [] as number[], scene: [] as number[], floor: [] as number[] };
      let result: CutAnalysis | undefined;
      let sceneCuts: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const outputDir = `${video.name}-cuts-${run}`;
        rmSync(path.join(DATA, outputDir), { recursive: true, force: true });
        const started = performance.now();
        const cpuBefore = cpuNow();
        const { id } = await jobs.start('analyzeCuts', { video: path.basename(file), outputDir });
        result = await jobs.result<CutAnalysis>(id);
        job.push((performance.now() - started) / 1000);
        cpu.job.push(cpuNow() - cpuBefore);
        const py = pySceneDetect(cli, file);
        scene.push(py.seconds);
        cpu.scene.push(py.cpu);
        sceneCuts = py.cuts;
        const decoded = decodeFloor(file, 1280);
        floor.push(decoded.seconds);
        cpu.floor.push(decoded.cpu);
      }
      const seconds = video.seconds;
      const cell = (taken: number, used: number[]) =>
        `${taken.toFixed(2)} s = ${(seconds / taken).toFixed(1)}× realtime (${median(used).toFixed(1)} CPU-s)`;
      const ours = (result?.boundaries ?? []).filter((b) => b.kind === 'cut').map((b) => b.frame);
      const same =
        ours.length === sceneCuts.length && ours.every((f, i) => Math.abs(f - sceneCuts[i]!) <= 1) ? 'yes' : 'NO';
      rows.push(
        `| ${video.what} | ${cell(median(job), cpu.job)} | ${cell(median(scene), cpu.scene)} | ` +
          `${cell(median(floor), cpu.floor)} | ` +
          `**${(median(scene) / median(job)).toFixed(2)}×** | ${(median(floor) / median(job)).toFixed(2)} | ${same} |`,
      );
      console.log(`  ${video.name}: ${cuts.length} known cuts`);
      console.log(
        `    job:          ${job.map((s) => s.toFixed(2)).join(', ')} s; ${against(cuts, ours)}; ${result?.clipsCreated} clips`,
      );
      console.log(`    PySceneDetect: ${scene.map((s) => s.toFixed(2)).join(', ')} s; ${against(cuts, sceneCuts)}`);
      console.log(`    ffmpeg floor:  ${floor.map((s) => s.toFixed(2)).join(', ')} s`);
    }
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
    await closeCpuPool();
  }
  console.log(
    `\n  PySceneDetect ${version} (detect-content, defaults), ffmpeg ${ffmpegVersion()}, ${process.platform} ${process.arch}`,
  );
  console.log(
    '| video | Backroom analyzeCuts (end to end) | PySceneDetect detect-content | ffmpeg decode + scale (floor) | job speed / PySceneDetect | job speed / floor | same cuts |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

function ffmpegVersion(): string {
  return /ffmpeg version (\S+)/.exec(spawnSync(ffmpegPath(), ['-version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
}

if (require.main === module) {
  compareWithPySceneDetect().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
