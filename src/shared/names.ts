/** Names that workers, clients and docs must agree on. */

/** The task queue every Backroom worker polls unless `BACKROOM_TASK_QUEUE` says otherwise. */
export const DEFAULT_TASK_QUEUE = 'backroom';

/** Task priorities (Temporal priority keys: 1 is the most urgent). */
export const PRIORITY_KEYS = { high: 1, default: 3, low: 5 } as const;
export type PriorityName = keyof typeof PRIORITY_KEYS;

/** The priority's name for a Temporal priority key, or undefined for a key Backroom does not name (2, 4). */
export function priorityName(key: number | undefined): PriorityName | undefined {
  const effective = key || PRIORITY_KEYS.default;
  return (Object.keys(PRIORITY_KEYS) as PriorityName[]).find((name) => PRIORITY_KEYS[name] === effective);
}

/** Temporal's limits on a fairness key (a tenant name) and on its weight. */
export const TENANT_MAX_BYTES = 64;
export const TENANT_WEIGHT_RANGE = { min: 0.001, max: 1000 } as const;

/**
 * Why `tenant` (and `weight`) cannot be a fairness key (and its weight), or undefined when they can: a tenant is
 * 1–64 bytes of text, a weight a number from 0.001 to 1000.
 */
export function tenantProblem(tenant: string | undefined, weight?: number): string | undefined {
  if (tenant !== undefined) {
    const bytes = new TextEncoder().encode(tenant).length;
    if (bytes === 0 || bytes > TENANT_MAX_BYTES) {
      return `tenant must be 1 to ${TENANT_MAX_BYTES} bytes (it becomes Temporal's fairness key), got ${bytes}`;
    }
  }
  if (weight !== undefined) {
    if (tenant === undefined) return 'a tenant weight needs a tenant: name one with tenant';
    if (!Number.isFinite(weight) || weight < TENANT_WEIGHT_RANGE.min || weight > TENANT_WEIGHT_RANGE.max) {
      return `tenant weight must be a number from ${TENANT_WEIGHT_RANGE.min} to ${TENANT_WEIGHT_RANGE.max}, got ${weight}`;
    }
  }
  return undefined;
}
