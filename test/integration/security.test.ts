/**
 * The hostile-input suite for paths, on a real dev server, worker and HTTP API. Every path field of every job type
 * (found from the job catalog's schemas, so a field added later is attacked too) is attacked with links to a folder
 * outside the data dir, for reading and for writing:
 * - at the door (HTTP API): links, `..`, absolute paths, NUL, a 4,096-character path → 400 naming the field;
 * - past the door (a bare Temporal client starting the workflow type, as the `temporal` CLI would): the activity
 *   refuses with PathOutsideDataDir (one bad input of a batch is one failed item);
 * - between the two (a file replaced by a link after the door checked it): refused before use.
 * A canary folder outside must be untouched at the end, and no canary text may appear in any history or response.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import sharp from 'sharp';
import { z } from 'zod';
import { startApi, type RunningApi } from '../../src/api/server';
import { TemporalLink } from '../../src/api/temporal-link';
import { JOB_CATALOG, JOB_TYPES } from '../../src/shared/job-catalog';
import { createTestWorker, startTestStack, testJobs, uniqueTaskQueue, type TestStack } from '../helpers/temporal';
import { SOURCES, makeVideo } from '../helpers/videos';

const CANARY = `CANARY-${randomUUID()}`;
/** Every path field says so in its schema (data-dir paths, and files or folders that may also be in a bucket). */
const DATA_PATH_DESCRIPTION = /a path inside the data dir/i;

type Kind = 'file' | 'folder' | 'new file' | 'new folder';
interface Target {
  type: string;
  /** A valid input, apart from the attacked field. */
  input: Record<string, unknown>;
  /** Where the field is, e.g. ['pages', 0, 'input']. */
  field: (string | number)[];
  kind: Kind;
}

/** A valid input of every job with path fields; the attacks replace one field at a time. */
const BASE: Record<string, Record<string, unknown>> = {
  processMedia: { input: 'photos/page.png', outputDir: 'out/media', operations: [{ op: 'grayscale' }] },
  restoreDocument: {
    input: 'photos/page.png',
    output: 'out/restored.png',
    reference: 'photos/page.png',
    steps: ['model'],
    model: 'models/sec/best.json',
  },
  restoreBatch: {
    inputDir: 'photos',
    outputDir: 'out/batch',
    referenceDir: 'photos',
    steps: ['model'],
    model: 'models/sec/best.json',
  },
  generateSamplePages: { outputDir: 'out/samples', count: 1, width: 200, height: 200 },
  sendBulkEmail: { recipientsFile: 'lists/recipients.csv', subject: 'Hi', templateFile: 'lists/template.txt' },
  analyzeCuts: { video: 'videos/clip.mp4', outputDir: 'out/cuts' },
  generateSyntheticData: { datasetId: 'attack', pages: 2, width: 256, height: 256, outputDir: 'out/dataset' },
  trainModel: {
    layer: 'layer2',
    dataset: 'datasets/sec',
    epochs: 1,
    fineTuneFrom: 'models/sec/best.json',
    layer1Model: 'models/sec/best.json',
    evaluate: false,
  },
  evaluateModel: {
    model: 'models/sec/best.json',
    pages: [{ input: 'photos/page.png', reference: 'photos/page.png' }],
    output: 'out/evaluation.json',
  },
};

/** What each path field names (decides which attacks make sense); every dataPath field must be listed. */
const KINDS: Record<string, Kind> = {
  'processMedia.input': 'file',
  'processMedia.outputDir': 'new folder',
  'restoreDocument.input': 'file',
  'restoreDocument.output': 'new file',
  'restoreDocument.reference': 'file',
  'restoreDocument.model': 'file',
  'restoreBatch.inputDir': 'folder',
  'restoreBatch.inputs.*': 'file',
  'restoreBatch.outputDir': 'new folder',
  'restoreBatch.referenceDir': 'folder',
  'restoreBatch.model': 'file',
  'generateSamplePages.outputDir': 'new folder',
  'sendBulkEmail.recipientsFile': 'file',
  'sendBulkEmail.templateFile': 'file',
  'sendBulkEmail.stateDir': 'new folder',
  'analyzeCuts.video': 'file',
  'analyzeCuts.outputDir': 'new folder',
  'generateSyntheticData.outputDir': 'new folder',
  'trainModel.dataset': 'folder',
  'trainModel.fineTuneFrom': 'file',
  'trainModel.layer1Model': 'file',
  'trainModel.modelDir': 'new folder',
  'evaluateModel.model': 'file',
  'evaluateModel.dataset': 'folder',
  'evaluateModel.pages.*.input': 'file',
  'evaluateModel.pages.*.reference': 'file',
  'evaluateModel.output': 'new file',
};

