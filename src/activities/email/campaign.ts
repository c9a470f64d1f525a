/**
 * Bulk email campaigns. A campaign's state lives in its place (places.ts), a folder in the data dir or a prefix in a
 * bucket: `stateDir` when the request names one; otherwise `email/<campaignId>/` in the data dir, or, for a
 * recipients file in a bucket, `s3://<that bucket>/email/<campaignId>/`, so that any worker that reaches the bucket
 * carries the campaign on (a worker with another data dir would not find the campaign in its own). It holds:
 * - `campaign.json`: the recipients (parsed and checked once), the templates and the sender, so every batch and
 *   every retry sends exactly the same messages;
 * - `sends/<first index>.log`: one send log per batch (see send-log.ts; in a bucket, a folder of a few objects per
 *   batch, bucket-send-log.ts);
 * - `report.json` and `report.txt` at the end (also after a cancel).
 * Starting a campaign again with the same id (and place) picks up after the last message sent instead of starting
 * over. Workflows pass only the place and indexes around: payloads stay small whatever the campaign size.
 */
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { defaultMailFrom } from '../../config';
import { isS3Location } from '../../storage/s3-location';
import { readDataFile, resolveDataPath } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { canonicalLocation, checkedS3Object, placeAt, readParsed, type Place } from '../places';
import { STATE_FOLDER_MISMATCH, stateFingerprint, useStateFolder } from '../state-folder';
import { bucketSegments, readBucketSendLogs } from './bucket-send-log';
import {
  parseRecipientsAs,
  recipientsFileInvalid,
  type Recipient,
  type RecipientList,
  type SkippedRecipient,
} from './recipients';
import { countPossiblyDuplicated, parseSendLog, readSendLogFiles, type LoggedMessage } from './send-log';
import { senderDomain } from './smtp';
import { checkTemplateVariables } from './template';

export interface Campaign {
  campaignId: string;
  createdAt: string;
  /** Hash of everything that decides the messages: a restart with other content must use another id. */
  fingerprint: string;
  recipientsFile: string;
  from: string;
  messageIdDomain: string;
  subject: string;
  body: string;
  format: 'text' | 'html';
  recipients: Recipient[];
  skipped: SkippedRecipient[];
}

export interface PrepareCampaignRequest {
  campaignId: string;
  recipientsFile: string;
  subject: string;
  template?: string | undefined;
  templateFile?: string | undefined;
  format?: 'text' | 'html' | undefined;
  from?: string | undefined;
  /** Where the campaign keeps its state (see the module comment for the default). */
  stateDir?: string | undefined;
}

export interface CampaignProgress {
  sent: number;
  failed: number;
  /**
   * Messages before `resumeAt` that may have arrived twice. Those from `resumeAt` on are counted by the batch that
   * sends them (with the lines `earlierLogs` hold about them), so the sum is the report's figure.
   */
  possiblyDuplicated: number;
  /** The first message not yet sent (a message in doubt after a crash counts as not sent). */
  resumeAt: number;
  /** The last server reply (ms since the epoch; 0 for a new campaign): a re-run paces its first batch from it. */
  lastReplyAt: number;
  /** Logs of earlier runs that mention messages from `resumeAt` on (a send left in doubt): the batches read them. */
  earlierLogs: string[];
}

export interface PreparedCampaign extends CampaignProgress {
  campaignDir: string;
  /** Recipients that will be sent to (valid and unique). */
  total: number;
  skipped: number;
  /** The first few skipped rows, for the status. */
  skippedSample: SkippedRecipient[];
}

export const campaignFile = (dir: string) => path.join(dir, 'campaign.json');
export const sendLogDir = (dir: string) => path.join(dir, 'sends');

/**
 * The place of a campaign, from its folder as the workflow carries it (`campaignDir`: a data-dir path, absolute too,
 * or an `s3://bucket/prefix/`), checked before use.
 */
export function campaignPlace(campaignDir: string | Place): Place {
  return typeof campaignDir === 'string' ? placeAt(campaignDir, 'campaign dir') : campaignDir;
}

/** Where a new campaign keeps its state: see the module comment. */
function statePlaceFor(request: PrepareCampaignRequest): Place {
  if (request.stateDir) return placeAt(request.stateDir, 'state dir');
  if (isS3Location(request.recipientsFile)) {
    const { bucket } = checkedS3Object(request.recipientsFile, 'recipients file');
    return placeAt(`s3://${bucket}/email/${request.campaignId}/`, 'campaign dir');
  }
  return placeAt(path.join('email', request.campaignId), 'campaign dir');
}

