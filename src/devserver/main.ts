/** `npm run server`: the local Temporal dev server, until Ctrl-C. */
import { devServerSettings } from '../config';
import { startDevServer } from './dev-server';

async function main(): Promise<void> {
  const settings = devServerSettings();
  const server = await startDevServer(settings);
  console.log(`Temporal dev server on ${server.address} (namespace "${settings.namespace}")`);
  console.log(`Web UI: ${server.uiUrl}`);
  if (server.codecEndpoint) {
    console.log(
      `Payloads are encrypted: the UI decodes them through ${server.codecEndpoint} (\`npm run api\` or \`npm run codec-server\` serves it).`,
    );
  }
  console.log(`Database: ${settings.dbFile} (kept across restarts). Ctrl-C stops the server.`);
  let stopping = false;
  const stop = async () => {
    stopping = true;
    console.log('\nStopping the dev server...');
    await server.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  server.process.once('exit', (code) => {
    if (stopping) return;
    console.error(`The dev server exited (code ${code}).`);
    process.exit(code ?? 1);
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
