/**
 * The recipients of a campaign, from a CSV file (header row with an `email` column, other columns become template
 * variables) or a JSON array (of objects with `email`, or of plain addresses). Bad rows are skipped with a reason;
 * a file that cannot be read as recipients at all fails the job.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { parse as parseCsv } from 'csv-parse/sync';
import { MAX_CAMPAIGN_RECIPIENTS, emailAddress } from '../../shared/email-inputs';
import { jsonSyntaxPlace } from '../parse-errors';

export interface Recipient {
  email: string;
  /** The recipient's variables (CSV columns or JSON fields), `email` included. */
  vars: Record<string, string>;
}

export interface SkippedRecipient {
  /** Line of the CSV file (1 = header) or position in the JSON array (1-based). */
  row: number;
  email: string;
  reason: string;
}

export interface RecipientList {
  recipients: Recipient[];
  skipped: SkippedRecipient[];
  /** The variables every recipient has. */
  columns: string[];
}

/** The failure for a recipients file that cannot be read as recipients (`why` ends the sentence that names it). */
export const recipientsFileInvalid = (file: string, why: string) =>
  ApplicationFailure.nonRetryable(`The recipients file ${file} ${why}`, 'RecipientsFileInvalid');

/** Why a recipients file cannot be read as recipients at all (the end of a sentence that names the file). */
class RecipientsProblem extends Error {}

/** Parses a recipients file's text; `file` names it in errors. */
export function parseRecipients(text: string, file: string): RecipientList {
  const parsed = parseRecipientsAs(text, /\.json$/i.test(file) ? 'json' : 'csv');
  if ('problem' in parsed) throw recipientsFileInvalid(file, parsed.problem);
  return parsed;
}

/**
 * Parses a recipients file's text as CSV or JSON, without naming the file: what it cannot read comes back as a
 * `problem` for the caller to put in a sentence that names it (so a parsed file can be cached whatever its name).
 */
export function parseRecipientsAs(text: string, kind: 'csv' | 'json'): RecipientList | { problem: string } {
  try {
    return recipientList(kind === 'json' ? jsonRows(text) : csvRows(text));
  } catch (err) {
    if (err instanceof RecipientsProblem) return { problem: err.message };
    throw err;
  }
}

function recipientList(rows: Rows): RecipientList {
  if (rows.items.length === 0) throw new RecipientsProblem('has no recipients.');
  if (rows.items.length > MAX_CAMPAIGN_RECIPIENTS) {
    throw new RecipientsProblem(
      `has ${rows.items.length} recipients; a campaign takes up to ${MAX_CAMPAIGN_RECIPIENTS}. Split the file.`,
    );
  }
  const recipients: Recipient[] = [];
  const skipped: SkippedRecipient[] = [];
  const firstRow = new Map<string, number>();
  for (const { row, vars } of rows.items) {
    const email = (vars.email ?? '').trim();
    if (!emailAddress.safeParse(email).success) {
      skipped.push({ row, email, reason: email ? 'not a valid email address' : 'no email address' });
      continue;
    }
    const key = email.toLowerCase();
    const seen = firstRow.get(key);
    if (seen !== undefined) {
      skipped.push({ row, email, reason: `duplicate of row ${seen}` });
      continue;
    }
    firstRow.set(key, row);
    recipients.push({ email, vars: { ...vars, email } });
  }
  return { recipients, skipped, columns: rows.columns };
}

interface Rows {
  items: { row: number; vars: Record<string, string> }[];
  columns: string[];
}

function csvRows(text: string): Rows {
  let records: string[][];
  try {
    records = parseCsv(text, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: true });
  } catch (err) {
    // csv-parse's own message quotes the offending text: say where, never what (the file may not be ours to show).
    const { code, lines } = err as { code?: string; lines?: number };
    throw new RecipientsProblem(`is not valid CSV (${code ?? 'parse error'}${lines ? ` at line ${lines}` : ''}).`);
  }
  const header = (records[0] ?? []).map((name) => name.trim());
  const emailColumn = header.findIndex((name) => name.toLowerCase() === 'email');
  if (emailColumn < 0) {
    throw new RecipientsProblem(
      `has no "email" column in its header row (it has ${header.length} column${header.length === 1 ? '' : 's'}); ` +
        'name the column that holds the addresses "email".',
    );
  }
  const columns = header.map((name, i) => (i === emailColumn ? 'email' : name));
  const items = records.slice(1).map((record, i) => ({
    row: i + 2,
    vars: Object.fromEntries(columns.map((name, c) => [name, record[c] ?? ''])),
  }));
  return { items, columns };
}

function jsonRows(text: string): Rows {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RecipientsProblem(`is not valid JSON (${jsonSyntaxPlace(err, text)}).`);
  }
  if (!Array.isArray(data)) throw new RecipientsProblem('must hold a JSON array of recipients.');
  const items = data.map((entry: unknown, i) => {
    if (typeof entry === 'string') return { row: i + 1, vars: { email: entry } };
    if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
      const vars = Object.fromEntries(
        Object.entries(entry).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
      );
      return { row: i + 1, vars };
    }
    return { row: i + 1, vars: {} };
  });
  const keySets = items.map((item) => new Set(Object.keys(item.vars)));
  const columns = [...(keySets[0] ?? [])].filter((key) => keySets.every((keys) => keys.has(key)));
  return { items, columns: columns.includes('email') ? columns : ['email', ...columns] };
}
