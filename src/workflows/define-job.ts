/**
 * `defineJob`: a workflow is its type, input schema, starting progress and body; this is the one place that
 * validates the input, creates the job's {@link JobControl}, runs the body through it (the end states, the cancelled
 * outcome) and hands the job's status on when it continues as new.
 */
import { ApplicationFailure, continueAsNew } from '@temporalio/workflow';
import type { z } from 'zod';
import { JobInputError, parseJobInput, type JobType } from '../shared/job-catalog';
import type { JobCarryOver, JobProgress } from '../shared/job-status';
import { JobControl } from './job-control';

/** What one run of a job hands to the next when it continues as new: the job's status and the job's own state. */
export type Carry<State> = State & { job: JobCarryOver };

/** What a job's `setup` gets. */
export interface JobContext<Input, Result, State> {
  readonly job: JobControl<Result>;
  /** The validated input (defaults filled in). */
  readonly input: Input;
  /** The input as it came (for warnings about deprecated fields the schema mapped). */
  readonly rawInput: unknown;
  /** What the previous run handed over when the job continued as new; undefined in its first run. */
  readonly carry: Carry<State> | undefined;
  /** Ends this run at a safe point and continues as new with `state` (the job's status goes along). */
  continueAsNew(state: State): Promise<never>;
}

/** A job's body, built by its `setup` so the three share the job's local state. */
export interface JobBody<Result> {
  /** The job's work, from start to result. */
  work(): Promise<Result>;
  /** The partial result after a cancel (default `{ outcome: 'cancelled' }`). */
  cancelled?(): Result;
  /** Runs, non-cancellable, whenever the job is cancelled: let items in flight settle, write a partial report. */
  cleanup?(): Promise<void>;
}

export interface JobWorkflowDefinition<Schema extends z.ZodType, Result, State> {
  type: JobType;
  input: Schema;
  /** The progress a first run starts from (a later run carries its predecessor's). */
  progress: JobProgress | ((input: z.output<Schema>) => JobProgress);
  /** The stage a run starts in. */
  stage: string | ((input: z.output<Schema>, carry: Carry<State> | undefined) => string);
  setup(context: JobContext<z.output<Schema>, Result, State>): JobBody<Result>;
}

/** A workflow function: what the worker registers under the job's type. */
export type JobWorkflow<Schema extends z.ZodType, Result, State> = (
  rawInput: z.input<Schema>,
  carry?: Carry<State>,
) => Promise<Result>;

/**
 * Builds a job's workflow. Export it under the job's type (`export const restoreBatch = defineJob({ type:
 * 'restoreBatch', ... })`): the export's name is what the worker registers.
 */
export function defineJob<Schema extends z.ZodType, Result, State = never>(
  definition: JobWorkflowDefinition<Schema, Result, State>,
): JobWorkflow<Schema, Result, State> {
  const { type } = definition;
  const workflow = async (rawInput: z.input<Schema>, carry?: Carry<State>): Promise<Result> => {
    const input = validateInput(type, definition.input, rawInput);
    const { progress, stage } = definition;
    const job = new JobControl<Result>({
      type,
      progress: typeof progress === 'function' ? progress(input) : progress,
      stage: typeof stage === 'function' ? stage(input, carry) : stage,
      carried: carry?.job,
    });
    const body = definition.setup({
      job,
      input,
      rawInput,
      carry,
      continueAsNew: async (state) => {
        await job.checkpoint();
        return continueAsNew(rawInput, { ...state, job: job.carryOver() });
      },
    });
    const cancelled = body.cancelled ?? (() => ({ outcome: 'cancelled' }) as Result);
    return job.run(() => body.work(), cancelled, body.cleanup);
  };
  // A client that starts the job by function (not by type name) sends the function's name.
  Object.defineProperty(workflow, 'name', { value: type });
  return workflow;
}

/** Parses a workflow's input with the shared schema; a bad input fails the job at once, naming the fields. */
export function validateInput<S extends z.ZodType>(jobType: string, schema: S, raw: unknown): z.output<S> {
  try {
    return parseJobInput(jobType, schema, raw);
  } catch (err) {
    if (err instanceof JobInputError) {
      throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput', { issues: err.issues });
    }
    throw err;
  }
}
