/** The project's own test files in test/fixtures (origins and licences in its SOURCES.md). */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const FIXTURES_DIR = path.resolve(__dirname, '../fixtures');

/** The full path of a fixture, e.g. `images/landscape.jpg`; throws, naming the file, if it is not there. */
export function fixtureFile(relative: string): string {
  const full = path.join(FIXTURES_DIR, relative);
  if (!existsSync(full)) {
    throw new Error(`Test fixture missing: ${full} (see test/fixtures/SOURCES.md).`);
  }
  return full;
}