/** A recipients file as read: its text (the campaign's fingerprint covers it) and its recipients, or why not. */
interface RecipientsRead {
  text: string;
  list: RecipientList | { problem: string };
}

// Module-level parsers, so the file cache keeps one parse per version of a file (file-cache.ts).
const csvRecipients = (text: string): RecipientsRead => ({ text, list: parseRecipientsAs(text, 'csv') });
const jsonRecipients = (text: string): RecipientsRead => ({ text, list: parseRecipientsAs(text, 'json') });
const csvRecipientsOf = (data: Buffer) => csvRecipients(data.toString('utf8'));
const jsonRecipientsOf = (data: Buffer) => jsonRecipients(data.toString('utf8'));
const csvRecipientsFile = async (file: string) => csvRecipients(await readDataFile(file, 'recipients file', 'utf8'));
const jsonRecipientsFile = async (file: string) => jsonRecipients(await readDataFile(file, 'recipients file', 'utf8'));
const textOf = (data: Buffer) => data.toString('utf8');
const textFile = (file: string) => readDataFile(file, 'template file', 'utf8');

/**
 * Reads an input file (from the data dir or a bucket) once per version of it; a file that is not there fails for
 * good, naming it as the request did. A bucket's passing fault (the network, the server) is thrown as it is, for a
 * retry.
 */
async function readInput<T>(
  location: string,
  what: string,
  parse: (file: string) => Promise<T>,
  parseBytes: (data: Buffer) => T,
): Promise<T> {
  try {
    return await readParsed(location, what, parse, parseBytes);
  } catch (err) {
    if (err instanceof ApplicationFailure) {
      if (err.type !== 'ObjectNotFound') throw err;
      throw ApplicationFailure.nonRetryable(`The ${what} ${location} does not exist.`, 'EmailInputMissing');
    }
    if (isS3Location(location)) throw err;
    const { code } = err as NodeJS.ErrnoException;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a folder' : `cannot be read (${code})`;
    throw ApplicationFailure.nonRetryable(`The ${what} ${location} ${why}.`, 'EmailInputMissing');
  }
}

/**
 * Activity: reads and checks the recipients and the template once, stores the campaign, and says where sending
 * stands (all zeros for a new campaign). Fails at once, without retries, on a missing or malformed file or template.
 * Heartbeats meanwhile: a big list and thousands of batch logs take seconds to read.
 */
export async function prepareCampaign(request: PrepareCampaignRequest): Promise<PreparedCampaign> {
  return heartbeatWhile(prepare(request), () => ({ step: 'preparing' }));
}

async function prepare(request: PrepareCampaignRequest): Promise<PreparedCampaign> {
  const json = /\.json$/i.test(request.recipientsFile);
  const recipients = await readInput(
    request.recipientsFile,
    'recipients file',
    json ? jsonRecipientsFile : csvRecipientsFile,
    json ? jsonRecipientsOf : csvRecipientsOf,
  );
  const template = request.templateFile
    ? await readInput(request.templateFile, 'template file', textFile, textOf)
    : undefined;
  const body = template ?? request.template ?? '';
  if (!body.trim()) {
    throw ApplicationFailure.nonRetryable('The message template is empty.', 'TemplateInvalid');
  }
  const format = request.format ?? (/\.html?$/i.test(request.templateFile ?? '') ? 'html' : 'text');
  const list = recipients.list;
  if ('problem' in list) throw recipientsFileInvalid(request.recipientsFile, list.problem);
  if (list.recipients.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `The recipients file ${request.recipientsFile} has no valid address (${list.skipped.length} rows skipped, ` +
        `for example row ${list.skipped[0]?.row}: ${list.skipped[0]?.reason}).`,
      'RecipientsFileInvalid',
    );
  }
  checkTemplateVariables(
    [
      { what: 'subject', text: request.subject },
      { what: 'template', text: body },
    ],
    list.columns,
  );
  const from = request.from ?? defaultMailFrom();
  // An array of strings: its canonical JSON is its plain JSON, so campaigns stored before keep their fingerprint.
  const fingerprint = stateFingerprint([recipients.text, request.subject, body, format, from]);

  const place = statePlaceFor(request);
  const stored = await place.read('campaign.json', 'campaign');
  const existing = stored && parseStoredCampaign(stored);
  if (existing && existing.campaignId !== request.campaignId) {
    throw ApplicationFailure.nonRetryable(
      `${place.location} holds the campaign ${existing.campaignId}; give campaign ${request.campaignId} a stateDir ` +
        'of its own.',
      STATE_FOLDER_MISMATCH,
    );
  }
  // A campaign has no overwrite: replacing one that sent messages would send them again.
  useStateFolder({
    recorded: existing && (existing.fingerprint || null),
    fingerprint,
    conflict: () =>
      `Campaign ${request.campaignId} already exists (${place.location}) with other recipients, subject, ` +
      'template or sender. Give the new campaign another campaignId.',
  });
  if (!existing) {
    const campaign: Campaign = {
      campaignId: request.campaignId,
      createdAt: new Date().toISOString(),
      fingerprint,
      recipientsFile: canonicalLocation(request.recipientsFile),
      from,
      messageIdDomain: senderDomain(from),
      subject: request.subject,
      body,
      format,
      recipients: list.recipients,
      skipped: list.skipped,
    };
    await place.write('campaign.json', JSON.stringify(campaign), 'campaign');
  }
  return {
    campaignDir: place.location,
    total: list.recipients.length,
    skipped: list.skipped.length,
    skippedSample: list.skipped.slice(0, 20),
    ...(await campaignProgress(place)),
  };
}

