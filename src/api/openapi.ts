/**
 * The API's OpenAPI 3.1 document, built from the job catalog: each job type's request body is its input schema
 * (the one the CLI and the workflows validate with), so the document cannot drift from what the API accepts. It
 * also says how the API is protected, so generated clients send the key; `test/unit/openapi.test.ts` lints it
 * with Redocly's recommended rules.
 */
import { z } from 'zod';
import { JOB_CATALOG, JOB_TYPES, type JobType } from '../shared/job-catalog';
import { JOB_STATES } from '../shared/job-status';
import { PRIORITY_KEYS, TENANT_MAX_BYTES, TENANT_WEIGHT_RANGE } from '../shared/names';

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'Job id' };

const COMMON_ERRORS = {
  '503': errorResponse('Temporal is unreachable; try again (the API reconnects by itself)'),
};

/** Either scheme will do: the API takes the key from `Authorization: Bearer` or from `X-API-Key`. */
const API_KEY_SECURITY = [{ bearer: [] }, { apiKeyHeader: [] }];

interface Operation {
  security?: unknown[];
  responses: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * Declares the API key on every operation that does not say otherwise (`/healthz` says `security: []`), as the
 * server's key check does for every route but `/healthz`, and adds their 401 answer. Without a key, nothing is
 * added: the document then declares no schemes and an explicit empty `security` (see {@link openApiDocument}).
 */
function secured(apiKey: boolean, paths: Record<string, Record<string, Operation>>) {
  if (!apiKey) return paths;
  const unauthorized = errorResponse('Missing or wrong API key (BACKROOM_API_KEY of the API process)');
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(item).map(([method, operation]) => [
          method,
          operation.security
            ? operation
            : {
                ...operation,
                security: API_KEY_SECURITY,
                responses: Object.fromEntries(
                  Object.entries({ ...operation.responses, '401': unauthorized }).sort(([a], [b]) =>
                    a.localeCompare(b),
                  ),
                ),
              },
        ]),
      ),
    ]),
  );
}

function inputSchema(type: JobType): Record<string, unknown> {
  const schema = z.toJSONSchema(JOB_CATALOG[type].schema, { io: 'input' }) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}

