/** Restoration algorithms on real and generated pages: binarisation, deskew, quality measures, the pipeline. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { binarizeOtsu, binarizeSauvola, fMeasure } from '../../src/activities/restoration/binarize';
import { estimateSkewDegrees } from '../../src/activities/restoration/deskew';
import { grayToSharp, readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import {
  degradePage,
  randomDegradation,
  renderCleanPage,
  seededRandom,
} from '../../src/activities/restoration/page-generator';
import { contrast, noiseSigma, psnr, sharpness, ssim } from '../../src/activities/restoration/quality';
import { measureQuality, restorePixels } from '../../src/activities/restoration/restore-image';
import { fixtureFile } from '../helpers/fixtures';

function flat(width: number, height: number, value: number): GrayImage {
  return { width, height, data: new Uint8Array(width * height).fill(value) };
}

function withNoise(image: GrayImage, sigma: number, seed: number): GrayImage {
  const random = seededRandom(seed);
  const data = image.data.map((value) => {
    const gaussian = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.min(255, Math.round(value + sigma * gaussian)));
  });
  return { ...image, data };
}

async function blurred(image: GrayImage, sigma: number): Promise<GrayImage> {
  const { data, info } = await grayToSharp(image)
    .blur(sigma)
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

describe('binarisation of a real manuscript page (Doxa sample, hand-made ground truth)', () => {
  it('Sauvola (window 27, k 0.10) matches the published F-measure and beats Otsu', async (t) => {
    // Read as bytes: these files are test data, not a job's (a path outside the data dir would be refused).
    const page = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3.png')));
    const truth = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
    const sauvola = binarizeSauvola(page);
    const otsu = binarizeOtsu(page);
    const scores = {
      sauvola: { f: fMeasure(sauvola, truth), psnr: psnr(sauvola, truth) },
      otsu: { f: fMeasure(otsu, truth), psnr: psnr(otsu, truth) },
    };
    t.diagnostic(JSON.stringify(scores));
    // Doxa's own tests: Sauvola 93.20 / 16.33 dB; Otsu about 92.1 / 15.8 dB.
    assert.ok(Math.abs(scores.sauvola.f - 93.2) < 0.5, `Sauvola F-measure ${scores.sauvola.f}`);
    assert.ok(Math.abs(scores.sauvola.psnr - 16.33) < 0.3, `Sauvola PSNR ${scores.sauvola.psnr}`);
    assert.ok(scores.sauvola.f > scores.otsu.f && scores.sauvola.psnr > scores.otsu.psnr);
  });
});

describe('estimateSkewDegrees', () => {
  it('recovers known angles within 0.5° on a generated page, and the correction leaves no skew', async () => {
    const clean = await renderCleanPage({ seed: 11, width: 1000, height: 1400 });
    for (const angle of [-4.2, -1.5, 0, 2, 3.7]) {
      const rotated = await sharp(clean).rotate(angle, { background: '#ffffff' }).png().toBuffer();
      const estimate = estimateSkewDegrees(await readGray(rotated));
      assert.ok(Math.abs(estimate - angle) <= 0.5, `rotated ${angle}°, estimated ${estimate}°`);
      const straightened = await sharp(rotated).rotate(-estimate, { background: '#ffffff' }).png().toBuffer();
      assert.ok(Math.abs(estimateSkewDegrees(await readGray(straightened))) <= 0.5);
    }
  });

  it('says 0 for a blank page', () => {
    assert.equal(estimateSkewDegrees(flat(400, 600, 255)), 0);
  });
});

describe('quality measures', () => {
  it('PSNR and SSIM are perfect for identical images and fall with noise and blur', async () => {
    const page = await readGray(await renderCleanPage({ seed: 5, width: 600, height: 800 }));
    assert.equal(psnr(page, page), Infinity);
    assert.equal(ssim(page, page), 1);
    const noisy = withNoise(page, 20, 1);
    const soft = await blurred(page, 1.5);
    assert.ok(psnr(page, noisy) < 25 && ssim(page, noisy) < 0.9);
    assert.ok(ssim(page, soft) < 1 && ssim(page, soft) > ssim(page, withNoise(page, 60, 2)));
    assert.throws(() => psnr(page, flat(10, 10, 0)), /differ in size/);
  });

  it('estimates noise, sharpness and contrast', async () => {
    const noisy = withNoise(flat(400, 400, 128), 10, 3);
    assert.ok(Math.abs(noiseSigma(noisy) - 10) < 2, `noise ${noiseSigma(noisy)}`);
    assert.ok(noiseSigma(flat(100, 100, 200)) < 0.01);
    const page = await readGray(await renderCleanPage({ seed: 6, width: 600, height: 800 }));
    assert.ok(sharpness(await blurred(page, 2)) < sharpness(page) / 2);
    assert.equal(contrast(flat(50, 50, 90)), 0);
    assert.ok(contrast(page) > 30);
  });
});

describe('synthetic pages and the restoration pipeline', () => {
  it('the same seed gives the same page and the same degradation, another seed another page', async () => {
    const a = await renderCleanPage({ seed: 21, width: 600, height: 800 });
    assert.deepEqual(await renderCleanPage({ seed: 21, width: 600, height: 800 }), a);
    assert.notDeepEqual(await renderCleanPage({ seed: 22, width: 600, height: 800 }), a);
    assert.deepEqual(await degradePage(a, randomDegradation(21), 21), await degradePage(a, randomDegradation(21), 21));
  });

  it('a clean page has real text; its degraded copy keeps the size and loses quality', async () => {
    const clean = await renderCleanPage({ seed: 8 });
    const page = await readGray(clean);
    const ink = page.data.filter((v) => v < 128).length / page.data.length;
    assert.ok(ink > 0.02 && ink < 0.3, `ink share ${ink}`);
    const degradation = randomDegradation(8);
    assert.ok(Math.abs(degradation.skewDegrees) >= 0.5 && Math.abs(degradation.skewDegrees) <= 4);
    const degraded = await readGray(await degradePage(clean, degradation, 8));
    assert.deepEqual([degraded.width, degraded.height], [page.width, page.height]);
    assert.ok(psnr(degraded, page) < 20);
    assert.ok(Math.abs(estimateSkewDegrees(degraded) - degradation.skewDegrees) <= 0.5);
  });

  it('restoration raises PSNR and SSIM against the clean page on every generated page', async (t) => {
    for (const seed of [31, 32, 33]) {
      const clean = await renderCleanPage({ seed });
      const input = await readGray(await degradePage(clean, randomDegradation(seed), seed));
      const restored = await restorePixels(input, ['denoise', 'deskew', 'normalize']);
      const metrics = await measureQuality(input, restored.image, await readGray(clean));
      const reference = metrics.reference;
      assert.ok(reference);
      t.diagnostic(`seed ${seed}: ${JSON.stringify(reference)}`);
      assert.ok(reference.outputPsnr > reference.inputPsnr + 2, JSON.stringify(reference));
      assert.ok(reference.outputSsim > reference.inputSsim, JSON.stringify(reference));
      assert.ok(Math.abs(metrics.output.residualSkewDegrees) <= 0.5);
    }
  });

  it('binarisation as a last step leaves only black and white', async () => {
    const input = await readGray(
      await degradePage(await renderCleanPage({ seed: 40, width: 600, height: 800 }), randomDegradation(40), 40),
    );
    const restored = await restorePixels(input, ['denoise', 'normalize', 'binarize']);
    assert.ok(restored.image.data.every((v) => v === 0 || v === 255));
  });
});
