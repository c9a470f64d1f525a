/**
 * The workflow bundle, built once and kept on disk, so that a restarted worker loads it instead of running webpack
 * again (which took 15–40 s on a busy 2-core machine).
 *
 * An entry is keyed by what shapes the bundle besides the code (SDK version, workflows path, converter paths) and is
 * valid while every file webpack read to build it still has the content it had: webpack itself reports those files,
 * so an edit to a workflow, to a shared module it imports or to an upgraded library all rebuild it, and an edit to an
 * activity does not. Files are written through a temporary name and a rename, so a worker never loads half a bundle,
 * and two workers starting together at worst both build it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  bundleWorkflowCode,
  type BundleOptions,
  type Logger,
  type WorkflowBundle,
  type WorkflowBundlePath,
} from '@temporalio/worker';

/** Where bundles are kept unless told otherwise: the conventional cache folder of the project's node_modules. */
export const DEFAULT_BUNDLE_CACHE_DIR = path.resolve(__dirname, '../../node_modules/.cache/backroom/workflow-bundles');

/** The cache folder in force: BACKROOM_BUNDLE_CACHE_DIR (e.g. where node_modules is read-only), else the default. */
export function bundleCacheDir(): string {
  return path.resolve(process.env.BACKROOM_BUNDLE_CACHE_DIR || DEFAULT_BUNDLE_CACHE_DIR);
}

export interface WorkflowBundleCacheOptions {
  workflowsPath: string;
  /** The data converter's failure converter (set when payloads are encrypted): the bundle must include it. */
  failureConverterPath?: string | undefined;
  payloadConverterPath?: string | undefined;
  /** By default `bundleCacheDir()`. */
  cacheDir?: string;
  logger?: Logger;
}

export interface CachedBundle {
  /** A path to the bundle on disk, or the code itself when the cache folder cannot be written. */
  bundle: WorkflowBundlePath | WorkflowBundle;
  /** True when a bundle built earlier was reused. */
  reused: boolean;
}

/** What an entry records: its bundle file, and the content hash of every file the bundle was built from. */
interface Manifest {
  bundle: string;
  inputs: Record<string, string>;
}

/** The workflow bundle for these options: the cached one while its inputs are unchanged, else a fresh build. */
export async function cachedWorkflowBundle(options: WorkflowBundleCacheOptions): Promise<CachedBundle> {
  const cacheDir = options.cacheDir ?? bundleCacheDir();
  const key = await entryKey(options);
  const manifestPath = path.join(cacheDir, `${key}.json`);
  const cached = await validBundle(cacheDir, manifestPath);
  if (cached) return { bundle: { codePath: cached }, reused: true };

  const built = await buildBundle(options);
  try {
    const codePath = await store(cacheDir, key, built);
    return { bundle: { codePath }, reused: false };
  } catch (err) {
    options.logger?.warn('Workflow bundle not cached; the next start builds it again', { error: String(err) });
    return { bundle: { code: built.code }, reused: false };
  }
}

/** What shapes the bundle besides the files it reads: the bundler's version and options. */
async function entryKey(options: WorkflowBundleCacheOptions): Promise<string> {
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as {
    version: string;
  };
  const shape = {
    sdk: sdk.version,
    workflowsPath: path.resolve(options.workflowsPath),
    failureConverterPath: options.failureConverterPath ?? null,
    payloadConverterPath: options.payloadConverterPath ?? null,
  };
  return sha256(JSON.stringify(shape)).slice(0, 24);
}

/** The bundle's path if the entry exists and every input still hashes the same; undefined otherwise. */
async function validBundle(cacheDir: string, manifestPath: string): Promise<string | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  } catch {
    return undefined; // No entry yet (or an unreadable one, which a build replaces).
  }
  const codePath = path.join(cacheDir, manifest.bundle);
  const inputs = Object.entries(manifest.inputs);
  const current = await Promise.all(inputs.map(([file]) => hashFile(file)));
  if (inputs.some(([, hash], i) => current[i] !== hash)) return undefined;
  const exists = await stat(codePath).then(
    () => true,
    () => false,
  );
  return exists ? codePath : undefined;
}

interface BuiltBundle {
  code: string;
  /** Content hashes of the files on disk the build read; undefined if one changed while it ran. */
  inputs: Record<string, string> | undefined;
}

async function buildBundle(options: WorkflowBundleCacheOptions): Promise<BuiltBundle> {
  const read = new Set<string>();
  const startedMs = Date.now();
  const bundleOptions: BundleOptions = {
    workflowsPath: options.workflowsPath,
    ...(options.failureConverterPath && { failureConverterPath: options.failureConverterPath }),
    ...(options.payloadConverterPath && { payloadConverterPath: options.payloadConverterPath }),
    ...(options.logger && { logger: options.logger }),
    webpackConfigHook: (config) => ({
      ...config,
      plugins: [...(config.plugins ?? []), recordInputs(read)],
    }),
  };
  const { code } = await bundleWorkflowCode(bundleOptions);
  return { code, inputs: await hashInputs([...read], startedMs) };
}

/** A webpack plugin that records every file the compilation read. */
function recordInputs(into: Set<string>) {
  return {
    apply(compiler: { hooks: { done: { tap(name: string, fn: (stats: CompilationStats) => void): void } } }) {
      compiler.hooks.done.tap('backroom-bundle-inputs', (stats) => {
        for (const file of stats.compilation.fileDependencies) into.add(file);
      });
    },
  };
}

interface CompilationStats {
  compilation: { fileDependencies: Iterable<string> };
}

/**
 * Hashes the files the build read. Files that are not on disk (the bundler's generated entry point lives in memory)
 * are left out: the entry key covers what generates them. A file modified since the build started may not be what
 * was bundled, so such a build is used but not cached.
 */
async function hashInputs(files: string[], startedMs: number): Promise<Record<string, string> | undefined> {
  const inputs: Record<string, string> = {};
  for (const file of files.sort()) {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    if (info.mtimeMs > startedMs) return undefined;
    const hash = await hashFile(file);
    if (hash) inputs[file] = hash;
  }
  return inputs;
}

/** Writes the bundle, then the manifest that names it, each atomically; drops this entry's older bundles. */
async function store(cacheDir: string, key: string, built: BuiltBundle): Promise<string> {
  if (!built.inputs) throw new Error('a workflow source changed while the bundle was built');
  await mkdir(cacheDir, { recursive: true });
  const bundleName = `${key}-${sha256(built.code).slice(0, 16)}.js`;
  const manifest: Manifest = { bundle: bundleName, inputs: built.inputs };
  await writeAtomically(path.join(cacheDir, bundleName), built.code);
  await writeAtomically(path.join(cacheDir, `${key}.json`), JSON.stringify(manifest, null, 1));
  const stale = (await readdir(cacheDir)).filter((name) => name.startsWith(`${key}-`) && name !== bundleName);
  // A worker that read the old manifest a moment ago may miss its bundle: it then builds, which is only slower.
  await Promise.all(stale.map((name) => rm(path.join(cacheDir, name), { force: true })));
  return path.join(cacheDir, bundleName);
}

async function writeAtomically(file: string, data: string): Promise<void> {
  // A dot name, so that pruning another entry's old bundles never takes a file still being written.
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID().slice(0, 8)}.tmp`);
  try {
    await writeFile(temporary, data);
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}

async function hashFile(file: string): Promise<string | undefined> {
  return readFile(file).then(sha256, () => undefined);
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
