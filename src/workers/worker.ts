/**
 * The Backroom worker: every workflow and activity on one task queue, sized for a small machine, with a graceful
 * shutdown that lets running activities finish or checkpoint.
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { checkWorkerSettings, workerSettings, type WorkerSettings } from '../config';
import { temporalTarget, unreachableMessage } from '../client/connection';
import { dataConverter } from '../codec/data-converter';
import { bugInterceptor } from './bug-interceptor';
import { lazyActivities } from './lazy-activities';
import { cachedWorkflowBundle } from './workflow-bundle-cache';

export interface BackroomWorkerOptions {
  connection?: NativeConnection;
  namespace?: string;
  settings?: Partial<WorkerSettings>;
  /** A pre-built bundle; by default the cached bundle of `src/workflows` (see workflow-bundle-cache.ts). */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Override or add activities (tests inject faults this way). */
  activities?: Record<string, (...args: never[]) => Promise<unknown>>;
  identity?: string;
  /** Payload codecs; by default the encryption codec when a key is configured (see src/codec). */
  dataConverter?: DataConverter;
}

/** Connects to Temporal as configured by the environment (see `src/client/connection.ts`). */
export async function connectWorkerConnection(): Promise<{ connection: NativeConnection; namespace: string }> {
  const target = temporalTarget();
  try {
    const connection = await NativeConnection.connect(target.connectionOptions);
    return { connection, namespace: target.namespace };
  } catch (err) {
    throw new Error(unreachableMessage(target.connectionOptions.address, err));
  }
}

export async function createBackroomWorker(options: BackroomWorkerOptions = {}): Promise<Worker> {
  // Checked before connecting: a setting the SDK would refuse stops here with what to set.
  const settings = checkWorkerSettings({ ...workerSettings(), ...options.settings });
  const converter = options.dataConverter ?? dataConverter();
  const { connection, namespace } = options.connection
    ? { connection: options.connection, namespace: options.namespace ?? 'default' }
    : await connectWorkerConnection();
  const workflowBundle = options.workflowBundle ?? (await defaultWorkflowBundle(converter));
  return Worker.create({
    connection,
    namespace,
    taskQueue: settings.taskQueue,
    ...(converter && { dataConverter: converter }),
    ...(options.identity && { identity: options.identity }),
    workflowBundle,
    // Loaded on first use (see lazy-activities.ts): the worker polls without waiting for TensorFlow or sharp.
    activities: { ...lazyActivities(), ...options.activities },
    // A bug (TypeError, ReferenceError...) fails its activity after a few attempts instead of retrying forever.
    interceptors: { activity: [bugInterceptor] },
    maxConcurrentActivityTaskExecutions: settings.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: settings.maxConcurrentWorkflowTasks,
    maxCachedWorkflows: settings.maxCachedWorkflows,
    shutdownGraceTime: `${settings.shutdownGraceSeconds} seconds`,
    // Heartbeats reach the server at least every second, so a pause or cancel reaches an activity that fast.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
  });
}

/** The bundle of `src/workflows`, from the on-disk cache when nothing it is built from changed since. */
async function defaultWorkflowBundle(converter: DataConverter | undefined): Promise<WorkerOptions['workflowBundle']> {
  const logger = Runtime.instance().logger;
  // Built with the converter's failure converter: encrypted failures are encoded inside the workflow sandbox too.
  const { bundle, reused } = await cachedWorkflowBundle({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: converter?.failureConverterPath,
    payloadConverterPath: converter?.payloadConverterPath,
    logger,
  });
  logger.info(reused ? 'Workflow bundle reused from the cache' : 'Workflow bundle built', {
    ...('codePath' in bundle && { codePath: bundle.codePath }),
  });
  return bundle;
}
