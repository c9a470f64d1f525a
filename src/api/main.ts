/**
 * `npm run api`: the HTTP API on its own (workers and Temporal run elsewhere). BACKROOM_API_HOST, BACKROOM_API_PORT,
 * BACKROOM_API_KEY and BACKROOM_API_BODY_LIMIT configure it; TEMPORAL_* say where Temporal is.
 */
import { apiSettings } from '../config';
import { startApi } from './server';

async function main(): Promise<void> {
  const settings = apiSettings();
  const api = await startApi(settings);
  console.log(`Backroom HTTP API on ${api.url} (routes: ${api.url}/openapi.json)`);
  console.log(`Try: curl -X POST ${api.url}/jobs/simpleTest -d '{"message":"hi","durationSeconds":10}'`);
  if (!settings.apiKey) console.log('No BACKROOM_API_KEY set: anyone who can reach this port can start jobs.');
  const stop = () => {
    console.log('Stopping the API...');
    api.close().then(
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
    console.error(`The API port is in use (${(err as Error).message}): set BACKROOM_API_PORT to a free one.`);
  } else {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exit(1);
});
