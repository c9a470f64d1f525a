/**
 * The OpenAPI document, with and without an API key: Redocly's recommended rules find nothing in it, and the key is
 * declared on exactly the operations whose routes check it. No server needed; the linter runs offline.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openApiDocument } from '../../src/api/openapi';
import { PROJECT_ROOT } from '../helpers/processes';

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

type Operations = Record<string, Record<string, { operationId: string; security?: unknown[]; responses: object }>>;

const REDOCLY = path.join(PROJECT_ROOT, 'node_modules/.bin/redocly');

/**
 * Problems that are not problems. `/healthz` has no 4xx answer because it has none: it needs no key, takes no
 * input and answers 200 even while Temporal is down. Listed by location, so the rule still checks every other
 * operation, and the test fails if the exception goes stale.
 */
const LINT_IGNORE = `operation-4xx-response:
  - '#/paths/~1healthz/get/responses'
`;

/** Runs `redocly lint` on the document in a temporary dir, offline: no telemetry, no update check. */
function lint(document: Record<string, unknown>): Promise<LintReport> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'openapi-lint-'));
  writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(document, null, 2));
  // A config of our own, so no redocly.yaml elsewhere (nor a Redocly account) changes the rules.
  writeFileSync(path.join(dir, 'redocly.yaml'), 'extends:\n  - recommended\n');
  writeFileSync(
    path.join(dir, '.redocly.lint-ignore.yaml'),
    `openapi.json:\n${LINT_IGNORE.replace(/^/gm, '  ').trimEnd()}\n`,
  );
  return new Promise((resolve, reject) => {
    execFile(
      REDOCLY,
      ['lint', 'openapi.json', '--config=redocly.yaml', '--format=json'],
      {
        cwd: dir,
        timeout: 60_000,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true', CI: 'true' },
      },
      (err, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        // It exits 1 when it finds errors; the report on stdout says which.
        try {
          resolve(JSON.parse(stdout) as LintReport);
        } catch {
          reject(new Error(`redocly lint gave no report (${err?.message ?? 'exit 0'}): ${stderr}${stdout}`));
        }
      },
    );
  });
}

function operations(document: Record<string, unknown>) {
  return Object.entries(document.paths as Operations).flatMap(([route, item]) =>
    Object.entries(item).map(([method, operation]) => ({ route, method, ...operation })),
  );
}

describe('OpenAPI document', () => {
  for (const apiKey of [true, false]) {
    const setting = apiKey ? 'with an API key' : 'without an API key';
    it(`passes redocly lint (recommended rules) with no error and no warning, ${setting}`, async () => {
      const report = await lint(openApiDocument({ apiKey }));
      const found = report.problems.map(
        (problem) => `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`,
      );
      assert.deepEqual(found, []);
      assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 1 }, 'the one exception is still needed');
    });
  }

  it('declares the key on every operation but /healthz when a key is set, with its 401 answer', () => {
    const document = openApiDocument({ apiKey: true });
    const schemes = (document.components as { securitySchemes?: Record<string, { type: string }> }).securitySchemes;
    assert.deepEqual(Object.keys(schemes ?? {}), ['bearer', 'apiKeyHeader']);
    assert.equal(document.security, undefined, 'each operation says it, not a default');
    for (const operation of operations(document)) {
      const where = `${operation.method} ${operation.route}`;
      if (operation.route === '/healthz') {
        assert.deepEqual(operation.security, [], where);
        assert.ok(!('401' in operation.responses), where);
      } else {
        assert.deepEqual(operation.security, [{ bearer: [] }, { apiKeyHeader: [] }], where);
        assert.ok('401' in operation.responses, where);
      }
    }
  });

  it('declares no scheme and an explicitly empty security when no key is set', () => {
    const document = openApiDocument({ apiKey: false });
    assert.equal((document.components as { securitySchemes?: unknown }).securitySchemes, undefined);
    assert.deepEqual(document.security, []);
    for (const operation of operations(document)) {
      const where = `${operation.method} ${operation.route}`;
      assert.ok(operation.security === undefined || operation.security.length === 0, where);
      assert.ok(!('401' in operation.responses), where);
    }
  });
});
