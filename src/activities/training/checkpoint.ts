/**
 * Model checkpoints: one JSON file (in the data dir or a bucket) holding the weights (float32, base64), the optimiser's state, where training
 * stood (epoch, batch, running loss) and the epoch's metrics. A layer-2 checkpoint carries its layer-1 weights, so
 * any checkpoint is a complete model. Files are written atomically; a file that does not parse or whose arrays do
 * not fit its architecture is refused with a clear, non-retryable error rather than a crash loop.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { EpochMetrics, ModelLayer } from '../../shared/training-inputs';
import { displayPath, readDataFile, resolveDataPath, writeFileAtomic } from '../files';
import { canonicalLocation, readParsed, type Place } from '../places';
import { isS3Location } from '../../storage/s3-location';
import { jsonSyntaxPlace } from '../parse-errors';
import { WEIGHT_NAMES, weightShapes, type Architecture, type Weights } from './model';

export const CHECKPOINT_FORMAT = 'backroom-restoration-model/1';

/** Where a run stands: `batch` batches of `epoch` are done (0 at an epoch boundary). */
export interface TrainingPosition {
  /** The first run id of the `trainModel` job that wrote it (the same across continue-as-new): whose work this is. */
  firstRunId: string;
  epoch: number;
  batch: number;
  lossSum: number;
  samples: number;
}

export interface ModelWeights {
  architecture: Architecture;
  weights: Weights;
}

export interface Checkpoint extends ModelWeights {
  layer: ModelLayer;
  /** The layer-1 model a layer-2 model refines. */
  layer1?: ModelWeights;
  learningRate: number;
  optimizer: { shape: number[]; data: Float32Array }[];
  position: TrainingPosition;
  metrics?: EpochMetrics;
}

const floats = z.string();
const architectureSchema = z.object({
  window: z.number().int().min(1).max(31),
  hidden: z.tuple([z.number().int().min(1).max(1024), z.number().int().min(1).max(1024)]),
  input: z.literal('normalized').optional(),
});
const weightsSchema = z.object({ architecture: architectureSchema, weights: z.record(z.string(), floats) });
const fileSchema = weightsSchema.extend({
  format: z.literal(CHECKPOINT_FORMAT),
  layer: z.enum(['layer1', 'layer2']),
  layer1: weightsSchema.optional(),
  learningRate: z.number().positive(),
  optimizer: z.array(z.object({ shape: z.array(z.number().int().min(0)), data: floats })),
  position: z
    .object({
      firstRunId: z.string().optional(),
      /** What `firstRunId` was called in checkpoints written before it was renamed. */
      runId: z.string().optional(),
      epoch: z.number().int().min(0),
      batch: z.number().int().min(0),
      lossSum: z.number(),
      samples: z.number().int().min(0),
    })
    .refine((position) => position.firstRunId !== undefined || position.runId !== undefined, {
      path: ['firstRunId'],
      error: 'missing',
    })
    .transform(({ firstRunId, runId, ...rest }): TrainingPosition => ({
      firstRunId: firstRunId ?? runId ?? '',
      ...rest,
    })),
  metrics: z.custom<EpochMetrics>().optional(),
  savedAt: z.string(),
});

function encode(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

function decode(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0) throw new Error('an array is not a whole number of float32 values');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

function encodeWeights({ architecture, weights }: ModelWeights) {
  return {
    architecture,
    weights: Object.fromEntries(WEIGHT_NAMES.map((name) => [name, encode(weights[name])])),
  };
}

function decodeWeights(raw: z.output<typeof weightsSchema>): ModelWeights {
  const { window, hidden, input } = raw.architecture;
  const architecture: Architecture = { window, hidden, ...(input && { input }) };
  if (architecture.window % 2 !== 1) throw new Error('the window size must be odd');
  const shapes = weightShapes(architecture);
  const weights = {} as Weights;
  for (const name of WEIGHT_NAMES) {
    const text = raw.weights[name];
    if (text === undefined) throw new Error(`weight "${name}" is missing`);
    const values = decode(text);
    const expected = shapes[name].reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw new Error(`weight "${name}" has ${values.length} values where the architecture needs ${expected}`);
    }
    if (!values.every(Number.isFinite)) throw new Error(`weight "${name}" holds NaN or infinite values`);
    weights[name] = values;
  }
  return { architecture, weights };
}

/** The checkpoint as its file holds it (JSON). */
export function serializeCheckpoint(checkpoint: Checkpoint): string {
  const body = {
    format: CHECKPOINT_FORMAT,
    layer: checkpoint.layer,
    ...encodeWeights(checkpoint),
    ...(checkpoint.layer1 && { layer1: encodeWeights(checkpoint.layer1) }),
    learningRate: checkpoint.learningRate,
    optimizer: checkpoint.optimizer.map((entry) => ({ shape: entry.shape, data: encode(entry.data) })),
    position: checkpoint.position,
    ...(checkpoint.metrics && { metrics: checkpoint.metrics }),
    savedAt: new Date().toISOString(),
  };
  return JSON.stringify(body);
}

/** Writes `checkpoint` to `file` atomically (a reader sees the previous file or this one, never a part). */
export async function writeCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomic(file, serializeCheckpoint(checkpoint));
}

