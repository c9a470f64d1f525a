/**
 * Recorded histories replay on the current workflow code: every JSON file under test/fixtures/histories (recorded
 * by test/fixtures/record-histories.ts from this code, and from older commits in `v-<commit>/` folders, i.e. jobs in
 * flight before a deploy) runs through a replay worker with the workers' own bundle. A workflow whose commands no
 * longer match a recorded run (an activity added, removed or reordered, a timer or child changed, without a
 * `patched()` guard) fails here with a DeterminismViolationError, naming the file. No server is needed.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker, type ReplayResult } from '@temporalio/worker';
import { FIXTURES_DIR } from '../helpers/fixtures';
import { historyFromJSONObject, type RecordedHistory } from '../helpers/history-json';
import { workflowBundle } from '../helpers/temporal';

const HISTORIES_DIR = path.join(FIXTURES_DIR, 'histories');

/** Every `.json` file below `dir` (not the folder's `.prettierrc.json`), sorted. */
function historyFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.json') && !path.basename(name).startsWith('.'))
    .sort()
    .map((name) => path.join(dir, name));
}

function load(file: string): RecordedHistory {
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as RecordedHistory;
  assert.ok(recorded.workflowId && recorded.history?.events?.length, `${file}: no workflowId or no events`);
  return recorded;
}

describe('recorded histories replay on the current workflow code', () => {
  const files = historyFiles(HISTORIES_DIR);
  const name = (file: string) => path.relative(HISTORIES_DIR, file);
  const outcomes = new Map<string, ReplayResult | Error>();

  before(async () => {
    // Warnings only (a nondeterminism is also logged by the SDK's core as it happens); this file runs in a process of
    // its own, so the runtime is this test's to install.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    const recorded = files.map((file) => ({ file, ...load(file) }));
    let current: string | undefined;
    // One replay worker for all files; it replays them one at a time, in order, so `current` names each result.
    async function* histories(): AsyncGenerator<HistoryAndWorkflowId> {
      for (const { file, workflowId, history } of recorded) {
        current = file;
        yield { workflowId, history: historyFromJSONObject(history) };
      }
    }
    try {
      const replay = Worker.runReplayHistories(
        { workflowBundle: await workflowBundle(), replayName: 'backroom-replay' },
        histories(),
      );
      for await (const result of replay) outcomes.set(current ?? '', result);
    } catch (err) {
      // A history that breaks the replay worker itself fails its own test; the rest were not replayed.
      if (current) outcomes.set(current, err instanceof Error ? err : new Error(String(err)));
    }
  });

  it('has recorded histories of this code and of an older commit', () => {
    assert.ok(files.length >= 20, `${files.length} history files in ${HISTORIES_DIR}`);
    assert.ok(
      files.some((file) => /^v-[0-9a-f]+$/.test(path.dirname(name(file)))),
      'no v-<commit>/ folder of histories recorded before a change',
    );
  });

  for (const file of files) {
    it(`replays ${name(file)}`, () => {
      const outcome = outcomes.get(file);
      assert.ok(outcome, `${name(file)} was not replayed (an earlier history stopped the replay worker)`);
      if (outcome instanceof Error) throw new Error(`${name(file)}: ${outcome.message}`, { cause: outcome });
      if (outcome.error) {
        throw new Error(`${name(file)} (${load(file).workflowType}): ${outcome.error.name}: ${outcome.error.message}`, {
          cause: outcome.error,
        });
      }
    });
  }
});
