/** The API key check, shared by the job routes and the codec routes: `Authorization: Bearer <key>` or `X-API-Key`. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** Constant-time comparison of an API key (hashing first makes the lengths equal). */
function sameKey(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function givenKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

/** Whether the request carries `apiKey`: `ok`, `missing` (no key sent) or `wrong`. */
export function checkApiKey(request: FastifyRequest, apiKey: string): 'ok' | 'missing' | 'wrong' {
  const given = givenKey(request);
  if (given === undefined) return 'missing';
  return sameKey(given, apiKey) ? 'ok' : 'wrong';
}
