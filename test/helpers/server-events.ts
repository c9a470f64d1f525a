/** Reading the HTTP API's Server-Sent Events in tests, checking the wire format as it goes. */
import assert from 'node:assert/strict';

export interface ServerEvent<D = Record<string, unknown>> {
  event: string;
  data: D;
  /** When the test received it (Date.now()). */
  at: number;
}

/**
 * Reads a Server-Sent Events stream until it ends (or `until` returns true for an event), checking the wire format
 * as it goes: every event has an id, a name and JSON data.
 */
export async function readEvents<D = Record<string, unknown>>(
  url: string,
  until?: (event: ServerEvent<D>) => boolean,
): Promise<ServerEvent<D>[]> {
  // Aborting the request is what closes the stream early (a reader's cancel() would wait for the server to end it).
  const stop = new AbortController();
  const response = await fetch(url, { signal: stop.signal });
  if (response.status !== 200) assert.fail(`GET ${url} answered ${response.status}: ${await response.text()}`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.ok(response.body);
  const events: ServerEvent<D>[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = new Map(
        block
          .split('\n')
          .filter((line) => !line.startsWith(':'))
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
      );
      if (!fields.has('event')) continue; // the `retry:` preamble and keep-alive comments
      assert.match(fields.get('id') ?? '', /^\d+$/, block);
      const event = {
        event: fields.get('event') ?? '',
        data: JSON.parse(fields.get('data') ?? '') as D,
        at: Date.now(),
      };
      events.push(event);
      if (until?.(event)) {
        stop.abort();
        return events;
      }
    }
  }
}
