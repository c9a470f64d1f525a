/** The document binariser on a real manuscript page and on made-up pages, and the DIBCO measures on hand-made cases. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { binaryScores, skeletonize } from '../../src/activities/restoration/binary-metrics';
import { binarizeOtsu, binarizeSauvola } from '../../src/activities/restoration/binarize';
import { binarizeDocument, estimateStrokeWidth } from '../../src/activities/restoration/document-binarize';
import { readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import { fixtureFile } from '../helpers/fixtures';

/** A white image with the listed [x, y] pixels black. */
function withInk(width: number, height: number, ink: [number, number][]): GrayImage {
  const data = new Uint8Array(width * height).fill(255);
  for (const [x, y] of ink) data[y * width + x] = 0;
  return { width, height, data };
}

function rect(x0: number, y0: number, x1: number, y1: number): [number, number][] {
  const pixels: [number, number][] = [];
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) pixels.push([x, y]);
  return pixels;
}

describe('DIBCO measures on hand-made cases', () => {
  it('a perfect result scores FM 100, pseudo-FM 100, infinite PSNR and DRD 0', () => {
    const truth = withInk(16, 16, rect(3, 3, 9, 5));
    const scores = binaryScores(truth, truth);
    assert.equal(scores.fMeasure, 100);
    assert.equal(scores.pseudoFMeasure, 100);
    assert.equal(scores.psnr, Infinity);
    assert.equal(scores.drd, 0);
  });

  it('F-measure and PSNR count pixels: 3 of 4 ink pixels right, one missed and one extra', () => {
    const truth = withInk(10, 10, [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    const result = withInk(10, 10, [
      [1, 1],
      [2, 1],
      [3, 1],
      [7, 7],
    ]);
    const scores = binaryScores(result, truth);
    // Precision 3/4, recall 3/4: F = 75. Two wrong pixels of 100: PSNR = 10·log10(100 / 2).
    assert.ok(Math.abs(scores.fMeasure - 75) < 1e-9, String(scores.fMeasure));
    assert.ok(Math.abs(scores.psnr - 10 * Math.log10(50)) < 1e-9, String(scores.psnr));
  });

  it('pseudo-F-measure forgives a stroke drawn thinner than the truth: recall is counted on the skeleton', () => {
    // A bar 3 pixels thick; the result holds only its middle row.
    const truth = withInk(24, 9, rect(2, 3, 21, 5));
    const result = withInk(24, 9, rect(2, 4, 21, 4));
    const skeleton = skeletonize(
      truth.data.map((value) => (value < 128 ? 1 : 0)),
      24,
      9,
    );
    const skeletonRows = new Set<number>();
    skeleton.forEach((on, i) => on && skeletonRows.add(Math.floor(i / 24)));
    assert.deepEqual([...skeletonRows], [4], 'the skeleton of a bar is its middle row');
    const scores = binaryScores(result, truth);
    assert.equal(scores.precision, 100);
    assert.ok(Math.abs(scores.recall - 100 / 3) < 1e-9);
    assert.ok(Math.abs(scores.fMeasure - 50) < 1e-9, String(scores.fMeasure));
    assert.equal(scores.pseudoFMeasure, 100);
  });

  it("DRD weighs one wrong pixel by the truth's disagreeing 5×5 neighbours, over the non-uniform 8×8 blocks", () => {
    // One 8×8 block, left half ink; the result also inks (4, 4), the first paper pixel right of the edge.
    const truth = withInk(8, 8, rect(0, 0, 3, 7));
    const result = withInk(8, 8, [...rect(0, 0, 3, 7), [4, 4]]);
    // Its 5×5 window covers x 2..6: the paper columns x = 4, 5, 6 (dx = 0, 1, 2) disagree with the wrong ink.
    // Weights are 1/distance, normalised by their sum over the whole 5×5 window (centre 0).
    const s2 = Math.SQRT2;
    const s5 = Math.sqrt(5);
    const s8 = Math.sqrt(8);
    const disagreeing = 1 + 1 + 1 / 2 + 1 / 2 + (1 + 2 / s2 + 2 / s5) + (1 / 2 + 2 / s5 + 2 / s8);
    const all = 4 * 1 + 4 / s2 + 4 / 2 + 8 / s5 + 4 / s8;
    const scores = binaryScores(result, truth);
    assert.ok(Math.abs(scores.drd - disagreeing / all) < 1e-9, `${scores.drd} vs ${disagreeing / all}`);
    assert.ok(Math.abs(scores.drd - 0.6085) < 1e-3);
  });

  it('DRD and PSNR on the real page match the DIBCO tool as Doxa reports it for Sauvola (27, 0.10)', async () => {
    const page = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3.png')));
    const truth = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
    const scores = binaryScores(binarizeSauvola(page), truth);
    // Doxa's tests (its own Sauvola output, a few pixels apart from ours): DRD 1.9519, PSNR 16.329, FM 93.204.
    assert.ok(Math.abs(scores.drd - 1.9519) < 0.05, `DRD ${scores.drd}`);
    assert.ok(Math.abs(scores.psnr - 16.329) < 0.1, `PSNR ${scores.psnr}`);
  });
});

describe('binarizeDocument', () => {
  it('beats Otsu and both Sauvola settings on the real manuscript page in F-measure, PSNR and DRD', async (t) => {
    const page = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3.png')));
    const truth = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
    const ours = binaryScores(binarizeDocument(page), truth);
    const others = {
      otsu: binaryScores(binarizeOtsu(page), truth),
      sauvola: binaryScores(binarizeSauvola(page, { window: 25, k: 0.2 }), truth),
      sauvolaDoxa: binaryScores(binarizeSauvola(page, { window: 27, k: 0.1 }), truth),
    };
    t.diagnostic(JSON.stringify({ ours, others }));
    for (const [name, other] of Object.entries(others)) {
      assert.ok(ours.fMeasure >= other.fMeasure + 0.5, `F-measure ${ours.fMeasure} vs ${name} ${other.fMeasure}`);
      assert.ok(ours.psnr >= other.psnr + 0.3, `PSNR ${ours.psnr} vs ${name} ${other.psnr}`);
      assert.ok(ours.drd < other.drd, `DRD ${ours.drd} vs ${name} ${other.drd}`);
    }
  });

  it('keeps text under a shadow darker than the ink elsewhere, which defeats a global threshold', () => {
    // Paper at 240 with a broad shadow down the middle (to 130); ink 60 grey levels below the paper under it.
    const width = 240;
    const height = 120;
    const data = new Uint8Array(width * height);
    const truthInk: [number, number][] = [];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const paper = 240 - 110 * Math.exp(-(((x - width / 2) / (width / 6)) ** 2));
        const ink = y % 24 >= 8 && y % 24 < 12 && x % 16 < 12;
        data[y * width + x] = Math.round(ink ? paper - 60 : paper);
        if (ink) truthInk.push([x, y]);
      }
    }
    const page = { width, height, data };
    const truth = withInk(width, height, truthInk);
    const ours = binaryScores(binarizeDocument(page), truth).fMeasure;
    const otsu = binaryScores(binarizeOtsu(page), truth).fMeasure;
    assert.ok(ours > 98, `document binariser F-measure ${ours}`);
    assert.ok(otsu < 80, `Otsu F-measure ${otsu}`);
  });

  it('leaves a blank page white and returns a 0/255 image of the same size', () => {
    const blank = { width: 50, height: 30, data: new Uint8Array(1500).fill(200) };
    const out = binarizeDocument(blank);
    assert.equal(out.width, 50);
    assert.equal(out.height, 30);
    assert.ok(out.data.every((value) => value === 255));
    const empty = binarizeDocument({ width: 0, height: 0, data: new Uint8Array(0) });
    assert.equal(empty.data.length, 0);
  });

  it('estimates the stroke width as the commonest run of ink', () => {
    const ink: [number, number][] = [];
    for (let x = 4; x < 90; x += 12) ink.push(...rect(x, 5, x + 4, 40));
    assert.equal(estimateStrokeWidth(withInk(100, 50, ink)), 5);
  });
});