/** Writes `checkpoint` as `name` in `place` (whole, see places.ts) and returns what it wrote. */
export async function writeCheckpointAt(place: Place, name: string, checkpoint: Checkpoint): Promise<string> {
  const text = serializeCheckpoint(checkpoint);
  await place.write(name, text, 'checkpoint');
  return text;
}

/**
 * Reads a checkpoint (an absolute path); a missing file or a corrupt one is a non-retryable error that says which
 * file and what is wrong with it.
 */
export async function readCheckpoint(file: string, what = 'checkpoint'): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readDataFile(file, what, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') {
      throw ApplicationFailure.nonRetryable(`The ${what} ${displayPath(file)} does not exist.`, 'FileNotFound');
    }
    throw err;
  }
  return checkpointOrFailure(parseCheckpoint(text), displayPath(file), what);
}

/** Reads the checkpoint `name` of `place` (a model folder in the data dir or a bucket), as {@link readCheckpoint}. */
export async function readCheckpointAt(place: Place, name: string, what = 'checkpoint'): Promise<Checkpoint> {
  const data = await place.read(name, what);
  if (data === undefined) {
    throw ApplicationFailure.nonRetryable(`The ${what} ${place.locate(name)} does not exist.`, 'FileNotFound');
  }
  return checkpointOrFailure(parseCheckpoint(data.toString('utf8')), place.locate(name), what);
}

/** The checkpoint `name` of `place`, or undefined when there is none (a corrupt one is still refused). */
export async function readCheckpointIfAny(place: Place, name: string, what: string): Promise<Checkpoint | undefined> {
  const data = await place.read(name, what);
  return data === undefined
    ? undefined
    : checkpointOrFailure(parseCheckpoint(data.toString('utf8')), place.locate(name), what);
}

/** A parsed checkpoint, or why the text is not one (in words that name fields and counts, never values). */
export type ParsedCheckpoint = { checkpoint: Checkpoint } | { problem: string };

/** Parses a checkpoint file's text. */
export function parseCheckpoint(text: string): ParsedCheckpoint {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { problem: `not JSON: ${jsonSyntaxPlace(err, text)}` };
  }
  try {
    const raw = fileSchema.parse(json);
    const model = decodeWeights(raw);
    return {
      checkpoint: {
        layer: raw.layer,
        ...model,
        ...(raw.layer1 && { layer1: decodeWeights(raw.layer1) }),
        learningRate: raw.learningRate,
        optimizer: raw.optimizer.map((entry) => ({ shape: entry.shape, data: decode(entry.data) })),
        position: raw.position,
        ...(raw.metrics && { metrics: raw.metrics }),
      },
    };
  } catch (err) {
    // Name the fields that are wrong, never their values: the file may not be a checkpoint at all.
    const reason =
      err instanceof z.ZodError
        ? err.issues
            .slice(0, 5)
            .map((issue) => `${issue.path.join('.') || 'the top level'}: ${issue.code.replace(/_/g, ' ')}`)
            .join('; ')
        : (err as Error).message; // decodeWeights' own words: counts and names, no values
    return { problem: reason };
  }
}

/** The checkpoint, or the non-retryable `CorruptCheckpoint` failure that names the file `shownAs` and the reason. */
export function checkpointOrFailure(parsed: ParsedCheckpoint, shownAs: string, what: string): Checkpoint {
  if ('checkpoint' in parsed) return parsed.checkpoint;
  throw ApplicationFailure.nonRetryable(
    `The ${what} ${shownAs} is not a valid checkpoint (${parsed.problem}). Point to another checkpoint, or ` +
      'delete it and train again.',
    'CorruptCheckpoint',
  );
}

/** Parses the bytes of a checkpoint in a bucket (for `readParsed`: one parser, so its results are cached). */
const parseCheckpointBytes = (data: Buffer): ParsedCheckpoint => parseCheckpoint(data.toString('utf8'));

/**
 * Reads a checkpoint named by a job input: a path inside the data dir, or an object in an allowed bucket
 * (`s3://bucket/key`, parsed once per version of it, file-cache.ts). Missing and corrupt ones are refused for good.
 * `parseFile` reads a data-dir file: pass a module-level function to cache those too (`loadModel`).
 */
export async function readCheckpointInput(
  location: string,
  what: string,
  parseFile?: (file: string) => Promise<ParsedCheckpoint>,
): Promise<Checkpoint> {
  if (!isS3Location(location) && !parseFile) return readCheckpoint(resolveDataPath(location, what), what);
  const parsed = await readParsed(location, what, parseFile ?? readAnyCheckpoint, parseCheckpointBytes).catch(
    (err: unknown) => {
      if (err instanceof ApplicationFailure && err.type === 'ObjectNotFound') {
        throw ApplicationFailure.nonRetryable(
          `The ${what} ${canonicalLocation(location)} does not exist.`,
          'FileNotFound',
        );
      }
      throw err;
    },
  );
  return checkpointOrFailure(parsed, canonicalLocation(location), what);
}

const readAnyCheckpoint = async (file: string): Promise<ParsedCheckpoint> => ({
  checkpoint: await readCheckpoint(file),
});
