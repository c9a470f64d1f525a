/**
 * The S3 client, configured the standard AWS way: credentials from the environment (`AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or a profile (`AWS_PROFILE`, `~/.aws/…`, SSO, instance roles), and
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for an S3-compatible server (SeaweedFS, MinIO, Ceph, R2, …).
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** The region an S3-compatible server gets when none is configured (what most of them expect). */
export const DEFAULT_COMPATIBLE_REGION = 'us-east-1';

/** The custom S3 endpoint from the environment, if any (the service-specific variable wins, as in the AWS SDKs). */
export function customEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (/^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) return undefined;
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (!endpoint) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`The S3 endpoint "${endpoint}" (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`The S3 endpoint "${endpoint}" must be an http:// or https:// URL.`);
  }
  return endpoint;
}

/**
 * The client configuration `env` asks for. Everything not set here is left to the SDK's own defaults (its credential
 * chain, profile files, retries).
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const config: S3ClientConfig = {};
  const endpoint = customEndpoint(env);
  if (endpoint) {
    config.endpoint = endpoint;
    // S3-compatible servers rarely have wildcard DNS for bucket.host names: address buckets by path instead.
    config.forcePathStyle = true;
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  // Without a region the SDK asks the EC2 instance metadata service (a network wait) and then fails: a custom
  // endpoint does not need a real one.
  if (region) config.region = region;
  else if (endpoint) config.region = DEFAULT_COMPATIBLE_REGION;
  // The SDK reads process.env itself; these make an explicit `env` (tests, a second store) mean what it says.
  if (env.AWS_PROFILE) config.profile = env.AWS_PROFILE;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return config;
}

/** A new S3 client configured from `env` (see {@link s3ClientConfig}). Call `destroy()` when done with it. */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  return new S3Client(s3ClientConfig(env));
}
