/**
 * `processImage`: the operations of a processMedia job, applied in order with sharp. Filters change the working
 * image; `thumbnail` and `optimize` write files from it. Between operations the image stays raw (decoded) in
 * memory, so order is exactly as asked and nothing is re-encoded twice.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import sharp from 'sharp';
import type { Resumable } from '../../shared/job-status';
import type { MediaOperation } from '../../shared/restoration-inputs';
import { heartbeatWhile } from '../heartbeat-while';
import { canonicalLocation, fileAt, localFile, placeAt, type Place } from '../places';
import { runResumableLoop } from '../resumable-loop';
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

/**
 * How `blur` computes its Gaussian (sigma = the operation's radius). libvips 8.18 (sharp 0.35) offers three
 * precisions; measured on the 2725×2225 fixture photo, sigma 3, one thread, decoded pixels in and out: 'integer' (a
 * fixed-point mask, vectorised) 30 ms, 'approximate' (a sum of box filters) 320-390 ms, 'float' 320-460 ms (the
 * spread is other load on the machine). 'integer' is the fastest of the three and stays within BLUR_MIN_PSNR_DB of
 * the exact (float) Gaussian (44.7 dB on that photo): the cheaper blur of equal look is the one libvips already
 * vectorises, not its box approximation.
 */
export const BLUR_PRECISION: sharp.Precision = 'integer';

/** The blur's tolerance: PSNR (dB) against the float Gaussian, checked by test/unit/blur-tolerance.test.ts. */
export const BLUR_MIN_PSNR_DB = 40;

/**
 * Applies one filter operation to a sharp pipeline. One filter per pipeline: sharp applies its operations in its
 * own fixed order, not in call order.
 */
