/** One message (`sendEmail`): sent once, with a Message-ID fixed by the workflow so a retry is recognisable. */
import { ApplicationFailure } from '@temporalio/activity';
import { defaultMailFrom } from '../../config';
import { heartbeatWhile } from '../heartbeat-while';
import { classifySendError, openSmtpTransport, senderDomain } from './smtp';

export interface DeliverEmailRequest {
  to: string | string[];
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  from?: string | undefined;
  /** The local part of the Message-ID (the workflow id), so retries carry the same id. */
  messageKey: string;
}

export interface DeliverEmailResult {
  messageId: string;
  accepted: string[];
  rejected: string[];
  response: string;
}

export async function deliverEmail(request: DeliverEmailRequest): Promise<DeliverEmailResult> {
  const from = request.from ?? defaultMailFrom();
  const messageId = `<${request.messageKey.replace(/[^A-Za-z0-9._-]/g, '_')}@${senderDomain(from)}>`;
  const transport = openSmtpTransport();
  try {
    // The transport's own timeouts (connect, greeting, an idle socket) add up to more than a minute on a slow
    // server: the heartbeat, not a start-to-close timeout, is what tells Temporal this worker is alive.
    const info = (await heartbeatWhile(
      transport.sendMail({
        from,
        to: request.to,
        subject: request.subject,
        ...(request.text !== undefined && { text: request.text }),
        ...(request.html !== undefined && { html: request.html }),
        messageId,
      }),
      () => ({ step: 'sending' }),
    )) as { accepted: unknown[]; rejected: unknown[]; response: string };
    return {
      messageId,
      accepted: info.accepted.map(String),
      rejected: info.rejected.map(String),
      response: info.response,
    };
  } catch (err) {
    const failure = classifySendError(err);
    if (failure.kind === 'transient') throw ApplicationFailure.retryable(failure.reason, 'SmtpUnavailable');
    throw ApplicationFailure.nonRetryable(failure.reason, failure.kind === 'fatal' ? 'SmtpRefusesAll' : 'SmtpRejected');
  } finally {
    transport.close();
  }
}
