/**
 * One in-process cache for files that activities read again and again (a batch's manifest per item, a model per page,
 * a campaign per send batch, a dataset's decoded patches per epoch). An entry is keyed by the file's real path and the
 * parser that made it, and is valid for one version of the file (size, mtime and inode): a file replaced in place
 * (a rewritten manifest, a regenerated dataset) is read again. Entries of different runs live side by side, so
 * several activities of different jobs on one worker each get their own file's content: nothing assumes that a
 * worker serves one run after another.
 */
import { realpath, stat } from 'node:fs/promises';

/**
 * How many parsed files are kept. Bounded by count, not bytes: an entry's memory is what its parser made (a small
 * JSON manifest, or a dataset's patches decoded into shared memory), which the file's size does not tell. A handful
 * covers the jobs a 2-core worker runs at once (its activity slots) with room for a model or two they share.
 */
export const FILE_CACHE_ENTRIES = 16;

interface Entry {
  version: string;
  value: Promise<unknown>;
}

/** Insertion order is recency order: a hit moves its entry to the end, the first entry is the least recently used. */
const entries = new Map<string, Entry>();

/** A stable number per parser function, so two parsers of one file keep two entries. */
const parserIds = new WeakMap<object, number>();
let nextParserId = 0;
function parserId(parse: object): number {
  let id = parserIds.get(parse);
  if (id === undefined) {
    id = nextParserId++;
    parserIds.set(parse, id);
  }
  return id;
}

/**
 * `parse(file)` for this version of `file`, from the cache when it was parsed before. `parse` does the reading itself
 * (through the data-dir checks) and must depend on the file only, so pass a module-level function, not a new closure
 * per call (a new closure is a new parser: it would never hit). A file that cannot be found is not cached: `parse`
 * runs and reports it. A parse that fails is forgotten, so the next call tries again. Concurrent calls for the same
 * version share one parse.
 */
export async function readCached<T>(file: string, parse: (file: string) => Promise<T>): Promise<T> {
  const real = await realpath(file).catch(() => undefined);
  const info = real && (await stat(real).catch(() => undefined));
  if (!real || !info) return parse(file);
  return remember(`${parserId(parse)}:${real}`, `${info.size}:${info.mtimeMs}:${info.ino}`, () => parse(file));
}

/**
 * `parse(await load())` for one version of something that is not a local file (an object in a bucket: `key` is its
 * location, `version` what its HEAD said), from the cache when that version was parsed before. The same rules as
 * {@link readCached}: `parse` is a module-level function, a failure is forgotten, concurrent calls share one load.
 */
export async function readCachedVersion<T>(
  key: string,
  version: string,
  parse: (data: Buffer) => T,
  load: () => Promise<Buffer>,
): Promise<T> {
  return remember(`${parserId(parse)}:${key}`, version, async () => parse(await load()));
}

function remember<T>(key: string, version: string, make: () => Promise<T>): Promise<T> {
  let entry = entries.get(key);
  if (entry?.version === version) {
    entries.delete(key);
    entries.set(key, entry);
    return entry.value as Promise<T>;
  }
  // A file replaced between the stat and the read is cached under the older version: the next call reads it again.
  const value = make();
  entry = { version, value };
  entries.delete(key);
  entries.set(key, entry);
  const mine = entry;
  value.catch(() => {
    if (entries.get(key) === mine) entries.delete(key);
  });
  while (entries.size > FILE_CACHE_ENTRIES) entries.delete(entries.keys().next().value!);
  return value;
}

/** How many files the cache holds (for tests). */
export function fileCacheSize(): number {
  return entries.size;
}