function startOperation(type: JobType) {
  const definition = JOB_CATALOG[type];
  return {
    post: {
      operationId: `start_${type}`,
      tags: ['start'],
      summary: `Start ${type}`,
      description: definition.summary,
      parameters: [
        { name: 'id', in: 'query', schema: { type: 'string' }, description: 'Workflow id (default: generated)' },
        {
          name: 'priority',
          in: 'query',
          schema: { type: 'string', enum: Object.keys(PRIORITY_KEYS), default: 'default' },
          description:
            "Temporal's priority key (high 1, default 3, low 5): a backlog is served in that order; the job's " +
            'activities and child workflows inherit it',
        },
        {
          name: 'tenant',
          in: 'query',
          schema: { type: 'string', minLength: 1, maxLength: TENANT_MAX_BYTES },
          description:
            "Who the job works for (Temporal's fairness key, at most 64 bytes): tenants of the same priority share " +
            "the workers in proportion to their weights, so one tenant's backlog does not hold another's jobs up",
        },
        {
          name: 'tenantWeight',
          in: 'query',
          schema: { type: 'number', minimum: TENANT_WEIGHT_RANGE.min, maximum: TENANT_WEIGHT_RANGE.max, default: 1 },
          description: "The tenant's share relative to other tenants (Temporal's fairness weight); needs tenant",
        },
        {
          name: 'Idempotency-Key',
          in: 'header',
          schema: { type: 'string', minLength: 1, maxLength: 255 },
          description:
            'Names this start, so a retry cannot make a second job: every start with the same key and body gets ' +
            'the same job (200 once it exists, running or ended); the same key with another body is a 409',
        },
      ],
      requestBody: {
        required: false,
        content: {
          'application/json': { schema: { $ref: `#/components/schemas/${type}Input` }, example: definition.example },
        },
      },
      responses: {
        '200': {
          description: 'An earlier start with the same Idempotency-Key and body started this job',
          headers: { Location: { schema: { type: 'string' }, description: 'The status URL' } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/StartedJob' } } },
        },
        '202': {
          description: 'Temporal accepted the start',
          headers: { Location: { schema: { type: 'string' }, description: 'The status URL' } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/StartedJob' } } },
        },
        '400': errorResponse('The input is invalid (`issues` names each bad field), or the Idempotency-Key is bad'),
        '409': errorResponse(
          'JobAlreadyRunning: a job with this id is running; IdempotencyKeyReused: the Idempotency-Key already ' +
            'started a job with another body',
        ),
        '413': errorResponse('The body is over the limit (BACKROOM_API_BODY_LIMIT)'),
        '503': errorResponse(
          'Temporal is unreachable, and whether the job started is unknown: `id` names it; retry with the same ' +
            'Idempotency-Key to get that job and never a second one',
        ),
      },
    },
  };
}

function signalOperation(name: 'pause' | 'resume', description: string) {
  return {
    post: {
      operationId: name,
      tags: ['control'],
      summary: description,
      parameters: [idParameter],
      responses: {
        '202': { description: 'Signal sent', content: { 'application/json': { schema: { type: 'object' } } } },
        '404': errorResponse('No such job'),
        '409': errorResponse('The job has already ended'),
        ...COMMON_ERRORS,
      },
    },
  };
}

/** The document served at `/openapi.json`. */
export function openApiDocument(options: { apiKey: boolean }): Record<string, unknown> {
  const inputs = Object.fromEntries(JOB_TYPES.map((type) => [`${type}Input`, inputSchema(type)]));
  const jobStatus = {
    type: 'object',
    description: "The job's `status` query merged with its running activities' latest heartbeats",
    properties: {
      id: { type: 'string' },
      runId: { type: 'string' },
      type: { type: 'string' },
      state: { type: 'string', enum: JOB_STATES },
      execution: { type: 'string', description: "Temporal's execution status (RUNNING, COMPLETED, ...)" },
      priority: {
        type: 'object',
        description: 'The priority and tenant the job was started with (its activities and children inherit them)',
        properties: {
          level: { type: 'string', enum: Object.keys(PRIORITY_KEYS) },
          key: { type: 'integer', minimum: 1, maximum: 5, description: "Temporal's priority key (1 most urgent)" },
          tenant: { type: 'string', description: "Temporal's fairness key" },
          tenantWeight: { type: 'number' },
        },
      },
      progress: {
        type: 'object',
        properties: { done: { type: 'number' }, total: { type: 'number' }, unit: { type: 'string' } },
      },
      stage: { type: 'string' },
      message: { type: 'string' },
      succeeded: { type: 'integer' },
      failed: { type: 'integer' },
      errors: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            item: { type: 'string' },
            reason: { type: 'string' },
            type: { type: 'string', description: "The failure's type (FileNotFound, HeartbeatTimeout, ...)" },
            stack: {
              type: 'string',
              description: "A bug's stack trace (TypeError, ReferenceError, ...), for whoever fixes it",
            },
          },
        },
      },
      stale: {
        type: 'boolean',
        description: 'No worker answered in time: the last status the server knows, as of updatedAt',
      },
      startedAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
      activities: { type: 'array', items: { type: 'object' } },
      result: { description: 'The result summary once the job has ended' },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Backroom jobs API',
      version: '1',
      description:
        'Start durable background jobs on Temporal, follow their progress live (Server-Sent Events), pause, ' +
        'resume and cancel them. Paths in job inputs are inside the data dir.',
      // package.json's "UNLICENSED": a private project that grants no license; SPDX names such a case LicenseRef-.
      license: { name: 'Proprietary (UNLICENSED): no license is granted', identifier: 'LicenseRef-Proprietary' },
    },
    // Relative: the origin the document was fetched from, whatever host and port that was.
    servers: [{ url: '/', description: 'The API that serves this document' }],
    // Without BACKROOM_API_KEY no operation needs a key: the document says so explicitly with an empty `security`
    // and declares no schemes (an unused scheme would invite clients to send a key nobody checks). With a key, each
    // operation declares it (see `secured`), and `/healthz` keeps its own empty `security`.
    ...(!options.apiKey && { security: [] }),
    paths: secured(options.apiKey, {
      ...Object.fromEntries(JOB_TYPES.map((type) => [`/jobs/${type}`, startOperation(type)])),
      '/jobs': {
        get: {
          operationId: 'listJobs',
          tags: ['read'],
          summary: "A page of recent jobs, newest first, from Temporal's visibility",
          parameters: [
            { name: 'type', in: 'query', schema: { type: 'string', enum: JOB_TYPES } },
            { name: 'state', in: 'query', schema: { type: 'string', enum: JOB_STATES } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            {
              name: 'pageToken',
              in: 'query',
              schema: { type: 'string' },
              description: "The previous page's `nextPageToken`, as it came",
            },
          ],
          responses: {
            '200': { description: 'A page of jobs', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': errorResponse('A bad filter, or a page token that this API did not give out'),
            ...COMMON_ERRORS,
          },
        },
      },
      '/jobs/{id}': {
        get: {
          operationId: 'jobStatus',
          tags: ['read'],
          summary: 'The status of a job',
          parameters: [idParameter],
          responses: {
            '200': {
              description: 'The status',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/JobStatus' } } },
            },
            '404': errorResponse('No such job'),
            ...COMMON_ERRORS,
          },
        },
        delete: {
          operationId: 'cancel',
          tags: ['control'],
          summary:
            'Cancel gracefully (the job stops at a safe point and keeps a partial result); ?hard=true uses ' +
            "Temporal's own cancellation",
          parameters: [idParameter, { name: 'hard', in: 'query', schema: { type: 'boolean' } }],
          responses: {
            '202': { description: 'Cancel sent', content: { 'application/json': { schema: { type: 'object' } } } },
            '404': errorResponse('No such job'),
            '409': errorResponse('The job has already ended'),
            ...COMMON_ERRORS,
          },
        },
      },
      '/jobs/{id}/pause': signalOperation('pause', 'Hold the job at its next safe point'),
      '/jobs/{id}/resume': signalOperation('resume', 'Continue a paused job'),
      '/jobs/{id}/events': {
        get: {
          operationId: 'jobEvents',
          tags: ['read'],
          summary:
            'Live progress (Server-Sent Events): `status` on every change, `unavailable` while Temporal is ' +
            'unreachable, then one final `completed`, `failed` or `cancelled` event, and the stream ends',
          parameters: [idParameter],
          responses: {
            '200': {
              description: 'The event stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '404': errorResponse('No such job'),
            ...COMMON_ERRORS,
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'health',
          tags: ['service'],
          summary: 'The API is up; says whether Temporal answers (needs no API key)',
          security: [],
          responses: { '200': { description: 'Up', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
    }),
    components: {
      schemas: {
        ...inputs,
        JobStatus: jobStatus,
        StartedJob: {
          type: 'object',
          required: ['id', 'runId', 'type', 'statusUrl', 'eventsUrl'],
          properties: {
            id: { type: 'string' },
            runId: { type: 'string', description: "Temporal's run id of the job's first run" },
            type: { type: 'string', enum: JOB_TYPES },
            statusUrl: { type: 'string', format: 'uri' },
            eventsUrl: { type: 'string', format: 'uri' },
            warnings: {
              type: 'array',
              items: { type: 'string' },
              description: 'What to change in the input (a deprecated field name); the job started anyway',
            },
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { type: 'string', description: 'A stable code: InvalidInput, JobNotFound, JobAlreadyRunning, ...' },
            message: { type: 'string', description: 'What went wrong and what to do, in words' },
            issues: { type: 'array', items: { type: 'string' }, description: 'Each invalid field and why' },
            id: { type: 'string', description: 'On a start answered 503: the id the job has if it started' },
          },
        },
      },
      ...(options.apiKey && {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'BACKROOM_API_KEY of the API process' },
          apiKeyHeader: {
            type: 'apiKey',
            in: 'header',
            name: 'X-API-Key',
            description: 'BACKROOM_API_KEY of the API process',
          },
        },
      }),
    },
  };
}
