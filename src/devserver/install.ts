/** `npm run temporal:install`: makes sure a Temporal CLI is there (building the pinned version if not). */
import { ensureTemporalCli, temporalCliVersion } from './temporal-cli';

ensureTemporalCli()
  .then((cli) => console.log(`Temporal CLI: ${cli} (${temporalCliVersion(cli).split('\n')[0]})`))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
