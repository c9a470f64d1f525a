import type { MockActivityEnvironment } from '@temporalio/testing';

/** `env.run` with the activity's own result type (the SDK's signature infers `unknown`). */
export function runActivity<A extends unknown[], R>(
  env: MockActivityEnvironment,
  activity: (...args: A) => Promise<R>,
  ...args: A
): Promise<R> {
  return env.run(activity, ...args) as Promise<R>;
}
