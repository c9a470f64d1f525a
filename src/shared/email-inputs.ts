/**
 * Input schemas of the email jobs (see job-inputs.ts for why they are shared). Addresses are checked with zod's
 * email syntax, the same check the recipients of a campaign go through.
 */
import { z } from 'zod';
import { dataLocation } from './data-path';
import { parseRate } from './send-plan';

/** Syntax of one address (no display name): what a recipient row or `to` must hold. */
export const emailAddress = z.email({ error: 'not a valid email address' });

/** A sender, either `name@domain` or `Display Name <name@domain>`. */
const sender = z
  .string()
  .max(320)
  .refine((value) => emailAddress.safeParse(/<([^<>]+)>\s*$/.exec(value)?.[1] ?? value.trim()).success, {
    error: 'must be an address or "Name <address>"',
  });

const rate = z.string().refine((value) => parseRate(value) !== undefined, {
  error: 'must read like "10/min", "5/s" or "1000/h"',
});

export const sendEmailInput = z
  .strictObject({
    to: z.union([emailAddress, z.array(emailAddress).min(1).max(50)]),
    subject: z.string().min(1).max(998),
    text: z.string().max(1_000_000).optional(),
    html: z.string().max(1_000_000).optional(),
    from: sender.optional(),
  })
  .refine((value) => value.text !== undefined || value.html !== undefined, {
    error: 'give text, html or both',
    path: ['text'],
  });

export const MAX_CAMPAIGN_RECIPIENTS = 100_000;

export const sendBulkEmailInput = z
  .strictObject({
    /** Names the campaign's state folder and its Message-IDs; default: the workflow id. */
    campaignId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { error: 'use letters, digits, ".", "_" and "-" (up to 100)' })
      .optional(),
    /**
     * CSV with a header row and an `email` column, or a JSON array of objects with `email` (or of addresses): in the
     * data dir, or an object in an allowed bucket (`s3://bucket/key`).
     */
    recipientsFile: dataLocation('file'),
    /** Subject template: `{{name}}` takes each recipient's `name` column. */
    subject: z.string().min(1).max(998),
    template: z.string().min(1).max(1_000_000).optional(),
    templateFile: dataLocation('file').optional(),
    /** Body format; default `html` for a `.html` template file, else `text`. */
    format: z.enum(['text', 'html']).optional(),
    /** Campaign-wide limit, such as "10/min", "5/s" or "1000/h"; none means as fast as the server accepts. */
    rate: rate.optional(),
    /** Limit per recipient domain (for example "60/min" to each of gmail.com, example.org ...). */
    perDomainRate: rate.optional(),
    from: sender.optional(),
    /**
     * Where the campaign keeps its state and report (a data-dir folder or `s3://bucket/prefix/`). Default:
     * `email/<campaignId>/` in the data dir, or in the recipients file's bucket when that is in one, so any worker
     * that reaches the bucket carries the campaign on. A campaign started again must name the same place.
     */
    stateDir: dataLocation('folder').optional(),
    /** Batches per run before continuing as new (keeps each run's history small). */
    batchesPerRun: z.number().int().min(2).max(1000).default(200),
  })
  .refine((value) => (value.template === undefined) !== (value.templateFile === undefined), {
    error: 'give exactly one of template or templateFile',
    path: ['template'],
  });

export type SendEmailInput = z.input<typeof sendEmailInput>;
export type SendBulkEmailInput = z.input<typeof sendBulkEmailInput>;
