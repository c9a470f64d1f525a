/**
 * `processImage`: the operations of a processMedia job, applied in order with sharp. Filters change the working
 * image; `thumbnail` and `optimize` write files from it. Between operations the image stays raw (decoded) in
 * memory, so order is exactly as asked and nothing is re-encoded twice.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import sharp from 'sharp';
import type { MediaOperation } from '../../shared/restoration-inputs';
import { displayPath, resolveDataPath, writeFileAtomic } from '../files';
import { openImage } from './open-image';

export interface ProcessImageInput {
  input: string;
  outputDir?: string | undefined;
  operations: MediaOperation[];
}

export interface OperationRecord {
  op: MediaOperation['op'];
  /** Set for operations that wrote a file (thumbnail, optimize, and the final output of filters). */
  output?: string;
  width: number;
  height: number;
  bytes?: number;
  format?: string;
}

export interface ProcessImageResult {
  input: string;
  inputBytes: number;
  width: number;
  height: number;
  operations: OperationRecord[];
  outputs: { path: string; width: number; height: number; bytes: number; format: string }[];
  /** How the input was read, when the user should know (e.g. "animated GIF with 12 frames: only the first …"). */
  warnings?: string[];
}

interface RawImage {
  data: Buffer;
  info: sharp.OutputInfo;
}

const ENCODER_QUALITY = { jpeg: 82, webp: 80, avif: 55 } as const;
const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'tiff'] as const;
type OutputFormat = (typeof OUTPUT_FORMATS)[number];

function encode(pipeline: sharp.Sharp, format: OutputFormat, quality?: number): sharp.Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: quality ?? ENCODER_QUALITY.jpeg, mozjpeg: true });
    case 'webp':
      return pipeline.webp({ quality: quality ?? ENCODER_QUALITY.webp });
    case 'avif':
      return pipeline.avif({ quality: quality ?? ENCODER_QUALITY.avif });
    case 'tiff':
      return pipeline.tiff({ compression: 'lzw' });
    default:
      return pipeline.png();
  }
}

function fromRaw(image: RawImage): sharp.Sharp {
  const { width, height, channels } = image.info;
  return sharp(image.data, { raw: { width, height, channels } });
}

async function toRaw(pipeline: sharp.Sharp): Promise<RawImage> {
  return pipeline.raw().toBuffer({ resolveWithObject: true });
}

function applyFilter(pipeline: sharp.Sharp, operation: MediaOperation): sharp.Sharp {
  switch (operation.op) {
    case 'blur':
      return pipeline.blur(operation.radius);
    case 'brightness':
      return pipeline.modulate({ brightness: operation.factor });
    case 'contrast':
      // Stretch around mid-grey: out = factor * (in - 128) + 128.
      return pipeline.linear(operation.factor, 128 * (1 - operation.factor));
    case 'grayscale':
      return pipeline.grayscale();
    case 'sharpen':
      return pipeline.sharpen({ sigma: operation.sigma });
    default:
      throw new Error(`not a filter: ${operation.op}`);
  }
}

/** Applies `operations` to one image and writes the outputs; see the module comment. */
export async function processImage(request: ProcessImageInput): Promise<ProcessImageResult> {
  const input = resolveDataPath(request.input, 'input');
  const outputDir = request.outputDir
    ? resolveDataPath(request.outputDir, 'output dir')
    : path.join(path.dirname(input), 'processed');
  const base = path.parse(input).name;
  const opened = await openImage(input);

  let image: RawImage;
  try {
    // Upright (EXIF orientation applied) and in sRGB (CMYK and ICC profiles converted), as browsers show it.
    image = await toRaw(opened.image.rotate().toColourspace('srgb'));
  } catch (err) {
    throw opened.failure(err);
  }
  const inputFormat = opened.metadata.format ?? 'png';

  const result: ProcessImageResult = {
    input: displayPath(input),
    inputBytes: opened.bytes,
    width: image.info.width,
    height: image.info.height,
    operations: [],
    outputs: [],
    ...(opened.warnings.length > 0 && { warnings: opened.warnings }),
  };
  /** Encodes and writes `<stem>.<extension of format>` atomically; returns what was written. */
  const write = async (pipeline: sharp.Sharp, stem: string, format: OutputFormat, quality?: number) => {
    const { data, info } = await encode(pipeline, format, quality).toBuffer({ resolveWithObject: true });
    const file = path.join(outputDir, `${stem}.${format === 'jpeg' ? 'jpg' : format}`);
    await writeFileAtomic(file, data);
    const output = { path: displayPath(file), width: info.width, height: info.height, bytes: data.length, format };
    result.outputs.push(output);
    return output;
  };

  let dirty = false;
  for (const [index, operation] of request.operations.entries()) {
    Context.current().heartbeat({ operation: index });
    if (operation.op === 'thumbnail') {
      const thumb = fromRaw(image).resize(operation.width, operation.height, { fit: operation.fit });
      const { path: output, ...written } = await write(
        thumb,
        `${base}.thumb-${operation.width}x${operation.height}`,
        'webp',
      );
      result.operations.push({ op: operation.op, output, ...written });
    } else if (operation.op === 'optimize') {
      const out = await write(fromRaw(image), `${base}.optimized`, operation.format, operation.quality);
      const { path: output, ...written } = out;
      result.operations.push({ op: operation.op, output, ...written });
      dirty = false;
    } else {
      image = await toRaw(applyFilter(fromRaw(image), operation));
      result.operations.push({ op: operation.op, width: image.info.width, height: image.info.height });
      dirty = true;
    }
  }
  // Filters after the last written output still deserve a file: the input's own format.
  if (dirty) {
    const format = (OUTPUT_FORMATS as readonly string[]).includes(inputFormat) ? (inputFormat as OutputFormat) : 'png';
    const out = await write(fromRaw(image), `${base}.processed`, format);
    const last = result.operations.at(-1);
    if (last) Object.assign(last, { output: out.path, bytes: out.bytes, format: out.format });
  }
  return result;
}
