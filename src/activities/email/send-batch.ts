/**
 * One batch of a campaign: sends messages in list order from `batchStart` until the batch is full (the workflow's
 * pacing decides its size) or the next recipient's domain has had its share, logging each one before the next
 * (send-log.ts). A pause or cancel stops it between two messages; a retry after a crash or an SMTP outage carries
 * on after the last message the log records. The campaign's place may be a folder in the data dir or a prefix in a
 * bucket (campaign.ts): then the log is written in segments (bucket-send-log.ts) and any worker carries the batch on.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Resumable } from '../../shared/job-status';
import { earliestSend } from '../../shared/send-plan';
import { resolveDataPath } from '../files';
import type { Place } from '../places';
import { runResumableLoop } from '../resumable-loop';
import {
  BucketSendLogWriter,
  batchLogName,
  bucketSegments,
  readBucketBatchLog,
  type SegmentStore,
} from './bucket-send-log';
import { campaignPlace, loadCampaign, sendLogDir, type Campaign } from './campaign';
import {
  SendLogWriter,
  parseSendLog,
  possiblyDuplicated,
  readSendLog,
  type BatchSendLog,
  type LoggedMessage,
} from './send-log';
import {
  borrowSmtpTransport,
  campaignMessageId,
  classifySendError,
  releaseSmtpTransport,
  type SmtpTransport,
} from './smtp';
import { renderTemplate } from './template';

export interface SendBatchRequest {
  campaignDir: string;
  batchStart: number;
  batchSize: number;
  perDomainPerBatch?: number | undefined;
  /** Messages the campaign sent before this batch, so progress reads campaign-wide. */
  sentBefore: number;
  /** The rate limit's start time for this batch (ms since the epoch): the first message waits for it. */
  notBefore?: number | undefined;
  /**
   * Per-message pacing (send-plan.ts): each message waits for the reply to the message `count` before it plus `ms`;
   * `recentReplies` are the reply times of the campaign's last messages before this batch, oldest first.
   */
  perMessage?: { count: number; ms: number } | undefined;
  recentReplies?: number[] | undefined;
  /**
   * Logs of earlier runs of the campaign that mention messages from this batch on (prepareCampaign lists them): read
   * before the batch's own, so its counts are the report's.
   */
  earlierLogs?: string[] | undefined;
}

export interface MessageFailure {
  index: number;
  email: string;
  reason: string;
}

/** Where a batch stands; rebuilt from its send log on every attempt. */
export interface BatchState {
  next: number;
  attempted: number;
  sent: number;
  failed: number;
  /** Messages of the batch that may have arrived twice (`countPossiblyDuplicated` over its settled messages). */
  possiblyDuplicated: number;
  /** Time of the last server reply (ms since the epoch); the workflow paces the next batch from it. */
  lastReplyAt: number;
  /**
   * With per-message pacing: the reply time of each message the batch settled, in order (plus, for each message an
   * earlier attempt left in doubt, the start of the attempt that found it).
   */
  replies?: number[];
  domainCounts: Record<string, number>;
  /** The most recent failures (bounded, like the status's errors, so heartbeats stay small); the log has them all. */
  failures: MessageFailure[];
}

const MAX_FAILURES_KEPT = 50;

/**
 * How often a batch heartbeats between messages when Temporal watches its heartbeats (a heartbeat timeout is set, as
 * the workflow sets it): the SDK encodes every heartbeat and hands it to the core, which sends one a second, and
 * that cost about 0.1 ms a message, the largest cost left when a message takes 2 ms. Without a heartbeat timeout (a
 * direct call, a test following each message) the batch beats after every message. Either way the send log, not
 * the heartbeat, is where a retry starts, and the last message's beat always goes out.
 */
const HEARTBEAT_EVERY_MS = 200;

function withFailure(failures: MessageFailure[], failure: MessageFailure): MessageFailure[] {
  return [...failures, failure].slice(-MAX_FAILURES_KEPT);
}

export const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();

export const batchLogFile = (campaignDir: string, batchStart: number) =>
  path.join(sendLogDir(campaignDir), `${String(batchStart).padStart(6, '0')}.log`);

/**
 * A batch's state, from its log: the messages settled from `batchStart` on (accepted or rejected), up to the first
 * one that is not (a message in doubt is sent again). Every attempt starts from it and every message sent updates
 * it (see {@link advanceBatchState}), so the batch's counts are always what its log says.
 */
export function batchStateFromLog(
  campaign: Campaign,
  batchStart: number,
  log: Map<number, LoggedMessage>,
  pacedPerMessage = false,
): BatchState {
  const start: BatchState = {
    ...(pacedPerMessage && { replies: [] }),
    next: batchStart,
    attempted: 0,
    sent: 0,
    failed: 0,
    possiblyDuplicated: 0,
    lastReplyAt: 0,
    domainCounts: {},
    failures: [],
  };
  return advanceBatchState(campaign, start, log);
}

