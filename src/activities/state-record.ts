/**
 * The state-folder rule (state-folder.ts) for jobs whose outputs are the state: a dataset's pages and patches, a cut
 * analysis' thumbnails and cuts.json. Such a folder records what it was asked in `.backroom/job.json`; the first
 * activity of a job claims the folder: it resumes it, refuses it (`StateFolderMismatch`), or clears it and starts
 * fresh.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Place } from './places';
import { useStateFolder, type StateFolderUse } from './state-folder';

/** What `.backroom/job.json` holds. */
export interface StateRecord {
  /** The fingerprint of the request that wrote the folder (state-folder.ts). */
  fingerprint: string;
  /** What the folder holds, in words, for the message that refuses another job (`a dataset of 40 pages`). */
  holds: string;
  createdAt: string;
  /** The workflow execution that claimed the folder: its retries resume even with `overwrite`. */
  writtenBy?: { workflowId: string; runId: string };
}

/** Where a state folder keeps its record, inside the folder. */
export const STATE_RECORD_NAME = '.backroom/job.json';

/** The record's file in a data-dir folder `dir`. */
export const stateRecordFile = (dir: string) => path.join(dir, STATE_RECORD_NAME);

export interface ClaimStateFolder {
  /** The folder: in the data dir (checked) or a prefix in a bucket (`places.ts`). */
  place: Place;
  fingerprint: string;
  /** What this job will leave there, in words (`a dataset of 40 pages`). */
  holds: string;
  overwrite?: boolean | undefined;
  /**
   * The files and folders (relative to `dir`) the job writes: found without a record, they are state of an earlier
   * version of Backroom (another job, as far as anyone can tell); when the folder is replaced they are removed.
   */
  outputs: string[];
  /** What another request asks for, for the message (`other pages, size or seed`). */
  differs: string;
  /** The input that names the folder, for the message's "choose another …" (default `outputDir`). */
  namedBy?: string;
}

async function readRecord(place: Place): Promise<StateRecord | undefined> {
  const data = await place.read(STATE_RECORD_NAME, 'job state');
  return data === undefined ? undefined : (JSON.parse(data.toString('utf8')) as StateRecord);
}

/**
 * Claims `dir` for this job: the same request resumes (nothing is touched), another one is refused with a
 * non-retryable `StateFolderMismatch` that names the folder, what it holds and what to do, and with `overwrite` the
 * old outputs are removed before the new record is written (so an attempt that dies in between clears them again).
 */
export async function claimStateFolder(claim: ClaimStateFolder): Promise<StateFolderUse> {
  const { place } = claim;
  const record = await readRecord(place);
  let legacy = false;
  if (!record) {
    for (const output of claim.outputs) legacy ||= await place.exists(output);
  }
  const execution = Context.current().info.workflowExecution;
  const writtenBy = execution && { workflowId: execution.workflowId, runId: execution.runId };
  const use = useStateFolder({
    recorded: record ? record.fingerprint : legacy ? null : undefined,
    fingerprint: claim.fingerprint,
    overwrite: claim.overwrite,
    mine:
      record !== undefined &&
      writtenBy !== undefined &&
      record.writtenBy?.workflowId === writtenBy.workflowId &&
      record.writtenBy.runId === writtenBy.runId,
    conflict: () =>
      `${place.location} holds ` +
      (record
        ? `${record.holds}; this job asks for ${claim.differs}`
        : `${claim.outputs.join(', ')} written by an earlier version of Backroom, for a request it did not record`) +
      `; choose another ${claim.namedBy ?? 'outputDir'} or pass overwrite: true.`,
  });
  if (use === 'resume') return use;
  if (use === 'replace') {
    for (const output of claim.outputs) await place.remove(output);
  }
  const fresh: StateRecord = {
    fingerprint: claim.fingerprint,
    holds: claim.holds,
    createdAt: new Date().toISOString(),
    ...(writtenBy && { writtenBy }),
  };
  await place.write(STATE_RECORD_NAME, JSON.stringify(fresh), 'job state');
  return use;
}
