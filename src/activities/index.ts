/** Every activity the worker registers. Workflows import this module as types only. */
export * from './diagnostics';
export * from './health-checks';
export { processImage, processImageResumable } from './images/process-media';
export { restoreDocumentImage, restoreDocumentResumable } from './restoration/restore-document';
export { prepareBatch, restoreBatchItem, recordBatchItemFailure, writeBatchReport } from './restoration/batch';
export { generateSamplePages } from './restoration/sample-pages';
export { prepareCampaign } from './email/campaign';
export { sendEmailBatch } from './email/send-batch';
export { writeCampaignReport } from './email/report';
export { deliverEmail } from './email/send-email';
export { probeVideoFile } from './video/probe';
export { claimCutsFolder } from './video/cuts-folder';
export { detectShots } from './video/detect-shots';
export { analyzeClips, analyzeClipsResumable, writePartialCuts } from './video/analyze-clips';
export { renderDatasetPages, cutDatasetPatches, validateDataset } from './training/synthetic-data';
export { prepareTrainingRun, trainEpoch } from './training/train-epoch';
export { evaluateHeldOutPages } from './training/evaluate';
export { describeModel } from './training/apply-model';
