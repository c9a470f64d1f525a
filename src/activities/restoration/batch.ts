/**
 * Batch restoration on disk. The batch's state lives next to its outputs, in `<outputDir>/.backroom/`:
 * - `manifest.json`: the items (input, output, reference), listed once, so every run and retry sees the same list;
 * - `results/<index>.json`: one result per item. It is written *before* the output lands, marked `writing` with the
 *   SHA-256 of the output's bytes, and again without the mark once the output and its audit line are in place;
 * - `writes.log`: one line per output written (an audit trail: duplicates would show there).
 * What this guarantees, whenever a worker dies: each output is renamed into place once and logged once. A retry that
 * finds a `writing` record whose output is there with those bytes only finishes the bookkeeping; an item is
 * processed again only when the worker died before its output landed (then nothing of it was written). A finished
 * record is never processed again.
 * Workflows pass only the manifest path and indexes: payloads stay small whatever the batch size.
 * The folders may be in a bucket (`s3://bucket/prefix/`, places.ts) as well as in the data dir: with `outputDir` in a
 * bucket, the state above lives in `<outputDir>.backroom/` there (the write log as one object per line, in
 * `.backroom/writes/`), so any worker that reaches the bucket carries the batch on; an item's input is streamed into
 * a scratch file of the worker's own and its output uploaded whole.
 * The manifest records the fingerprint of the batch's request (inputs, references, steps, model, thresholds: see
 * state-folder.ts): the same batch resumes from the folder, another one is refused unless it passes `overwrite`,
 * which clears the old results first. Each result carries the fingerprint too, so no result of another batch counts.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { QualityThresholds, RestorationStep } from '../../shared/restoration-inputs';
import { readDataFile } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { canonicalLocation, fileAt, localFile, placeAt, readParsed, type Place } from '../places';
import { stateFingerprint, useStateFolder } from '../state-folder';
import { restorePage, type RestoreDocumentResult } from './restore-document';

export interface BatchItem {
  input: string;
  output: string;
  reference?: string;
}

export interface BatchManifest {
  createdAt: string;
  outputDir: string;
  /** What the batch was asked (see state-folder.ts); absent in manifests written before it was recorded. */
  fingerprint?: string;
  /** The workflow execution that listed the batch (its first run). */
  writtenBy?: { workflowId: string; runId: string };
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
  /** Set while the output is being put in place: the SHA-256 of the bytes it has once it landed. */
  writing?: { sha256: string };
  /** The fingerprint of the batch that wrote this result (its manifest's). */
  fingerprint?: string;
}

/** Where a batch keeps its state: `.backroom/` in its output folder. */
const statePlace = (output: Place) => output.folder('.backroom');
const resultName = (index: number) => `results/${index}.json`;

export interface PrepareBatchRequest {
  inputDir?: string | undefined;
  inputs?: string[] | undefined;
  outputDir: string;
  referenceDir?: string | undefined;
  steps: RestorationStep[];
  model?: string | undefined;
  thresholds: QualityThresholds;
  /** Replace the state of another batch found in `outputDir` instead of refusing to start. */
  overwrite?: boolean | undefined;
}

/** What defines a batch: another value of any of these is another batch (concurrency and run size are not). */
function batchFingerprint(request: PrepareBatchRequest): string {
  const place = (file: string | undefined) => file && canonicalLocation(file);
  return stateFingerprint({
    inputDir: place(request.inputDir),
    inputs: request.inputs?.map(place),
    outputDir: place(request.outputDir),
    referenceDir: place(request.referenceDir),
    steps: request.steps,
    model: place(request.model),
    thresholds: request.thresholds,
  });
}

/**
 * Activity: lists the batch once into its manifest, or reuses the manifest an earlier attempt or run of the same batch
 * wrote; refuses a folder that holds another batch (`StateFolderMismatch`) unless `overwrite` is set. Heartbeats
 * while a big folder is listed.
 */
export async function prepareBatch(request: PrepareBatchRequest): Promise<{ manifest: string; count: number }> {
  return heartbeatWhile(listBatch(request), () => ({ step: 'listing' }));
}

