/**
 * Message definitions (query and signals) shared by every job, defined once and imported by workflows and clients.
 * `defineQuery`/`defineSignal` only build names, so clients may import them too.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { JobStatus, ProgressReport } from './job-status';

/** The current status of any job. */
export const statusQuery = defineQuery<JobStatus>('status');
/** Hold the job at its next safe point; a running activity is interrupted and keeps its checkpoint. */
export const pauseSignal = defineSignal('pause');
/** Continue a paused job from where it stopped. */
export const resumeSignal = defineSignal('resume');
/** Stop gracefully at the next safe point, clean up and return a partial result. */
export const cancelSignal = defineSignal('cancel');
/** Sent by long activities at each tenth of their work (progress-milestones.ts), so `status` moves inside an activity. */
export const progressSignal = defineSignal<[ProgressReport]>('progress');
