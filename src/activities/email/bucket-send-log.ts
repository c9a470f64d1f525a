/**
 * The send log of a campaign whose state is in a bucket. Nothing can be appended to an object, and an object per
 * line would cost a request per message (hundreds a second), so each batch's log is a series of small objects,
 * segments, `sends/<first index>.log/<seq>.<unique>`, read back in `seq` order, each written whole:
 * - before a chunk of messages goes out, one segment announces them all (their `S` lines: the write-ahead that a local
 *   log writes per message) and carries the replies of the chunk before (`A`, `F`, `N`): one request per chunk;
 * - when the batch ends (full, paused, cancelled, a fault), a last segment has the replies so far and withdraws
 *   (`W <index>`) the announced messages it never started, so they count as never sent.
 * A worker that dies mid-chunk leaves the chunk announced without replies: its messages are in doubt, as the one
 * message a dying worker leaves in doubt in a local log is; the retry sends them again and counts each as possibly
 * duplicated, and the report names them. So a crash may duplicate at most one chunk ({@link MAX_CHUNK} messages)
 * instead of one message, never silently. Chunks grow and shrink to about {@link CHUNK_TARGET_MS} of sending, so a
 * slow server does not leave many unsent messages in doubt, and a fast one costs a request per {@link MAX_CHUNK}.
 *
 * What comes out of the reader is text in the local log's format (withdrawn announcements removed), so everything
 * that counts (send-log.ts, the batch, the report) is the same for both.
 */
import { randomBytes } from 'node:crypto';
import { objectStorage, storageFault, type Place } from '../places';
import { parseS3Prefix } from '../../storage/s3-location';
import { parseSendLog, type BatchSendLog, type LoggedMessage } from './send-log';

/** The most messages one segment announces: what a crash may duplicate, at worst. */
export const MAX_CHUNK = 50;
/** Chunks are sized to take about this long to send. */
export const CHUNK_TARGET_MS = 1000;
/** The first chunk of a batch, before its pace is known. */
const FIRST_CHUNK = 8;
/** Segments read at once (a report reads every segment of the campaign). */
const READS_IN_FLIGHT = 16;

/** Where segments live, by name relative to the campaign's `sends/` (a bucket; a test may keep them in memory). */
export interface SegmentStore {
  /** Names of the segments whose name starts with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** A segment's text ('' when it is gone). */
  read(name: string): Promise<string>;
  write(name: string, text: string): Promise<void>;
}

/** The segments of the campaign at `place` (a prefix in a bucket). */
export function bucketSegments(place: Place): SegmentStore {
  const sends = place.folder('sends');
  const { bucket, prefix } = parseS3Prefix(sends.location);
  return {
    async list(under) {
      const names: string[] = [];
      try {
        for await (const listed of objectStorage().list({ kind: 'prefix', bucket, prefix: `${prefix}${under}` })) {
          names.push(listed.key.slice(prefix.length));
        }
      } catch (err) {
        throw storageFault(err, `the send log ${sends.location}${under}`);
      }
      return names.sort();
    },
    read: async (name) => (await sends.read(name, 'send log'))?.toString('utf8') ?? '',
    write: (name, text) => sends.write(name, text, 'send log'),
  };
}

/** The name of the log of the batch that starts at `batchStart` (the same as a local log file's). */
export const batchLogName = (batchStart: number) => `${String(batchStart).padStart(6, '0')}.log`;

const SEQ_DIGITS = 6;

/** `text` without withdrawn announcements: each `W i` removes the last `S i` before it, and itself. */
export function applyWithdrawals(text: string): string {
  if (!text.includes('W ')) return text;
  const lines = text.split('\n');
  const lastSend = new Map<string, number>();
  lines.forEach((line, at) => {
    if (line.startsWith('S ')) lastSend.set(line.slice(2), at);
    else if (line.startsWith('W ')) {
      const index = line.slice(2);
      const sent = lastSend.get(index);
      if (sent !== undefined) lines[sent] = '';
      lastSend.delete(index);
      lines[at] = '';
    }
  });
  return lines.filter(Boolean).join('\n');
}

/** Reads `names` with a few requests in flight, in order. */
async function readAll(store: SegmentStore, names: string[]): Promise<string[]> {
  const texts = new Array<string>(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const at = next++;
      texts[at] = await store.read(names[at]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, names.length) }, worker));
  return texts;
}

