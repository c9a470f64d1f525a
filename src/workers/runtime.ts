/** Installs the Temporal runtime with a Prometheus exporter on a free loopback port (relayed by `/metrics`). */
import { freePort } from '../ports';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';

/** Must run before any connection is made. Returns the URL of the runtime's Prometheus endpoint. */
export async function installRuntimeWithMetrics(logLevel: 'INFO' | 'WARN' = 'INFO'): Promise<string> {
  const port = await freePort();
  Runtime.install({
    logger: new DefaultLogger(logLevel),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: logLevel }), forward: {} },
      metrics: { prometheus: { bindAddress: `127.0.0.1:${port}` } },
    },
  });
  return `http://127.0.0.1:${port}/metrics`;
}
