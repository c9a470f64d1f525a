/**
 * The HTTP API: web apps start jobs, read and follow their progress, pause, resume and cancel them. It is a thin
 * layer on the typed jobs API (`src/client/jobs.ts`) and validates with the same input schemas as the CLI.
 * Routes and error codes are listed in `openapi.ts` (served at /openapi.json) and in the README.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { isGrpcServiceError } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  IdempotencyKeyReusedError,
  InvalidStartOptionError,
  JobAlreadyRunningError,
  JobEndedError,
  JobInputError,
  JobNotFoundError,
  StartUnconfirmedError,
  UnknownJobTypeError,
  validateJobInput,
} from '../client/jobs';
import type { ApiSettings } from '../config';
import { JOB_TYPES, parseJobInput } from '../shared/job-catalog';
import { JOB_STATES } from '../shared/job-status';
import {
  PRIORITY_KEYS,
  TENANT_MAX_BYTES,
  TENANT_WEIGHT_RANGE,
  tenantProblem,
  type PriorityName,
} from '../shared/names';
import { requireApiKey } from './api-key';
import { sseEvent, streamJobEvents } from './job-events';
import { codecRoutes, isCodecRoute, type CodecRouteOptions } from './codec-routes';
import { openApiDocument } from './openapi';
import { TemporalLink, isUnavailable } from './temporal-link';

/** A request the client has to fix (bad JSON, a bad query parameter). */
class BadRequestError extends Error {
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
    this.name = 'BadRequestError';
  }
}

export interface ApiOptions extends Omit<ApiSettings, 'host' | 'port'> {
  link: TemporalLink;
  /** How often event streams read the status. */
  eventIntervalMs?: number;
  /** A keep-alive comment goes out on an idle event stream after this long. */
  keepAliveMs?: number;
  /** The payload codec routes (/codec/encode, /codec/decode): on when an encryption key is configured. */
  codec?: CodecRouteOptions;
}

interface ErrorBody {
  error: string;
  message: string;
  issues?: string[];
  /** The job a start asked for, when Temporal did not say whether it started. */
  id?: string;
}

