/**
 * The guided model step for one page on two threads: the page's surfaces (its paper and ink levels, a whole-page
 * computation) are worked out once, then the page is cut into bands of rows, and the thread running the page and a
 * helper thread each take the next band not yet taken until none is left, normalising its rows and deciding their
 * pixels into one shared output. On a written A4 page at 300 dpi the bands (1.6 million windows through the network,
 * and the per-pixel normalisation) are about four fifths of the model step; one thread took 1.0–1.4 s for the whole
 * step on this 2-core machine.
 * - Same output, bit for bit: a band normalises the windows' context rows around it too (guided-model.ts,
 *   decideGuidedRows), and each window's prediction does not depend on which others share its batch.
 * - Nothing waits on the helper: it starts with the first page (loading TensorFlow takes it a few hundred ms), and
 *   until it is ready the page's own thread takes every band. A band it took and did not finish (it died) is done
 *   again here, so a page never fails or stalls because of it.
 * - Two pages at once (a batch on the CPU pool's two threads) each get a helper: four threads on two cores, the same
 *   throughput as two, each page's latency no worse than one thread's.
 * - BACKROOM_CPU_THREADS=1 (a worker told to use one core) keeps the model step on one thread.
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { cpuPoolSettings } from '../../config';
import { pageSurfaces, type PageSurfaces } from '../restoration/document-binarize';
import type { GrayImage } from '../restoration/gray-image';
import type { ModelWeights } from './checkpoint';
import { decideGuided, decideGuidedRows, guidedInput } from './guided-model';
import type { WindowModel } from './model';

/** Rows per band: 14 bands on an A4 page, so the two threads end within a band (~40 ms) of each other. */
const BAND_ROWS = 256;

/** Below this, a page is decided on its own thread: the helper's hand-over costs more than it saves. */
const MIN_SHARED_PIXELS = 1_000_000;

/** A page in shared memory, with the bands' bookkeeping: what both threads read and write. */
export interface SharedPage {
  width: number;
  height: number;
  /** The page as scanned: each thread normalises its own bands. */
  input: SharedArrayBuffer;
  /** The page's surfaces (pageSurfaces), worked out once for both threads. */
  surfaces: PageSurfaces | undefined;
  /** The decisions, 0 or 255 per pixel. */
  output: SharedArrayBuffer;
  /** Int32: [0] the next band to take; [1 + b] 1 once band b is written. */
  control: SharedArrayBuffer;
  bandRows: number;
}

export interface HelperRequest {
  id: number;
  model: ModelWeights;
  page: SharedPage;
}

/** The bands the helper wrote, or why it could not help. */
export type HelperReply = { id: number; bands: number; error?: string };

/** Bands decided in this thread and by its helper, since the thread started (what tests read). */
export const guidedBandCounts = { own: 0, helper: 0 };

const bandCount = (page: SharedPage) => Math.ceil(page.height / page.bandRows);

const bandRows = (page: SharedPage, band: number) => ({
  from: band * page.bandRows,
  to: Math.min(page.height, (band + 1) * page.bandRows),
});

/** Takes bands until none is left, deciding each with `model`: what each thread runs. Returns how many it took. */
export function decideSharedBands(model: WindowModel, page: SharedPage): number {
  const control = new Int32Array(page.control);
  const scanned = { width: page.width, height: page.height, data: new Uint8Array(page.input) };
  const output = new Uint8Array(page.output);
  let taken = 0;
  for (let band = Atomics.add(control, 0, 1); band < bandCount(page); band = Atomics.add(control, 0, 1)) {
    decideGuidedRows(model, scanned, page.surfaces, output, bandRows(page, band));
    Atomics.store(control, 1 + band, 1);
    taken++;
  }
  return taken;
}

/** The helper thread (guided-band-worker.ts): started once per thread that decides pages, kept while it lives. */
class GuidedHelper {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (bands: number) => void>();
  private lastId = 0;

