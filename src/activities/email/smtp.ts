/**
 * Sending over SMTP with nodemailer, and what a failed send means: the server refused this one message for good
 * (5xx), asked us to come back later (4xx), could not be reached, or refuses every message (credentials, sender);
 * and whether the message may have gone out anyway (the connection dropped after the data was sent).
 */
import { createHash } from 'node:crypto';
import nodemailer, { type NodemailerError, type SMTPPoolOptions, type Transporter } from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import { smtpUrl } from '../../config';

export type SmtpTransport = Transporter<unknown, SMTPPoolOptions>;

/**
 * One SMTP connection for a run of messages, sent one at a time in order (so a crash leaves at most one message in
 * doubt). Timeouts are short enough that a hung server turns into a retry instead of a stuck activity.
 */
export function openSmtpTransport(url = smtpUrl()): SmtpTransport {
  const fromUrl = parseConnectionUrl(url) as SMTPPoolOptions;
  return nodemailer.createTransport({
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
    ...fromUrl,
    pool: true,
    maxConnections: 1,
    maxMessages: Infinity,
  });
}

/**
 * Connections kept open between the batches of a campaign: opening one costs a round of greetings, and servers
 * delay the greeting on purpose (100 ms for smtp-server, seconds for Postfix's postscreen). One per campaign keeps
 * each campaign's messages strictly one after another; a connection unused for a while is closed, and all of them
 * when the worker shuts down ({@link closeKeptSmtpTransports}).
 */
const kept = new Map<string, { transport: SmtpTransport; idle?: NodeJS.Timeout; closeOnRelease?: boolean }>();
const KEEP_IDLE_MS = 30_000;

/** The campaign's open connection (or a new one); give it back with {@link releaseSmtpTransport}. */
export function borrowSmtpTransport(key: string, url = smtpUrl()): SmtpTransport {
  const id = `${url} ${key}`;
  const entry = kept.get(id);
  if (entry) {
    clearTimeout(entry.idle);
    entry.idle = undefined;
    return entry.transport;
  }
  const transport = openSmtpTransport(url);
  kept.set(id, { transport });
  return transport;
}

/** Keeps the connection for the campaign's next batch, or closes it for good (`discard`, after a fault). */
export function releaseSmtpTransport(key: string, transport: SmtpTransport, discard = false, url = smtpUrl()): void {
  const id = `${url} ${key}`;
  const entry = kept.get(id);
  if (discard || entry?.transport !== transport || entry.closeOnRelease) {
    transport.close();
    if (entry?.transport === transport) kept.delete(id);
    return;
  }
  entry.idle = setTimeout(() => {
    kept.delete(id);
    transport.close();
  }, KEEP_IDLE_MS);
  entry.idle.unref();
}

/**
 * Closes the kept connections, for a worker that shuts down: the idle ones now, the ones a batch is using when it
 * gives them back. Otherwise their sockets would hold the process open until the idle timeout.
 */
export function closeKeptSmtpTransports(): void {
  for (const [id, entry] of kept) {
    if (entry.idle === undefined) {
      entry.closeOnRelease = true;
      continue;
    }
    clearTimeout(entry.idle);
    kept.delete(id);
    entry.transport.close();
  }
}

/** What a failed send means for the message and for the job. */
export type SendFailureKind =
  /** The server refused this message for good (5xx): record it, go on with the others. */
  | 'rejected'
  /** Later may work (4xx, connection refused or lost): retry with backoff. */
  | 'transient'
  /** Every message would fail the same way (credentials, sender refused): stop the job and say what to fix. */
  | 'fatal';

export interface SendFailure {
  kind: SendFailureKind;
  /** True when the server may have accepted the message despite the error (the data was already sent). */
  maybeDelivered: boolean;
  /** In words, with the server's own reply when there is one. */
  reason: string;
}

const BEFORE_DATA = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL FROM|RCPT TO)/i;

/** Node's codes for a certificate chain nobody here trusts (self-signed, or signed by an unknown CA). */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/**
 * What to set when the server's TLS certificate is refused: no retry makes a certificate valid, so this is a
 * configuration fault, not an unreachable server. Undefined for anything that is not a certificate problem.
 */
function certificateAdvice(code: string): string | undefined {
  if (UNTRUSTED_CERTIFICATE.has(code)) {
    return (
      'trust its CA with NODE_EXTRA_CA_CERTS=/path/to/ca.pem in the worker environment, ' +
      'or add ?tls.rejectUnauthorized=false to SMTP_URL for a test server'
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return "renew the server's certificate (or add ?tls.rejectUnauthorized=false to SMTP_URL for a test server)";
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return 'use a host name in SMTP_URL that the certificate lists (or set ?tls.servername=<that name>)';
  }
  return undefined;
}

export function classifySendError(err: unknown): SendFailure {
  const error = err as NodemailerError;
  const reply = error.response ? `${error.response}` : error.message;
  const command = error.command ?? '';
  const refusedBeforeData = error.responseCode !== undefined || BEFORE_DATA.test(command);
  const maybeDelivered = !refusedBeforeData && /DATA|^$/i.test(command) && error.code !== 'ECONNECTION';
  if (error.code === 'EAUTH' || error.code === 'ENOAUTH') {
    return {
      kind: 'fatal',
      maybeDelivered: false,
      reason: `The SMTP server refused the login (${reply}); check the user and password in SMTP_URL.`,
    };
  }
  if (error.responseCode !== undefined && error.permanent) {
    if (/^MAIL FROM/i.test(command)) {
      return {
        kind: 'fatal',
        maybeDelivered: false,
        reason: `The SMTP server refused the sender (${reply}); use a from address the server accepts.`,
      };
    }
    return { kind: 'rejected', maybeDelivered: false, reason: `rejected by the server: ${reply}` };
  }
  if (error.responseCode !== undefined) {
    return { kind: 'transient', maybeDelivered: false, reason: `deferred by the server: ${reply}` };
  }
  const cause = error.originalCode ?? error.code ?? 'error';
  const advice = certificateAdvice(cause);
  if (advice) {
    return {
      kind: 'fatal',
      maybeDelivered: false,
      reason: `The SMTP server's TLS certificate is refused (${cause}: ${reply}); ${advice}.`,
    };
  }
  return {
    kind: 'transient',
    maybeDelivered,
    reason: `SMTP server unreachable or connection lost (${cause}): ${reply}`,
  };
}

/** The host part of a sender like `Name <user@host>`, for Message-IDs. */
export function senderDomain(from: string): string {
  const address = /<([^<>]+)>\s*$/.exec(from)?.[1] ?? from;
  return address.split('@')[1]?.trim().toLowerCase() || 'backroom.local';
}

/**
 * A Message-ID that depends only on the campaign and the recipient, so a message sent twice (after a crash) carries
 * the same id both times and the duplicate is detectable downstream.
 */
export function campaignMessageId(campaignId: string, email: string, domain: string): string {
  const recipient = createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 20);
  return `<${campaignId}.${recipient}@${domain}>`;
}