export function applyFilter(pipeline: sharp.Sharp, operation: MediaOperation): sharp.Sharp {
  switch (operation.op) {
    case 'blur':
      return pipeline.blur({ sigma: operation.radius, precision: BLUR_PRECISION });
    case 'brightness':
      // R, G and B times the factor in sRGB, as Pillow's ImageEnhance.Brightness (and our `contrast`) do. This was
      // modulate({ brightness }) (lightness scaled in CIE LCh): a float colourspace round trip per pixel, 360-450 ms
      // on the 2725×2225 photo against 75 ms, most of a blur + brightness + JPEG pipeline's time.
      return pipeline.linear(operation.factor, 0);
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

type WrittenOutput = ProcessImageResult['outputs'][number];

/** Where a processMedia job stands: the next operation and what the earlier ones recorded and wrote. */
export interface ProcessImageCheckpoint {
  /** The next operation; `operations.length` is the final write of a filtered image that has no file yet. */
  next: number;
  /** Filters were applied since the last written output, so the image still needs writing at the end. */
  dirty: boolean;
  operations: OperationRecord[];
  outputs: WrittenOutput[];
}

/**
 * One image's operations as steps from a checkpoint. The decoded image lives only in this attempt's memory: an
 * attempt that starts from a checkpoint decodes the input again and re-applies the filters before it (their CPU
 * time again, but no file is written again), so files already written stay written once.
 */
class ImageOperations {
  /** Where the outputs go: a data-dir folder or a bucket prefix (places.ts). */
  readonly outputs: Place;
  private readonly base: string;
  private opened?: { result: Omit<ProcessImageResult, 'operations' | 'outputs'>; format: string };
  private working?: { at: number; image: RawImage };

  constructor(private readonly request: ProcessImageInput) {
    // Both checked now (confined path, allowed bucket), so a refused location fails before any decoding.
    const input = fileAt(request.input, 'input');
    this.outputs = request.outputDir ? placeAt(request.outputDir, 'output dir') : input.place.folder('processed');
    this.base = path.posix.parse(input.name).name;
  }

  readonly initial: ProcessImageCheckpoint = { next: 0, dirty: false, operations: [], outputs: [] };

  isDone(checkpoint: ProcessImageCheckpoint): boolean {
    return (
      checkpoint.next > this.request.operations.length ||
      (checkpoint.next === this.request.operations.length && !checkpoint.dirty)
    );
  }

  /** Runs operation `checkpoint.next` (or the final write) and returns the checkpoint after it. */
  async step(checkpoint: ProcessImageCheckpoint): Promise<ProcessImageCheckpoint> {
    const image = await this.imageAt(checkpoint.next);
    const operation = this.request.operations[checkpoint.next];
    const next: ProcessImageCheckpoint = {
      next: checkpoint.next + 1,
      dirty: checkpoint.dirty,
      operations: [...checkpoint.operations],
      outputs: [...checkpoint.outputs],
    };
    if (!operation) {
      // Filters after the last written output still deserve a file: the input's own format.
      const inputFormat = this.opened?.format ?? 'png';
      const format = (OUTPUT_FORMATS as readonly string[]).includes(inputFormat)
        ? (inputFormat as OutputFormat)
        : 'png';
      const out = await this.write(fromRaw(image), `${this.base}.processed`, format);
      next.outputs.push(out);
      const last = next.operations.at(-1);
      if (last) next.operations[next.operations.length - 1] = { ...last, output: out.path, bytes: out.bytes, format };
      next.dirty = false;
    } else if (operation.op === 'thumbnail') {
      const thumb = fromRaw(image).resize(operation.width, operation.height, { fit: operation.fit });
      const out = await this.write(thumb, `${this.base}.thumb-${operation.width}x${operation.height}`, 'webp');
      next.outputs.push(out);
      const { path: output, ...written } = out;
      next.operations.push({ op: operation.op, output, ...written });
    } else if (operation.op === 'optimize') {
      const out = await this.write(fromRaw(image), `${this.base}.optimized`, operation.format, operation.quality);
      next.outputs.push(out);
      const { path: output, ...written } = out;
      next.operations.push({ op: operation.op, output, ...written });
      next.dirty = false;
    } else {
      const filtered = await toRaw(applyFilter(fromRaw(image), operation));
      this.working = { at: next.next, image: filtered };
      next.operations.push({ op: operation.op, width: filtered.info.width, height: filtered.info.height });
      next.dirty = true;
    }
    if (this.working) this.working.at = next.next;
    return next;
  }

  result(checkpoint: ProcessImageCheckpoint): ProcessImageResult {
    if (!this.opened) throw new Error('processImage finished without opening its input');
    return { ...this.opened.result, operations: checkpoint.operations, outputs: checkpoint.outputs };
  }

  /** Opens the input once per attempt; the result's header (size, warnings) is known from then on. */
  async open(): Promise<void> {
    if (this.opened) return;
    // An object is streamed into a scratch file first (sharp reads by path), gone once the image is decoded.
    const input = await localFile(this.request.input, 'input');
    let opened: Awaited<ReturnType<typeof openImage>>;
    let image: RawImage;
    try {
      opened = await openImage(input.file);
      try {
        // Upright (EXIF orientation applied) and in sRGB (CMYK and ICC profiles converted), as browsers show it.
        image = await toRaw(opened.image.rotate().toColourspace('srgb'));
      } catch (err) {
        throw opened.failure(err);
      }
    } finally {
      await input.release();
    }
    this.opened = {
      format: opened.metadata.format ?? 'png',
      result: {
        input: canonicalLocation(this.request.input),
        inputBytes: opened.bytes,
        width: image.info.width,
        height: image.info.height,
        ...(opened.warnings.length > 0 && { warnings: opened.warnings }),
      },
    };
    this.working = { at: 0, image };
  }

  /** The working image as it is before operation `index`: after a resume, the earlier filters are applied again. */
  private async imageAt(index: number): Promise<RawImage> {
    await this.open();
    let working = this.working!;
    while (working.at < index) {
      const operation = this.request.operations[working.at]!;
      const image =
        operation.op === 'thumbnail' || operation.op === 'optimize'
          ? working.image
          : await toRaw(applyFilter(fromRaw(working.image), operation));
      working = { at: working.at + 1, image };
    }
    this.working = working;
    return working.image;
  }

  /** Encodes and writes `<stem>.<extension of format>` whole (places.ts); returns what was written. */
  private async write(pipeline: sharp.Sharp, stem: string, format: OutputFormat, quality?: number) {
    const { data, info } = await encode(pipeline, format, quality).toBuffer({ resolveWithObject: true });
    const name = `${stem}.${format === 'jpeg' ? 'jpg' : format}`;
    await this.outputs.write(name, data, 'output');
    return { path: this.outputs.locate(name), width: info.width, height: info.height, bytes: data.length, format };
  }
}

/** Applies `operations` to one image and writes the outputs, in one go; see the module comment. */
export async function processImage(request: ProcessImageInput): Promise<ProcessImageResult> {
  const job = new ImageOperations(request);
  // libvips decodes and filters on its own threads: the heartbeat keeps going while a large photo takes seconds.
  await heartbeatWhile(job.open(), () => ({ operation: 0 }));
  let checkpoint = job.initial;
  while (!job.isDone(checkpoint)) {
    const details = { operation: checkpoint.next };
    Context.current().heartbeat(details);
    checkpoint = await heartbeatWhile(job.step(checkpoint), () => details);
  }
  return job.result(checkpoint);
}

/**
 * Activity: {@link processImage} as steps that a pause or cancel interrupts between two operations (a sharp
 * operation itself runs to its end, a second or two on a large photo); resume carries on with the next operation.
 */
export async function processImageResumable(
  request: ProcessImageInput & { resumeFrom?: ProcessImageCheckpoint | undefined },
): Promise<Resumable<ProcessImageCheckpoint, ProcessImageResult>> {
  const job = new ImageOperations(request);
  // A bad input fails before the first step, with its own error. Decoding a large photo takes seconds: keep beating,
  // with the details this attempt resumes from, so a worker dying meanwhile does not lose them.
  const resumedFrom: unknown = Context.current().info.heartbeatDetails;
  await heartbeatWhile(job.open(), () => resumedFrom);
  const total = request.operations.length;
  return runResumableLoop<ProcessImageCheckpoint, ProcessImageResult>({
    initial: job.initial,
    resumeFrom: request.resumeFrom,
    isDone: (checkpoint) => job.isDone(checkpoint),
    step: (checkpoint) => job.step(checkpoint),
    progress: (checkpoint) => ({ done: Math.min(checkpoint.next, total), total, unit: 'operations' }),
    describe: (checkpoint) =>
      `${Math.min(checkpoint.next, total)} of ${total} operations, ${checkpoint.outputs.length} output(s) written`,
    finish: (checkpoint) => job.result(checkpoint),
  });
}
