/**
 * Finding (or building) SeaweedFS's `weed`, the S3-compatible server the object-storage tests run against. Like the
 * Temporal CLI, nothing is downloaded from the web at run time: `weed` is built from Go modules, at the one version
 * pinned here, into the project's git-ignored `.tools/bin`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isExecutable, onPath, TOOLS_BIN_DIR } from './temporal-cli';

/**
 * The pinned SeaweedFS version (a Go pseudo-version of github.com/seaweedfs/seaweedfs). Its go.mod has a `replace`
 * directive, so `go install module@version` refuses it: {@link ensureWeed} builds it in a throwaway wrapper module
 * that repeats the replace.
 */
export const SEAWEEDFS_VERSION = 'v0.0.0-20261109003541-7506e5f91cd6';
export const SEAWEEDFS_MODULE = 'github.com/seaweedfs/seaweedfs';
export const SEAWEEDFS_PACKAGE = `${SEAWEEDFS_MODULE}/weed`;
/** The `replace` lines of SeaweedFS's own go.mod at {@link SEAWEEDFS_VERSION}; the wrapper module must repeat them. */
export const SEAWEEDFS_REPLACES = ['github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0'];

/** The environment variable that points at a `weed` binary to use instead of the project's own build. */
export const WEED_PATH_ENV = 'BACKROOM_WEED_PATH';

const LOCAL_WEED = path.join(TOOLS_BIN_DIR, 'weed');
// Written after a successful build: a `weed` built from another pinned version is rebuilt, not silently reused.
const LOCAL_WEED_STAMP = `${LOCAL_WEED}.version`;

function localWeedIsCurrent(): boolean {
  if (!isExecutable(LOCAL_WEED)) return false;
  try {
    return readFileSync(LOCAL_WEED_STAMP, 'utf8').trim() === SEAWEEDFS_VERSION;
  } catch {
    return false;
  }
}

/**
 * The `weed` to use: {@link WEED_PATH_ENV} if set, else the project's build of the pinned version; undefined if
 * neither. A `weed` on PATH is not taken: the test helper passes flags that differ between SeaweedFS versions.
 */
export function findWeed(): string | undefined {
  const fromEnv = process.env[WEED_PATH_ENV];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`${WEED_PATH_ENV} is set to "${fromEnv}", which is not an executable file. Fix or unset it.`);
    }
    return fromEnv;
  }
  return localWeedIsCurrent() ? LOCAL_WEED : undefined;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`\`go ${args.join(' ')}\` failed with exit code ${code}; see above.`)),
    );
  });
}

/**
 * Returns a `weed` binary, building the pinned SeaweedFS into `.tools/bin/weed` if none is found (a few minutes on
 * 2 cores the first time; about 230 MB). `say` tells the user what is happening.
 */
export async function ensureWeed(say: (line: string) => void = console.error): Promise<string> {
  const found = findWeed();
  if (found) return found;
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new Error(
      [
        'No SeaweedFS `weed` binary found, and Go is not installed to build one.',
        'Do one of these:',
        '  - install Go 1.26.6 or newer (https://go.dev/doc/install), then run `npm run s3:install`;',
        `  - set ${WEED_PATH_ENV} to an existing \`weed\` binary of SeaweedFS ${SEAWEEDFS_VERSION}.`,
      ].join('\n'),
    );
  }
  mkdirSync(TOOLS_BIN_DIR, { recursive: true });
  const target = `${SEAWEEDFS_PACKAGE}@${SEAWEEDFS_VERSION}`;
  say(`No SeaweedFS found (${WEED_PATH_ENV} unset, no build of ${SEAWEEDFS_VERSION} in ${TOOLS_BIN_DIR}).`);
  say(`Building ${target} with Go; the first build takes a few minutes...`);
  const started = Date.now();
  // A wrapper module of our own: only the main module's `replace` directives apply, so ours repeats SeaweedFS's.
  const wrapper = mkdtempSync(path.join(os.tmpdir(), 'backroom-weed-build-'));
  // Built beside the target and renamed into place, so an interrupted build never leaves a broken `weed` behind.
  const partial = `${LOCAL_WEED}.partial-${process.pid}`;
  try {
    writeFileSync(
      path.join(wrapper, 'go.mod'),
      [
        'module backroom.local/weed-build',
        '',
        'go 1.24',
        '',
        `require ${SEAWEEDFS_MODULE} ${SEAWEEDFS_VERSION}`,
        '',
        ...SEAWEEDFS_REPLACES.map((line) => `replace ${line}`),
        '',
      ].join('\n'),
    );
    const env = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-mod=mod'].filter(Boolean).join(' ') };
    await run(go, ['get', target], wrapper, env);
    await run(go, ['build', '-o', partial, SEAWEEDFS_PACKAGE], wrapper, env);
    renameSync(partial, LOCAL_WEED);
    writeFileSync(LOCAL_WEED_STAMP, `${SEAWEEDFS_VERSION}\n`);
  } finally {
    rmSync(partial, { force: true });
    rmSync(wrapper, { recursive: true, force: true });
  }
  say(`Built SeaweedFS in ${Math.round((Date.now() - started) / 1000)} s: ${LOCAL_WEED}`);
  return LOCAL_WEED;
}