  constructor(onDeath: () => void) {
    // The same TypeScript loader as the CPU pool's threads.
    this.worker = new Worker(require.resolve('./guided-band-worker'), {
      execArgv: ['--require', require.resolve('tsx/cjs')],
      env: SHARE_ENV,
    });
    this.worker.on('message', (reply: HelperReply) => this.settle(reply.id, reply.bands));
    const die = () => {
      onDeath();
      for (const id of [...this.waiting.keys()]) this.settle(id, 0);
    };
    this.worker.on('error', die);
    this.worker.on('exit', die);
    // Held only while a page waits on it (see help); after the listeners, which would hold it again.
    this.worker.unref();
  }

  /**
   * Helps with `page` until no band is left; settles (never rejects) with the bands the helper wrote when done, or
   * when it failed or died (then counting none: a band it took is done again by its caller).
   */
  help(model: ModelWeights, page: SharedPage): Promise<number> {
    const id = ++this.lastId;
    if (this.waiting.size === 0) this.worker.ref();
    const settled = new Promise<number>((resolve) => this.waiting.set(id, resolve));
    this.worker.postMessage({ id, model, page } satisfies HelperRequest);
    return settled;
  }

  private settle(id: number, bands: number): void {
    const resolve = this.waiting.get(id);
    if (!resolve) return;
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker.unref();
    resolve(bands);
  }
}

let helper: GuidedHelper | undefined;

function guidedHelper(): GuidedHelper {
  const current = (helper ??= new GuidedHelper(() => {
    if (helper === current) helper = undefined;
  }));
  return current;
}

/** Whether pages are decided on two threads here (the CPU pool's setting: one thread means one core). */
export const sharesGuidedPages = (): boolean => cpuPoolSettings().threads >= 2;

/**
 * decideGuided(model, guidedInput(scanned)) on this thread and the helper (see above); `shared: false` keeps it on
 * this thread. `weights` are `model`'s, for the helper to build its own copy.
 */
export async function decideGuidedShared(
  model: WindowModel,
  weights: ModelWeights,
  scanned: GrayImage,
  shared = sharesGuidedPages(),
): Promise<Uint8Array> {
  const { width, height } = scanned;
  if (!shared || width * height < MIN_SHARED_PIXELS) return decideGuided(model, guidedInput(scanned));
  // Started (on a first page) before the surfaces are worked out: it loads TensorFlow meanwhile.
  const helper = guidedHelper();
  const page: SharedPage = {
    width,
    height,
    input: new SharedArrayBuffer(width * height),
    // The surfaces (over half of the normalisation's time) are the page's whole: worked out here, once.
    surfaces: pageSurfaces(scanned),
    output: new SharedArrayBuffer(width * height),
    control: new SharedArrayBuffer(4 * (1 + Math.ceil(height / BAND_ROWS))),
    bandRows: BAND_ROWS,
  };
  new Uint8Array(page.input).set(scanned.data);
  // Only the network's weights cross over (a checkpoint may carry its optimiser's state too).
  const helped = helper.help({ architecture: weights.architecture, weights: weights.weights }, page);
  guidedBandCounts.own += decideSharedBands(model, page);
  const control = new Int32Array(page.control);
  const unfinished = () => Array.from({ length: bandCount(page) }, (_, band) => band).filter((b) => !control[1 + b]);
  // Bands the helper is still writing: wait for it; bands it took and never wrote (it died): write them here.
  // (Once every band is written, the helper's reply is not waited for: it may not even have started yet.)
  if (unfinished().length > 0) guidedBandCounts.helper += await helped;
  else void helped.then((bands) => (guidedBandCounts.helper += bands));
  const output = new Uint8Array(page.output);
  for (const band of unfinished()) {
    decideGuidedRows(model, scanned, page.surfaces, output, bandRows(page, band));
    guidedBandCounts.own++;
  }
  // A plain copy: the shared memory stays with the helper's request, the caller owns (and may move) its result.
  return output.slice();
}
