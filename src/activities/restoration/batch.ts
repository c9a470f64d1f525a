/**
 * Batch restoration on disk. The batch's state lives next to its outputs, in `<outputDir>/.backroom/`:
 * - `manifest.json`: the items (input, output, reference), listed once, so every run and retry sees the same list;
 * - `results/<index>.json`: one result per item, written atomically after its output; an item with a result is
 *   never processed again, so each document is processed and written once even if a worker dies mid-batch;
 * - `writes.log`: one line per output written (an audit trail: duplicates would show there).
 * Workflows pass only the manifest path and indexes: payloads stay small whatever the batch size.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { dataDir } from '../../config';
import { appendDataFile, displayPath, listDataFiles, readDataFile, resolveDataPath, writeFileAtomic } from '../files';
import { restoreDocumentFile, type RestoreDocumentResult } from './restore-document';

export interface BatchItem {
  input: string;
  output: string;
  reference?: string;
}

export interface BatchManifest {
  createdAt: string;
  outputDir: string;
  items: BatchItem[];
}

/** What the workflow hears about one item: enough for counts and error lines, no metrics. */
export interface BatchItemSummary {
  index: number;
  input: string;
  ok: boolean;
  error?: string;
  passed?: boolean;
}

export interface BatchItemResult extends BatchItemSummary {
  output?: string;
  result?: RestoreDocumentResult;
  finishedAt: string;
}

const stateDir = (outputDir: string) => path.join(outputDir, '.backroom');
const resultFile = (outputDir: string, index: number) => path.join(stateDir(outputDir), 'results', `${index}.json`);

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

export interface PrepareBatchRequest {
  inputDir?: string | undefined;
  inputs?: string[] | undefined;
  outputDir: string;
  referenceDir?: string | undefined;
}

/** Lists the batch once into its manifest (or reuses the manifest a previous run wrote). */
export async function prepareBatch(request: PrepareBatchRequest): Promise<{ manifest: string; count: number }> {
  const outputDir = resolveDataPath(request.outputDir, 'output dir');
  const manifestFile = path.join(stateDir(outputDir), 'manifest.json');
  if (await exists(manifestFile)) {
    const manifest = JSON.parse(await readDataFile(manifestFile, 'manifest', 'utf8')) as BatchManifest;
    return { manifest: displayPath(manifestFile), count: manifest.items.length };
  }
  let inputs: string[];
  if (request.inputDir) {
    const inputDir = resolveDataPath(request.inputDir, 'input dir');
    inputs = await listDataFiles(inputDir).catch((err: NodeJS.ErrnoException) => {
      throw ApplicationFailure.nonRetryable(
        err.code === 'ENOENT'
          ? `The input dir ${request.inputDir} does not exist.`
          : `Cannot list ${request.inputDir} (${err.code ?? 'unknown error'}).`,
        'InputDirUnreadable',
      );
    });
  } else {
    // Not confined here: an input that leads outside the data dir is one failed item (refused when it is restored
    // with the reason), not a failed batch.
    inputs = (request.inputs ?? []).map((input) => path.resolve(dataDir(), input));
  }
  if (inputs.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `The batch has no input files (${request.inputDir ?? 'inputs'} is empty).`,
      'EmptyBatch',
    );
  }

  const references = new Map<string, string>();
  if (request.referenceDir) {
    const referenceDir = resolveDataPath(request.referenceDir, 'reference dir');
    for (const file of await listDataFiles(referenceDir).catch(() => [] as string[])) {
      references.set(path.parse(file).name, file);
    }
  }
  // Outputs are PNG under the input's name; two inputs with the same stem keep their extension to stay apart.
  const stems = new Map<string, number>();
  for (const input of inputs) stems.set(path.parse(input).name, (stems.get(path.parse(input).name) ?? 0) + 1);
  const items: BatchItem[] = inputs.map((input) => {
    const { name, base } = path.parse(input);
    const outputName = (stems.get(name) ?? 0) > 1 ? `${base}.png` : `${name}.png`;
    const reference = references.get(name);
    return {
      input: displayPath(input),
      output: displayPath(path.join(outputDir, outputName)),
      ...(reference && { reference: displayPath(reference) }),
    };
  });
  const manifest: BatchManifest = { createdAt: new Date().toISOString(), outputDir: displayPath(outputDir), items };
  await writeFileAtomic(manifestFile, JSON.stringify(manifest));
  return { manifest: displayPath(manifestFile), count: items.length };
}

