/**
 * `npm run mail-sink`: the local SMTP sink on BACKROOM_MAIL_SINK_PORT (2525), storing messages in
 * BACKROOM_MAIL_SINK_DIR (data/mail-sink). BACKROOM_MAIL_SINK_REJECT is a regular expression of recipients to
 * refuse with 550 (default: anything at reject.test).
 */
import { mailSinkDir, mailSinkPort } from '../config';
import { DEFAULT_REJECT, startMailSink } from './sink';

async function main(): Promise<void> {
  const reject = process.env.BACKROOM_MAIL_SINK_REJECT;
  const sink = await startMailSink({
    dir: mailSinkDir(),
    port: mailSinkPort(),
    host: process.env.BACKROOM_MAIL_SINK_HOST || '127.0.0.1',
    rejectRecipients: reject ? new RegExp(reject, 'i') : DEFAULT_REJECT,
  });
  console.log(`Mail sink listening on ${sink.url}; messages go to ${sink.dir}`);
  console.log(`Workers send to it by default (SMTP_URL=${sink.url}); list what arrived with: bin/backroom mail`);
  const stop = () => void sink.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const error = err as NodeJS.ErrnoException;
  console.error(
    error.code === 'EADDRINUSE'
      ? `Port ${mailSinkPort()} is taken: set BACKROOM_MAIL_SINK_PORT to a free one (and SMTP_URL for the worker).`
      : String(error.message ?? err),
  );
  process.exit(1);
});