/** The first error of a type in an error's chain of causes. */
function causeOf<T>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let cause = err, depth = 0; cause && depth < 5; depth++) {
    if (cause instanceof type) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/** gRPC's INVALID_ARGUMENT (3): Temporal refuses the request itself, so asking again will not help. */
function invalidArgument(err: unknown): string | undefined {
  for (let cause = err, depth = 0; cause && depth < 5; depth++) {
    if (isGrpcServiceError(cause) && cause.code === 3) return cause.details;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Maps an error to its HTTP status and a body that says what went wrong and what to do. */
function httpError(err: unknown, bodyLimit: number): { status: number; body: ErrorBody } {
  if (err instanceof JobInputError)
    return { status: 400, body: { error: 'InvalidInput', message: err.message, issues: err.issues } };
  if (err instanceof BadRequestError) {
    return {
      status: 400,
      body: { error: 'BadRequest', message: err.message, ...(err.issues.length && { issues: err.issues }) },
    };
  }
  if (err instanceof InvalidStartOptionError)
    return { status: 400, body: { error: 'BadRequest', message: err.message } };
  if (err instanceof UnknownJobTypeError)
    return { status: 404, body: { error: 'UnknownJobType', message: err.message } };
  if (err instanceof JobNotFoundError) {
    return {
      status: 404,
      body: { error: 'JobNotFound', message: `No job with id "${err.id}". GET /jobs lists the recent ones.` },
    };
  }
  if (err instanceof JobAlreadyRunningError) {
    const message = `A job with id "${err.id}" is already running: follow it at /jobs/${encodeURIComponent(err.id)}, or start with another ?id=.`;
    return { status: 409, body: { error: 'JobAlreadyRunning', message } };
  }
  if (err instanceof JobEndedError) return { status: 409, body: { error: 'JobEnded', message: err.message } };
  if (err instanceof IdempotencyKeyReusedError) {
    const message = `This Idempotency-Key already started job "${err.id}" with another body (or job type): send the same body to get that job, or use a new key for a new job.`;
    return { status: 409, body: { error: 'IdempotencyKeyReused', message } };
  }
  const refused = invalidArgument(err);
  if (refused !== undefined)
    return { status: 400, body: { error: 'BadRequest', message: `Temporal refused the request: ${refused}` } };
  if (isUnavailable(err)) {
    const message = err instanceof Error ? err.message : String(err);
    const unconfirmed = causeOf(err, StartUnconfirmedError);
    if (!unconfirmed) return { status: 503, body: { error: 'TemporalUnavailable', message } };
    // Say which job it would be: the client can look for it, and a retry with the same key cannot duplicate it.
    const id = unconfirmed.id;
    const hint = ` Whether job "${id}" started is unknown: it may still start. Retry with the same Idempotency-Key to get that job and never a second one, or look at /jobs/${encodeURIComponent(id)}.`;
    return { status: 503, body: { error: 'TemporalUnavailable', message: message + hint, id } };
  }
  const fastifyError = err as { code?: string; statusCode?: number; message?: string };
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const message = `The request body is over the limit of ${bodyLimit} bytes (BACKROOM_API_BODY_LIMIT). Pass large data as files in the data dir and send their paths.`;
    return { status: 413, body: { error: 'BodyTooLarge', message } };
  }
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return {
      status: fastifyError.statusCode,
      body: { error: 'BadRequest', message: fastifyError.message ?? 'Bad request' },
    };
  }
  return { status: 500, body: { error: 'InternalError', message: err instanceof Error ? err.message : String(err) } };
}

/** Parses a query string with a schema; a bad parameter is a 400 naming it. */
function parseQuery<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  try {
    return parseJobInput('query', schema, raw);
  } catch (err) {
    if (err instanceof JobInputError) throw new BadRequestError(`Invalid query: ${err.issues.join('; ')}`, err.issues);
    throw err;
  }
}

/**
 * The `Idempotency-Key` header: any printable text up to 255 characters, as sent or as a structured-field string
 * (`"…"`, the IETF draft's form; the quotes are not part of the key).
 */
const idempotencyKey = z
  .string()
  .transform((value) => value.trim().replace(/^"(.*)"$/s, '$1'))
  .pipe(
    z
      .string()
      .min(1, 'must not be empty')
      .max(255)
      .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII'),
  )
  .optional();

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  if (request.headers['idempotency-key'] === undefined) return undefined;
  const parsed = idempotencyKey.safeParse(request.headers['idempotency-key']);
  if (parsed.success) return parsed.data;
  const problem = parsed.error.issues.map((issue) => issue.message).join('; ');
  throw new BadRequestError(`Invalid Idempotency-Key header: ${problem}. Send one key of printable text per start.`);
}

const startQuery = z.strictObject({
  id: z.string().min(1).max(255).optional(),
  priority: z.enum(Object.keys(PRIORITY_KEYS) as [PriorityName, ...PriorityName[]]).optional(),
  tenant: z
    .string()
    .optional()
    .refine((tenant) => !tenantProblem(tenant), {
      message: `must be 1 to ${TENANT_MAX_BYTES} bytes (it becomes Temporal's fairness key)`,
    }),
  tenantWeight: z.coerce.number().min(TENANT_WEIGHT_RANGE.min).max(TENANT_WEIGHT_RANGE.max).optional(),
});

const listQuery = z.strictObject({
  type: z.enum(JOB_TYPES as [string, ...string[]]).optional(),
  state: z.enum(JOB_STATES as [string, ...string[]]).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  pageToken: z.string().min(1).optional(),
});

/**
 * The API's page tokens are Temporal's (base64url, from `Jobs.listPage`) plus a check digest, so a token this API
 * did not give out (made up, cut short, from another API) is a 400 at once. Sent on, Temporal may not call it a bad
 * token: the dev server's SQL visibility fails to parse it with an unknown error, which the client retries until
 * the deadline (a 503 after 5 s). The digest catches mistakes, not forgery; Temporal still judges what it gets.
 */
