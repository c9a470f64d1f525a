/** Every activity the worker registers. Workflows import this module as types only. */
export * from './diagnostics';
export * from './health-checks';