/** A stored campaign, or undefined when it does not parse (it is written again). */
function parseStoredCampaign(data: Buffer): Campaign | undefined {
  try {
    return parseCampaignBytes(data);
  } catch {
    return undefined;
  }
}

/**
 * The batch logs of the campaign at `place` in the order they merge in (by first index), with their text: the files
 * of `sends/` on disk, the segments of each batch's folder in a bucket.
 */
export async function readCampaignSendLogs(place: Place): Promise<{ name: string; text: string }[]> {
  if (!place.local) return readBucketSendLogs(bucketSegments(place));
  return readSendLogFiles(resolveDataPath(place.locate('sends'), 'send log'));
}

/** Every batch log of a campaign, merged (a message resent after a crash may appear in two logs). */
export async function mergedSendLog(place: Place): Promise<Map<number, LoggedMessage>> {
  const merged = new Map<number, LoggedMessage>();
  for (const { text } of await readCampaignSendLogs(place)) parseSendLog(text, merged);
  return merged;
}

/** Where sending stands, from the send logs. */
export async function campaignProgress(dir: string | Place): Promise<CampaignProgress> {
  const files = await readCampaignSendLogs(campaignPlace(dir));
  const log = new Map<number, LoggedMessage>();
  for (const { text } of files) parseSendLog(text, log);
  const progress: CampaignProgress = {
    sent: 0,
    failed: 0,
    possiblyDuplicated: 0,
    resumeAt: 0,
    lastReplyAt: 0,
    earlierLogs: [],
  };
  for (const entry of log.values()) {
    if (entry.outcome === 'accepted' && !entry.inDoubt) progress.sent += 1;
    if (entry.outcome === 'rejected' && !entry.inDoubt) progress.failed += 1;
    progress.lastReplyAt = Math.max(progress.lastReplyAt, entry.at ?? 0);
    const done = !entry.inDoubt && entry.outcome !== 'not-sent';
    if (done) progress.resumeAt = Math.max(progress.resumeAt, entry.index + 1);
  }
  const { resumeAt } = progress;
  progress.possiblyDuplicated = countPossiblyDuplicated([...log.values()].filter((entry) => entry.index < resumeAt));
  progress.earlierLogs = files
    .filter(({ text }) => [...parseSendLog(text).keys()].some((index) => index >= resumeAt))
    .map(({ name }) => name);
  return progress;
}

async function parseCampaign(file: string): Promise<Campaign> {
  return JSON.parse(await readDataFile(file, 'campaign', 'utf8')) as Campaign;
}

function parseCampaignBytes(data: Buffer): Campaign {
  return JSON.parse(data.toString('utf8')) as Campaign;
}

/**
 * The campaign stored at `dir` (its place, or its folder as {@link campaignPlace} takes it), parsed once per process
 * and version of the file (file-cache.ts: batches of a big campaign reuse it).
 */
export async function loadCampaign(dir: string | Place): Promise<Campaign> {
  return readParsed(campaignPlace(dir).locate('campaign.json'), 'campaign', parseCampaign, parseCampaignBytes);
}
