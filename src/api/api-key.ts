/** The API key check, shared by the job routes and the codec routes: `Authorization: Bearer <key>` or `X-API-Key`. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

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

/**
 * Answers 401 unless the request carries `apiKey`; returns whether it may go on. `what` names what needs the key
 * ("This API", "The codec") and `hint` adds a word on how to send it.
 */
export async function requireApiKey(
  request: FastifyRequest,
  reply: FastifyReply,
  apiKey: string,
  what: string,
  hint = '',
): Promise<boolean> {
  const given = givenKey(request);
  if (given !== undefined && sameKey(given, apiKey)) return true;
  await reply
    .code(401)
    .header('www-authenticate', 'Bearer realm="backroom"')
    .send({
      error: 'Unauthorized',
      message:
        `${given === undefined ? `${what} needs a key` : 'Wrong API key'}: send "Authorization: Bearer <key>" or ` +
        `"X-API-Key: <key>" (the key is BACKROOM_API_KEY of the API process${hint}).`,
    });
  return false;
}
