/**
 * The API's way to Temporal: it connects on first use, not at start-up, so the API comes up (and says 503) while
 * Temporal is down, and recovers by itself when Temporal returns. Every call has a deadline, so a request never
 * hangs on a server that does not answer.
 */
import { connectClient, temporalTarget, type TemporalTarget } from '../client/connection';
import { Jobs } from '../client/jobs';
import { isNoAnswer } from '../client/start-mark';

/** Temporal cannot be reached (or did not answer in time); the request may be tried again later. */
export class TemporalUnavailableError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'TemporalUnavailableError';
  }
}

/** Whether an error says that Temporal did not answer (or could not be reached). */
export function isUnavailable(err: unknown): boolean {
  for (let cause = err, depth = 0; cause && depth < 5; depth++) {
    if (cause instanceof TemporalUnavailableError) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return isNoAnswer(err);
}

/** The innermost message of an error chain (gRPC's own words, under the SDK's "Failed to start Workflow"). */
function rootCause(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  for (let cause = (err as { cause?: unknown }).cause, depth = 0; cause && depth < 5; depth++) {
    if (cause instanceof Error) message = cause.message;
    cause = (cause as { cause?: unknown }).cause;
  }
  return message;
}

export interface TemporalLinkOptions {
  /** Where Temporal is (default: the configured profile and environment). */
  target?: TemporalTarget;
  /** The task queue jobs start on (default: BACKROOM_TASK_QUEUE). */
  taskQueue?: string;
  /** Makes the jobs API some other way (tests share their client). */
  connect?: () => Promise<Jobs>;
  /** How long one call may take before the request gets a 503. */
  callTimeoutMs?: number;
}

export class TemporalLink {
  private jobs: Promise<Jobs> | undefined;
  private readonly connect: () => Promise<Jobs>;
  /** How long one call may take (the API gives each try of a start this long). */
  readonly callTimeoutMs: number;
  /** The address the link connects to, for messages. */
  readonly address: string;

  constructor(options: TemporalLinkOptions = {}) {
    const target = options.target ?? temporalTarget();
    this.address = target.connectionOptions.address;
    this.connect = options.connect ?? (async () => new Jobs(await connectClient(target), options.taskQueue));
    // Long enough for a busy cluster, short enough that a client hears 503 before it gives up itself.
    this.callTimeoutMs = options.callTimeoutMs ?? 5_000;
  }

  /**
   * Runs `call` with the jobs API under a deadline. A failed connection is forgotten, so the next request tries
   * again; once connected, the gRPC channel reconnects by itself after the server comes back.
   */
  async use<T>(call: (jobs: Jobs) => Promise<T>): Promise<T> {
    this.jobs ??= this.connect().catch((err: unknown) => {
      this.jobs = undefined;
      throw new TemporalUnavailableError(err instanceof Error ? err.message : String(err));
    });
    const jobs = await this.jobs;
    try {
      return await jobs.client.withDeadline(Date.now() + this.callTimeoutMs, () => call(jobs));
    } catch (err) {
      if (isUnavailable(err) && !(err instanceof TemporalUnavailableError)) {
        throw new TemporalUnavailableError(
          `Temporal at ${this.address} did not answer within ${this.callTimeoutMs / 1000} s (${rootCause(err)}). ` +
            'Check that the server is up; the API reconnects by itself when it is back.',
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Whether Temporal answers a health check now. */
  async reachable(): Promise<{ reachable: boolean; message?: string }> {
    try {
      await this.use((jobs) => jobs.client.workflowService.getSystemInfo({}));
      return { reachable: true };
    } catch (err) {
      return { reachable: false, message: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    const jobs = await this.jobs?.catch(() => undefined);
    this.jobs = undefined;
    await jobs?.client.connection.close();
  }
}