const PAGE_TOKEN = /^([\w-]+)\.([\w-]{8})$/;

function pageTokenDigest(token: string): string {
  return createHash('sha256').update(`backroom page token ${token}`).digest('base64url').slice(0, 8);
}

function apiPageToken(token: string): string {
  return `${token}.${pageTokenDigest(token)}`;
}

class InvalidPageTokenError extends BadRequestError {
  constructor(detail = '') {
    super(
      `The page token is not one this API gave out${detail}: pass a previous page's nextPageToken as it came (or ` +
        'follow its nextUrl), or leave pageToken out to start from the first page.',
    );
  }
}

/** Temporal's page token inside one of ours; throws InvalidPageTokenError if it is not ours. */
function temporalPageToken(apiToken: string): string {
  const [, token, digest] = PAGE_TOKEN.exec(apiToken) ?? [];
  if (!token || digest !== pageTokenDigest(token)) throw new InvalidPageTokenError();
  return token;
}

const cancelQuery = z.strictObject({ hard: z.enum(['true', 'false']).optional() });

/** Absolute links to a job, so a client can follow them as they are. */
function jobLinks(request: FastifyRequest, id: string) {
  const statusUrl = `${request.protocol}://${request.host}/jobs/${encodeURIComponent(id)}`;
  return { statusUrl, eventsUrl: `${statusUrl}/events` };
}

