/**
 * How the send log's lines become the report's counts (what may have arrived twice, what is unconfirmed), and the
 * running status's count agreeing with the report's.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { campaignFile, campaignProgress, sendLogDir, type Campaign } from '../../src/activities/email/campaign';
import { writeCampaignReport } from '../../src/activities/email/report';
import { batchLogFile, batchStateFromLog, readBatchSendLog } from '../../src/activities/email/send-batch';
import { parseSendLog, possibleCopies, possiblyDuplicated, unconfirmed } from '../../src/activities/email/send-log';

/** The one entry that `lines` leave for message 0. */
const entry = (...lines: string[]) => {
  const found = parseSendLog(lines.join('\n')).get(0);
  assert.ok(found);
  return found;
};

describe('send log counts', () => {
  it('counts every send that started and was never confirmed, plus the accepted one', () => {
    const cases: [string[], number, boolean, boolean][] = [
      // lines, possible copies, possibly duplicated, unconfirmed
      [['S 0', 'A 0 1'], 1, false, false],
      [['S 0', 'S 0', 'A 0 1'], 2, true, false], // a dead worker's send in doubt, resent and accepted
      [['S 0', 'S 0', 'S 0', 'A 0 1'], 3, true, false],
      [['S 0'], 1, false, true], // the campaign ended before resending it: it may have arrived once
      [['S 0', 'S 0'], 2, true, true], // two sends, neither confirmed
      [['S 0', 'S 0', 'F 0 1 "550"'], 1, false, false], // the resend was refused: only the first may have arrived
      [['S 0', 'N 0', 'S 0', 'A 0 1'], 1, false, false], // a send known not to have gone out delivered nothing
    ];
    for (const [lines, copies, duplicated, doubtful] of cases) {
      const logged = entry(...lines);
      assert.deepEqual(
        [possibleCopies(logged), possiblyDuplicated(logged), unconfirmed(logged)],
        [copies, duplicated, doubtful],
        lines.join(' / '),
      );
    }
  });
});

/**
 * The running figure (what the workflow shows while a campaign runs: its preparation's count plus each batch's) and
 * the final report's, on the same send logs. Each case is a campaign of four recipients at the end of a batch:
 * logs left by earlier runs, then the batches of the run that is going on.
 */
describe('possibly duplicated, running and final', () => {
  const recipients = ['a', 'b', 'c', 'd'].map((name) => ({ email: `${name}@example.com`, vars: { name } }));
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-send-log-'));
    process.env.BACKROOM_DATA_DIR = dataDir;
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  const cases: {
    name: string;
    earlierRuns?: Record<number, string[]>;
    batches: { start: number; lines: string[] }[];
    expected: number;
  }[] = [
    {
      name: 'sent once each, one refused',
      batches: [
        { start: 0, lines: ['S 0', 'A 0 1', 'S 1', 'A 1 2'] },
        { start: 2, lines: ['S 2', 'A 2 3', 'S 3', 'F 3 4 "550"'] },
      ],
      expected: 0,
    },
    {
      name: 'a worker died mid-send and the retry sent it again',
      batches: [{ start: 0, lines: ['S 0', 'A 0 1', 'S 1', 'S 1', 'A 1 2', 'S 2', 'A 2 3', 'S 3', 'A 3 4'] }],
      expected: 1,
    },
    {
      name: 'two sends died, then the server refused the third',
      batches: [{ start: 0, lines: ['S 0', 'S 0', 'S 0', 'F 0 1 "550"', 'S 1', 'A 1 2'] }],
      expected: 1,
    },
    {
      name: 'restarted after a send left in doubt, in the next batch’s own log',
      earlierRuns: { 0: ['S 0', 'A 0 1', 'S 1'] },
      batches: [{ start: 1, lines: ['S 1', 'A 1 2', 'S 2', 'A 2 3', 'S 3', 'A 3 4'] }],
      expected: 1,
    },
    {
      name: 'restarted after a send left in doubt, in the same log',
      earlierRuns: { 0: ['S 0'] },
      batches: [{ start: 0, lines: ['S 0', 'A 0 1', 'S 1', 'A 1 2'] }],
      expected: 1,
    },
    {
      name: 'restarted after a send in doubt, then refused',
      earlierRuns: { 0: ['S 0', 'A 0 1', 'S 1'] },
      batches: [{ start: 1, lines: ['S 1', 'F 1 2 "550"', 'S 2', 'A 2 3'] }],
      expected: 0,
    },
    {
      name: 'one before the restart, one after it',
      earlierRuns: { 0: ['S 0', 'S 0', 'A 0 1', 'S 1', 'A 1 2', 'S 2'] },
      batches: [
        { start: 2, lines: ['S 2', 'A 2 3'] },
        { start: 3, lines: ['S 3', 'A 3 4'] },
      ],
      expected: 2,
    },
  ];

  for (const [n, scenario] of cases.entries()) {
    it(`agree: ${scenario.name}`, async () => {
      const campaignId = `case-${n}`;
      const dir = path.join(dataDir, 'email', campaignId);
      mkdirSync(sendLogDir(dir), { recursive: true });
      const campaign: Campaign = {
        campaignId,
        createdAt: new Date(0).toISOString(),
        fingerprint: '',
        recipientsFile: 'list.csv',
        from: 'Backroom <backroom@example.com>',
        messageIdDomain: 'example.com',
        subject: 'Hi',
        body: 'Hello {{name}}',
        format: 'text',
        recipients,
        skipped: [],
      };
      writeFileSync(campaignFile(dir), JSON.stringify(campaign));
      const append = (start: number, lines: string[]) =>
        appendFileSync(batchLogFile(dir, start), lines.map((line) => `${line}\n`).join(''));
      for (const [start, lines] of Object.entries(scenario.earlierRuns ?? {})) append(Number(start), lines);

      // The run going on: prepared from the logs so far, then each batch counts what it settled, as the workflow adds.
      const prepared = await campaignProgress(dir);
      assert.equal(prepared.resumeAt, scenario.batches[0]?.start, 'the run starts where the logs say');
      let running = prepared.possiblyDuplicated;
      for (const { start, lines } of scenario.batches) {
        append(start, lines);
        const state = batchStateFromLog(campaign, start, await readBatchSendLog(dir, start, prepared.earlierLogs));
        running += state.possiblyDuplicated;
      }

      const report = await writeCampaignReport({ campaignDir: path.relative(dataDir, dir) });
      assert.deepEqual(
        { running, final: report.possiblyDuplicated },
        { running: scenario.expected, final: scenario.expected },
      );
    });
  }
});
