/**
 * Temporal's codec-server protocol: `POST /codec/encode` and `POST /codec/decode` take and return
 * `{"payloads": [{"metadata": {"<key>": "<base64>"}, "data": "<base64>"}]}`, so the Temporal UI
 * (`--ui-codec-endpoint`) and the `temporal` CLI (`--codec-endpoint`) show payloads in clear text to whoever holds
 * the API key. Browsers may call them only from the configured UI origins (CORS); a preflight needs no key, since
 * browsers never send credentials with one. The HTTP API serves these routes, and so does `npm run codec-server`.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { encryptionCodec } from '../codec/data-converter';
import { uiOrigins } from '../config';
import { requireApiKey } from './api-key';

export const CODEC_PATH = '/codec';

export interface CodecRouteOptions {
  /** The codec behind the routes; by default the configured encryption codec (none configured: no routes). */
  codec?: PayloadCodec;
  /** Browser origins CORS lets in: the Temporal UI's (default: BACKROOM_UI_ORIGIN, else the dev server's UI). */
  allowedOrigins?: string[];
  /** When set, requests need it like every API route: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
  apiKey?: string;
  /** Largest request body, in bytes: a history's payloads in one request can be several MB. */
  bodyLimit?: number;
}

/**
 * Whether a request matched one of the codec routes (they check the API key themselves, so that preflights pass).
 * Judged by the route the router chose, not by the URL's text, so no crafted path slips past the API's own check.
 */
export function isCodecRoute(request: FastifyRequest): boolean {
  return request.routeOptions.url?.startsWith(`${CODEC_PATH}/`) ?? false;
}

/** A payload as JSON (proto3 JSON of `temporal.api.common.v1.Payload`: bytes in base64). */
const jsonPayloads = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()).nullish(), data: z.string().nullish() })),
});
type JsonPayload = z.infer<typeof jsonPayloads>['payloads'][number];

function fromJson({ metadata, data }: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(data ?? '', 'base64'),
  };
}

function toJson({ metadata, data }: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
    ),
    data: Buffer.from(data ?? new Uint8Array()).toString('base64'),
  };
}

/**
 * Adds the codec routes to `app` when there is a codec (given, or configured by the environment); returns whether
 * it did. Throws on a bad key setting, so a server with a malformed key does not start.
 */
export function codecRoutes(app: FastifyInstance, options: CodecRouteOptions = {}): boolean {
  const codec = options.codec ?? encryptionCodec();
  if (!codec) return false;
  const allowed = new Set(options.allowedOrigins ?? uiOrigins());
  const { apiKey } = options;

  /** CORS headers for an allowed origin only; every answer varies by Origin so caches keep them apart. */
  const cors = async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    if (origin && allowed.has(origin)) {
      void reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true');
    }
  };
  const requireKey = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!apiKey) return;
    await requireApiKey(request, reply, apiKey, 'The codec', '; the temporal CLI takes --codec-auth "Bearer <key>"');
  };

  for (const [name, transform] of [
    ['encode', (payloads: Payload[]) => codec.encode(payloads)],
    ['decode', (payloads: Payload[]) => codec.decode(payloads)],
  ] as const) {
    const url = `${CODEC_PATH}/${name}`;
    app.options(url, { onRequest: cors }, async (request, reply) => {
      const origin = request.headers.origin;
      if (!origin || !allowed.has(origin)) {
        return reply.code(403).send({
          error: 'OriginNotAllowed',
          message: `Origin ${origin ?? '(none)'} may not call the codec. Allowed: ${[...allowed].join(', ')} (set BACKROOM_UI_ORIGIN to the Temporal UI's origin).`,
        });
      }
      return reply
        .code(204)
        .header('access-control-allow-methods', 'POST, OPTIONS')
        .header(
          'access-control-allow-headers',
          'authorization, authorization-extras, content-type, x-api-key, x-namespace',
        )
        .header('access-control-max-age', '600')
        .send();
    });
    app.post(
      url,
      { onRequest: [cors, requireKey], bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024 },
      async (request, reply) => {
        const body = jsonPayloads.safeParse(request.body);
        if (!body.success) {
          return reply.code(400).send({
            error: 'BadRequest',
            message: `Send {"payloads": [{"metadata": {...}, "data": "<base64>"}]} (Temporal's codec-server format).`,
            issues: body.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`),
          });
        }
        let payloads: Payload[];
        try {
          payloads = await transform(body.data.payloads.map(fromJson));
        } catch (err) {
          return reply.code(422).send({
            error: name === 'decode' ? 'PayloadNotDecryptable' : 'PayloadNotEncodable',
            message: err instanceof Error ? err.message : String(err),
          });
        }
        return { payloads: payloads.map(toJson) };
      },
    );
  }
  return true;
}
