/** Every activity the worker registers. Workflows import this module as types only. */
export * from './diagnostics';
export * from './health-checks';
export { processImage } from './images/process-media';
export { restoreDocumentImage } from './restoration/restore-document';
export { prepareBatch, restoreBatchItem, recordBatchItemFailure, writeBatchReport } from './restoration/batch';
export { generateSamplePages } from './restoration/sample-pages';
