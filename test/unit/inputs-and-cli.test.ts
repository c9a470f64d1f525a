/** Input validation (one schema for CLI, API and workflows) and the CLI's flag parsing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JOB_CATALOG, JobInputError, parseJobInput } from '../../src/shared/job-catalog';
import { fieldsFromFlags } from '../../src/client/cli';
import { newJobId } from '../../src/client/jobs';

describe('job inputs', () => {
  it('fills in defaults', () => {
    assert.deepEqual(parseJobInput('simpleTest', JOB_CATALOG.simpleTest.schema, {}), {
      message: 'hello from Backroom',
      durationSeconds: 10,
    });
  });

  it('names every bad field', () => {
    assert.throws(
      () =>
        parseJobInput('simpleTest', JOB_CATALOG.simpleTest.schema, { durationSeconds: -3, message: 5, colour: 'red' }),
      (err: unknown) => {
        assert.ok(err instanceof JobInputError);
        assert.equal(err.issues.length, 3);
        assert.match(err.message, /durationSeconds: Too small/);
        assert.match(err.message, /message: Invalid input: expected string/);
        assert.match(err.message, /colour: unknown field/);
        return true;
      },
    );
  });

  it('refuses a fractional number of items and an unknown mode', () => {
    assert.throws(() => parseJobInput('stressTest', JOB_CATALOG.stressTest.schema, { count: 2.5 }), /count: /);
    assert.throws(() => parseJobInput('stressTest', JOB_CATALOG.stressTest.schema, { mode: 'threads' }), /mode: /);
  });

  it('has a valid example for every job type', () => {
    for (const [type, definition] of Object.entries(JOB_CATALOG)) {
      assert.doesNotThrow(() => parseJobInput(type, definition.schema, definition.example), type);
    }
  });
});

describe('backroom start flags', () => {
  it('turns --kebab-case flags into camelCase fields with JSON values', () => {
    assert.deepEqual(fieldsFromFlags(['--duration-seconds', '30', '--message', 'hi there', '--mode=children']), {
      durationSeconds: 30,
      message: 'hi there',
      mode: 'children',
    });
  });

  it('refuses a flag without a value and a stray word', () => {
    assert.throws(() => fieldsFromFlags(['--message']), /--message needs a value/);
    assert.throws(() => fieldsFromFlags(['oops']), /Unexpected argument "oops"/);
  });

  it('makes readable, unique workflow ids with the job prefix', () => {
    const id = newJobId('simpleTest', new Date('2026-01-02T03:04:05Z'));
    assert.match(id, /^simple-test-20260102-030405-[0-9a-f]{6}$/);
    assert.notEqual(newJobId('simpleTest'), newJobId('simpleTest'));
  });
});
