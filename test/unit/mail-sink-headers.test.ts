/**
 * The mail sink records each message's Message-ID and Subject from its header block alone: the messages here are
 * what nodemailer really writes (encoded words for non-ASCII, folded long lines), plus raw ones without an id.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { headerFields } from '../../src/mail-sink/sink';

async function composed(subject: string, text: string, messageId?: string): Promise<Buffer> {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true });
  const info = await transport.sendMail({
    from: 'Backroom <noreply@backroom.local>',
    to: 'reader@example.com',
    subject,
    text,
    ...(messageId && { messageId }),
  });
  return info.message as Buffer;
}

describe('the mail sink reads what it records from the header block', () => {
  it('decodes a non-ASCII subject folded over several lines', async () => {
    const subject = `Grüße aus Köln, ${'ein langer Betreff über Zeilen hinweg, '.repeat(4)}¿qué tal? 日本語`;
    const raw = await composed(subject, 'Hello', '<spring.0123abcd@backroom.local>');
    assert.match(raw.toString('latin1'), /\r\n[ \t]+/, 'nodemailer folded the header');
    assert.deepEqual(headerFields(raw), { messageId: '<spring.0123abcd@backroom.local>', subject });
  });

  it('adds the angle brackets an id was written without, and ignores fields in the body', async () => {
    const raw = Buffer.from(
      'From: a@example.com\r\nMessage-ID:   bare.id@example.com  \r\nSUBJECT: plain\r\n\r\n' +
        'Subject: not this one\r\nMessage-ID: <nor-this@example.com>\r\n',
    );
    assert.deepEqual(headerFields(raw), { messageId: '<bare.id@example.com>', subject: 'plain' });
    // Bare line feeds: the header block still ends at the first empty line.
    const bareLineFeeds = Buffer.from('Message-ID: <lf@example.com>\n\nSubject: body\n');
    assert.deepEqual(headerFields(bareLineFeeds), { messageId: '<lf@example.com>', subject: '' });
  });

  it('has no id and an empty subject when the header block has neither', () => {
    const raw = Buffer.from('From: a@example.com\r\n\r\nMessage-ID: <in-body@example.com>\r\nSubject: body\r\n');
    assert.deepEqual(headerFields(raw), { subject: '' });
    assert.deepEqual(headerFields(Buffer.from('Subject: only a header, no body')), {
      subject: 'only a header, no body',
    });
  });
});
