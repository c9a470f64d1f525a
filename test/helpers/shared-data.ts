/** The real-world test files in ../shared/data (see its SOURCES.md), found from the project root. */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const SHARED_DATA_DIR = path.resolve(__dirname, '../../../shared/data');

export function sharedDataFile(relative: string): string {
  const full = path.join(SHARED_DATA_DIR, relative);
  if (!existsSync(full)) {
    throw new Error(
      `Test data missing: ${full}. The tests expect the shared data set at ../shared/data next to the project ` +
        '(see shared/data/SOURCES.md).',
    );
  }
  return full;
}
