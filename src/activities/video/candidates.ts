/**
 * Candidate frames for scoring, kept by the detection pass so scoring needs no second decode and no seek: every
 * `everyMs` of video, one frame at thumbnail size, its qualities measured (in the detection thread) and its JPEG (the
 * thumbnail it would make, encoded by the same ffmpeg: frames.ts) appended to one file in the analysis' thumbnails folder (in the worker's scratch folder
 * when the thumbnails go to a bucket: video-source.ts). Memory stays flat: only the index (time, qualities, where the
 * JPEG is) is kept, and it is rebuilt from the file on a resume. The detection checkpoint records the file's length,
 * so a retried or resumed pass truncates what came after it.
 *
 * A record: time (float64 ms), sharpness, exposure, contrast, colorfulness (4 × float32), JPEG length (uint32),
 * then the JPEG.
 */
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir } from '../files';
import { isPrivateFolder, makePrivateFolder } from '../scratch';
import type { FrameQuality } from './clip-quality';

const HEADER_BYTES = 8 + 4 * 4 + 4;

/**
 * How often a candidate is kept: three a second, so a one-second clip (the shortest by default) has as many to choose
 * from as the seeking scorer looks at. Keeping each costs a 320×180 scale in ffmpeg, a quality measure and a JPEG:
 * at five a second (before) that was a third of the detection pass's CPU on 720p video.
 */
export const CANDIDATE_EVERY_MS = 333;

/** The candidates file of an analysis writing to `outputDir` (already resolved inside the data dir). */
export const candidatesFileIn = (outputDir: string) => path.join(outputDir, 'thumbnails', '.candidates.bin');

export interface Candidate {
  ms: number;
  quality: FrameQuality;
  offset: number;
  length: number;
}

export class CandidateStore {
  private constructor(
    readonly file: string,
    private handle: FileHandle | undefined,
    readonly index: Candidate[],
    private bytes: number,
  ) {}

  /** Bytes written so far (what a checkpoint records). */
  get length(): number {
    return this.bytes;
  }

  /**
   * Opens the store at `file` for appending from `fromBytes` (a checkpoint's length; 0 starts afresh): what lies
   * after it is cut off, what lies before it is indexed. A file shorter than that keeps its whole records. A
   * `scratch` file is in the worker's own scratch folder (video-source.ts), not in the data dir.
   */
  static async openForAppend(file: string, fromBytes: number, scratch = false): Promise<CandidateStore> {
    if (scratch) await makePrivateFolder(path.dirname(file));
    else await makeDataDir(path.dirname(file), 'thumbnails folder');
    const handle = await open(file, fromBytes > 0 ? 'a+' : 'w+');
    try {
      const index = fromBytes > 0 ? await readIndex(handle, fromBytes) : [];
      const end = index.length ? index.at(-1)!.offset + index.at(-1)!.length : 0;
      await handle.truncate(end);
      await handle.close();
      return new CandidateStore(file, await open(file, 'a'), index, end);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Opens the store at `file` to read the first `bytes` of it; an empty store when the file is gone (or, for a
   * `scratch` file, when its folder is not this worker's own: see scratch.ts).
   */
  static async openForReading(file: string, bytes: number, scratch = false): Promise<CandidateStore> {
    const trusted = !scratch || (await isPrivateFolder(path.dirname(file)));
    const handle = trusted ? await open(file, 'r').catch(() => undefined) : undefined;
    if (!handle) return new CandidateStore(file, undefined, [], 0);
    const index = await readIndex(handle, bytes);
    return new CandidateStore(file, handle, index, bytes);
  }

  /** Appends measured candidates (time, qualities, JPEG), in one write. */
  async append(frames: { ms: number; quality: FrameQuality; jpeg: Buffer }[]): Promise<void> {
    if (frames.length === 0) return;
    const parts: Buffer[] = [];
    for (const { ms, quality, jpeg } of frames) {
      const header = Buffer.alloc(HEADER_BYTES);
      header.writeDoubleLE(ms, 0);
      header.writeFloatLE(quality.sharpness, 8);
      header.writeFloatLE(quality.exposure, 12);
      header.writeFloatLE(quality.contrast, 16);
      header.writeFloatLE(quality.colorfulness, 20);
      header.writeUInt32LE(jpeg.length, 24);
      parts.push(header, jpeg);
      this.index.push({ ms, quality, offset: this.bytes + HEADER_BYTES, length: jpeg.length });
      this.bytes += HEADER_BYTES + jpeg.length;
    }
    await this.handle!.write(Buffer.concat(parts));
  }

  /** The JPEG of a candidate. */
  async jpeg(candidate: Candidate): Promise<Buffer> {
    const buffer = Buffer.alloc(candidate.length);
    await this.handle!.read(buffer, 0, candidate.length, candidate.offset);
    return buffer;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** Removes an analysis' candidates file (after scoring, or a cancel); in scratch, its folder too. */
export async function removeCandidates(file: string, scratch = false): Promise<void> {
  await rm(scratch ? path.dirname(file) : file, { recursive: scratch, force: true });
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** The index of the whole records in the first `bytes` of the file. */
async function readIndex(handle: FileHandle, bytes: number): Promise<Candidate[]> {
  const size = Math.min(bytes, (await handle.stat()).size);
  const index: Candidate[] = [];
  const header = Buffer.alloc(HEADER_BYTES);
  for (let at = 0; at + HEADER_BYTES <= size;) {
    const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, at);
    if (bytesRead < HEADER_BYTES) break;
    const length = header.readUInt32LE(24);
    if (at + HEADER_BYTES + length > size) break;
    index.push({
      ms: header.readDoubleLE(0),
      quality: {
        sharpness: round(header.readFloatLE(8)),
        exposure: round(header.readFloatLE(12)),
        contrast: round(header.readFloatLE(16)),
        colorfulness: round(header.readFloatLE(20)),
      },
      offset: at + HEADER_BYTES,
      length,
    });
    at += HEADER_BYTES + length;
  }
  return index;
}

/** Whether a candidates file is there (a retry on a machine without it falls back to seeking). */
export async function candidatesExist(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
