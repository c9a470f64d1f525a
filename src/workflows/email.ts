/**
 * Email jobs: one message (`sendEmail`) and campaigns (`sendBulkEmail`). A campaign is prepared once (recipients
 * and templates checked, state stored next to the data), then sent in batches, each one an activity that logs every
 * message before the next. The workflow paces the batches with its own timers (send-plan.ts), so the rate limit
 * holds across worker restarts, and continues as new every `batchesPerRun` batches to keep its history small.
 */
import { condition, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { CampaignReportSummary } from '../activities/email/report';
import type { BatchState } from '../activities/email/send-batch';
import type { DeliverEmailResult } from '../activities/email/send-email';
import { sendBulkEmailInput, sendEmailInput } from '../shared/email-inputs';
import {
  describeRate,
  keepRecentEnds,
  keepRecentReplies,
  nextBatchStart,
  parseRate,
  planSending,
} from '../shared/send-plan';
import { bounded, interruptibleUntilDone, untilReachable } from './activity-profiles';
import { defineJob } from './define-job';

// Sending one message heartbeats while it waits on the server (its own socket timeouts allow more than a minute). An
// SMTP server that is down makes the job wait and retry (backoff up to a minute), never fail.
const { deliverEmail } = proxyActivities<typeof activities>(untilReachable);

// Preparing and reporting read every send log of the campaign, heartbeating meanwhile.
const campaignRecords = proxyActivities<typeof activities>(bounded);

const { sendEmailBatch } = proxyActivities<typeof activities>(interruptibleUntilDone);

export type SendEmailResult = (DeliverEmailResult & { outcome: 'sent' }) | { outcome: 'cancelled' };

/** Sends one message. A retry after a crash sends it with the same Message-ID. */
export const sendEmail = defineJob<typeof sendEmailInput, SendEmailResult>({
  type: 'sendEmail',
  input: sendEmailInput,
  progress: { done: 0, total: 1, unit: 'emails' },
  stage: 'sending',
  setup: ({ job, input }) => ({
    async work() {
      await job.checkpoint();
      const sent = await deliverEmail({ ...input, messageKey: workflowInfo().workflowId });
      job.itemSucceeded();
      job.setProgress(1);
      job.setMessage(`accepted: ${sent.response}`);
      return { outcome: 'sent', ...sent };
    },
  }),
});

export interface BulkEmailResult extends Partial<CampaignReportSummary> {
  outcome: 'completed' | 'cancelled';
  campaignId: string;
  total: number;
  sent: number;
  failed: number;
  skipped: number;
  possiblyDuplicated: number;
  rate?: string;
  runs: number;
}

/** Where a campaign stands; handed from run to run when it continues as new (with the job's status). */
export interface BulkEmailCarry {
  campaignId: string;
  campaignDir: string;
  total: number;
  skipped: number;
  next: number;
  sent: number;
  failed: number;
  /**
   * Messages that may have arrived twice, counted as the report counts them: those settled before this campaign's
   * run began, plus each batch's.
   */
  possiblyDuplicated: number;
  /** Send logs of earlier runs that the batches read with their own (see `CampaignProgress.earlierLogs`). */
  earlierLogs?: string[];
  /** When recent batches got their last server reply (ms since the epoch, oldest first): the pacing's memory. */
  recentEnds: number[];
  /** With per-message pacing: the reply times of the campaign's last messages, oldest first (at most the limit). */
  recentReplies?: number[];
}

/**
 * The workflow's timer fires this much before a batch may start, and the activity waits out the rest itself:
 * a timer firing and the activity being dispatched take a few hundred ms on a busy dev server, which would
 * otherwise come off the rate (measured: 0.77 of a 50/s limit with 300 ms, 0.96 with 1 s).
 */
const DISPATCH_LEAD_MS = 1000;

/** Sends a campaign: "450 / 10000 sent" in `status`, paced by `rate`, resumable after any crash. */
export const sendBulkEmail = defineJob<typeof sendBulkEmailInput, BulkEmailResult, BulkEmailCarry>({
  type: 'sendBulkEmail',
  input: sendBulkEmailInput,
  progress: { done: 0, total: 0, unit: 'emails' },
  stage: (_input, carry) => (carry ? 'sending' : 'preparing'),
  setup: ({ job, input, carry, continueAsNew }) => {
    const rate = input.rate === undefined ? undefined : parseRate(input.rate);
    const perDomain = input.perDomainRate === undefined ? undefined : parseRate(input.perDomainRate);
    // Per-message pacing is a newer plan: a campaign recorded before it replays (and goes on) with batch pacing.
    const plan = planSending(rate, perDomain, { perMessage: patched('email-per-message-pacing') });
    /**
     * Per-message pacing's memory when there is none yet: a campaign that sent before (or a run of an older plan)
     * waits as if its last reply had been every recent message's: safe, if slower for a window.
     */
    const assumedReplies = (lastReplyAt: number | undefined) =>
      plan.perMessage && lastReplyAt ? Array<number>(plan.perMessage.count).fill(lastReplyAt) : [];
    const campaignId = input.campaignId ?? workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '-');
    let campaign: BulkEmailCarry | undefined = carry;
    let report: CampaignReportSummary | undefined;
    const limits = [rate && describeRate(rate), perDomain && `${describeRate(perDomain)} per domain`].filter(Boolean);

    const showCounts = (c: BulkEmailCarry) => {
      job.setCounts(c.sent, c.failed + c.skipped);
      job.setProgress(c.sent, c.total);
      const extra = [
        c.failed && `${c.failed} failed`,
        c.skipped && `${c.skipped} skipped`,
        c.possiblyDuplicated && `${c.possiblyDuplicated} possibly sent twice`,
      ].filter(Boolean);
      const count = (n: number) => n.toLocaleString('en-US');
      job.setMessage(`${count(c.sent)} / ${count(c.total)} sent${extra.length ? ` · ${extra.join(', ')}` : ''}`);
    };

    const result = (outcome: BulkEmailResult['outcome']): BulkEmailResult => ({
      outcome,
      campaignId,
      total: campaign?.total ?? 0,
      sent: campaign?.sent ?? 0,
      failed: campaign?.failed ?? 0,
      skipped: campaign?.skipped ?? 0,
      possiblyDuplicated: campaign?.possiblyDuplicated ?? 0,
      ...(limits.length && { rate: limits.join(', ') }),
      runs: job.carryOver().runs,
      ...report,
    });

    return {
      async work() {
        if (!campaign) {
          await job.checkpoint();
          const prepared = await campaignRecords.prepareCampaign({ ...input, campaignId });
          campaign = {
            campaignId,
            campaignDir: prepared.campaignDir,
            total: prepared.total,
            skipped: prepared.skipped,
            next: prepared.resumeAt,
            sent: prepared.sent,
            failed: prepared.failed,
            possiblyDuplicated: prepared.possiblyDuplicated,
            // (Undefined in a result recorded before prepareCampaign listed them.)
            ...(prepared.earlierLogs?.length && { earlierLogs: prepared.earlierLogs }),
            // A campaign started again waits as if its last message had ended every recent batch: safe, if slower.
            recentEnds: prepared.lastReplyAt ? Array<number>(plan.window?.batches ?? 1).fill(prepared.lastReplyAt) : [],
            ...(plan.perMessage && { recentReplies: assumedReplies(prepared.lastReplyAt) }),
          };
          for (const row of prepared.skippedSample)
            job.noteError(`row ${row.row} ${row.email}`, `skipped: ${row.reason}`);
        }
        const c = campaign;
        if (plan.perMessage && !c.recentReplies) c.recentReplies = assumedReplies(Math.max(0, ...c.recentEnds));
        job.setStage('sending');
        showCounts(c);
        let batches = 0;
        while (c.next < c.total) {
          await job.checkpoint();
          const notBefore = nextBatchStart(plan, c.recentEnds, c.recentReplies);
          const wait = notBefore - DISPATCH_LEAD_MS - Date.now();
          if (wait > 0) {
            await condition(() => job.isCancelling, wait);
            await job.checkpoint();
          }
          const batchStart = c.next;
          const batch = await job.runResumable<BatchState, BatchState>(() =>
            sendEmailBatch({
              campaignDir: c.campaignDir,
              batchStart,
              batchSize: plan.batchSize,
              perDomainPerBatch: plan.perDomainPerBatch,
              sentBefore: c.sent,
              notBefore,
              ...(c.earlierLogs?.length && { earlierLogs: c.earlierLogs }),
              ...(plan.perMessage && { perMessage: plan.perMessage, recentReplies: c.recentReplies ?? [] }),
            }),
          );
          c.next = batch.next;
          c.sent += batch.sent;
          c.failed += batch.failed;
          c.possiblyDuplicated += batch.possiblyDuplicated;
          c.recentEnds = keepRecentEnds(plan, c.recentEnds, batch.lastReplyAt);
          if (plan.perMessage) c.recentReplies = keepRecentReplies(plan, c.recentReplies ?? [], batch.replies ?? []);
          for (const failure of batch.failures) job.noteError(failure.email, failure.reason);
          showCounts(c);
          batches += 1;
          if (c.next < c.total && (batches >= input.batchesPerRun || workflowInfo().continueAsNewSuggested)) {
            await continueAsNew(c);
          }
        }
        job.setStage('reporting');
        report = await campaignRecords.writeCampaignReport({ campaignDir: c.campaignDir });
        job.setMessage(report.summary.split('\n')[0] ?? '');
        return result('completed');
      },
      cancelled: () => result('cancelled'),
      async cleanup() {
        if (campaign) report = await campaignRecords.writeCampaignReport({ campaignDir: campaign.campaignDir });
      },
    };
  },
});
