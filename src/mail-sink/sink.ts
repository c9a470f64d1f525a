/**
 * A local SMTP server for development and tests: it accepts every message over real SMTP and stores it as
 * `<Message-ID>.eml`, and logs each arrival (time, Message-ID, recipients, subject) to `received.jsonl`, so a user
 * can see what a campaign sent and a test can judge rates and duplicates from the receive times. It is a separate
 * piece: email jobs only know `SMTP_URL`, and any other SMTP server works the same.
 *
 * Recipients matching `rejectRecipients` are refused with 550, the way a real server refuses an unknown mailbox.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import libmime from 'libmime';
import { SMTPServer } from 'smtp-server';

export interface MailSinkOptions {
  dir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  rejectRecipients?: RegExp;
}

export interface ReceivedMessage {
  /** When the sink had the whole message (ms since the epoch). */
  receivedAt: number;
  messageId: string;
  from: string;
  to: string[];
  subject: string;
  /** The stored message, relative to the sink's folder. */
  file: string;
}

export interface RunningMailSink {
  url: string;
  port: number;
  dir: string;
  close(): Promise<void>;
}

/** Recipients at reject.test (a reserved domain) are refused by default, to show what a bounce looks like. */
export const DEFAULT_REJECT = /@reject\.test$/i;

export const RECEIVED_LOG = 'received.jsonl';

export async function startMailSink(options: MailSinkOptions): Promise<RunningMailSink> {
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const reject = options.rejectRecipients ?? DEFAULT_REJECT;
  // One open file for the arrivals log: its lines are written in order, and each message is answered once its line is.
  const log = createWriteStream(path.join(dir, RECEIVED_LOG), { flags: 'a' });
  log.on('error', () => undefined); // a failed write fails that message's callback (below), not the process
  const server = new SMTPServer({
    banner: 'Backroom mail sink',
    authOptional: true,
    disableReverseLookup: true, // a reverse DNS lookup per connection costs ~100 ms here, for nothing
    disabledCommands: ['STARTTLS'],
    size: 25 * 1024 * 1024,
    logger: false,
    onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'anyone' }),
    onRcptTo: (address, _session, callback) => {
      if (!reject.test(address.address)) return callback();
      const refusal = Object.assign(new Error(`5.1.1 <${address.address}>: mailbox unavailable`), {
        responseCode: 550,
      });
      callback(refusal);
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const receivedAt = Date.now();
        const raw = Buffer.concat(chunks);
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
        };
        store(dir, log, raw, receivedAt, envelope).then(
          () => callback(),
          (err: unknown) => callback(err as Error),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined); // a client that goes away mid-session is not the sink's problem
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const host = options.host ?? '127.0.0.1';
  return {
    url: `smtp://${host}:${port}`,
    port,
    dir,
    close: () =>
      new Promise<void>((resolve) => server.close(() => resolve())).then(
        () => new Promise<void>((resolve) => log.end(() => resolve())),
      ),
  };
}

/**
 * The Message-ID and Subject of a raw message, from its header block alone: all the sink records, without parsing
 * the body (a full parse took most of the sink's own time per message).
 */
export function headerFields(raw: Buffer): { messageId?: string; subject: string } {
  // The header block ends at the first empty line (CRLF as SMTP requires, or bare LF from a careless client).
  const end = [raw.indexOf('\r\n\r\n'), raw.indexOf('\n\n')].filter((at) => at >= 0).sort((a, b) => a - b)[0];
  const head = raw.toString('utf8', 0, end ?? raw.length).replace(/\r?\n[ \t]+/g, ' ');
  const id = MESSAGE_ID_FIELD.exec(head)?.[1]?.replace(/^<|>$/g, '');
  return { ...(id && { messageId: `<${id}>` }), subject: libmime.decodeWords(SUBJECT_FIELD.exec(head)?.[1] ?? '') };
}

const MESSAGE_ID_FIELD = /^message-id:[ \t]*(.*?)[ \t]*$/im;
const SUBJECT_FIELD = /^subject:[ \t]*(.*?)[ \t]*$/im;

function appendLine(log: WriteStream, line: string): Promise<void> {
  return new Promise((resolve, reject) => log.write(line, (err) => (err ? reject(err) : resolve())));
}

async function store(
  dir: string,
  log: WriteStream,
  raw: Buffer,
  receivedAt: number,
  envelope: { from: string; to: string[] },
): Promise<void> {
  const parsed = headerFields(raw);
  const messageId = parsed.messageId ?? `<no-id-${receivedAt}>`;
  const base = messageId.replace(/^<|>$/g, '').replace(/[^A-Za-z0-9@._-]/g, '_');
  let file = `${base}.eml`;
  // The same Message-ID twice is a duplicate: keep both copies, numbered, so it shows.
  for (let copy = 2; ; copy++) {
    try {
      await writeFile(path.join(dir, file), raw, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      file = `${base}.${copy}.eml`;
    }
  }
  const entry: ReceivedMessage = {
    receivedAt,
    messageId,
    from: envelope.from,
    to: envelope.to,
    subject: parsed.subject,
    file,
  };
  await appendLine(log, `${JSON.stringify(entry)}\n`);
}