const isSettled = (entry: LoggedMessage | undefined): entry is LoggedMessage =>
  !!entry && !entry.inDoubt && !!entry.outcome && entry.outcome !== 'not-sent';

/**
 * `state` moved past the messages its log settles from `state.next` on, up to the first one it does not: the one
 * counting rule behind {@link batchStateFromLog} (from a batch's start) and each message sent (from the state before
 * it), so a batch costs one look at each message instead of a rescan of the batch per message.
 *
 * `domainCounts` is the attempt's own record and grows in place (it only serves the batch's per-domain quota; a
 * retry rebuilds it from the log), so a message costs the same whatever the number of domains.
 */
export function advanceBatchState(campaign: Campaign, state: BatchState, log: Map<number, LoggedMessage>): BatchState {
  let entry = log.get(state.next);
  if (!isSettled(entry)) return state;
  const next = { ...state };
  for (; isSettled(entry); entry = log.get(next.next)) {
    const index = next.next;
    const email = campaign.recipients[index]?.email ?? '';
    const domain = domainOf(email);
    next.domainCounts[domain] = (next.domainCounts[domain] ?? 0) + 1;
    next.attempted += 1;
    next.lastReplyAt = Math.max(next.lastReplyAt, entry.at ?? 0);
    if (next.replies) next.replies = [...next.replies, entry.at ?? 0];
    if (possiblyDuplicated(entry)) next.possiblyDuplicated += 1;
    if (entry.outcome === 'accepted') {
      next.sent += 1;
    } else {
      next.failed += 1;
      next.failures = withFailure(next.failures, { index, email, reason: entry.reason ?? 'rejected' });
    }
    next.next = index + 1;
  }
  return next;
}

/**
 * The send log as the report merges it, for the messages of the batch at `batchStart` in the campaign at `dir` (its
 * place, or its folder): the earlier runs' logs that mention them, then the batch's own.
 */
export async function readBatchSendLog(
  dir: string | Place,
  batchStart: number,
  earlierLogs: string[] = [],
): Promise<Map<number, LoggedMessage>> {
  return (await openBatchSendLog(campaignPlace(dir), batchStart, earlierLogs)).log;
}

/** The batch's log as read so far, and where its next lines go (`end`: one past the last message it may send). */
async function openBatchSendLog(
  place: Place,
  batchStart: number,
  earlierLogs: string[],
  end?: number,
): Promise<{ log: Map<number, LoggedMessage>; writer: () => BatchSendLog }> {
  const log = new Map<number, LoggedMessage>();
  const own = batchLogName(batchStart);
  const names = [...new Set([...earlierLogs.map((name) => path.basename(name)), own])].sort();
  if (place.local) {
    const dir = resolveDataPath(place.location, 'campaign dir');
    for (const name of names) await readSendLog(path.join(sendLogDir(dir), name), log);
    return { log, writer: () => new SendLogWriter(batchLogFile(dir, batchStart), log) };
  }
  const store: SegmentStore = bucketSegments(place);
  let nextSeq = 0;
  for (const name of names) {
    const read = await readBucketBatchLog(store, name);
    parseSendLog(read.text, log);
    if (name === own) nextSeq = read.nextSeq;
  }
  return {
    log,
    writer: () => new BucketSendLogWriter(store, own, nextSeq, end ?? Number.MAX_SAFE_INTEGER, log),
  };
}

