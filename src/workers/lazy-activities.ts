/**
 * The activities as the worker registers them: one thin function per name that loads the real modules on first
 * use, instead of at start. Those modules pull in TensorFlow's wasm backend, sharp and the CPU pool's task table:
 * 0.6 s of a 2 s warm start on an idle 2-core machine, over 1 s of it with both cores busy. The worker process
 * loads them right after it starts polling (`preloadActivities`), so a first task rarely waits for them; in any
 * case the first call waits for the one load that all share. Each function calls the real activity in the same
 * activity context, so heartbeats, cancellation and results are unchanged.
 */
import type * as activityModule from '../activities';

export type Activities = typeof activityModule;

/**
 * Every name `src/activities/index.ts` exports, checked by the compiler both ways: an activity added there fails
 * the typecheck here until it is listed.
 */
const ACTIVITY_NAMES: { [K in keyof Activities]: true } = {
  analyzeClips: true,
  analyzeClipsResumable: true,
  chainedSha256: true,
  checkDataDir: true,
  checkNativeDependencies: true,
  checkPollers: true,
  checkServer: true,
  claimCutsFolder: true,
  countSeconds: true,
  cutDatasetPatches: true,
  deliverEmail: true,
  describeModel: true,
  detectShots: true,
  evaluateHeldOutPages: true,
  generateSamplePages: true,
  prepareBatch: true,
  prepareCampaign: true,
  prepareTrainingRun: true,
  probeVideoFile: true,
  processImage: true,
  processImageResumable: true,
  recordBatchItemFailure: true,
  renderDatasetPages: true,
  restoreBatchItem: true,
  restoreDocumentImage: true,
  restoreDocumentResumable: true,
  sendEmailBatch: true,
  sievePrimes: true,
  stressWork: true,
  stressWorkBatch: true,
  trainEpoch: true,
  validateDataset: true,
  writeBatchReport: true,
  writeCampaignReport: true,
  writePartialCuts: true,
};

/** The names the worker registers (the same as `Object.keys` of `src/activities/index.ts`). */
export const activityNames = Object.keys(ACTIVITY_NAMES) as (keyof Activities)[];

let loading: Promise<Activities> | undefined;

/**
 * The activity modules, loaded once per process (with sharp's threading set, as the worker always did before its
 * first image). A load that fails is tried again by the next call, as Node retries a module that threw.
 */
export function loadActivities(): Promise<Activities> {
  loading ??= (async () => {
    const [activities, sharpSettings] = await Promise.all([
      import('../activities/index.js'),
      import('../activities/images/sharp-settings.js'),
    ]);
    sharpSettings.configureSharp();
    return activities;
  })().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

/** Loads the activity modules now, for a process that has something better to do first (polling) but not much. */
export function preloadActivities(): Promise<void> {
  return loadActivities().then(() => undefined);
}

/**
 * Lets go of what activities keep between calls (the SMTP connections kept for campaigns), for a worker that has
 * stopped: their sockets would otherwise hold the process open. Nothing to do when no activity module was loaded.
 */
export async function releaseActivityResources(): Promise<void> {
  if (!loading) return;
  try {
    await loading;
  } catch {
    return; // nothing loaded, nothing kept
  }
  const { closeKeptSmtpTransports } = await import('../activities/email/smtp.js');
  closeKeptSmtpTransports();
}

/** The activities as registered: the same arguments and results, each call asynchronous. */
export type LazyActivities = {
  [K in keyof Activities]: (...args: Parameters<Activities[K]>) => Promise<Awaited<ReturnType<Activities[K]>>>;
};

/** One function per activity name that loads the modules on first use and then calls the real activity. */
export function lazyActivities(): LazyActivities {
  const registered: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of activityNames) {
    registered[name] = async (...args: unknown[]) => {
      const activities = await loadActivities();
      return (activities[name] as (...args: unknown[]) => unknown)(...args);
    };
  }
  return registered as unknown as LazyActivities;
}
