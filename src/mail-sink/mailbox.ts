/** Reading what the mail sink received: its `received.jsonl`, oldest first. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RECEIVED_LOG, type ReceivedMessage } from './sink';

export async function readMailbox(dir: string): Promise<ReceivedMessage[]> {
  const text = await readFile(path.join(dir, RECEIVED_LOG), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as ReceivedMessage);
}

/** The most arrivals in any window of `windowMs` (both ends included), to judge a rate limit from receive times. */
export function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let start = 0, end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! > windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}