/** Every dataPath field of every job type, from the catalog's JSON schemas (`*` for an array's items). */
function pathFields(): string[] {
  const found: string[] = [];
  const walk = (schema: Record<string, unknown>, at: string[]) => {
    if (typeof schema.description === 'string' && DATA_PATH_DESCRIPTION.test(schema.description)) {
      found.push(at.join('.'));
    }
    const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
    for (const [name, property] of Object.entries(properties)) walk(property, [...at, name]);
    if (schema.items) walk(schema.items as Record<string, unknown>, [...at, '*']);
    for (const option of (schema.anyOf ?? schema.allOf ?? []) as Record<string, unknown>[]) walk(option, at);
  };
  for (const type of JOB_TYPES) {
    walk(z.toJSONSchema(JOB_CATALOG[type].schema, { io: 'input' }) as Record<string, unknown>, [type]);
  }
  return found.sort();
}

function targets(): Target[] {
  return Object.entries(KINDS).map(([key, kind]) => {
    const [type = '', ...rest] = key.split('.');
    const input = structuredClone(BASE[type] ?? {});
    // restoreBatch takes inputDir or inputs, and restoreDocument's reference is optional: attack each on its own.
    if (key === 'restoreBatch.inputs.*') {
      delete input.inputDir;
      input.inputs = ['photos/page.png', 'photos/page.png'];
    }
    if (key === 'evaluateModel.dataset') delete input.pages;
    if (key === 'trainModel.dataset' || key === 'trainModel.fineTuneFrom') delete input.layer1Model;
    if (key === 'trainModel.layer1Model') delete input.fineTuneFrom;
    // The second of a batch's inputs (the first stays good); the only page of an evaluation.
    const item = type === 'restoreBatch' ? 1 : 0;
    const field = rest.map((part): string | number => (part === '*' ? item : part));
    return { type, input, field, kind };
  });
}

/** Link attacks for a field: where each value really leads is the canary folder outside. */
function linkAttacks(kind: Kind): string[] {
  switch (kind) {
    case 'file':
      return ['links/file-out', 'links/dir-out/secret.txt'];
    case 'folder':
      return ['links/dir-out', 'links/relative-out'];
    case 'new file':
      return ['links/dir-out/written-by-backroom.png', 'links/dangling-out'];
    case 'new folder':
      return ['links/dir-out', 'links/dir-out/new-folder'];
  }
}

