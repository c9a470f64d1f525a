/**
 * The guided network's decisions on two threads (src/activities/training/guided-bands.ts): the same pixels as on
 * one, bit for bit, with the helper thread really taking bands; on the CPU pool too, where the helper is started
 * from a pool thread; and a helper that cannot help costs nothing but time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { closeCpuPool, runCpuTask } from '../../src/activities/cpu-pool';
import { readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import type { Checkpoint } from '../../src/activities/training/checkpoint';
import { decideGuidedShared, guidedBandCounts } from '../../src/activities/training/guided-bands';
import { decideGuided, GUIDED_ARCHITECTURE, guidedInput } from '../../src/activities/training/guided-model';
import { WindowModel } from '../../src/activities/training/model';
import { fixtureFile } from '../helpers/fixtures';

/** The real manuscript page repeated to 2480 × 1800 (4.5 MP, 8 bands): real strokes, big enough to share. */
function tiledPage(page: GrayImage, width = 2480, height = 1800): GrayImage {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const source = (y % page.height) * page.width;
    for (let x = 0; x < width; x++) data[y * width + x] = page.data[source + (x % page.width)] ?? 255;
  }
  return { width, height, data };
}

const differing = (a: Uint8Array, b: Uint8Array) => a.reduce((n, value, i) => n + (value !== b[i] ? 1 : 0), 0);

describe('guided decisions on two threads', () => {
  let page: GrayImage;
  let model: WindowModel;
  let checkpoint: Checkpoint;

  before(async () => {
    page = tiledPage(await readGray(readFileSync(fixtureFile('documents/2JohnC1V3.png'))));
    // Untrained weights decide the unsure pixels arbitrarily but deterministically: any band mixed up shows.
    model = await WindowModel.initialize(11, GUIDED_ARCHITECTURE);
    checkpoint = {
      layer: 'layer2',
      architecture: GUIDED_ARCHITECTURE,
      weights: await model.weights(),
      position: { epoch: 1, batch: 0 },
      optimizer: [],
    } as unknown as Checkpoint;
  });

  after(async () => {
    model.dispose();
    await closeCpuPool();
  });

  it('decides every pixel as one thread does, the helper thread taking bands once it is up', async () => {
    const alone = decideGuided(model, guidedInput(page));
    const own = guidedBandCounts.own;
    const helper = guidedBandCounts.helper;
    // The helper starts with the first page (TensorFlow loads meanwhile): until it is up, this thread takes all.
    for (let attempt = 0; attempt < 10 && guidedBandCounts.helper === helper; attempt++) {
      const shared = await decideGuidedShared(model, checkpoint, page, true);
      assert.equal(differing(shared, alone), 0, `attempt ${attempt}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(guidedBandCounts.helper > helper, 'the helper thread never took a band');
    assert.ok(guidedBandCounts.own > own, 'this thread never took a band');
  });

  it('keeps a small page, or one told not to share, on its own thread', async () => {
    const small = { width: 600, height: 800, data: page.data.subarray(0, 600 * 800) };
    const counts = { ...guidedBandCounts };
    const alone = (scanned: GrayImage) => decideGuided(model, guidedInput(scanned));
    assert.equal(differing(await decideGuidedShared(model, checkpoint, small, true), alone(small)), 0);
    assert.equal(differing(await decideGuidedShared(model, checkpoint, page, false), alone(page)), 0);
    assert.deepEqual(guidedBandCounts, counts);
  });

  it('decides the same on the CPU pool, whose threads start helpers of their own', async () => {
    const alone = decideGuided(model, guidedInput(page));
    for (let run = 0; run < 2; run++) {
      const { image } = await runCpuTask('restoreAndMeasure', { page, steps: ['model'], model: checkpoint });
      assert.equal(differing(image.data, alone), 0, `run ${run}`);
    }
  });

  it('finishes a page whose helper cannot build the network (all bands on the page’s own thread)', async () => {
    const broken = { ...checkpoint, weights: { ...checkpoint.weights, w2: new Float32Array(3) } };
    const helper = guidedBandCounts.helper;
    const shared = await decideGuidedShared(model, broken, page, true);
    assert.equal(differing(shared, decideGuided(model, guidedInput(page))), 0);
    // Give a late reply the time to count: none may.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(guidedBandCounts.helper, helper);
  });
});