/** Sends one batch; see the module comment. */
export async function sendEmailBatch(request: SendBatchRequest): Promise<Resumable<BatchState, BatchState>> {
  const place = campaignPlace(request.campaignDir);
  const campaign = await loadCampaign(place).catch((err: unknown) => {
    // A bucket's passing fault is retried; a campaign that is not there (or not readable as one) is not.
    const missing =
      err instanceof ApplicationFailure ? err.type === 'ObjectNotFound' : place.local || err instanceof SyntaxError;
    if (!missing) throw err;
    throw ApplicationFailure.nonRetryable(
      `No campaign in ${request.campaignDir}: prepareCampaign must run first.`,
      'CampaignMissing',
    );
  });
  const total = campaign.recipients.length;
  const end = Math.min(total, request.batchStart + request.batchSize);
  const opened = await openBatchSendLog(place, request.batchStart, request.earlierLogs ?? [], end);
  const sendLog = opened.log;
  const pacing = request.perMessage;
  const fromLog = batchStateFromLog(campaign, request.batchStart, sendLog, pacing !== undefined);
  // A message logged as sent but without its reply (a dead worker, a pause mid-send; in a bucket, up to a chunk of
  // them) may have arrived: each counts as sent when this attempt starts, which is after it could have.
  let inDoubt = 0;
  for (let index = fromLog.next; index < end; index++) if (sendLog.get(index)?.inDoubt) inDoubt++;
  const recovered =
    pacing && inDoubt > 0
      ? { ...fromLog, replies: [...(fromLog.replies ?? []), ...Array<number>(inDoubt).fill(Date.now())] }
      : fromLog;
  const log = opened.writer();
  let transport: SmtpTransport | undefined;
  let faulted = false;
  // A pause or cancel while a message is out drops the connection (the message stays in doubt): one listener for the
  // batch rather than one per message.
  let sendingNow = false;
  const cancellation = Context.current().cancellationSignal;
  const dropConnection = () => {
    if (!sendingNow || !transport) return;
    faulted = true;
    transport.close();
  };
  cancellation.addEventListener('abort', dropConnection, { once: true });
  const isFull = (state: BatchState) => {
    if (state.next >= total || state.attempted >= request.batchSize) return true;
    const next = campaign.recipients[state.next];
    const quota = request.perDomainPerBatch;
    return quota !== undefined && !!next && (state.domainCounts[domainOf(next.email)] ?? 0) >= quota;
  };

  let outcome: Resumable<BatchState, BatchState>;
  try {
    outcome = await runResumableLoop<BatchState, BatchState>({
      initial: recovered,
      recovered,
      heartbeatEveryMs: Context.current().info.heartbeatTimeoutMs ? HEARTBEAT_EVERY_MS : 0,
      isDone: isFull,
      progress: (state) => ({ done: request.sentBefore + state.sent, total, unit: 'emails' }),
      describe: (state) =>
        `${(request.sentBefore + state.sent).toLocaleString('en-US')} / ${total.toLocaleString('en-US')} sent`,
      finish: (state) => state,
      step: async (state, signal) => {
        const wait =
          (pacing
            ? earliestSend(pacing, [...(request.recentReplies ?? []), ...(state.replies ?? [])])
            : state.attempted === 0
              ? (request.notBefore ?? 0)
              : 0) - Date.now();
        if (wait > 0) {
          log.beforeWait?.();
          await sleep(wait, undefined, { signal });
        }
        const index = state.next;
        const recipient = campaign.recipients[index]!;
        // In a bucket, the first message of a chunk waits for the chunk's announcement (the write-ahead).
        const announced = log.sending(index);
        if (announced) await announced;
        if (signal.aborted) {
          log.notSent(index);
          throw signal.reason instanceof Error ? signal.reason : new Error('The batch was interrupted');
        }
        transport ??= borrowSmtpTransport(place.location);
        sendingNow = true;
        try {
          await transport.sendMail(composeMessage(campaign, recipient.vars, recipient.email));
          log.accepted(index, Date.now());
          return advanceBatchState(campaign, state, sendLog);
        } catch (err) {
          const failure = classifySendError(err);
          if (failure.kind === 'rejected') {
            log.rejected(index, Date.now(), failure.reason);
            return advanceBatchState(campaign, state, sendLog);
          }
          if (!failure.maybeDelivered) log.notSent(index);
          faulted = true;
          throw failure.kind === 'fatal'
            ? ApplicationFailure.nonRetryable(failure.reason, 'SmtpRefusesAll')
            : ApplicationFailure.retryable(`${failure.reason} (will retry)`, 'SmtpUnavailable');
        } finally {
          sendingNow = false;
        }
      },
    });
  } catch (err) {
    // The replies so far are written if they can be (a retry resends less); the attempt's own error is what counts.
    await Promise.resolve()
      .then(() => log.close())
      .catch(() => undefined);
    throw err;
  } finally {
    cancellation.removeEventListener('abort', dropConnection);
    if (transport) releaseSmtpTransport(place.location, transport, faulted);
  }
  // Written before the batch reports its counts: what the workflow adds up is what the log says.
  await log.close();
  return outcome;
}

/** The message for one recipient: rendered templates, the campaign's sender and a deterministic Message-ID. */
export function composeMessage(
  campaign: Pick<Campaign, 'campaignId' | 'from' | 'messageIdDomain' | 'subject' | 'body' | 'format'>,
  vars: Record<string, string>,
  to: string,
) {
  const body = renderTemplate(campaign.body, vars, campaign.format);
  return {
    from: campaign.from,
    to,
    subject: renderTemplate(campaign.subject, vars, 'text'),
    ...(campaign.format === 'html' ? { html: body } : { text: body }),
    messageId: campaignMessageId(campaign.campaignId, to, campaign.messageIdDomain),
    headers: { 'X-Backroom-Campaign': campaign.campaignId },
  };
}