/** Builds the API (not listening yet). */
export function buildApi(options: ApiOptions): FastifyInstance {
  const { link, bodyLimit } = options;
  const app = Fastify({ bodyLimit, logger: false });
  const streams = new Set<AbortController>();

  // Bodies are JSON whatever the content type says: `curl -d '{...}'` sends form-urlencoded.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        new BadRequestError(`The body is not valid JSON (${(err as Error).message}); send a JSON object.`),
        undefined,
      );
    }
  });

  if (options.apiKey) {
    const apiKey = options.apiKey;
    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      // The codec routes check the key themselves, so that CORS preflights (which never carry it) pass.
      if (request.url.split('?')[0] === '/healthz' || isCodecRoute(request)) return;
      await requireApiKey(request, reply, apiKey, 'This API');
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = httpError(err, bodyLimit);
    if (status === 500) console.error(`${request.method} ${request.url} failed:`, err);
    if (status === 503) void reply.header('retry-after', '5');
    void reply.code(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: 'NotFound',
      message: `No route ${request.method} ${request.url.split('?')[0]}. The routes are listed at /openapi.json.`,
    });
  });

  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });

  app.get('/healthz', async () => ({ status: 'ok', temporal: { address: link.address, ...(await link.reachable()) } }));

  const document = openApiDocument({ apiKey: Boolean(options.apiKey) });
  app.get('/openapi.json', async () => document);
  codecRoutes(app, { apiKey: options.apiKey, ...options.codec });

  app.post<{ Params: { type: string } }>('/jobs/:type', async (request, reply) => {
    const { type } = request.params;
    const query = parseQuery(startQuery, request.query);
    const key = idempotencyKeyOf(request);
    // Validate before touching Temporal: a bad input is a 400 even while Temporal is down. Once: Jobs.start takes
    // the validated input as it is.
    const input = validateJobInput(type, request.body);
    // A try whose answer is lost (a deadline, a dropped connection) is followed by a second one that asks for the
    // same job and finds it if the first took effect: a start that happened is answered with its job, not a 503.
    const { created, ...started } = await link.use((jobs) =>
      jobs.start(type, input, {
        ...(query.id && { id: query.id }),
        ...(query.priority && { priority: query.priority }),
        ...(query.tenant !== undefined && { tenant: query.tenant }),
        ...(query.tenantWeight !== undefined && { tenantWeight: query.tenantWeight }),
        ...(key !== undefined && { idempotencyKey: key }),
        attempts: 2,
        attemptTimeoutMs: link.callTimeoutMs,
      }),
    );
    const links = jobLinks(request, started.id);
    // 202: this request started the job; 200: an earlier request with the same Idempotency-Key did.
    return reply
      .code(created ? 202 : 200)
      .header('location', links.statusUrl)
      .send({ ...started, ...links });
  });

  app.get('/jobs', async (request) => {
    const query = parseQuery(listQuery, request.query);
    // Checked before Temporal is asked: a bad token is a 400 even while Temporal is down.
    const pageToken = query.pageToken === undefined ? undefined : temporalPageToken(query.pageToken);
    const page = await link
      .use((jobs) =>
        jobs.listPage({
          limit: query.limit,
          ...(query.type && { type: query.type }),
          ...(query.state && { state: query.state as (typeof JOB_STATES)[number] }),
          ...(pageToken && { pageToken }),
        }),
      )
      .catch((err: unknown) => {
        const refused = pageToken && invalidArgument(err);
        throw refused ? new InvalidPageTokenError(` (Temporal: ${refused})`) : err;
      });
    const nextPageToken = page.nextPageToken && apiPageToken(page.nextPageToken);
    const next = new URLSearchParams(request.query as Record<string, string>);
    if (nextPageToken) next.set('pageToken', nextPageToken);
    return {
      jobs: page.jobs.map((job) => ({ ...job, ...jobLinks(request, job.id) })),
      ...(nextPageToken && {
        nextPageToken,
        nextUrl: `${request.protocol}://${request.host}/jobs?${next.toString()}`,
      }),
    };
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', async (request) => {
    const view = await link.use((jobs) => jobs.status(request.params.id));
    return { ...view, ...jobLinks(request, view.id) };
  });

  for (const signal of ['pause', 'resume'] as const) {
    app.post<{ Params: { id: string } }>(`/jobs/:id/${signal}`, async (request, reply) => {
      const { id } = request.params;
      await link.use((jobs) => jobs[signal](id));
      return reply.code(202).send({ id, sent: signal, ...jobLinks(request, id) });
    });
  }

  app.delete<{ Params: { id: string } }>('/jobs/:id', async (request, reply) => {
    const { id } = request.params;
    const hard = parseQuery(cancelQuery, request.query).hard === 'true';
    await link.use((jobs) => jobs.cancel(id, { hard }));
    return reply.code(202).send({ id, sent: hard ? 'temporal-cancel' : 'cancel', ...jobLinks(request, id) });
  });

  app.get<{ Params: { id: string } }>('/jobs/:id/events', async (request, reply) => {
    const { id } = request.params;
    // An unknown job or an unreachable Temporal is a plain HTTP error before the stream starts.
    await link.use((jobs) => jobs.assertExists(id));
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const stop = new AbortController();
    streams.add(stop);
    response.on('close', () => stop.abort());
    try {
      await streamJobEvents(link, id, (chunk) => response.write(chunk), {
        intervalMs: options.eventIntervalMs ?? 1000,
        keepAliveMs: options.keepAliveMs ?? 15_000,
        signal: stop.signal,
      });
    } catch (err) {
      response.write(sseEvent(0, 'error', httpError(err, bodyLimit).body));
    } finally {
      streams.delete(stop);
      response.end();
    }
  });

  return app;
}

export interface RunningApi {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Starts the API on `settings.host:settings.port` (0 picks a free port). */
export async function startApi(settings: ApiSettings, options: Partial<ApiOptions> = {}): Promise<RunningApi> {
  const ownLink = options.link === undefined;
  const link = options.link ?? new TemporalLink();
  const app = buildApi({
    ...options,
    link,
    bodyLimit: options.bodyLimit ?? settings.bodyLimit,
    ...(settings.apiKey && { apiKey: settings.apiKey }),
  });
  await app.listen({ host: settings.host, port: settings.port });
  const { port } = app.server.address() as AddressInfo;
  const host = ['0.0.0.0', '::'].includes(settings.host) ? 'localhost' : settings.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    app,
    async close() {
      await app.close();
      if (ownLink) await link.close();
    },
  };
}
