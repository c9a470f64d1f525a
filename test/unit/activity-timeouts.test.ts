/**
 * The promise "no job stalls more than 60 s after its worker dies", checked on every activity option set the
 * workflows use. The list is not kept by hand: every `proxyActivities(` (or `proxyLocalActivities(`) call in
 * src/workflows must take a named option set, exported by its file or imported from another module, and each one
 * found is checked. A new call with inline options, or with a set that allows a longer stall, fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ActivityOptions } from '@temporalio/workflow';
import {
  HEARTBEAT_TIMEOUT,
  SHORT_ACTIVITY_TIMEOUT,
  WORKER_DEATH_STALL_LIMIT,
} from '../../src/workflows/activity-profiles';

const workflowsDir = path.resolve(__dirname, '../../src/workflows');

interface ProxyCall {
  file: string;
  line: number;
  /** The call's argument as written. */
  argument: string;
}

/** Every call that proxies activities in `text`, and how many times the proxy functions are named outside imports. */
function proxyCalls(file: string, text: string): { calls: ProxyCall[]; mentions: number } {
  const code = text.replace(/^import[\s\S]*?from\s+'[^']+';/gm, (imports) => imports.replace(/[^\n]/g, ' '));
  const mentions = [...code.matchAll(/\bproxy(?:Local)?Activities\b/g)].length;
  const calls = [...code.matchAll(/\bproxy(?:Local)?Activities\s*(?:<[^>()]*>)?\s*\(([^()]*)\)/g)].map((match) => ({
    file,
    line: code.slice(0, match.index).split('\n').length,
    argument: match[1]!.trim().replace(/,$/, '').trim(),
  }));
  return { calls, mentions };
}

/** Where a name used in `text` comes from: the module it is imported from (relative to the file), if any. */
function importedFrom(text: string, name: string): { module: string; exported: string } | undefined {
  for (const match of text.matchAll(/^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)';/gm)) {
    if (match[1]) continue;
    for (const part of match[2]!.split(',')) {
      const [exported, local = exported] = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/);
      if (local === name && exported) return { module: match[3]!, exported };
    }
  }
  return undefined;
}

/** The option set a call passes, loaded from the module that defines it; fails when the call does not name one. */
async function optionSet(call: ProxyCall, text: string): Promise<ActivityOptions> {
  const where = `${call.file}:${call.line}`;
  assert.match(
    call.argument,
    /^[A-Za-z_$][\w$]*$/,
    `${where}: proxy activities with a named, exported option set (not \`${call.argument}\`), so this test checks it`,
  );
  const source = importedFrom(text, call.argument);
  const loaded = (await import(path.resolve(workflowsDir, source?.module ?? call.file))) as Record<string, unknown>;
  const options = loaded[source?.exported ?? call.argument];
  assert.ok(
    options && typeof options === 'object',
    `${where}: \`${call.argument}\` must be exported by ${call.file} or imported from a module that exports it`,
  );
  return options as ActivityOptions;
}

const ms = (duration: ActivityOptions['heartbeatTimeout']) =>
  duration === undefined ? undefined : msToNumber(duration);

describe('activity timeouts', () => {
  const files = readdirSync(workflowsDir).filter((name) => name.endsWith('.ts'));
  const found = files.map((file) => {
    const text = readFileSync(path.join(workflowsDir, file), 'utf8');
    return { file, text, ...proxyCalls(file, text) };
  });

  it('finds every proxyActivities call of the workflows, each with a named option set', () => {
    const calls = found.flatMap((f) => f.calls);
    assert.ok(calls.length >= 10, `only ${calls.length} proxyActivities calls found: is the scan still right?`);
    for (const { file, calls, mentions } of found) {
      assert.equal(calls.length, mentions, `${file}: a proxyActivities call this test cannot read`);
    }
  });

  it(`lets no job stall more than ${WORKER_DEATH_STALL_LIMIT} after its worker dies`, async () => {
    const limit = msToNumber(WORKER_DEATH_STALL_LIMIT);
    for (const { text, calls } of found) {
      for (const call of calls) {
        const where = `${call.file}:${call.line} (${call.argument})`;
        const options = await optionSet(call, text);
        const heartbeat = ms(options.heartbeatTimeout);
        const startToClose = ms(options.startToCloseTimeout);
        if (heartbeat !== undefined) {
          // A heartbeating activity: the heartbeat timeout is what notices the dead worker.
          assert.ok(
            heartbeat <= msToNumber(HEARTBEAT_TIMEOUT),
            `${where}: heartbeat timeout ${heartbeat} ms is over HEARTBEAT_TIMEOUT (${HEARTBEAT_TIMEOUT})`,
          );
        } else {
          // A short activity: its start-to-close timeout is.
          assert.ok(startToClose !== undefined, `${where}: no heartbeat and no start-to-close timeout`);
          assert.ok(
            startToClose <= msToNumber(SHORT_ACTIVITY_TIMEOUT),
            `${where}: a start-to-close of ${startToClose} ms with no heartbeat; heartbeat, or stay within ` +
              `SHORT_ACTIVITY_TIMEOUT (${SHORT_ACTIVITY_TIMEOUT})`,
          );
        }
        // Noticed, then retried after the first backoff (Temporal's default: 1 s).
        const noticed = Math.min(heartbeat ?? Infinity, startToClose ?? Infinity);
        const stall = noticed + (ms(options.retry?.initialInterval) ?? 1000);
        assert.ok(stall <= limit, `${where}: a dead worker may hold the job ${stall} ms`);
      }
    }
  });
});
