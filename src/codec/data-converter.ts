/**
 * How every Backroom process (worker, CLI, HTTP API, `npm start`) turns payload encryption on: with a key configured
 * they all share one data converter whose codec encrypts; without one (the default) they use Temporal's own.
 */
import type { DataConverter } from '@temporalio/common';
import { codecEndpoint } from '../config';
import { EncryptionCodec } from './encryption-codec';
import { configuredKeys, type EncryptionKey } from './keys';

/** The encryption codec for the configured keys, or undefined when encryption is off. Throws on a bad key setting. */
export function encryptionCodec(keys: EncryptionKey[] | undefined = configuredKeys()): EncryptionCodec | undefined {
  return keys && new EncryptionCodec(keys);
}

/**
 * The data converter for clients and workers: the encryption codec when a key is configured, else undefined. Failure
 * messages are then encoded too, so the codec encrypts them (a worker's workflow bundle must be built with
 * `failureConverterPath`: the bundle cache in src/workers keys its bundles on it).
 */
export function dataConverter(codec: EncryptionCodec | undefined = encryptionCodec()): DataConverter | undefined {
  return codec && { payloadCodecs: [codec], failureConverterPath: require.resolve('./encoded-failures') };
}

/** The codec endpoint the dev server's UI is started with: set when encryption is on, so the UI shows clear text. */
export function uiCodecEndpoint(): string | undefined {
  return configuredKeys() ? codecEndpoint() : undefined;
}

/** One line for start-up logs: whether payloads are encrypted, and with which keys. */
export function encryptionSummary(codec: EncryptionCodec | undefined): string {
  if (!codec) return 'Payload encryption is off (set BACKROOM_ENCRYPTION_KEY to turn it on).';
  const older = codec.keyIds.slice(1);
  return (
    `Payloads are encrypted (AES-256-GCM) with key "${codec.encryptingKeyId}"` +
    (older.length ? `; older keys still decrypt: ${older.join(', ')}.` : '.')
  );
}
