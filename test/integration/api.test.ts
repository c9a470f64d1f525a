/**
 * The HTTP API against a real dev server and worker: start → event stream to completion, pause / resume, graceful
 * and hard cancel, listing with pages, every error case (400, 401, 404, 409, 413), and 503 while Temporal is down
 * with recovery when it comes back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { statusFingerprint } from '../../src/api/job-events';
import { startApi, type RunningApi } from '../../src/api/server';
import type { JobView, Jobs } from '../../src/client/jobs';
import { TemporalLink } from '../../src/api/temporal-link';
import { freePort } from '../../src/ports';
import { readEvents, type ServerEvent } from '../helpers/server-events';
import { sleep, startTestServer, startTestStack, waitFor, type TestStack } from '../helpers/temporal';

async function call(
  api: RunningApi,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: response.headers,
  };
}

const progressOf = (event: Pick<ServerEvent, 'data'>) => (event.data.progress as { done: number }).done;

describe('HTTP API on a real dev server and worker', () => {
  let stack: TestStack;
  let api: RunningApi;
  const bodyLimit = 64 * 1024;

  before(async () => {
    stack = await startTestStack('api');
    const link = new TemporalLink({ connect: async () => stack.jobs });
    api = await startApi({ host: '127.0.0.1', port: 0, bodyLimit }, { link, eventIntervalMs: 200 });
  });
  after(async () => {
    await api?.close();
    await stack?.stop();
  });

  it('starts a job with 202 and streams its progress to the final completed event', async () => {
    const started = await call(api, 'POST', '/jobs/simpleTest', '{"message":"hi","durationSeconds":3}', {
      // What `curl -d` sends: the API reads the body as JSON anyway.
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id as string;
    assert.match(id, /^simple-test-/);
    assert.equal(started.body.type, 'simpleTest');
    assert.equal(started.body.statusUrl, `${api.url}/jobs/${id}`);
    assert.equal(started.headers.get('location'), started.body.statusUrl);

    const events = await readEvents(started.body.eventsUrl as string);
    const final = events.at(-1);
    assert.equal(final?.event, 'completed', JSON.stringify(events));
    assert.equal(final?.data.state, 'completed');
    assert.equal(
      final?.data.message,
      'hi: 3 s of 3 s',
      'the final status tells the end, not the last throttled report',
    );
    assert.deepEqual(final?.data.result && (final.data.result as { secondsCounted: number }).secondsCounted, 3);
    const updates = events.slice(0, -1);
    assert.ok(updates.length >= 2, `progress events before the end: ${updates.length}`);
    assert.ok(
      updates.every((event) => event.event === 'status' && event.data.state === 'running'),
      JSON.stringify(updates.map((event) => [event.event, event.data.state, event.data.stale, event.data.message])),
    );
    const seen = updates.map(progressOf);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'progress never goes back',
    );
    // A change is anything but the read timestamps (progress, message, an activity going from scheduled to started).
    const fingerprints = updates.map((event) => statusFingerprint(event.data as unknown as JobView));
    assert.ok(
      fingerprints.every((print, index) => index === 0 || print !== fingerprints[index - 1]),
      `only changes are sent: ${JSON.stringify(updates.map((event) => event.data))}`,
    );

    const status = await call(api, 'GET', `/jobs/${id}`);
    assert.equal(status.status, 200);
    assert.equal(status.body.state, 'completed');
    assert.equal(status.body.execution, 'COMPLETED');
  });

  it('pause holds a job, resume continues it, and DELETE cancels it gracefully', async () => {
    const started = await call(api, 'POST', '/jobs/simpleTest', { message: 'steer me', durationSeconds: 60 });
    assert.equal(started.status, 202);
    const id = started.body.id as string;
    await waitFor('one second counted', async () => {
      const view = await call(api, 'GET', `/jobs/${id}`);
      return (view.body.progress as { done: number }).done >= 1;
    });

    const pause = await call(api, 'POST', `/jobs/${id}/pause`);
    assert.equal(pause.status, 202);
    assert.equal(pause.body.sent, 'pause');
    const paused = await waitFor('the paused state', async () => {
      const view = await call(api, 'GET', `/jobs/${id}`);
      return view.body.state === 'paused' && (view.body.activities as unknown[]).length === 0 && view.body;
    });
    await sleep(1500);
    const held = await call(api, 'GET', `/jobs/${id}`);
    assert.equal(held.body.state, 'paused');
    assert.deepEqual(held.body.progress, paused.progress, 'nothing moves while paused');

    assert.equal((await call(api, 'POST', `/jobs/${id}/resume`)).status, 202);
    const moving = await readEvents(
      `${api.url}/jobs/${id}/events`,
      (event) => progressOf(event) > progressOf({ data: paused }),
    );
    assert.equal(moving.at(-1)?.data.state, 'running');

    const cancel = await call(api, 'DELETE', `/jobs/${id}`);
    assert.equal(cancel.status, 202);
    assert.equal(cancel.body.sent, 'cancel');
    const events = await readEvents(`${api.url}/jobs/${id}/events`);
    const final = events.at(-1);
    assert.equal(final?.event, 'cancelled', JSON.stringify(events.map((event) => event.event)));
    const result = final?.data.result as { outcome: string; secondsCounted: number };
    assert.equal(result.outcome, 'cancelled');
    assert.ok(result.secondsCounted >= 1 && result.secondsCounted < 60, 'the partial result is kept');

    // An ended job cannot be steered any more: 409, not 404.
    for (const [method, path] of [
      ['DELETE', `/jobs/${id}`],
      ['DELETE', `/jobs/${id}?hard=true`],
      ['POST', `/jobs/${id}/pause`],
      ['POST', `/jobs/${id}/resume`],
    ] as const) {
      const refused = await call(api, method, path);
      assert.equal(refused.status, 409, `${method} ${path}`);
      assert.equal(refused.body.error, 'JobEnded');
      assert.match(refused.body.message as string, /already ended \(cancelled\)/);
    }
  });

  it("DELETE ?hard=true uses Temporal's cancellation, and the stream ends with cancelled", async () => {
    const started = await call(api, 'POST', '/jobs/simpleTest?id=api-hard-cancel', { durationSeconds: 60 });
    assert.equal(started.status, 202);
    assert.equal(started.body.id, 'api-hard-cancel');
    await readEvents(started.body.eventsUrl as string, (event) => progressOf(event) >= 1);
    const cancel = await call(api, 'DELETE', '/jobs/api-hard-cancel?hard=true');
    assert.equal(cancel.status, 202);
    assert.equal(cancel.body.sent, 'temporal-cancel');
    const final = (await readEvents(started.body.eventsUrl as string)).at(-1);
    assert.equal(final?.event, 'cancelled');
    assert.equal(final?.data.execution, 'CANCELLED');
  });

  it('lists jobs from visibility, filtered and in pages', async () => {
    await waitFor('visibility to show the finished jobs', async () => {
      const page = await call(api, 'GET', '/jobs?type=simpleTest&state=cancelled');
      return (page.body.jobs as unknown[]).length >= 2;
    });
    const first = await call(api, 'GET', '/jobs?type=simpleTest&limit=1');
    assert.equal(first.status, 200);
    const [job] = first.body.jobs as { id: string; type: string; statusUrl: string }[];
    assert.equal(job?.type, 'simpleTest');
    assert.equal(job?.statusUrl, `${api.url}/jobs/${job?.id}`);
    assert.ok(first.body.nextUrl, 'a next page is offered');
    const second = await call(api, 'GET', (first.body.nextUrl as string).slice(api.url.length));
    const [next] = second.body.jobs as { id: string }[];
    assert.ok(next && next.id !== job?.id, 'the next page holds the next job');
    const cancelled = await call(api, 'GET', '/jobs?state=cancelled');
    assert.ok((cancelled.body.jobs as { state: string }[]).every((entry) => entry.state === 'cancelled'));
  });

  it('answers a page token it did not give out with 400 at once, and so does Temporal refusing one', async () => {
    const first = await call(api, 'GET', '/jobs?type=simpleTest&limit=1');
    const token = first.body.nextPageToken as string;
    assert.ok(token, 'the listing test left more than one page');
    // Made up, cut short, edited, and a bare Temporal token without the API's check.
    for (const bad of ['garbage', token.slice(0, -1), `x${token}`, token.slice(0, token.lastIndexOf('.'))]) {
      const started = Date.now();
      const answer = await call(api, 'GET', `/jobs?pageToken=${encodeURIComponent(bad)}`);
      assert.equal(answer.status, 400, bad);
      assert.equal(answer.body.error, 'BadRequest');
      assert.match(answer.body.message as string, /^The page token is not one this API gave out: .*nextPageToken/);
      assert.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`);
    }
    // A token that passes the API's check but that Temporal refuses (INVALID_ARGUMENT) is a 400 as well.
    const refusal = Object.assign(new Error('3 INVALID_ARGUMENT: bad page token'), {
      code: 3,
      details: 'bad page token',
      metadata: {},
    });
    const refusing = {
      client: { withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn() },
      listPage: () => Promise.reject(refusal),
    } as unknown as Jobs;
    const strict = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit },
      { link: new TemporalLink({ connect: async () => refusing }) },
    );
    try {
      const refused = await call(strict, 'GET', `/jobs?pageToken=${encodeURIComponent(token)}`);
      assert.equal(refused.status, 400);
      assert.match(
        refused.body.message as string,
        /^The page token is not one this API gave out \(Temporal: bad page token\)/,
      );
    } finally {
      await strict.close();
    }
  });

  it('answers bad requests with the status and a message that names the problem', async () => {
    const invalid = await call(api, 'POST', '/jobs/simpleTest', { durationSeconds: -1, colour: 'red' });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error, 'InvalidInput');
    const issues = invalid.body.issues as string[];
    assert.ok(
      issues.some((issue) => issue.startsWith('durationSeconds:')),
      issues.join('; '),
    );
    assert.ok(
      issues.some((issue) => issue.startsWith('colour: unknown field')),
      issues.join('; '),
    );

    const notJson = await call(api, 'POST', '/jobs/simpleTest', '{"message": "hi"');
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.message as string, /not valid JSON/);

    const outside = await call(api, 'POST', '/jobs/restoreDocument', { input: '../../etc/passwd' });
    assert.equal(outside.status, 400);
    assert.match(
      (outside.body.issues as string[])[0] ?? '',
      /^input: "\.\.\/\.\.\/etc\/passwd" is outside the data dir/,
    );

    const badQuery = await call(api, 'GET', '/jobs?state=sleeping&limit=1000');
    assert.equal(badQuery.status, 400);
    assert.match(badQuery.body.message as string, /state: .*limit: /);

    const unknownType = await call(api, 'POST', '/jobs/makeCoffee', {});
    assert.equal(unknownType.status, 404);
    assert.equal(unknownType.body.error, 'UnknownJobType');
    assert.match(unknownType.body.message as string, /Known types: simpleTest/);

    for (const [method, path] of [
      ['GET', '/jobs/no-such-job'],
      ['GET', '/jobs/no-such-job/events'],
      ['POST', '/jobs/no-such-job/pause'],
      ['DELETE', '/jobs/no-such-job'],
    ] as const) {
      const missing = await call(api, method, path);
      assert.equal(missing.status, 404, `${method} ${path}`);
      assert.equal(missing.body.error, 'JobNotFound');
    }
    assert.equal((await call(api, 'GET', '/nowhere')).status, 404);

    const first = await call(api, 'POST', '/jobs/simpleTest?id=api-duplicate', { durationSeconds: 30 });
    assert.equal(first.status, 202);
    const again = await call(api, 'POST', '/jobs/simpleTest?id=api-duplicate', { durationSeconds: 30 });
    assert.equal(again.status, 409);
    assert.equal(again.body.error, 'JobAlreadyRunning');
    assert.equal((await call(api, 'DELETE', '/jobs/api-duplicate')).status, 202);

    const huge = await call(api, 'POST', '/jobs/simpleTest', { message: 'x'.repeat(bodyLimit + 1) });
    assert.equal(huge.status, 413);
    assert.match(huge.body.message as string, new RegExp(`limit of ${bodyLimit} bytes`));
  });

  it('serves an OpenAPI document with every job type and the health of its Temporal link', async () => {
    const document = await call(api, 'GET', '/openapi.json');
    assert.equal(document.status, 200);
    assert.equal(document.body.openapi, '3.1.0');
    const paths = document.body.paths as Record<string, unknown>;
    for (const type of ['simpleTest', 'restoreBatch', 'sendBulkEmail', 'trainModel'])
      assert.ok(paths[`/jobs/${type}`], type);
    const schemas = (document.body.components as { schemas: Record<string, { properties?: Record<string, unknown> }> })
      .schemas;
    assert.ok(schemas.simpleTestInput?.properties?.durationSeconds);
    const health = await call(api, 'GET', '/healthz');
    assert.deepEqual(health.body.temporal && (health.body.temporal as { reachable: boolean }).reachable, true);
  });

  it('needs the API key when one is set (but /healthz does not)', async () => {
    const keyed = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit, apiKey: 'open sesame' },
      { link: new TemporalLink({ connect: async () => stack.jobs }) },
    );
    try {
      const none = await call(keyed, 'GET', '/jobs');
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.match(none.body.message as string, /needs a key/);
      const wrong = await call(keyed, 'POST', '/jobs/simpleTest', {}, { authorization: 'Bearer open sesame!' });
      assert.equal(wrong.status, 401);
      assert.match(wrong.body.message as string, /Wrong API key/);
      assert.equal((await call(keyed, 'GET', '/jobs', undefined, { authorization: 'Bearer open sesame' })).status, 200);
      assert.equal((await call(keyed, 'GET', '/jobs', undefined, { 'x-api-key': 'open sesame' })).status, 200);
      assert.equal((await call(keyed, 'GET', '/healthz')).status, 200);
    } finally {
      await keyed.close();
    }
  });
});

describe('HTTP API while Temporal is down', () => {
  it('answers 503 with a clear message, says so in open streams, and recovers when Temporal returns', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const api = await startApi(
      { host: '127.0.0.1', port: 0, bodyLimit: 1024 * 1024 },
      {
        link: new TemporalLink({
          target: { connectionOptions: { address }, namespace: 'default' },
          taskQueue: 'api-no-worker',
          callTimeoutMs: 3000,
        }),
        eventIntervalMs: 200,
      },
    );
    let server: TestWorkflowEnvironment | undefined;
    try {
      const down = await call(api, 'POST', '/jobs/simpleTest', { durationSeconds: 60 });
      assert.equal(down.status, 503);
      assert.equal(down.body.error, 'TemporalUnavailable');
      assert.match(down.body.message as string, new RegExp(`Cannot reach Temporal at ${address}`));
      assert.equal(down.headers.get('retry-after'), '5');
      // Bad input is still a 400: it is checked before Temporal is asked.
      assert.equal((await call(api, 'POST', '/jobs/simpleTest', { durationSeconds: 0 })).status, 400);
      const health = await call(api, 'GET', '/healthz');
      assert.equal(health.status, 200);
      assert.equal((health.body.temporal as { reachable: boolean }).reachable, false);

      server = await startTestServer({ ip: '127.0.0.1', port });
      const started = await waitFor('the API to reach the new server', async () => {
        const response = await call(api, 'POST', '/jobs/simpleTest', { durationSeconds: 60 });
        return response.status === 202 && response.body;
      });

      // No worker polls this queue: the job stays running while the server goes away under an open stream.
      let sawStatus = () => {};
      const statusSeen = new Promise<void>((resolve) => (sawStatus = resolve));
      const streaming = readEvents(started.eventsUrl as string, (event) => {
        if (event.event === 'status') sawStatus();
        return event.event === 'unavailable';
      });
      await statusSeen;
      await server.teardown();
      server = undefined;
      const events = await streaming;
      assert.equal(events[0]?.event, 'status');
      assert.equal(events.at(-1)?.event, 'unavailable');
      assert.match(events.at(-1)?.data.message as string, /did not answer/);
      const downAgain = await call(api, 'GET', `/jobs/${started.id as string}`);
      assert.equal(downAgain.status, 503);
    } finally {
      await api.close();
      await server?.teardown();
    }
  });
});
