/** Every workflow the worker registers (its `workflowsPath`). */
export * from './diagnostics';
