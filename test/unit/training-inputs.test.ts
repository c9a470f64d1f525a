/**
 * `trainModel`'s `runId` input was renamed `modelName`: the old name still works for one release, with a warning, and
 * means the same thing everywhere (schema, job id, start answer). Checkpoints written before `position.runId` was
 * renamed `firstRunId` still read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { JOB_CATALOG, JobInputError, inputWarnings, parseJobInput } from '../../src/shared/job-catalog';
import { trainModelInput } from '../../src/shared/training-inputs';
import { Jobs } from '../../src/client/jobs';
import { fieldsFromFlags } from '../../src/client/cli';
import { readCheckpoint, writeCheckpoint } from '../../src/activities/training/checkpoint';
import { DEFAULT_ARCHITECTURE, WEIGHT_NAMES, weightShapes, type Weights } from '../../src/activities/training/model';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-unit-training-inputs-'));
process.env.BACKROOM_DATA_DIR = dataDir;

const base = { layer: 'layer1', dataset: 'datasets/demo', epochs: 2 };
const parse = (input: Record<string, unknown>) => parseJobInput('trainModel', trainModelInput, input);

describe('trainModel: runId → modelName', () => {
  it('maps the old runId to modelName and warns about it', () => {
    const parsed = parse({ ...base, runId: 'old-name' });
    assert.equal(parsed.modelName, 'old-name');
    assert.ok(!('runId' in parsed), 'nothing past the parse sees runId');
    const warnings = inputWarnings('trainModel', { ...base, runId: 'old-name' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /runId is deprecated: use modelName/);
  });

  it('takes modelName without a warning, and the same name under both fields', () => {
    assert.equal(parse({ ...base, modelName: 'new-name' }).modelName, 'new-name');
    assert.deepEqual(inputWarnings('trainModel', { ...base, modelName: 'new-name' }), []);
    assert.deepEqual(inputWarnings('simpleTest', { runId: 'x' }), [], 'other job types have no renamed fields');
    const both = parse({ ...base, modelName: 'same', runId: 'same' });
    assert.equal(both.modelName, 'same');
    assert.ok(!('runId' in both));
  });

  it('refuses runId and modelName with different values, naming runId', () => {
    assert.throws(
      () => parse({ ...base, modelName: 'new-name', runId: 'old-name' }),
      (err: unknown) => {
        assert.ok(err instanceof JobInputError);
        assert.deepEqual(err.issues, [
          'runId: runId is the old name of modelName and names the same thing: give modelName only',
        ]);
        return true;
      },
    );
  });

  it('still checks the old name like the new one', () => {
    assert.throws(() => parse({ ...base, runId: '../escape' }), /runId: use 1-64 letters/);
  });

  it('takes --model-name and the old --run-id from the CLI', () => {
    assert.deepEqual(fieldsFromFlags(['--model-name', 'a']), { modelName: 'a' });
    assert.equal(parse({ ...base, ...fieldsFromFlags(['--run-id', 'b']) }).modelName, 'b');
  });

  it('starts the same job under either name; the start with runId carries the warning', async () => {
    const started: { workflowId: string; args: unknown[] }[] = [];
    const client = {
      workflow: {
        start: async (_type: string, options: { workflowId: string; args: unknown[] }) => {
          started.push(options);
          return { firstExecutionRunId: `run-${started.length}` };
        },
      },
    } as unknown as Client;
    const jobs = new Jobs(client, 'test-queue');
    const old = await jobs.start('trainModel', { ...base, runId: 'shared' });
    const current = await jobs.start('trainModel', { ...base, modelName: 'shared' });
    assert.equal(old.id, 'train-layer1-shared');
    assert.equal(current.id, 'train-layer1-shared');
    assert.match(old.warnings?.[0] ?? '', /runId is deprecated: use modelName/);
    assert.equal(current.warnings, undefined);
    // The workflow gets the new name only, so what it records and passes on does not depend on how it was asked.
    assert.deepEqual(started[0]?.args, started[1]?.args);
    assert.equal((started[0]?.args[0] as { modelName?: string }).modelName, 'shared');
  });

  it('lists runId as deprecated in the catalog, and its example uses modelName', () => {
    assert.equal(JOB_CATALOG.trainModel.idField, 'modelName');
    assert.deepEqual(JOB_CATALOG.trainModel.renamedFields, { runId: 'modelName' });
    assert.ok('modelName' in JOB_CATALOG.trainModel.example);
  });
});

describe('checkpoints: position.runId → firstRunId', () => {
  it('reads a checkpoint written before the rename, and writes the new name', async () => {
    const shapes = weightShapes(DEFAULT_ARCHITECTURE);
    const weights = Object.fromEntries(
      WEIGHT_NAMES.map((name) => [name, new Float32Array(shapes[name].reduce((a, b) => a * b, 1))]),
    ) as Weights;
    const file = path.join(dataDir, 'checkpoint.json');
    const position = { firstRunId: 'first-run', epoch: 1, batch: 0, lossSum: 0, samples: 0 };
    await writeCheckpoint(file, {
      layer: 'layer1',
      architecture: DEFAULT_ARCHITECTURE,
      weights,
      learningRate: 0.002,
      optimizer: [],
      position,
    });
    const written = JSON.parse(readFileSync(file, 'utf8')) as { position: Record<string, unknown> };
    assert.deepEqual(written.position, position);
    assert.deepEqual((await readCheckpoint(file)).position, position);

    const { firstRunId, ...rest } = position;
    writeFileSync(file, JSON.stringify({ ...written, position: { runId: firstRunId, ...rest } }));
    assert.deepEqual((await readCheckpoint(file)).position, position);

    writeFileSync(file, JSON.stringify({ ...written, position: rest }));
    await assert.rejects(readCheckpoint(file), /position\.firstRunId/);
  });
});