/** Manifests are read once per worker process, not once per item. */
const manifestCache = new Map<string, Promise<BatchManifest>>();
function loadManifest(manifestPath: string): Promise<BatchManifest> {
  const file = resolveDataPath(manifestPath, 'manifest');
  let cached = manifestCache.get(file);
  if (!cached) {
    cached = readDataFile(file, 'manifest', 'utf8').then((text) => JSON.parse(text) as BatchManifest);
    cached.catch(() => manifestCache.delete(file));
    manifestCache.set(file, cached);
  }
  return cached;
}

function summarize(result: BatchItemResult): BatchItemSummary {
  const { index, input, ok, error, passed } = result;
  return { index, input, ok, ...(error !== undefined && { error }), ...(passed !== undefined && { passed }) };
}

export interface BatchItemRequest {
  manifest: string;
  index: number;
  steps: RestorationStep[];
  model?: string | undefined;
  thresholds: QualityThresholds;
}

/**
 * Restores item `index` unless it already has a result. A bad input (missing, corrupt, not an image...) is a
 * result too (`ok: false`, with the reason), so it is recorded once and never retried; transient faults throw and
 * Temporal retries them.
 */
export async function restoreBatchItem(request: BatchItemRequest): Promise<BatchItemSummary> {
  const manifest = await loadManifest(request.manifest);
  const item = manifest.items[request.index];
  if (!item) throw ApplicationFailure.nonRetryable(`Item ${request.index} is not in ${request.manifest}`, 'BadIndex');
  const outputDir = resolveDataPath(manifest.outputDir, 'output dir');
  const done = resultFile(outputDir, request.index);
  if (await exists(done)) return summarize(JSON.parse(await readDataFile(done, 'result', 'utf8')) as BatchItemResult);

  let record: BatchItemResult;
  try {
    const result = await restoreDocumentFile(
      {
        input: item.input,
        output: item.output,
        reference: item.reference,
        steps: request.steps,
        model: request.model,
        thresholds: request.thresholds,
      },
      async (output) =>
        appendDataFile(path.join(stateDir(outputDir), 'writes.log'), `${request.index}\t${displayPath(output)}\n`),
    );
    record = {
      index: request.index,
      input: item.input,
      ok: true,
      passed: result.passed,
      output: item.output,
      result,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
    record = {
      index: request.index,
      input: item.input,
      ok: false,
      error: err.message,
      finishedAt: new Date().toISOString(),
    };
  }
  Context.current().heartbeat({ step: 'recording' });
  await writeFileAtomic(done, JSON.stringify(record));
  return summarize(record);
}

/** Records an item whose retries ran out, so the report lists it with the reason. */
export async function recordBatchItemFailure(request: {
  manifest: string;
  index: number;
  reason: string;
}): Promise<void> {
  const manifest = await loadManifest(request.manifest);
  const item = manifest.items[request.index];
  const outputDir = resolveDataPath(manifest.outputDir, 'output dir');
  const record: BatchItemResult = {
    index: request.index,
    input: item?.input ?? `item ${request.index}`,
    ok: false,
    error: request.reason,
    finishedAt: new Date().toISOString(),
  };
  await writeFileAtomic(resultFile(outputDir, request.index), JSON.stringify(record));
}

export interface BatchReportSummary {
  report: string;
  summaryFile: string;
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
  notProcessed: number;
  passed: number;
  meanInputPsnr?: number;
  meanOutputPsnr?: number;
  meanPsnrGain?: number;
  meanOutputSsim?: number;
  summary: string;
}

const mean = (values: number[]) =>
  values.length ? Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 1000) / 1000 : undefined;

