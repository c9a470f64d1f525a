/**
 * The campaign report, from the send logs (the truth of what went out): `report.json` for programs and
 * `report.txt` for people, next to the campaign's state (in the data dir or in a bucket, campaign.ts). Written at the end, and after a cancel for what was sent.
 */
import { heartbeatWhile } from '../heartbeat-while';
import { campaignPlace, loadCampaign, mergedSendLog } from './campaign';
import type { SkippedRecipient } from './recipients';
import { countPossiblyDuplicated, possiblyDuplicated, unconfirmed } from './send-log';

export interface CampaignReportSummary {
  report: string;
  reportText: string;
  total: number;
  sent: number;
  failed: number;
  skipped: number;
  /** Messages that may have arrived twice (see `possiblyDuplicated` in send-log.ts). */
  possiblyDuplicated: number;
  /** Messages sent once with no reply logged, never resent (the campaign ended first): they may have arrived. */
  unconfirmed: number;
  /** Valid recipients nothing was sent to (the campaign was cancelled before reaching them). */
  notSent: number;
  /** The first lines of report.txt. */
  summary: string;
}

export interface CampaignReport extends Omit<CampaignReportSummary, 'report' | 'reportText' | 'summary'> {
  campaignId: string;
  recipientsFile: string;
  writtenAt: string;
  failures: { email: string; reason: string }[];
  skippedRecipients: SkippedRecipient[];
  possiblyDuplicatedRecipients: string[];
  unconfirmedRecipients: string[];
}

/** Activity: writes the report, heartbeating while it reads every batch log of the campaign. */
export async function writeCampaignReport(request: { campaignDir: string }): Promise<CampaignReportSummary> {
  return heartbeatWhile(writeReport(request), () => ({ step: 'reporting' }));
}

async function writeReport(request: { campaignDir: string }): Promise<CampaignReportSummary> {
  const place = campaignPlace(request.campaignDir);
  const campaign = await loadCampaign(place);
  const log = await mergedSendLog(place);
  const report: CampaignReport = {
    campaignId: campaign.campaignId,
    recipientsFile: campaign.recipientsFile,
    writtenAt: new Date().toISOString(),
    total: campaign.recipients.length,
    sent: 0,
    failed: 0,
    skipped: campaign.skipped.length,
    possiblyDuplicated: 0,
    unconfirmed: 0,
    notSent: 0,
    failures: [],
    skippedRecipients: campaign.skipped,
    possiblyDuplicatedRecipients: [],
    unconfirmedRecipients: [],
  };
  campaign.recipients.forEach((recipient, index) => {
    const entry = log.get(index);
    // Counted from every send of the message in the logs, not only its last outcome: a send left in doubt by a
    // dead worker counts whatever happened after it.
    if (entry && possiblyDuplicated(entry)) report.possiblyDuplicatedRecipients.push(recipient.email);
    if (entry?.outcome === 'accepted') {
      report.sent += 1;
    } else if (entry && unconfirmed(entry)) {
      report.unconfirmedRecipients.push(recipient.email);
    } else if (entry?.outcome === 'rejected') {
      report.failures.push({ email: recipient.email, reason: entry.reason ?? 'rejected' });
    } else {
      report.notSent += 1;
    }
  });
  report.failed = report.failures.length;
  report.possiblyDuplicated = countPossiblyDuplicated(campaign.recipients.map((_, index) => log.get(index)));
  report.unconfirmed = report.unconfirmedRecipients.length;

  const lines = [
    `Campaign ${campaign.campaignId}: ${report.sent} of ${report.total} sent, ${report.failed} failed, ` +
      `${report.skipped} skipped, ${report.possiblyDuplicated} possibly sent twice` +
      (report.unconfirmed ? `, ${report.unconfirmed} sent but unconfirmed` : '') +
      (report.notSent ? `, ${report.notSent} not sent (cancelled)` : ''),
    `Recipients: ${campaign.recipientsFile}`,
    ...section(
      'Failed',
      report.failures.map((f) => `${f.email}: ${f.reason}`),
    ),
    ...section(
      'Skipped',
      report.skippedRecipients.map((s) => `row ${s.row} ${s.email || '(empty)'}: ${s.reason}`),
    ),
    ...section('Possibly sent twice (a worker died mid-send)', report.possiblyDuplicatedRecipients),
    ...section('Sent but unconfirmed (no reply logged; not resent)', report.unconfirmedRecipients),
  ];
  await place.write('report.json', JSON.stringify(report, null, 2), 'report');
  await place.write('report.txt', `${lines.join('\n')}\n`, 'report');
  return {
    report: place.locate('report.json'),
    reportText: place.locate('report.txt'),
    total: report.total,
    sent: report.sent,
    failed: report.failed,
    skipped: report.skipped,
    possiblyDuplicated: report.possiblyDuplicated,
    unconfirmed: report.unconfirmed,
    notSent: report.notSent,
    summary: lines.slice(0, 2).join('\n'),
  };
}

function section(title: string, items: string[]): string[] {
  return items.length ? ['', `${title} (${items.length}):`, ...items.map((item) => `  ${item}`)] : [];
}
