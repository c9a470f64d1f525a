/**
 * Bulk email campaigns on disk. A campaign's state lives in `<data dir>/email/<campaignId>/`:
 * - `campaign.json`: the recipients (parsed and checked once), the templates and the sender, so every batch and
 *   every retry sends exactly the same messages;
 * - `sends/<first index>.log`: one send log per batch (see send-log.ts);
 * - `report.json` and `report.txt` at the end (also after a cancel).
 * Starting a campaign again with the same id picks up after the last message sent instead of starting over.
 * Workflows pass only the folder and indexes around: payloads stay small whatever the campaign size.
 */
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { dataDir, defaultMailFrom } from '../../config';
import { readCached } from '../file-cache';
import { confirmInDataDir, displayPath, readDataFile, resolveDataPath, writeFileAtomic } from '../files';
import { heartbeatWhile } from '../heartbeat-while';
import { stateFingerprint, useStateFolder } from '../state-folder';
import { parseRecipients, type Recipient, type SkippedRecipient } from './recipients';
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

async function readInput(file: string, what: string): Promise<{ absolute: string; text: string }> {
  const absolute = resolveDataPath(file, what);
  const text = await readDataFile(absolute, what, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err instanceof ApplicationFailure) throw err;
    const why =
      err.code === 'ENOENT' ? 'does not exist' : err.code === 'EISDIR' ? 'is a folder' : `cannot be read (${err.code})`;
    throw ApplicationFailure.nonRetryable(`The ${what} ${file} ${why}.`, 'EmailInputMissing');
  });
  return { absolute, text };
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
  const recipientsFile = await readInput(request.recipientsFile, 'recipients file');
  const template = request.templateFile ? await readInput(request.templateFile, 'template file') : undefined;
  const body = template?.text ?? request.template ?? '';
  if (!body.trim()) {
    throw ApplicationFailure.nonRetryable('The message template is empty.', 'TemplateInvalid');
  }
  const format = request.format ?? (/\.html?$/i.test(request.templateFile ?? '') ? 'html' : 'text');
  const list = parseRecipients(recipientsFile.text, request.recipientsFile);
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
  const fingerprint = stateFingerprint([recipientsFile.text, request.subject, body, format, from]);

  const dir = confirmInDataDir(path.join(dataDir(), 'email', request.campaignId), 'campaign dir');
  const existing = await loadCampaign(dir).catch(() => undefined);
  // A campaign has no overwrite: replacing one that sent messages would send them again.
  useStateFolder({
    recorded: existing && (existing.fingerprint || null),
    fingerprint,
    conflict: () =>
      `Campaign ${request.campaignId} already exists (${displayPath(dir)}) with other recipients, subject, ` +
      'template or sender. Give the new campaign another campaignId.',
  });
  if (!existing) {
    const campaign: Campaign = {
      campaignId: request.campaignId,
      createdAt: new Date().toISOString(),
      fingerprint,
      recipientsFile: displayPath(recipientsFile.absolute),
      from,
      messageIdDomain: senderDomain(from),
      subject: request.subject,
      body,
      format,
      recipients: list.recipients,
      skipped: list.skipped,
    };
    await writeFileAtomic(campaignFile(dir), JSON.stringify(campaign));
  }
  return {
    campaignDir: displayPath(dir),
    total: list.recipients.length,
    skipped: list.skipped.length,
    skippedSample: list.skipped.slice(0, 20),
    ...(await campaignProgress(dir)),
  };
}

/** Where sending stands, from the send logs. */
export async function campaignProgress(dir: string): Promise<CampaignProgress> {
  const files = await readSendLogFiles(sendLogDir(dir));
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

/**
 * The campaign stored in `dir` (absolute), parsed once per process and file version (file-cache.ts: batches of a big
 * campaign reuse it).
 */
export async function loadCampaign(dir: string): Promise<Campaign> {
  return readCached(campaignFile(dir), parseCampaign);
}
