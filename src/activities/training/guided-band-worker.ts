/**
 * The helper thread of guided-bands.ts: builds the network from the weights it is sent and takes bands of the
 * shared page until none is left, then replies. Errors are replied, not thrown: the page's own thread does the
 * bands left over.
 */
import { parentPort } from 'node:worker_threads';
import { decideSharedBands, type HelperReply, type HelperRequest } from './guided-bands';
import { WindowModel } from './model';

parentPort?.on('message', (request: HelperRequest) => {
  void (async () => {
    let model: WindowModel | undefined;
    try {
      model = await WindowModel.fromWeights(request.model.weights, request.model.architecture);
      const bands = decideSharedBands(model, request.page);
      parentPort!.postMessage({ id: request.id, bands } satisfies HelperReply);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      parentPort!.postMessage({ id: request.id, bands: 0, error } satisfies HelperReply);
    } finally {
      model?.dispose();
    }
  })();
});
