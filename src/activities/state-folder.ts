/**
 * One rule for every job that keeps its state in a folder next to its outputs (a batch's `<outputDir>/.backroom/`,
 * a campaign's `email/<campaignId>/`): the state records a fingerprint of what the job was asked, and a job that
 * finds state there compares it with its own request before reusing anything.
 * - the same request (a retry, a continue-as-new, a resume after a worker died) resumes from the state;
 * - another request is refused with a non-retryable `StateFolderMismatch` failure that says what to do,
 *   unless it asked for `overwrite`: then the old state is set aside and the job starts fresh.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { stringify } from 'safe-stable-stringify';

/** The failure type of a state folder that holds another job. */
export const STATE_FOLDER_MISMATCH = 'StateFolderMismatch';

/**
 * The fingerprint of a job's defining request: the SHA-256 of its canonical JSON (object keys sorted, so the same
 * request always gives the same fingerprint). Pass only the fields that define the job, not tuning knobs such as
 * concurrency.
 */
export function stateFingerprint(request: unknown): string {
  return createHash('sha256')
    .update(stringify(request) ?? 'undefined')
    .digest('hex');
}

/** What a job does with its state folder: start it, resume from it, or replace what it holds. */
export type StateFolderUse = 'fresh' | 'resume' | 'replace';

/**
 * Decides whether a job may use the state it found. `recorded` is the fingerprint the folder holds: `undefined` when
 * the folder has no state yet, `null` when it has state without a fingerprint (written before fingerprints were
 * recorded: its request is unknown, so it counts as another job). Throws a non-retryable `StateFolderMismatch` with
 * `conflict` as its message when the folder holds another job and `overwrite` is not set.
 */
export function useStateFolder(options: {
  recorded: string | null | undefined;
  fingerprint: string;
  overwrite?: boolean | undefined;
  /**
   * Whether this very job (an earlier attempt of it) wrote the state. With `overwrite`, state written by another
   * job is replaced even when its request was the same: the user asked for a fresh run, a retry only resumes.
   */
  mine?: boolean | undefined;
  conflict: () => string;
}): StateFolderUse {
  if (options.recorded === undefined) return 'fresh';
  if (options.overwrite && options.mine === false) return 'replace';
  if (options.recorded === options.fingerprint) return 'resume';
  if (options.overwrite) return 'replace';
  throw ApplicationFailure.nonRetryable(options.conflict(), STATE_FOLDER_MISMATCH);
}
