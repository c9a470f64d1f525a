/**
 * What a job is, in one line, from its type and input: the static summary Temporal's UI shows in its list and on the
 * workflow's page ("restore scans/ → restored/"). Paths, counts and names only: no addresses, subjects or message
 * text, since the summary is readable by anyone who can list workflows (and stays readable when encryption is off).
 */
import { JOB_CATALOG, type JobType } from './job-catalog';

const MAX_SUMMARY = 200;

/** The one-line summary of a job of `type` started with `input` (already validated, defaults filled in). */
export function jobSummary(type: JobType, input: Record<string, unknown>): string {
  const text = (key: string) => (typeof input[key] === 'string' ? (input[key] as string) : undefined);
  const count = (key: string) =>
    typeof input[key] === 'number' ? (input[key] as number).toLocaleString('en-US') : '?';
  const list = (key: string) => (Array.isArray(input[key]) ? (input[key] as unknown[]) : []);
  let summary: string;
  switch (type) {
    case 'simpleTest':
      summary = `count ${count('durationSeconds')} s`;
      break;
    case 'mathCalculation':
      summary = `primes below ${count('limit')}`;
      break;
    case 'systemHealthCheck':
      summary = 'check the server, pollers, data dir and native dependencies';
      break;
    case 'stressTest':
      summary = `${count('count')} ${text('mode') ?? 'activities'} items, ${count('concurrency')} at a time`;
      break;
    case 'processMedia': {
      const operations = list('operations').map((op) => (op as { op?: string }).op ?? '?');
      summary = `${operations.join(' → ')} on ${text('input') ?? '?'}`;
      break;
    }
    case 'restoreDocument':
      summary = `restore ${text('input') ?? '?'} (${list('steps').join(', ')})`;
      break;
    case 'restoreBatch': {
      const from = text('inputDir') ?? `${list('inputs').length} files`;
      summary = `restore ${from} → ${text('outputDir') ?? '?'} (${list('steps').join(', ')})`;
      break;
    }
    case 'generateSamplePages':
      summary = `${count('count')} sample pages → ${text('outputDir') ?? '?'}`;
      break;
    case 'sendEmail':
      summary = 'send one email';
      break;
    case 'sendBulkEmail': {
      const rate = text('rate');
      summary = `campaign ${text('campaignId') ?? ''} to ${text('recipientsFile') ?? '?'}${rate ? ` at ${rate}` : ''}`;
      break;
    }
    case 'analyzeCuts':
      summary = `cuts and clips of ${text('video') ?? '?'}`;
      break;
    case 'generateSyntheticData':
      summary = `dataset ${text('datasetId') ?? '?'}: ${count('pages')} pages`;
      break;
    case 'trainModel':
      summary =
        `train ${text('layer') ?? '?'} model ${text('modelName') ?? ''} on ${text('dataset') ?? '?'}, ` +
        `${count('epochs')} epochs`;
      break;
    case 'evaluateModel':
      summary = `evaluate ${text('model') ?? '?'} on ${text('dataset') ?? '?'}`;
      break;
  }
  const squeezed = summary.replace(/\s+/g, ' ').trim();
  return squeezed.length > MAX_SUMMARY ? `${squeezed.slice(0, MAX_SUMMARY - 1)}…` : squeezed;
}

/** The static details: what the job type does (the catalog's line) and how to steer it. */
export function jobDetails(type: JobType): string {
  return (
    `**${type}**: ${JOB_CATALOG[type].summary}\n\n` +
    'Query `status` for progress; signal `pause`, `resume` or `cancel` (a graceful stop with a partial result). ' +
    'The current details line below follows the job.'
  );
}
