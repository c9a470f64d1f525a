/**
 * The guided layer-2 network (src/activities/training/guided-model.ts) and the generator's document faults: the
 * normalised page reproduces the document binariser, the network decides only the unsure pixels, `trainModel`'s
 * activities train one without a layer-1 model and refuse the combinations that make no sense, and the dataset
 * generator's new faults (show-through, fading, broken strokes, paper texture) do what they say.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import {
  binarizeDocument,
  NORMALIZED_THRESHOLD,
  normalizeDocument,
} from '../../src/activities/restoration/document-binarize';
import { readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import { degradePage, documentDegradation, renderCleanPage } from '../../src/activities/restoration/page-generator';
import { applyCheckpoint } from '../../src/activities/training/apply-model';
import { readCheckpoint } from '../../src/activities/training/checkpoint';
import { decideGuided, GUIDED_ARCHITECTURE, guidedInput, isUnsure } from '../../src/activities/training/guided-model';
import { WindowModel, cutWindow, emptyBatch } from '../../src/activities/training/model';
import {
  cutDatasetPatches,
  renderDatasetPages,
  validateDataset,
  type DatasetSpec,
} from '../../src/activities/training/synthetic-data';
import { prepareTrainingRun, trainEpoch, type PrepareRunRequest } from '../../src/activities/training/train-epoch';
import { JobInputError, parseJobInput } from '../../src/shared/job-catalog';
import { trainModelInput } from '../../src/shared/training-inputs';
import { quietActivity, rejectsNonRetryable, runActivity } from '../helpers/activity';
import { fixtureFile } from '../helpers/fixtures';

const activity = quietActivity;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-unit-guided-'));
process.env.BACKROOM_DATA_DIR = dataDir;

const spec: DatasetSpec = {
  datasetId: 'guided',
  datasetDir: 'datasets/guided',
  pages: 3,
  patchSize: 64,
  patchesPerPage: 8,
  augment: true,
  // Text at the generator's default size: strokes two pixels wide, as the binariser needs them.
  width: 1240,
  height: 1754,
  seed: 4,
  pageFaults: 'document',
};

const runRequest = (modelName: string, extra: Partial<PrepareRunRequest> = {}): PrepareRunRequest => ({
  layer: 'layer2',
  dataset: spec.datasetDir,
  modelName,
  runKey: `key-${modelName}`,
  batchSize: 256,
  seed: 1,
  network: 'guided',
  ...extra,
});

const readPage = async (name: string) => readGray(readFileSync(fixtureFile(`documents/${name}`)));

const differing = (a: GrayImage, b: GrayImage) => a.data.reduce((n, value, i) => n + (value !== b.data[i] ? 1 : 0), 0);

describe('guided network', () => {
  let page: GrayImage;

  before(async () => {
    page = await readPage('2JohnC1V3.png');
  });

  it('normalises the real page so that its threshold is the document binariser', () => {
    const { image, threshold } = normalizeDocument(page);
    const thresholded = { ...image, data: image.data.map((value) => (value <= threshold ? 0 : 255)) };
    // The same surfaces and threshold; only rounding of the blend may differ, on a handful of edge pixels.
    assert.ok(differing(thresholded, binarizeDocument(page)) < page.data.length / 500);
  });

  // The guided network's own 7-wide windows are cut by an unrolled copy; any other width by the general loop.
  for (const architecture of [GUIDED_ARCHITECTURE, { ...GUIDED_ARCHITECTURE, window: 5 }]) {
    it(`changes only the pixels the binariser is unsure of, whatever its weights say (${architecture.window}×${architecture.window} windows)`, async () => {
      const model = await WindowModel.initialize(11, architecture);
      try {
        const input = guidedInput(page);
        const pixels = decideGuided(model, input);
        const unsure: number[] = [];
        for (let i = 0; i < pixels.length; i++) {
          const value = input.data[i] ?? 255;
          if (isUnsure(value)) unsure.push(i);
          else assert.equal(pixels[i], value <= NORMALIZED_THRESHOLD ? 0 : 255, `pixel ${i} (normalised ${value})`);
        }
        assert.ok(unsure.length > 0 && unsure.length < pixels.length / 2, `${unsure.length} unsure pixels`);
        // The unsure pixels get the network's decision on the windows training cuts (cutWindow, edges replicated).
        const batch = emptyBatch(unsure.length, architecture.window);
        unsure.forEach((i, slot) =>
          cutWindow(input, i % input.width, Math.floor(i / input.width), batch, slot, architecture.window),
        );
        const predicted = model.predictWindows(batch);
        const differ = unsure.filter((i, slot) => pixels[i] !== ((predicted[slot] ?? 0) >= 0.5 ? 255 : 0));
        assert.deepEqual(differ, []);
      } finally {
        model.dispose();
      }
    });
  }

  it('trains with trainModel activities without a layer-1 model, and runs on a real page', async () => {
    await runActivity(activity(), renderDatasetPages, spec);
    await runActivity(activity(), cutDatasetPatches, spec);
    await runActivity(activity(), validateDataset, spec);
    const prepared = await runActivity(activity(), prepareTrainingRun, runRequest('guided'));
    const start = await readCheckpoint(path.join(dataDir, 'models/guided/epoch-0000.json'), 'model');
    assert.deepEqual(start.architecture, GUIDED_ARCHITECTURE);
    assert.equal(start.layer1, undefined);
    const trained = await runActivity(activity(), trainEpoch, {
      layer: 'layer2',
      dataset: spec.datasetDir,
      runDir: prepared.runDir,
      runKey: 'key-guided',
      epoch: 1,
      epochs: 1,
      batchSize: 256,
      learningRate: prepared.learningRate,
      seed: 1,
    });
    assert.ok(trained.finished);
    const metrics = trained.result;
    // Its validation is of what it outputs (the binariser's sure decisions included) against clean ink.
    assert.ok(metrics.valPsnr > metrics.inputPsnr, JSON.stringify(metrics));
    const best = await readCheckpoint(path.join(dataDir, 'models/guided/best.json'), 'model');
    const restored = await applyCheckpoint(best, page);
    assert.equal(restored.width, page.width);
    assert.ok(restored.data.every((value) => value === 0 || value === 255));
    // Where the binariser is sure, the model's page is the binariser's.
    const input = guidedInput(page);
    for (let i = 0; i < restored.data.length; i += 7) {
      const value = input.data[i] ?? 255;
      if (!isUnsure(value)) assert.equal(restored.data[i], value <= NORMALIZED_THRESHOLD ? 0 : 255);
    }
  });

  it('refuses a guided layer 1, a guided run on a layer-1 model, and fine-tuning across networks', async () => {
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('g1', { layer: 'layer1' })),
      'LayerMismatch',
      /guided network is a layer-2 model/,
    );
    await rejectsNonRetryable(
      runActivity(activity(), prepareTrainingRun, runRequest('g2', { layer1Model: 'models/guided/best.json' })),
      'LayerMismatch',
      /no layer1Model/,
    );
    await rejectsNonRetryable(
      runActivity(
        activity(),
        prepareTrainingRun,
        runRequest('g3', { network: 'window9', fineTuneFrom: 'models/guided/best.json' }),
      ),
      'LayerMismatch',
      /is a guided network; give network "guided"/,
    );
    const issues = (input: Record<string, unknown>) => {
      try {
        parseJobInput('trainModel', trainModelInput, { dataset: 'd', epochs: 1, ...input });
        return '';
      } catch (err) {
        assert.ok(err instanceof JobInputError);
        return err.message;
      }
    };
    assert.equal(issues({ layer: 'layer2', network: 'guided' }), '');
    assert.match(issues({ layer: 'layer1', network: 'guided' }), /network chooses a layer-2 model/);
    assert.match(
      issues({ layer: 'layer2', network: 'guided', layer1Model: 'm.json' }),
      /the guided network reads the normalised page/,
    );
    assert.match(issues({ layer: 'layer2', network: 'wide' }), /network/);
  });
});

describe('document faults of the dataset generator', () => {
  const size = { width: 620, height: 877 };
  const base = { ...documentDegradation(9), skewDegrees: 0, noiseSigma: 0, blurSigma: 0, stains: 0 };
  const plain = { ...base, lightingGradient: 0, bleedThrough: 0, fading: 0, brokenStrokes: 0, paperTexture: 0 };
  let clean: Buffer;
  let cleanGray: GrayImage;

  before(async () => {
    clean = await renderCleanPage({ seed: 9, ...size, handwriting: true });
    cleanGray = await readGray(clean);
  });

  /** Mean grey level of the degraded page where the clean page is ink (< 64) and where it is paper (255). */
  async function levels(degradation: typeof plain) {
    const page = await readGray(await degradePage(clean, { ...degradation, jpegQuality: 95 }, 9));
    const sums = { ink: 0, inkCount: 0, paper: 0, paperCount: 0 };
    cleanGray.data.forEach((value, i) => {
      if (value < 64) {
        sums.ink += page.data[i] ?? 0;
        sums.inkCount++;
      } else if (value === 255) {
        sums.paper += page.data[i] ?? 0;
        sums.paperCount++;
      }
    });
    return { ink: sums.ink / sums.inkCount, paper: sums.paper / sums.paperCount };
  }

  it('fades and breaks ink, shows the other side through and darkens paper with texture', async () => {
    const none = await levels(plain);
    const faded = await levels({ ...plain, fading: 0.7 });
    const broken = await levels({ ...plain, brokenStrokes: 0.3 });
    const bleed = await levels({ ...plain, bleedThrough: 0.4 });
    const texture = await levels({ ...plain, paperTexture: 20 });
    assert.ok(faded.ink > none.ink + 20, `faded ink ${faded.ink} against ${none.ink}`);
    assert.ok(broken.ink > none.ink + 5, `broken ink ${broken.ink} against ${none.ink}`);
    assert.ok(Math.abs(faded.paper - none.paper) < 1 && Math.abs(broken.paper - none.paper) < 1);
    assert.ok(bleed.paper < none.paper - 2, `paper with show-through ${bleed.paper} against ${none.paper}`);
    assert.ok(texture.paper < none.paper - 5, `textured paper ${texture.paper} against ${none.paper}`);
  });
});