async function listBatch(request: PrepareBatchRequest): Promise<{ manifest: string; count: number }> {
  const output = placeAt(request.outputDir, 'output dir');
  const state = statePlace(output);
  const fingerprint = batchFingerprint(request);
  const execution = Context.current().info.workflowExecution;
  const writtenBy = execution && { workflowId: execution.workflowId, runId: execution.runId };
  const existingData = await state.read('manifest.json', 'manifest');
  const existing = existingData && parseManifestBytes(existingData);
  const use = useStateFolder({
    recorded: existing && (existing.fingerprint ?? null),
    fingerprint,
    overwrite: request.overwrite,
    mine:
      existing &&
      writtenBy !== undefined &&
      existing.writtenBy?.workflowId === writtenBy.workflowId &&
      existing.writtenBy.runId === writtenBy.runId,
    conflict: () =>
      `${request.outputDir} holds a batch of ${existing?.items.length ?? 0} other pages` +
      (existing?.fingerprint
        ? ' (different inputs, references, steps, model or thresholds)'
        : ' (written by an earlier version of Backroom)') +
      '; choose another outputDir or pass overwrite: true.',
  });
  if (existing && use === 'resume') return { manifest: state.locate('manifest.json'), count: existing.items.length };
  let inputs: string[];
  if (request.inputDir) {
    const inputDir = placeAt(request.inputDir, 'input dir');
    inputs = await inputDir.files().catch((err: NodeJS.ErrnoException) => {
      // A bucket's faults say already whether a retry helps (places.ts); a folder's are explained here.
      if (!inputDir.local) throw err;
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
    inputs = (request.inputs ?? []).map(canonicalLocation);
  }
  if (inputs.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `The batch has no input files (${request.inputDir ?? 'inputs'} is empty).`,
      'EmptyBatch',
    );
  }

  const references = new Map<string, string>();
  if (request.referenceDir) {
    const referenceDir = placeAt(request.referenceDir, 'reference dir');
    for (const file of await referenceDir.files().catch(() => [] as string[])) {
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
    return { input, output: output.locate(outputName), ...(reference && { reference }) };
  });
  const manifest: BatchManifest = {
    createdAt: new Date().toISOString(),
    outputDir: output.location,
    fingerprint,
    ...(writtenBy && { writtenBy }),
    items,
  };
  // A new batch: no result or log line of an earlier one may count. Cleared once the inputs are known good and before
  // the manifest is written, so an attempt that dies in between leaves the old manifest, and its retry clears again.
  await clearResults(state);
  await state.write('manifest.json', JSON.stringify(manifest), 'output');
  return { manifest: state.locate('manifest.json'), count: items.length };
}

/** Removes the results and the write log of the batch that used the folder before (its outputs are rewritten). */
async function clearResults(state: Place): Promise<void> {
  await state.remove('results');
  await state.log('writes').clear();
}

async function parseManifest(file: string): Promise<BatchManifest> {
  return JSON.parse(await readDataFile(file, 'manifest', 'utf8')) as BatchManifest;
}

function parseManifestBytes(data: Buffer): BatchManifest {
  return JSON.parse(data.toString('utf8')) as BatchManifest;
}

/**
 * Manifests are read once per worker process and version (file-cache.ts; an object's version is its ETag), not once
 * per item: a batch that replaced another in the same folder is read again.
 */
export async function loadManifest(manifestPath: string): Promise<BatchManifest> {
  return readParsed(manifestPath, 'manifest', parseManifest, parseManifestBytes);
}

function summarize(result: BatchItemResult): BatchItemSummary {
  const { index, input, ok, error, passed } = result;
  return { index, input, ok, ...(error !== undefined && { error }), ...(passed !== undefined && { passed }) };
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Whether the output holds exactly the bytes with this digest (the output a `writing` record announced). */
async function landedWith(output: { place: Place; name: string }, digest: string): Promise<boolean> {
  const data = await output.place.read(output.name, 'output').catch(() => undefined);
  return data !== undefined && sha256(data) === digest;
}

/** The item's result, if the batch of `manifest` wrote it (one of another batch does not count). */
async function readRecord(state: Place, index: number, manifest: BatchManifest): Promise<BatchItemResult | undefined> {
  const data = await state.read(resultName(index), 'result');
  if (!data) return undefined;
  const record = JSON.parse(data.toString('utf8')) as BatchItemResult;
  return record.fingerprint === manifest.fingerprint ? record : undefined;
}

/**
 * Appends the item's line to `writes.log`. `once`: only if the log has no line for the item yet, for a retry that
 * may follow an attempt that appended it (reading the whole log on every item would cost a big batch dearly).
 */
async function logWrite(state: Place, index: number, output: string, once: boolean): Promise<void> {
  const log = state.log('writes');
  if (once && (await log.has(String(index)))) return;
  await log.append(String(index), output);
}

/** Moments of an item's write at which a worker may die; tests stop an attempt there to prove the guarantee. */
export type BatchWritePoint = 'recorded-writing' | 'output-landed' | 'logged';

export interface BatchItemRequest {
  manifest: string;
  index: number;
  steps: RestorationStep[];
  model?: string | undefined;
  thresholds: QualityThresholds;
}

/**
 * The `restoreBatchItem` activity; `at` runs at each {@link BatchWritePoint} (tests make it throw, as a dying
 * worker would stop there).
 */
export function restoreBatchItemWith(at?: (point: BatchWritePoint, index: number) => void | Promise<void>) {
  /**
   * Restores item `index` unless it already has a result. A bad input (missing, corrupt, not an image...) is a
   * result too (`ok: false`, with the reason), so it is recorded once and never retried; transient faults throw and
   * Temporal retries them. See the module comment for what a worker dying at any moment leaves.
   */
  return async function restoreBatchItem(request: BatchItemRequest): Promise<BatchItemSummary> {
    // Reading, hashing and writing the item's files wait on the disk: the heartbeat keeps going meanwhile.
    return heartbeatWhile(restoreItem(request), () => ({ step: 'restoring', index: request.index }));
  };

  async function restoreItem(request: BatchItemRequest): Promise<BatchItemSummary> {
    const manifest = await loadManifest(request.manifest);
    const item = manifest.items[request.index];
    if (!item) throw ApplicationFailure.nonRetryable(`Item ${request.index} is not in ${request.manifest}`, 'BadIndex');
    const state = statePlace(placeAt(manifest.outputDir, 'output dir'));
    const done = resultName(request.index);
    const earlier = await readRecord(state, request.index, manifest);
    if (earlier && !earlier.writing) return summarize(earlier);
    const output = fileAt(item.output, 'output');
    if (earlier?.writing && (await landedWith(output, earlier.writing.sha256))) {
      // The last attempt died after its output landed: finish its bookkeeping, write nothing again.
      await logWrite(state, request.index, item.output, true);
      const record: BatchItemResult = { ...earlier, writing: undefined };
      await state.write(done, JSON.stringify(record), 'output');
      return summarize(record);
    }

    let record: BatchItemResult;
    try {
      const result = await restoreInto(item, output, request, {
        beforeWrite: async (result, data) => {
          const writing = {
            ...succeeded(request.index, item, result, manifest.fingerprint),
            writing: { sha256: sha256(data) },
          };
          await state.write(done, JSON.stringify(writing), 'output');
          await at?.('recorded-writing', request.index);
        },
        afterWrite: async () => {
          await at?.('output-landed', request.index);
          await logWrite(state, request.index, item.output, earlier !== undefined);
          await at?.('logged', request.index);
        },
      });
      record = succeeded(request.index, item, result, manifest.fingerprint);
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
      record = {
        index: request.index,
        input: item.input,
        ok: false,
        error: err.message,
        finishedAt: new Date().toISOString(),
        fingerprint: manifest.fingerprint,
      };
    }
    Context.current().heartbeat({ step: 'recording' });
    await state.write(done, JSON.stringify(record), 'output');
    return summarize(record);
  }
}

/**
 * Restores an item from its input (a data-dir file as it is, an object through a scratch copy) and writes its
 * output whole; `hooks` record its fate around the one moment the output lands.
 */
async function restoreInto(
  item: BatchItem,
  output: { place: Place; name: string },
  request: BatchItemRequest,
  hooks: { beforeWrite(result: RestoreDocumentResult, data: Buffer): Promise<void>; afterWrite(): Promise<void> },
): Promise<RestoreDocumentResult> {
  const signal = Context.current().cancellationSignal;
  const input = await localFile(item.input, 'input', signal);
  try {
    const reference = item.reference ? await localFile(item.reference, 'reference', signal) : undefined;
    try {
      const { result, png } = await restorePage(
        {
          input: input.file,
          reference: reference?.file,
          shown: { input: item.input, output: item.output, ...(item.reference && { reference: item.reference }) },
        },
        request,
      );
      await hooks.beforeWrite(result, png);
      await output.place.write(output.name, png, 'output', signal);
      await hooks.afterWrite();
      return result;
    } finally {
      await reference?.release();
    }
  } finally {
    await input.release();
  }
}

function succeeded(
  index: number,
  item: BatchItem,
  result: RestoreDocumentResult,
  fingerprint: string | undefined,
): BatchItemResult {
  return {
    fingerprint,
    index,
    input: item.input,
    ok: true,
    passed: result.passed,
    output: item.output,
    result,
    finishedAt: new Date().toISOString(),
  };
}

/** Activity: restores one item of a batch, exactly once (see the module comment). */
export const restoreBatchItem = restoreBatchItemWith();

/** Activity: records an item whose retries ran out, so the report lists it with the reason. */
export async function recordBatchItemFailure(request: {
  manifest: string;
  index: number;
  reason: string;
}): Promise<void> {
  return heartbeatWhile(recordFailure(request), () => ({ step: 'recording', index: request.index }));
}

async function recordFailure(request: { manifest: string; index: number; reason: string }): Promise<void> {
  const manifest = await loadManifest(request.manifest);
  const item = manifest.items[request.index];
  const state = statePlace(placeAt(manifest.outputDir, 'output dir'));
  const record: BatchItemResult = {
    index: request.index,
    input: item?.input ?? `item ${request.index}`,
    ok: false,
    error: request.reason,
    finishedAt: new Date().toISOString(),
    fingerprint: manifest.fingerprint,
  };
  await state.write(resultName(request.index), JSON.stringify(record), 'output');
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

/**
 * Activity: writes `report.json` (every item with its metrics, and aggregates) and `report.txt` (a short summary),
 * heartbeating while it reads every item's record.
 */
export async function writeBatchReport(request: { manifest: string }): Promise<BatchReportSummary> {
  let index = 0;
  return heartbeatWhile(
    buildBatchReport(request, (at) => (index = at)),
    () => ({ index }),
  );
}

async function buildBatchReport(
  request: { manifest: string },
  reading: (index: number) => void,
): Promise<BatchReportSummary> {
  const manifest = await loadManifest(request.manifest);
  const output = placeAt(manifest.outputDir, 'output dir');
  const state = statePlace(output);
  const items = [];
  const gains: number[] = [];
  const inputPsnrs: number[] = [];
  const outputPsnrs: number[] = [];
  const ssims: number[] = [];
  let succeeded = 0;
  let failed = 0;
  let passed = 0;
  for (const [index, item] of manifest.items.entries()) {
    reading(index);
    const record = await readRecord(state, index, manifest);
    if (!record) {
      items.push({
        input: item.input,
        output: item.output,
        ok: false,
        error: 'not processed (the batch was cancelled)',
      });
      continue;
    }
    if (record.writing) {
      // Stopped while its output was being put in place: the next run of the batch finishes it.
      items.push({
        input: item.input,
        output: item.output,
        ok: false,
        error: 'not processed (interrupted while writing)',
      });
      continue;
    }
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
  await output.write(
    'report.json',
    JSON.stringify({ generatedAt: new Date().toISOString(), aggregates, items }, null, 2),
    'output',
  );
  await output.write('report.txt', `${summary}\n`, 'output');
  const defined = Object.fromEntries(
    Object.entries(aggregates).filter(([, v]) => v !== undefined),
  ) as typeof aggregates;
  return {
    report: output.locate('report.json'),
    summaryFile: output.locate('report.txt'),
    ...defined,
    summary,
  } as BatchReportSummary;
}
