/**
 * Finding (or building) the Temporal CLI, which runs the local dev server. Nothing is downloaded from the web at
 * run time: the CLI is built from Go modules, at the one version pinned here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../config';

/** The pinned Temporal CLI version (later tags carry a `replace` directive and cannot be `go install`ed). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

/** Where the project keeps the CLI it builds (git-ignored). */
export const TOOLS_BIN_DIR = path.join(PROJECT_ROOT, '.tools', 'bin');
const LOCAL_CLI = path.join(TOOLS_BIN_DIR, 'temporal');

/** True if `file` exists and may be executed by this process. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `command` on PATH, if any. */
export function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The CLI to use: `TEMPORAL_CLI_PATH`, else `temporal` on PATH, else the project's own build; undefined if none. */
export function findTemporalCli(): string | undefined {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`TEMPORAL_CLI_PATH is set to "${fromEnv}", which is not an executable file. Fix or unset it.`);
    }
    return fromEnv;
  }
  return onPath('temporal') ?? (isExecutable(LOCAL_CLI) ? LOCAL_CLI : undefined);
}

/**
 * Returns a Temporal CLI, building it with `go install` into `.tools/bin` if none is found. `say` tells the user
 * what is happening (the first build takes a few minutes).
 */
export async function ensureTemporalCli(say: (line: string) => void = console.error): Promise<string> {
  const found = findTemporalCli();
  if (found) return found;
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new Error(
      [
        'No Temporal CLI found, and Go is not installed to build one.',
        'Do one of these:',
        '  - install Go 1.23 or newer (https://go.dev/doc/install, or `apt-get install golang`), then run this again;',
        '  - install the Temporal CLI yourself and put `temporal` on your PATH;',
        '  - set TEMPORAL_CLI_PATH to an existing `temporal` binary.',
      ].join('\n'),
    );
  }
  mkdirSync(TOOLS_BIN_DIR, { recursive: true });
  const target = `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`;
  say(`No Temporal CLI found (TEMPORAL_CLI_PATH unset, none on PATH).`);
  say(`Building ${target} into ${TOOLS_BIN_DIR} with Go; the first build takes a few minutes...`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const build = spawn(go, ['install', target], {
      env: { ...process.env, GOBIN: TOOLS_BIN_DIR },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    build.on('error', reject);
    build.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install ${target} failed with exit code ${code}; see above.`)),
    );
  });
  if (!isExecutable(LOCAL_CLI)) throw new Error(`go install finished but ${LOCAL_CLI} is missing`);
  say(`Built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)} s: ${LOCAL_CLI}`);
  return LOCAL_CLI;
}

/** The version line the CLI prints, for health checks and logs. */
export function temporalCliVersion(cli: string): string {
  const out = spawnSync(cli, ['--version'], { encoding: 'utf8' });
  return (out.stdout || out.stderr || '').trim();
}