/** Writes `report.json` (every item with its metrics, and aggregates) and `report.txt` (a short summary). */
export async function writeBatchReport(request: { manifest: string }): Promise<BatchReportSummary> {
  const manifest = await loadManifest(request.manifest);
  const outputDir = resolveDataPath(manifest.outputDir, 'output dir');
  const items = [];
  const gains: number[] = [];
  const inputPsnrs: number[] = [];
  const outputPsnrs: number[] = [];
  const ssims: number[] = [];
  let succeeded = 0;
  let failed = 0;
  let passed = 0;
  for (const [index, item] of manifest.items.entries()) {
    if (index % 200 === 0) Context.current().heartbeat({ index });
    const file = resultFile(outputDir, index);
    if (!(await exists(file))) {
      items.push({
        input: item.input,
        output: item.output,
        ok: false,
        error: 'not processed (the batch was cancelled)',
      });
      continue;
    }
    const record = JSON.parse(await readDataFile(file, 'result', 'utf8')) as BatchItemResult;
    if (record.ok && record.result) {
      succeeded++;
      if (record.result.passed) passed++;
      const reference = record.result.metrics.reference;
      if (reference) {
        gains.push(reference.psnrGain);
        inputPsnrs.push(reference.inputPsnr);
        outputPsnrs.push(reference.outputPsnr);
        ssims.push(reference.outputSsim);
      }
      items.push({
        input: item.input,
        output: item.output,
        ok: true,
        passed: record.result.passed,
        ...(record.result.reasons.length && { reasons: record.result.reasons }),
        steps: record.result.steps,
        metrics: record.result.metrics,
      });
    } else {
      failed++;
      items.push({ input: item.input, output: null, ok: false, error: record.error });
    }
  }
  const total = manifest.items.length;
  const aggregates = {
    total,
    processed: succeeded + failed,
    succeeded,
    failed,
    notProcessed: total - succeeded - failed,
    passed,
    meanInputPsnr: mean(inputPsnrs),
    meanOutputPsnr: mean(outputPsnrs),
    meanPsnrGain: mean(gains),
    meanOutputSsim: mean(ssims),
  };
  const lines = [
    `Restored ${succeeded} of ${total} documents into ${manifest.outputDir}; ${failed} failed` +
      (aggregates.notProcessed ? `, ${aggregates.notProcessed} not processed.` : '.'),
    ...(aggregates.meanPsnrGain !== undefined
      ? [
          `Against the references: PSNR ${aggregates.meanInputPsnr} dB → ${aggregates.meanOutputPsnr} dB ` +
            `(mean gain ${aggregates.meanPsnrGain} dB), SSIM ${aggregates.meanOutputSsim}.`,
        ]
      : []),
    `${passed} of ${succeeded} restored documents passed the quality thresholds.`,
    ...items
      .filter((item) => !item.ok)
      .slice(0, 20)
      .map((item) => `  failed: ${item.input}: ${item.error}`),
  ];
  const summary = lines.join('\n');
  const report = path.join(outputDir, 'report.json');
  const summaryFile = path.join(outputDir, 'report.txt');
  await writeFileAtomic(report, JSON.stringify({ generatedAt: new Date().toISOString(), aggregates, items }, null, 2));
  await writeFileAtomic(summaryFile, `${summary}\n`);
  const defined = Object.fromEntries(
    Object.entries(aggregates).filter(([, v]) => v !== undefined),
  ) as typeof aggregates;
  return {
    report: displayPath(report),
    summaryFile: displayPath(summaryFile),
    ...defined,
    summary,
  } as BatchReportSummary;
}
