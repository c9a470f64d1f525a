/** `npm run s3:install`: makes sure a SeaweedFS `weed` is there (building the pinned version if not). */
import { execFileSync } from 'node:child_process';
import { ensureWeed } from './seaweedfs';

ensureWeed()
  .then((weed) => {
    const version = execFileSync(weed, ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .split('\n')[0];
    console.log(`SeaweedFS: ${weed} (${version})`);
  })
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
