/**
 * One place that keeps bugs from retrying forever: every activity the worker runs passes through this inbound
 * interceptor, which turns a bug that lasted to BUG_ATTEMPTS into a non-retryable failure (src/shared/bug-errors.ts).
 * Retry policies stay about the world (how long to wait for SMTP), not about our mistakes.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { failBugsForGood } from '../shared/bug-errors';

export const bugInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        // A cancelled attempt ends as cancelled: what it threw on the way out is the cancellation's doing.
        if (ctx.cancellationSignal.aborted) throw err;
        throw failBugsForGood(err, ctx.info.activityType, ctx.info.attempt);
      }
    },
  },
});
