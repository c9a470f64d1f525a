/**
 * Where Temporal is and how to reach it: `@temporalio/envconfig` profiles (a TOML file, `TEMPORAL_PROFILE`) and
 * the standard environment variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
 * `TEMPORAL_TLS_*`), so the same code runs on the local dev server, a self-hosted cluster or Temporal Cloud.
 */
import { Client, Connection, type DataConverter } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { dataConverter } from '../codec/data-converter';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';

export interface TemporalTarget {
  connectionOptions: NativeConnectionOptions & { address: string };
  namespace: string;
}

/** The connection settings in force (profile, then environment, then the local dev server's defaults). */
export function temporalTarget(): TemporalTarget {
  const config = loadClientConnectConfig();
  return {
    connectionOptions: { ...config.connectionOptions, address: config.connectionOptions.address ?? DEFAULT_ADDRESS },
    namespace: config.namespace ?? 'default',
  };
}

/** Explains an unreachable server in words that say what to do. */
export function unreachableMessage(address: string, err: unknown): string {
  const cause = err instanceof Error ? err.message : String(err);
  return (
    `Cannot reach Temporal at ${address} (${cause}).\n` +
    `Start a local one with \`npm run server\` (or everything with \`npm start\`), ` +
    `or point TEMPORAL_ADDRESS at your cluster.`
  );
}

/**
 * A client for the configured namespace; fails with a helpful message when the server does not answer. Payloads
 * are encrypted when a key is configured (see src/codec), so the CLI, the API and `npm start` read and write alike.
 */
export async function connectClient(
  target: TemporalTarget = temporalTarget(),
  converter: DataConverter | undefined = dataConverter(),
): Promise<Client> {
  const { address } = target.connectionOptions;
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new Error(unreachableMessage(address, err));
  }
  return new Client({ connection, namespace: target.namespace, ...(converter && { dataConverter: converter }) });
}
