/**
 * Patch ids (`patched()`): each names a change of workflow commands, so runs recorded before it replay the way they
 * ran. One id per change, shared by the workflows it touches.
 */

/** processMedia, restoreDocument and analyzeCuts' scoring pass run interruptible activities (pause, resume, cancel). */
export const INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS = 'interruptible-single-activity-jobs';

/** analyzeCuts claims its outputDir (the state-folder rule) with one activity between the probe and detection. */
export const CUTS_STATE_FOLDER = 'cuts-state-folder';

/** Jobs started with Backroom's search attributes keep `BackroomState` and `BackroomProgress` current. */
export const JOB_SEARCH_ATTRIBUTES = 'job-search-attributes';

/**
 * Jobs whose memo says the namespace has Backroom's search attributes set them on their first task (clients no
 * longer send them with the start).
 */
export const JOB_SEARCH_ATTRIBUTES_FIRST_TASK = 'job-search-attributes-first-task';

/** stressTest in activities mode runs several items per activity (`stressWorkBatch`) instead of one `stressWork` each. */
export const STRESS_ACTIVITY_BATCHES = 'stress-activity-batches';

/** restoreDocument with a model reads what the model's evaluations say (describeModel) before restoring. */
export const MODEL_VERDICT = 'model-verdict';

/** analyzeCuts' detection pass keeps scoring candidates from its own decode; scoring reads them instead of seeking. */
export const CUTS_ONE_PASS = 'cuts-one-pass';
