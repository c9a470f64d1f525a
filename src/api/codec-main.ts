/**
 * `npm run codec-server`: the codec routes alone (`/codec/encode`, `/codec/decode`, and `/healthz`), for a machine
 * that decrypts for the Temporal UI or the `temporal` CLI without running the HTTP API. It needs the encryption keys
 * and no Temporal. Configured like the API: BACKROOM_API_HOST, BACKROOM_API_PORT, BACKROOM_API_KEY, and
 * BACKROOM_UI_ORIGIN for the browser origins CORS lets in.
 */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { encryptionCodec, encryptionSummary } from '../codec/data-converter';
import { apiSettings, uiOrigins } from '../config';
import { CODEC_PATH, codecRoutes } from './codec-routes';

async function main(): Promise<void> {
  const settings = apiSettings();
  const codec = encryptionCodec();
  if (!codec) {
    throw new Error(
      'No encryption key is configured: set BACKROOM_ENCRYPTION_KEY (or BACKROOM_ENCRYPTION_KEYS, or ' +
        'BACKROOM_ENCRYPTION_KEY_FILE) to the keys the workers use.',
    );
  }
  const allowedOrigins = uiOrigins();
  const app = Fastify({ logger: false });
  codecRoutes(app, { codec, allowedOrigins, ...(settings.apiKey && { apiKey: settings.apiKey }) });
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.listen({ host: settings.host, port: settings.port });
  const { port } = app.server.address() as AddressInfo;
  const host = ['0.0.0.0', '::'].includes(settings.host) ? '127.0.0.1' : settings.host;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}${CODEC_PATH}`;
  console.log(encryptionSummary(codec));
  console.log(
    `Codec server on ${endpoint} (POST ${CODEC_PATH}/encode, ${CODEC_PATH}/decode); UI origins: ${allowedOrigins.join(', ')}`,
  );
  const auth = settings.apiKey ? ` --codec-auth "Bearer $BACKROOM_API_KEY"` : '';
  console.log(`Try: temporal workflow show -w <workflow id> --codec-endpoint ${endpoint}${auth}`);
  if (!settings.apiKey) console.log('No BACKROOM_API_KEY set: anyone who can reach this port can decrypt payloads.');
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') {
    console.error(`The port is in use (${(err as Error).message}): set BACKROOM_API_PORT to a free one.`);
  } else {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exit(1);
});
