/**
 * Backroom's custom search attributes: a job's state, type and progress where Temporal's visibility can query them,
 * so `backroom list --state paused`, `GET /jobs?state=paused` and the Temporal UI's list filter
 * (`BackroomState="paused"`) are one query. The dev server registers them at start (src/devserver/dev-server.ts); a
 * cluster once, with the command in the README ("Production").
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The job's state (`running`, `paused`, `cancelling`, `completed`, `failed`, `cancelled`). */
export const JOB_STATE_KEY = defineSearchAttributeKey('BackroomState', SearchAttributeType.KEYWORD);
/** The job's type (`restoreBatch`...). */
export const JOB_TYPE_KEY = defineSearchAttributeKey('BackroomJobType', SearchAttributeType.KEYWORD);
/** The job's progress at its last state change, 0 to 1. */
export const JOB_PROGRESS_KEY = defineSearchAttributeKey('BackroomProgress', SearchAttributeType.DOUBLE);

/**
 * The memo key a job carries when its client found the attributes registered: the workflow then sets them on its
 * first task. A start that carries search attributes costs Temporal about 0.5 ms more than one without (any number
 * of them, measured on the dev server), and a start is what callers wait for; the first task is not.
 */
export const SEARCH_ATTRIBUTES_MEMO = 'backroomSearchAttributes';

/** Each attribute with the type name that `temporal server start-dev --search-attribute` and the operator API use. */
export const BACKROOM_SEARCH_ATTRIBUTES = [
  { name: JOB_STATE_KEY.name, type: 'Keyword' },
  { name: JOB_TYPE_KEY.name, type: 'Keyword' },
  { name: JOB_PROGRESS_KEY.name, type: 'Double' },
] as const;

/** `temporal server start-dev` arguments that register them. */
export const SEARCH_ATTRIBUTE_ARGS: string[] = BACKROOM_SEARCH_ATTRIBUTES.flatMap(({ name, type }) => [
  '--search-attribute',
  `${name}=${type}`,
]);

/** A progress as the fraction the attribute holds (0 when the total is not known yet). */
export function progressFraction(progress: { done: number; total: number }): number {
  return progress.total > 0 ? Math.min(1, Math.max(0, progress.done / progress.total)) : 0;
}
