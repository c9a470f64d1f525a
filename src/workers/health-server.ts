/**
 * The worker's HTTP side: `/healthz` for liveness and readiness probes, `/metrics` for Prometheus. The metrics are
 * the ones the Temporal runtime exports (its worker metrics and Backroom's job metrics, which workflows record
 * through the same meter), served here so that one port answers both.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from '@temporalio/worker';

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

export async function startHealthServer(options: {
  worker: Worker;
  host: string;
  port: number;
  /** The runtime's own Prometheus endpoint (loopback only), which `/metrics` relays. */
  runtimeMetricsUrl?: string;
}): Promise<HealthServer> {
  const { worker } = options;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const state = worker.getState();
      const healthy = state === 'RUNNING';
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: healthy, state, taskQueue: worker.options.taskQueue, ...worker.getStatus() }));
      return;
    }
    if (path === '/metrics') {
      relayMetrics(options.runtimeMetricsUrl, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not found: try /healthz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Probes keep connections alive; without this, close() would wait for them forever.
        server.closeAllConnections();
      }),
  };
}

function relayMetrics(url: string | undefined, res: http.ServerResponse): void {
  if (!url) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('Metrics are not enabled in this process\n');
    return;
  }
  fetch(url)
    .then(async (upstream) => {
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
      res.end(await upstream.text());
    })
    .catch((err: unknown) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end(`Metrics unavailable: ${String(err)}\n`);
    });
}