/** A batch log's text from its segments in order (each ends with a line break), withdrawals applied. */
function joinSegments(texts: string[]): string {
  return applyWithdrawals(texts.join(''));
}

/** The batch logs of a campaign in merge order (by first index), each with its text. */
export async function readBucketSendLogs(store: SegmentStore): Promise<{ name: string; text: string }[]> {
  const segments = await store.list('');
  const texts = await readAll(store, segments);
  const byLog = new Map<string, string[]>();
  segments.forEach((segment, at) => {
    const log = segment.slice(0, segment.indexOf('/'));
    if (!log.endsWith('.log')) return;
    byLog.set(log, [...(byLog.get(log) ?? []), texts[at]!]);
  });
  return [...byLog.keys()].sort().map((name) => ({ name, text: joinSegments(byLog.get(name)!) }));
}

/** One batch log's text, and the sequence number its next segment takes. */
export async function readBucketBatchLog(
  store: SegmentStore,
  name: string,
): Promise<{ text: string; nextSeq: number }> {
  const segments = await store.list(`${name}/`);
  const seqs = segments.map((segment) => Number.parseInt(segment.slice(name.length + 1), 10)).filter(Number.isFinite);
  return { text: joinSegments(await readAll(store, segments)), nextSeq: seqs.length ? Math.max(...seqs) + 1 : 0 };
}

/**
 * Writes one batch's log in segments (see the module comment). `into` (the log as read so far) takes in every send
 * and reply at once, so the batch counts what its log will say once the batch ends; `end` is one past the last
 * message the batch may send.
 */
export class BucketSendLogWriter implements BatchSendLog {
  /** Lines not written yet (replies of the chunk going on, withdrawals). */
  private pending: string[] = [];
  /** Messages from `announcedFrom` up to (not including) `announcedTo` are announced. */
  private announcedFrom = 0;
  private announcedTo = 0;
  /** The last message started, or -1. */
  private started = -1;
  private chunk = FIRST_CHUNK;
  private chunkStartedAt = 0;

  constructor(
    private readonly store: SegmentStore,
    private readonly name: string,
    private seq: number,
    private readonly end: number,
    private readonly into?: Map<number, LoggedMessage>,
  ) {}

  /** Logs that message `index` is about to go out; when it opens a chunk, resolves once the chunk is announced. */
  sending(index: number): Promise<void> | undefined {
    this.started = index;
    if (this.into) parseSendLog(`S ${index}`, this.into);
    if (index >= this.announcedFrom && index < this.announcedTo) return undefined;
    const now = Date.now();
    if (this.chunkStartedAt) {
      // The pace of the chunk that ended: the next one is about CHUNK_TARGET_MS of it.
      const perMs = (this.announcedTo - this.announcedFrom) / Math.max(1, now - this.chunkStartedAt);
      this.chunk = Math.max(1, Math.min(MAX_CHUNK, Math.floor(perMs * CHUNK_TARGET_MS)));
    }
    this.chunkStartedAt = now;
    this.announcedFrom = index;
    this.announcedTo = Math.max(index + 1, Math.min(this.end, index + this.chunk));
    for (let announced = index; announced < this.announcedTo; announced++) this.pending.push(`S ${announced}`);
    return this.flush();
  }

  accepted(index: number, at: number): void {
    this.reply(`A ${index} ${at}`);
  }

  rejected(index: number, at: number, reason: string): void {
    this.reply(`F ${index} ${at} ${JSON.stringify(reason)}`);
  }

  notSent(index: number): void {
    this.reply(`N ${index}`);
  }

  /** Writes the replies so far and withdraws the announced messages never started. */
  async close(): Promise<void> {
    for (let index = Math.max(this.started + 1, this.announcedFrom); index < this.announcedTo; index++) {
      this.pending.push(`W ${index}`);
    }
    this.announcedTo = this.announcedFrom;
    await this.flush();
  }

  private reply(line: string): void {
    this.pending.push(line);
    if (this.into) parseSendLog(line, this.into);
  }

  /** Writes the pending lines as the next segment; they stay pending until it is written. */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    const segment = `${this.name}/${String(this.seq).padStart(SEQ_DIGITS, '0')}.${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    await this.store.write(segment, `${lines.join('\n')}\n`);
    this.seq += 1;
    this.pending = this.pending.slice(lines.length);
  }
}
