/**
 * A payload codec that encrypts every payload with AES-256-GCM before it leaves the process, so Temporal's history
 * (and anyone reading it without the key) sees ciphertext only. The whole original payload, its metadata included,
 * is the plaintext; the encrypted payload says `encoding: binary/encrypted` and names its key in
 * `encryption-key-id`. Payloads that are not encrypted pass through `decode` as they are, so history written before
 * encryption was turned on stays readable.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { EncryptionKey } from './keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ProtoPayload = temporal.api.common.v1.Payload;

/** A payload that cannot be decrypted: unknown key, or ciphertext (or its key id) altered. */
export class PayloadDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadDecryptionError';
  }
}

const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

export class EncryptionCodec implements PayloadCodec {
  private readonly keys: ReadonlyMap<string, Buffer>;
  /** The id of the key that encrypts (the first one given). */
  readonly encryptingKeyId: string;

  constructor(keys: readonly EncryptionKey[]) {
    const first = keys[0];
    if (!first) throw new Error('EncryptionCodec needs at least one key');
    this.encryptingKeyId = first.id;
    this.keys = new Map(keys.map(({ id, key }) => [id, key]));
  }

  /** The ids of every key that decrypts, the encrypting one first. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  /** iv (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes); the key id is authenticated data, so it cannot be swapped. */
  encrypt(payload: Payload): Payload {
    const id = this.encryptingKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.keys.get(id) as Buffer, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const plaintext = ProtoPayload.encode(payload).finish();
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      metadata: {
        encoding: Buffer.from(ENCRYPTED_ENCODING, 'utf8'),
        [KEY_ID_METADATA]: Buffer.from(id, 'utf8'),
      },
      data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
    };
  }

  decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
    const id = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!id)
      throw new PayloadDecryptionError(`An encrypted payload has no ${KEY_ID_METADATA}: it cannot be decrypted.`);
    const key = this.keys.get(id);
    if (!key) {
      throw new PayloadDecryptionError(
        `A payload is encrypted with key "${id}", which is not among the configured keys (${this.keyIds.join(', ')}): ` +
          `add it, after the current key, to BACKROOM_ENCRYPTION_KEYS or the key file.`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`A payload encrypted with key "${id}" is too short to be ciphertext.`);
    }
    const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(
        `A payload encrypted with key "${id}" fails authentication: its ciphertext or key id was altered, ` +
          `or the key named "${id}" here is not the one that encrypted it.`,
      );
    }
    return ProtoPayload.decode(plaintext);
  }
}
