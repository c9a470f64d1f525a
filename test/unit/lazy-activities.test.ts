/**
 * The worker registers its activities without loading them, so it polls without waiting for TensorFlow, sharp or
 * the CPU pool's tasks: importing the worker module and building its activity table loads none of them; the first
 * call loads them and runs the real activity, in the caller's activity context. Modules are imported inside the
 * tests, in order: the first test must see a process that has loaded nothing else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runActivity } from '../helpers/activity';

/** Modules a worker should not load before an activity needs them. */
const HEAVY =
  /node_modules\/(@tensorflow|sharp|piscina|@ffmpeg-installer|@ffprobe-installer|nodemailer)\/|src\/activities\//;
const heavyModulesLoaded = () => Object.keys(require.cache).filter((file) => HEAVY.test(file));

describe('the worker’s activities', () => {
  it('importing the worker and building its activity table loads no activity module', async () => {
    await import('../../src/workers/worker.js');
    const { lazyActivities } = await import('../../src/workers/lazy-activities.js');
    const registered = lazyActivities();
    assert.ok(Object.keys(registered).length > 0);
    assert.deepEqual(heavyModulesLoaded(), []);
  });

  it('registers exactly the activities src/activities exports', async () => {
    const { activityNames } = await import('../../src/workers/lazy-activities.js');
    const activities = await import('../../src/activities/index.js');
    assert.deepEqual([...activityNames].sort(), Object.keys(activities).sort());
  });

  it('the first call loads the modules once and runs the real activity in the same activity context', async () => {
    const { lazyActivities, loadActivities } = await import('../../src/workers/lazy-activities.js');
    const { MockActivityEnvironment } = await import('@temporalio/testing');
    const registered = lazyActivities();
    const env = new MockActivityEnvironment({ attempt: 3 });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    const outcome = await runActivity(env, registered.countSeconds, { message: 'lazy', durationSeconds: 1 });
    assert.ok(outcome.finished);
    assert.equal(outcome.result.secondsCounted, 1);
    assert.equal(outcome.result.attempts, 3, 'the real activity saw the activity info of the call');
    assert.ok(heartbeats.length > 0, 'its heartbeats reached the activity context');
    assert.ok(
      heavyModulesLoaded().some((file) => file.endsWith('src/activities/index.ts')),
      'the activity modules are loaded now',
    );
    assert.equal(loadActivities(), loadActivities(), 'every call shares one load');
    const { chainedSha256 } = await loadActivities();
    assert.equal(await registered.chainedSha256(7, 100), chainedSha256(7, 100));
  });
});
