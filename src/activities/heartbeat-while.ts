/**
 * Keeps an activity's heartbeat going while it awaits work done elsewhere (the CPU pool, ffmpeg, libvips, an SMTP
 * server, the disk): the main thread is free, so a timer sends the details every second, a long page does not look
 * like a dead worker, and a pause or cancel reaches the activity on time. Outside an activity (a test or benchmark
 * calling the function directly) it just awaits the work.
 */
import { asyncLocalStorage } from '@temporalio/activity';

export async function heartbeatWhile<T>(work: Promise<T>, details: () => unknown, everyMs = 1000): Promise<T> {
  const context = asyncLocalStorage.getStore();
  if (!context) return work;
  const timer = setInterval(() => context.heartbeat(details()), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
