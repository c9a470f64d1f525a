/**
 * The send log: the durable record that makes "at most one duplicate per crash" true. Before a message goes out its
 * index is logged as being sent (`S`); after the server's reply, as accepted (`A`), rejected (`F`) or not sent
 * (`N`). Each line is written before the next message starts, so a process killed at any point leaves at most one
 * message in doubt (sent, reply not logged); the retry sends that one again and counts it as possibly duplicated.
 * Heartbeat details cannot do this job: the SDK throttles them, so the last second of sends would be lost.
 *
 * Lines go to the OS right away (a killed process loses none); they are not fsynced per message, so a power loss
 * may lose the last few and duplicate them. A campaign whose state is in a bucket writes the same lines in a few
 * objects per batch instead (bucket-send-log.ts), which may leave a chunk of messages in doubt instead of one.
 */
import { closeSync, mkdirSync, writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { openAppendSync, readDataFile } from '../files';

export type SendOutcome = 'accepted' | 'rejected' | 'not-sent';

export interface LoggedMessage {
  index: number;
  /** The last reply: undefined while the message is in doubt. */
  outcome?: SendOutcome;
  at?: number;
  reason?: string;
  /** Times it was sent while an earlier send of it was in doubt. */
  doubtfulResends: number;
  /** Sent, and no reply logged (the process died mid-send). */
  inDoubt: boolean;
}

const OUTCOMES: Record<string, SendOutcome> = { A: 'accepted', F: 'rejected', N: 'not-sent' };

/** Reads log lines into one entry per message index (later lines win); torn or unknown lines are ignored. */
export function parseSendLog(text: string, into = new Map<number, LoggedMessage>()): Map<number, LoggedMessage> {
  for (const line of text.split('\n')) {
    const match = /^([SAFN]) (\d+)(?: (\d+))?(?: (.*))?$/.exec(line);
    if (!match) continue;
    takeLine(
      into,
      match[1]!,
      Number(match[2]),
      match[3] ? Number(match[3]) : undefined,
      match[4] && safeJson(match[4]),
    );
  }
  return into;
}

/** One line's meaning, taken into the log as read so far: the one rule for lines read and lines written. */
function takeLine(into: Map<number, LoggedMessage>, kind: string, index: number, at?: number, reason?: string): void {
  const entry = into.get(index) ?? { index, doubtfulResends: 0, inDoubt: false };
  if (kind === 'S') {
    if (entry.inDoubt) entry.doubtfulResends += 1;
    entry.inDoubt = true;
  } else {
    entry.inDoubt = false;
    entry.outcome = OUTCOMES[kind];
    if (at) entry.at = at;
    if (reason) entry.reason = reason;
  }
  into.set(index, entry);
}

/**
 * How many copies of a message may have reached the server: every send that started and was never confirmed (no
 * reply logged before the worker died), plus the send the server accepted. A rejected send or a `not-sent` line
 * delivered nothing.
 */
export function possibleCopies(entry: LoggedMessage): number {
  return entry.doubtfulResends + (entry.inDoubt ? 1 : 0) + (entry.outcome === 'accepted' ? 1 : 0);
}

/** Sent more than once with at least one of the sends unconfirmed: it may have arrived twice. */
export const possiblyDuplicated = (entry: LoggedMessage) => possibleCopies(entry) >= 2;

/**
 * How many of `entries` may have arrived twice: the one count behind every figure of it, the running status (the
 * campaign's preparation and each batch count the messages they settle) and the final report alike.
 */
export function countPossiblyDuplicated(entries: Iterable<LoggedMessage | undefined>): number {
  let count = 0;
  for (const entry of entries) if (entry && possiblyDuplicated(entry)) count += 1;
  return count;
}

/** Its last send started and was never confirmed, nor accepted before (the campaign ended first): it may have arrived. */
export const unconfirmed = (entry: LoggedMessage) => entry.inDoubt && entry.outcome !== 'accepted';

function safeJson(text: string): string {
  try {
    return String(JSON.parse(text));
  } catch {
    return text;
  }
}

/** Reads one log (none yet reads as empty) into `into`, after what it holds already. */
export async function readSendLog(
  file: string,
  into = new Map<number, LoggedMessage>(),
): Promise<Map<number, LoggedMessage>> {
  const text = await readDataFile(file, 'send log', 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return parseSendLog(text, into);
}

/** The batch logs of a campaign folder in the order they merge in (by first index), with their text. */
export async function readSendLogFiles(dir: string): Promise<{ name: string; text: string }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const files = [];
  for (const name of names.filter((n) => n.endsWith('.log')).sort()) {
    files.push({ name, text: await readDataFile(path.join(dir, name), 'send log', 'utf8') });
  }
  return files;
}

/** What a batch logs its sends through: a file of its own on disk, or segments in a bucket (bucket-send-log.ts). */
export interface BatchSendLog {
  /** Message `index` is about to go out; a promise means: send it only once that resolves (the write-ahead). */
  sending(index: number): Promise<void> | undefined;
  accepted(index: number, at: number): void;
  rejected(index: number, at: number, reason: string): void;
  notSent(index: number): void;
  /** The batch waits before its next message (pacing): what is held back is written now. */
  beforeWait?(): void;
  /** The batch is over: whatever is still unwritten is written (a promise for a bucket). */
  close(): Promise<void> | void;
}

/**
 * Appends to one batch's log, and `into` (the log as read so far) takes each line in at once, so what the batch counts
 * is always what its log says. A message's `S` line reaches the OS before the message goes out. An accepted reply is
 * written with the next message's `S` line, in one write (a write per line was the largest cost a message added to a
 * bare SMTP loop), or when the batch waits or ends: a process killed in between leaves that one message in doubt
 * instead of the next one, so still at most one per crash.
 */
export class SendLogWriter implements BatchSendLog {
  private readonly fd: number;
  /** Accepted replies not yet written (at most one: the next line takes it along). */
  private heldBack = '';

  constructor(
    file: string,
    private readonly into?: Map<number, LoggedMessage>,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openAppendSync(file, 'send log');
  }

  sending(index: number): undefined {
    this.write(`S ${index}\n`);
    if (this.into) takeLine(this.into, 'S', index);
    return undefined;
  }

  accepted(index: number, at: number): void {
    this.heldBack += `A ${index} ${at}\n`;
    if (this.into) takeLine(this.into, 'A', index, at);
  }

  rejected(index: number, at: number, reason: string): void {
    this.write(`F ${index} ${at} ${JSON.stringify(reason)}\n`);
    if (this.into) takeLine(this.into, 'F', index, at, reason);
  }

  notSent(index: number): void {
    this.write(`N ${index}\n`);
    if (this.into) takeLine(this.into, 'N', index);
  }

  beforeWait(): void {
    if (this.heldBack) this.write('');
  }

  close(): void {
    this.beforeWait();
    closeSync(this.fd);
  }

  private write(lines: string): void {
    writeSync(this.fd, this.heldBack + lines);
    this.heldBack = '';
  }
}
