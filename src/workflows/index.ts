/** Every workflow the worker registers (its `workflowsPath`). */
export * from './diagnostics';
export * from './media';
export * from './restoration';
export * from './email';
export * from './video';
export * from './training';
