/**
 * The on-disk workflow bundle cache, on a small copy of a workflows folder: reused while nothing it was built from
 * changed, rebuilt when a workflow or a module it imports changes, and kept apart per failure converter.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import {
  bundleCacheDir,
  cachedWorkflowBundle,
  DEFAULT_BUNDLE_CACHE_DIR,
  type CachedBundle,
} from '../../src/workers/workflow-bundle-cache';

function codePathOf(cached: CachedBundle): string {
  assert.ok('codePath' in cached.bundle, 'the bundle is on disk');
  return cached.bundle.codePath;
}

describe('cachedWorkflowBundle', () => {
  const project = mkdtempSync(path.join(os.tmpdir(), 'bundle-cache-'));
  const workflowsDir = path.join(project, 'workflows');
  const greeting = path.join(project, 'shared', 'greeting.ts');
  const cacheDir = path.join(project, 'cache');
  const options = { workflowsPath: workflowsDir, cacheDir, logger: new DefaultLogger('WARN') };
  const writeGreeting = (text: string) => writeFileSync(greeting, `export const greeting = '${text}';\n`);

  before(() => {
    // The bundler resolves @temporalio/workflow from the workflows' folder upwards.
    symlinkSync(path.resolve(__dirname, '../../node_modules'), path.join(project, 'node_modules'));
    mkdirSync(workflowsDir);
    mkdirSync(path.dirname(greeting));
    writeGreeting('hello from version 1');
    writeFileSync(
      path.join(workflowsDir, 'index.ts'),
      "import { greeting } from '../shared/greeting';\nexport async function greet(): Promise<string> {\n  return greeting;\n}\n",
    );
  });

  it('builds once, then reuses the bundle on disk while the sources are unchanged', async () => {
    const first = await cachedWorkflowBundle(options);
    assert.equal(first.reused, false);
    assert.match(readFileSync(codePathOf(first), 'utf8'), /hello from version 1/);

    const second = await cachedWorkflowBundle(options);
    assert.equal(second.reused, true);
    assert.equal(codePathOf(second), codePathOf(first));
  });

  it('rebuilds when a module the workflows import changes, and drops the old bundle', async () => {
    const before = codePathOf(await cachedWorkflowBundle(options));
    writeGreeting('hello from version 2');

    const rebuilt = await cachedWorkflowBundle(options);
    assert.equal(rebuilt.reused, false);
    const code = readFileSync(codePathOf(rebuilt), 'utf8');
    assert.match(code, /hello from version 2/);
    assert.doesNotMatch(code, /hello from version 1/);
    assert.equal(existsSync(before), false);

    assert.equal((await cachedWorkflowBundle(options)).reused, true);
  });

  it('keeps a bundle with a failure converter apart from the one without', async () => {
    const converter = path.join(project, 'shared', 'failure-converter.ts');
    writeFileSync(converter, "export const failureConverter = { name: 'marker-of-the-test-failure-converter' };\n");
    const plain = await cachedWorkflowBundle(options);
    const withConverter = await cachedWorkflowBundle({ ...options, failureConverterPath: converter });
    assert.equal(withConverter.reused, false);
    assert.notEqual(codePathOf(withConverter), codePathOf(plain));
    assert.match(readFileSync(codePathOf(withConverter), 'utf8'), /marker-of-the-test-failure-converter/);
    assert.doesNotMatch(readFileSync(codePathOf(plain), 'utf8'), /marker-of-the-test-failure-converter/);

    // Both stay cached, and a change to the converter rebuilds only its own bundle.
    assert.equal((await cachedWorkflowBundle(options)).reused, true);
    writeFileSync(converter, "export const failureConverter = { name: 'second-marker-of-the-converter' };\n");
    const rebuilt = await cachedWorkflowBundle({ ...options, failureConverterPath: converter });
    assert.equal(rebuilt.reused, false);
    assert.match(readFileSync(codePathOf(rebuilt), 'utf8'), /second-marker-of-the-converter/);
    assert.equal((await cachedWorkflowBundle(options)).reused, true);
  });

  it('keeps bundles where BACKROOM_BUNDLE_CACHE_DIR says, when no folder is given', async () => {
    const elsewhere = path.join(project, 'elsewhere');
    const saved = process.env.BACKROOM_BUNDLE_CACHE_DIR;
    process.env.BACKROOM_BUNDLE_CACHE_DIR = elsewhere;
    try {
      assert.equal(bundleCacheDir(), elsewhere);
      const withoutFolder = { ...options, cacheDir: undefined };
      const built = await cachedWorkflowBundle(withoutFolder);
      assert.equal(path.dirname(codePathOf(built)), elsewhere);
      assert.equal((await cachedWorkflowBundle(withoutFolder)).reused, true);
    } finally {
      if (saved === undefined) delete process.env.BACKROOM_BUNDLE_CACHE_DIR;
      else process.env.BACKROOM_BUNDLE_CACHE_DIR = saved;
    }
    if (saved === undefined) assert.equal(bundleCacheDir(), DEFAULT_BUNDLE_CACHE_DIR);
  });
});
