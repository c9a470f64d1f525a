/** How the send log's lines become the report's counts: what may have arrived twice, what is unconfirmed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
