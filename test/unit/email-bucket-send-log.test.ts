/**
 * The send log of a campaign in a bucket (bucket-send-log.ts), on an in-memory segment store: each chunk is announced
 * before its first message goes out, a worker that dies mid-chunk leaves exactly that chunk in doubt (resent and
 * counted as possibly duplicated, never silently), a batch that ends early withdraws what it announced and did not
 * send, and a fast batch costs a request per chunk, not per message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BucketSendLogWriter,
  MAX_CHUNK,
  applyWithdrawals,
  batchLogName,
  readBucketBatchLog,
  readBucketSendLogs,
  type SegmentStore,
} from '../../src/activities/email/bucket-send-log';
import type { Campaign } from '../../src/activities/email/campaign';
import { batchStateFromLog } from '../../src/activities/email/send-batch';
import {
  countPossiblyDuplicated,
  parseSendLog,
  unconfirmed,
  type LoggedMessage,
} from '../../src/activities/email/send-log';

/** Segments in memory, with every write recorded (to count requests and to look at what a crash leaves). */
function memoryStore(): SegmentStore & { segments: Map<string, string>; writes: string[] } {
  const segments = new Map<string, string>();
  const writes: string[] = [];
  return {
    segments,
    writes,
    list: async (prefix) => [...segments.keys()].filter((name) => name.startsWith(prefix)).sort(),
    read: async (name) => segments.get(name) ?? '',
    write: async (name, text) => {
      writes.push(name);
      segments.set(name, text);
    },
  };
}

const campaign = (count: number): Campaign => ({
  campaignId: 'c',
  createdAt: new Date(0).toISOString(),
  fingerprint: '',
  recipientsFile: 's3://in/list.csv',
  from: 'a@example.com',
  messageIdDomain: 'example.com',
  subject: 'Hi',
  body: 'Hello',
  format: 'text',
  recipients: Array.from({ length: count }, (_, i) => ({ email: `u${i}@example.com`, vars: {} })),
  skipped: [],
});

/** Reads the batch's log back as a retry would, and opens its writer. */
async function reopen(store: SegmentStore, batchStart: number, end: number) {
  const read = await readBucketBatchLog(store, batchLogName(batchStart));
  const log = parseSendLog(read.text);
  return { log, writer: new BucketSendLogWriter(store, batchLogName(batchStart), read.nextSeq, end, log) };
}

/** Sends messages `from`..`to - 1` through `writer` as sendEmailBatch does (awaiting each announcement). */
async function send(writer: BucketSendLogWriter, from: number, to: number, onSent?: (index: number) => void) {
  for (let index = from; index < to; index++) {
    const announced = writer.sending(index);
    if (announced) await announced;
    onSent?.(index);
    writer.accepted(index, 1000 + index);
  }
}

describe('send log in a bucket', () => {
  it('announces a chunk before its first message, and a crash leaves just that chunk in doubt', async () => {
    const store = memoryStore();
    const first = await reopen(store, 0, 100);
    const durableBefore: number[] = [];
    // The worker dies after message 11 was accepted by the server (its reply is only in memory).
    await send(first.writer, 0, 12, (index) => {
      const announced = parseSendLog([...store.segments.values()].join(''));
      assert.equal(announced.get(index)?.inDoubt, true, `message ${index} is announced before it goes out`);
      durableBefore.push(index);
    });
    const afterCrash = await reopen(store, 0, 100);
    const inDoubt = [...afterCrash.log.values()].filter((entry) => entry.inDoubt).map((entry) => entry.index);
    assert.ok(inDoubt.includes(11), 'the message on its way is in doubt');
    assert.ok(inDoubt.length <= MAX_CHUNK, `${inDoubt.length} in doubt`);
    const state = batchStateFromLog(campaign(100), 0, afterCrash.log);
    assert.equal(state.next, inDoubt[0], 'the retry starts at the first message in doubt');

    // The retry resends from there and counts every message it resends after the crash as possibly duplicated.
    await send(afterCrash.writer, state.next, 20);
    await afterCrash.writer.close();
    const final = parseSendLog((await readBucketSendLogs(store)).map((log) => log.text).join(''));
    const resentInDoubt = inDoubt.filter((index) => index < 20).length;
    assert.equal(countPossiblyDuplicated(final.values()), resentInDoubt);
    assert.equal(batchStateFromLog(campaign(100), 0, final).next, 20);
    assert.equal(batchStateFromLog(campaign(100), 0, final).possiblyDuplicated, resentInDoubt);
    // Segments of the retry come after the crashed attempt's.
    assert.deepEqual(store.writes, [...store.writes].sort());
  });

  it('withdraws what a batch announced and did not send', async () => {
    const store = memoryStore();
    const { writer, log } = await reopen(store, 10, 40);
    await send(writer, 10, 13);
    await writer.close();
    const read = parseSendLog((await readBucketBatchLog(store, batchLogName(10))).text);
    assert.deepEqual([...read.keys()], [10, 11, 12], 'only the messages sent are in the log');
    assert.ok([...read.values()].every((entry) => entry.outcome === 'accepted' && !entry.inDoubt));
    assert.deepEqual([...log.keys()], [10, 11, 12], 'the batch counted what its log says');
  });

  it('keeps a message an earlier crash left in doubt in doubt once, when a retry announces it and stops', async () => {
    const store = memoryStore();
    const crashed = await reopen(store, 0, 10);
    await send(crashed.writer, 0, 2); // dies: 0..7 announced, 0 and 1 sent
    const retry = await reopen(store, 0, 10);
    await retry.writer.sending(0);
    retry.writer.accepted(0, 5);
    await retry.writer.close(); // paused after message 0
    const read = parseSendLog((await readBucketBatchLog(store, batchLogName(0))).text);
    const one = read.get(1) as LoggedMessage;
    assert.equal(one.inDoubt, true);
    assert.equal(one.doubtfulResends, 0, 'the withdrawn announcement is not a second send');
    assert.ok(unconfirmed(one));
    assert.equal(countPossiblyDuplicated(read.values()), 1, 'message 0, sent by both attempts');
  });

  it('costs a request per chunk, not per message, and no chunk passes the batch end', async () => {
    const store = memoryStore();
    const { writer } = await reopen(store, 0, 300);
    await send(writer, 0, 300);
    await writer.close();
    assert.ok(store.writes.length <= 300 / MAX_CHUNK + 4, `${store.writes.length} segments for 300 messages`);
    const read = parseSendLog((await readBucketBatchLog(store, batchLogName(0))).text);
    assert.equal(read.size, 300);
    assert.ok([...read.values()].every((entry) => entry.outcome === 'accepted' && !entry.inDoubt));
  });

  it('reads every batch log of a campaign, by first index', async () => {
    const store = memoryStore();
    for (const start of [200, 0, 100]) {
      const { writer } = await reopen(store, start, start + 2);
      await send(writer, start, start + 2);
      await writer.close();
    }
    const logs = await readBucketSendLogs(store);
    assert.deepEqual(
      logs.map((log) => log.name),
      ['000000.log', '000100.log', '000200.log'],
    );
    assert.equal(applyWithdrawals('S 1\nS 2\nW 2\nA 1 5\n'), 'S 1\nA 1 5');
  });
});
