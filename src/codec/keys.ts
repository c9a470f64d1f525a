/**
 * The keys that encrypt payloads. Each key has an id that travels with every payload it encrypts; the first key
 * encrypts and every listed key decrypts, so payloads written under an old key stay readable after a rotation.
 *
 * One setting turns encryption on (see `encryptionKeySetting` in src/config.ts):
 * - `BACKROOM_ENCRYPTION_KEY=<base64 of 32 bytes>` (or `<id>:<base64>`): one key;
 * - `BACKROOM_ENCRYPTION_KEYS="<id>:<base64>,<id>:<base64>"`: several, newest (the encrypting one) first;
 * - `BACKROOM_ENCRYPTION_KEY_FILE=<path>`: a file with one key per line in the same forms, `#` comments allowed.
 * A key without an id gets one from its SHA-256 fingerprint, so the same key has the same id wherever it is listed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { encryptionKeySetting } from '../config';

export interface EncryptionKey {
  /** Stored in the clear with each payload, to find the key again: a name, never the key. */
  id: string;
  /** 32 bytes, for AES-256-GCM. */
  key: Buffer;
}

/** A key setting that cannot be used; the message says which entry and how to fix it, never the key itself. */
export class EncryptionKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptionKeyError';
  }
}

export const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Standard or URL-safe base64, padded or not. */
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;
const HOW_TO_MAKE_ONE = 'make one with `openssl rand -base64 32`';

/** The id a key gets when none is given: the start of its SHA-256 fingerprint (it reveals nothing usable). */
export function keyFingerprint(key: Buffer): string {
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/**
 * Parses keys written as `[<id>:]<base64>` (`=` works as well as `:`), separated by commas or new lines; blank
 * lines and `#` comments are skipped. `source` names the setting in error messages. Throws EncryptionKeyError.
 */
export function parseEncryptionKeys(text: string, source: string): EncryptionKey[] {
  const entries = text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '' && !entry.startsWith('#'));
  if (entries.length === 0) throw new EncryptionKeyError(`${source} holds no key: ${HOW_TO_MAKE_ONE}.`);
  const keys = entries.map((entry, index) => {
    const where = entries.length > 1 ? `${source}, key ${index + 1}` : source;
    // Base64 has "=" only as its end padding, so a separator followed by more key text is an id's.
    const named = /^([^:=]*)[:=]([^=].*)$/.exec(entry);
    const [id, encoded] = named ? [named[1]?.trim() ?? '', named[2]?.trim() ?? ''] : [undefined, entry];
    if (id !== undefined && !KEY_ID.test(id)) {
      throw new EncryptionKeyError(
        `${where}: the key id must be 1 to 64 letters, digits, ".", "_" or "-" (written "<id>:<base64 key>").`,
      );
    }
    // Node's base64 decoder reads the URL-safe alphabet too.
    const key = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
    if (!key || key.length !== KEY_BYTES) {
      const got = key ? `${key.length} bytes` : 'not base64';
      throw new EncryptionKeyError(
        `${where}: a key must be ${KEY_BYTES} random bytes in base64 (${got}); ${HOW_TO_MAKE_ONE}.`,
      );
    }
    return { id: id ?? keyFingerprint(key), key };
  });
  const seen = new Set<string>();
  for (const { id } of keys) {
    if (seen.has(id)) throw new EncryptionKeyError(`${source}: the key id "${id}" is listed twice.`);
    seen.add(id);
  }
  return keys;
}

/** The configured keys (the encrypting one first), or undefined when encryption is off. Throws on a bad setting. */
export function configuredKeys(): EncryptionKey[] | undefined {
  const setting = encryptionKeySetting();
  if (!setting) return undefined;
  if (setting.name !== 'BACKROOM_ENCRYPTION_KEY_FILE') return parseEncryptionKeys(setting.value, setting.name);
  let text: string;
  try {
    text = readFileSync(setting.value, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new EncryptionKeyError(`BACKROOM_ENCRYPTION_KEY_FILE=${setting.value} cannot be read (${reason}).`);
  }
  return parseEncryptionKeys(text, `the key file ${setting.value} (BACKROOM_ENCRYPTION_KEY_FILE)`);
}