function withField(target: Target, value: string): Record<string, unknown> {
  // Each attack writes its valid outputs to a folder of its own (a batch reuses the state it finds in its folder).
  const own = `out/${randomUUID().slice(0, 8)}/`;
  const input = JSON.parse(JSON.stringify(target.input).replace(/"out\//g, `"${own}`)) as Record<string, unknown>;
  let holder = input as Record<string | number, unknown>;
  for (const part of target.field.slice(0, -1)) holder = holder[part] as Record<string | number, unknown>;
  holder[target.field.at(-1) ?? ''] = value;
  return input;
}

const fieldName = (target: Target) => target.field.join('.');

/** Every file under `dir` with its content, to prove nothing outside changed. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, file)] = entry.isFile()
      ? `${statSync(file).mtimeMs}:${readFileSync(file, 'utf8')}`
      : 'folder';
  }
  return files;
}

/** All the messages of an error and its causes (a workflow failure wraps the activity's). */
function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    parts.push(e.message ?? '');
  }
  return parts.join(' ← ');
}

describe('hostile paths: every path field of every job, at the door and past it', () => {
  let stack: TestStack;
  let api: RunningApi;
  let data: string;
  let outside: string;
  let before_: Record<string, string>;
  const responses: string[] = [];
  const startedIds: string[] = [];

  before(async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'backroom-security-'));
    data = path.join(root, 'data');
    outside = path.join(root, 'outside');
    process.env.BACKROOM_DATA_DIR = data;
    // The canary: what an attacker would like to read, and where they would like to write.
    mkdirSync(path.join(outside, 'folder'), { recursive: true });
    writeFileSync(path.join(outside, 'folder', 'secret.txt'), CANARY);
    writeFileSync(path.join(outside, 'canary.txt'), `email,${CANARY}\n${CANARY}@example.com,x\n`);
    for (const dir of ['photos', 'lists', 'videos', 'links', 'out'])
      mkdirSync(path.join(data, dir), { recursive: true });
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#f0f0f0' } })
      .png()
      .toFile(path.join(data, 'photos', 'page.png'));
    writeFileSync(path.join(data, 'lists', 'recipients.csv'), 'email\nada@example.com\n');
    writeFileSync(path.join(data, 'lists', 'template.txt'), 'Hello');
    makeVideo(path.join(data, 'videos', 'clip.mp4'), [
      { source: SOURCES.bars, seconds: 1 },
      { source: SOURCES.moving, seconds: 1 },
    ]);
    symlinkSync(path.join(outside, 'folder'), path.join(data, 'links', 'dir-out'));
    symlinkSync('../../outside/folder', path.join(data, 'links', 'relative-out'));
    symlinkSync(path.join(outside, 'canary.txt'), path.join(data, 'links', 'file-out'));
    symlinkSync(
      path.join(outside, 'folder', 'created-through-a-dangling-link'),
      path.join(data, 'links', 'dangling-out'),
    );

    stack = await startTestStack('security');
    api = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit: 1024 * 1024 },
      { link: new TemporalLink({ connect: async () => stack.jobs }) },
    );
    // A real dataset and model, so that attacks on one field of a training job meet valid other fields.
    const dataset = await stack.jobs.start('generateSyntheticData', {
      datasetId: 'sec',
      pages: 2,
      width: 256,
      height: 256,
      patchesPerPage: 8,
      augment: false,
    });
    await stack.jobs.result(dataset.id);
    const training = await stack.jobs.start('trainModel', {
      layer: 'layer1',
      dataset: 'datasets/sec',
      epochs: 1,
      modelName: 'sec',
      evaluate: false,
      batchSize: 64,
    });
    await stack.jobs.result(training.id);
    before_ = snapshot(outside);
  });

  after(async () => {
    await api?.close();
    await stack?.stop();
  });

  it('attacks every path field the job catalog declares', () => {
    assert.deepEqual(pathFields(), Object.keys(KINDS).sort());
  });

  it('the HTTP API refuses every attack with 400 naming the field, before any job starts', async () => {
    const lexical = [
      '../outside/canary.txt',
      path.join(outside, 'canary.txt'),
      'photos/a\u0000b.png',
      'x'.repeat(4096),
    ];
    for (const target of targets()) {
      for (const value of [...linkAttacks(target.kind), ...lexical]) {
        const response = await fetch(`${api.url}/jobs/${target.type}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(withField(target, value)),
        });
        const text = await response.text();
        responses.push(text);
        const what = `${target.type}.${fieldName(target)} = ${JSON.stringify(value.slice(0, 60))}`;
        assert.equal(response.status, 400, `${what}: ${text}`);
        const body = JSON.parse(text) as { issues?: string[] };
        assert.ok(
          body.issues?.some((issue) => issue.startsWith(`${fieldName(target)}: `)),
          `${what}: ${text}`,
        );
      }
    }
    // The valid inputs themselves pass the door (so the refusals above are about the attacked field).
    for (const [type, input] of Object.entries(BASE)) {
      const response = await fetch(`${api.url}/jobs/${type}?id=door-check-${type}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      responses.push(await response.text());
      assert.equal(response.status, 202, `${type}: ${responses.at(-1)}`);
      startedIds.push(`door-check-${type}`);
    }
  });

  it('past the door, every activity refuses paths that lead outside; a bad batch input is one failed item', async () => {
    const client = stack.env.client;
    const attacks = targets().flatMap((target) =>
      [...linkAttacks(target.kind), '../outside/canary.txt'].map((value) => ({ target, value })),
    );
    const outcomes = await Promise.all(
      attacks.map(async ({ target, value }) => {
        const workflowId = `attack-${target.type}-${randomUUID().slice(0, 8)}`;
        startedIds.push(workflowId);
        const handle = await client.workflow.start(target.type, {
          taskQueue: stack.taskQueue,
          workflowId,
          args: [withField(target, value)],
        });
        const what = `${target.type}.${fieldName(target)} = ${value}`;
        try {
          return { what, target, result: await handle.result() };
        } catch (err) {
          assert.ok(err instanceof WorkflowFailedError, `${what}: ${String(err)}`);
          return { what, target, error: messages(err) };
        }
      }),
    );
    for (const outcome of outcomes) {
      if (outcome.target.type === 'restoreBatch' && fieldName(outcome.target) === 'inputs.1') {
        const result = outcome.result as { succeeded: number; failed: number; summary: string } | undefined;
        assert.ok(result, `${outcome.what}: the batch failed as a whole (${outcome.error})`);
        assert.equal(result.succeeded, 1, outcome.what);
        assert.equal(result.failed, 1, outcome.what);
        assert.match(result.summary, /outside the data dir/, outcome.what);
        continue;
      }
      assert.ok(outcome.error, `${outcome.what}: completed (${JSON.stringify(outcome.result)})`);
      assert.match(outcome.error, /outside the data dir/, `${outcome.what}: ${outcome.error}`);
    }
  });

  it('a file replaced by a link between the door check and the activity is refused before use', async () => {
    const taskQueue = uniqueTaskQueue('security-swap');
    const jobs = testJobs(stack.env, taskQueue);
    await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } })
      .png()
      .toFile(path.join(data, 'photos', 'swap.png'));
    mkdirSync(path.join(data, 'out', 'swap-out'));
    // The door checks real files and folders; no worker runs on this queue yet.
    const read = await jobs.start('processMedia', { input: 'photos/swap.png', operations: [{ op: 'grayscale' }] });
    const write = await jobs.start('processMedia', {
      input: 'photos/page.png',
      outputDir: 'out/swap-out',
      operations: [{ op: 'grayscale' }],
    });
    startedIds.push(read.id, write.id);
    // Then someone swaps them for links to the canary.
    renameSync(path.join(data, 'photos', 'swap.png'), path.join(data, 'photos', 'swap-old.png'));
    symlinkSync(path.join(outside, 'canary.txt'), path.join(data, 'photos', 'swap.png'));
    rmSync(path.join(data, 'out', 'swap-out'), { recursive: true });
    symlinkSync(path.join(outside, 'folder'), path.join(data, 'out', 'swap-out'));
    const worker = await createTestWorker(stack.env, taskQueue);
    await worker.runUntil(async () => {
      for (const job of [read, write]) {
        await assert.rejects(jobs.result(job.id), (err: unknown) => {
          assert.match(messages(err), /leads outside the data dir/);
          return true;
        });
      }
    });
  });

  it('leaves the canary untouched and never shows its text, in any history or response', async () => {
    assert.deepEqual(snapshot(outside), before_);
    const client = stack.env.client;
    for (const id of startedIds) {
      // Status as the API shows it, and the raw history as the UI and `temporal workflow show` see it.
      const status = await fetch(`${api.url}/jobs/${encodeURIComponent(id)}`);
      responses.push(await status.text());
      const history = await client.workflow.getHandle(id).fetchHistory();
      const text = JSON.stringify(history, (_key, value: unknown) =>
        value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
      );
      assert.ok(!text.includes(CANARY), `the history of ${id} holds the canary's text`);
    }
    for (const response of responses) assert.ok(!response.includes(CANARY), response.slice(0, 300));
  });
});
