/** Names that workers, clients and docs must agree on. */

/** The task queue every Backroom worker polls unless `BACKROOM_TASK_QUEUE` says otherwise. */
export const DEFAULT_TASK_QUEUE = 'backroom';

/** Task priorities (Temporal priority keys: 1 is the most urgent). */
export const PRIORITY_KEYS = { high: 1, default: 3, low: 5 } as const;
export type PriorityName = keyof typeof PRIORITY_KEYS;
