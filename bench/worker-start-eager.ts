/**
 * The worker process with its activity modules imported before it starts, as every start did before they became
 * lazy: the "before" side of `npm run bench -- worker-start`. Not for use otherwise.
 */
import '../src/activities';
import '../src/workers/main';
