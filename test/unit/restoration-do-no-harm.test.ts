/** Do no harm: each restoration step applies only when it helps, and its record says what it decided and why. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { fMeasure } from '../../src/activities/restoration/binarize';
import { binarizeDocument } from '../../src/activities/restoration/document-binarize';
import { deskewDecision, measureSkew } from '../../src/activities/restoration/deskew';
import { readGray, type GrayImage } from '../../src/activities/restoration/gray-image';
import { inkKept } from '../../src/activities/restoration/ink-check';
import { degradePage, randomDegradation, renderCleanPage } from '../../src/activities/restoration/page-generator';
import { psnr } from '../../src/activities/restoration/quality';
import { restoreAndMeasure, restorePixels, type StepRecord } from '../../src/activities/restoration/restore-image';
import { fixtureFile } from '../helpers/fixtures';

const DEFAULT_WITH_BINARIZE = ['denoise', 'deskew', 'normalize', 'binarize'] as const;

async function rotated(png: Buffer, degrees: number): Promise<GrayImage> {
  return readGray(await sharp(png).rotate(degrees, { background: '#ffffff' }).png().toBuffer());
}

function recordOf(records: StepRecord[], step: StepRecord['step']): StepRecord {
  const record = records.find((r) => r.step === step);
  assert.ok(record, `no record for ${step}`);
  return record;
}

function assertExplained(records: StepRecord[]): void {
  for (const record of records) {
    assert.equal(typeof record.applied, 'boolean', JSON.stringify(record));
    assert.ok(record.reason.length > 10, JSON.stringify(record));
  }
}

describe('the default pipeline on a real manuscript page (Doxa 2JohnC1V3, CC0)', () => {
  let pagePng: Buffer;
  let page: GrayImage;
  let truth: GrayImage;
  before(async () => {
    // Read as bytes: these files are test data, not a job's (a path outside the data dir would be refused).
    pagePng = readFileSync(fixtureFile('documents/2JohnC1V3.png'));
    page = await readGray(pagePng);
    truth = await readGray(readFileSync(fixtureFile('documents/2JohnC1V3-GroundTruth.png')));
  });

  it('is at least as good as binarize alone, leaves the page unrotated, and says why for every step', async (t) => {
    const alone = binarizeDocument(page);
    const restored = await restorePixels(page, DEFAULT_WITH_BINARIZE, undefined, undefined, { reference: truth });
    const scores = {
      alone: { f: fMeasure(alone, truth), psnr: psnr(alone, truth) },
      pipeline: { f: fMeasure(restored.image, truth), psnr: psnr(restored.image, truth) },
    };
    t.diagnostic(JSON.stringify(scores));
    for (const record of restored.records) t.diagnostic(`${record.step}: ${record.applied} (${record.reason})`);
    assert.ok(scores.pipeline.f >= scores.alone.f, JSON.stringify(scores));
    assert.ok(scores.pipeline.psnr >= scores.alone.psnr, JSON.stringify(scores));
    assertExplained(restored.records);
    const deskew = recordOf(restored.records, 'deskew');
    assert.equal(deskew.applied, false);
    assert.equal(deskew.skewDegrees, 0);
    assert.match(deskew.reason, /not sharp/);
    assert.ok(deskew.skew && deskew.skew.confidence < 0.05, JSON.stringify(deskew.skew));
    // A clean scan: no noise for a median to remove, paper already even and ink already dark.
    assert.equal(recordOf(restored.records, 'denoise').applied, false);
    assert.match(recordOf(restored.records, 'denoise').reason, /no visible noise/);
    assert.equal(recordOf(restored.records, 'normalize').applied, false);
    assert.match(recordOf(restored.records, 'normalize').reason, /nothing to flatten/);
    const binarize = recordOf(restored.records, 'binarize');
    assert.equal(binarize.applied, true);
    assert.equal(binarize.referenceGain?.fMeasure, Math.round(scores.pipeline.f * 100) / 100);
  });

  it('leaves the manuscript unrotated however it is turned: its lines never pin the angle to ±0.5°', async () => {
    // The profile's peak over this page's eight tall, uneven lines is flat over about 2°, so no turn of it gives a
    // trustworthy estimate; rotating by one would be a guess.
    for (const degrees of [3, -3, 0.2]) {
      const turned = await rotated(pagePng, degrees);
      const { records } = await restorePixels(turned, ['deskew']);
      const deskew = recordOf(records, 'deskew');
      assert.equal(deskew.applied, false, `turned ${degrees}°: ${deskew.reason}`);
      assert.match(deskew.reason, /not sharp/);
    }
  });
});

describe('deskew on a printed page', () => {
  let clean: Buffer;
  before(async () => {
    clean = await renderCleanPage({ seed: 11, width: 1000, height: 1400 });
  });

  it('corrects a 3° skew to within ±0.5° and says how sure it was', async () => {
    const { image, records } = await restorePixels(await rotated(clean, 3), ['deskew']);
    const deskew = recordOf(records, 'deskew');
    assert.equal(deskew.applied, true, deskew.reason);
    assert.ok(Math.abs((deskew.skewDegrees ?? NaN) - 3) <= 0.5, JSON.stringify(deskew));
    assert.ok(deskew.skew && deskew.skew.confidence >= 0.05 && deskew.skew.lines >= 3, JSON.stringify(deskew.skew));
    assert.ok(Math.abs(measureSkew(image).degrees) <= 0.5);
  });

  it('leaves a page turned by 0.2° alone: it is level', async () => {
    const turned = await rotated(clean, 0.2);
    const { image, records } = await restorePixels(turned, ['deskew']);
    const deskew = recordOf(records, 'deskew');
    assert.equal(deskew.applied, false);
    assert.match(deskew.reason, /^level/);
    assert.deepEqual(image, turned, 'a skipped step hands the page on untouched');
  });

  it('trusts no angle from too few lines or from a page where no angle stands out', () => {
    assert.equal(deskewDecision({ degrees: 2, confidence: 0.3, peakContrast: 2, lines: 2 }).apply, false);
    assert.equal(deskewDecision({ degrees: 2, confidence: 0.3, peakContrast: 1.05, lines: 20 }).apply, false);
    assert.equal(
      deskewDecision({ degrees: 0, confidence: 0, peakContrast: 1, lines: 0 }).reason,
      'no text lines found',
    );
    assert.equal(deskewDecision({ degrees: 2, confidence: 0.3, peakContrast: 2, lines: 20 }).apply, true);
  });
});

describe('the grey-level steps keep the writing', () => {
  it('a median that erases thin strokes is undone, with the share it would have lost', async () => {
    // The clean generated page has hairlines and serifs one or two pixels wide, and sharp edges that read as noise.
    const page = await readGray(await renderCleanPage({ seed: 31, width: 600, height: 800 }));
    const { image, records } = await restorePixels(page, ['denoise']);
    const denoise = recordOf(records, 'denoise');
    assert.equal(denoise.applied, false, denoise.reason);
    assert.match(denoise.reason, /stroke pixels into paper/);
    assert.ok((denoise.inkKept ?? 1) < 0.85, JSON.stringify(denoise));
    assert.deepEqual(image, page);
  });

  it('on a noisy, stained page denoise and normalize apply and keep the strokes', async () => {
    const page = await readGray(await degradePage(await renderCleanPage({ seed: 31 }), randomDegradation(31), 31));
    const { records } = await restorePixels(page, ['denoise', 'normalize']);
    for (const record of records) {
      assert.equal(record.applied, true, `${record.step}: ${record.reason}`);
      assert.ok((record.inkKept ?? 0) >= 0.85, JSON.stringify(record));
    }
  });

  it('inkKept is 1 for an unchanged page and low for an erased one', async () => {
    const page = await readGray(await renderCleanPage({ seed: 5, width: 400, height: 500 }));
    assert.equal(inkKept(page, page), 1);
    assert.ok(inkKept(page, { ...page, data: new Uint8Array(page.data.length).fill(255) }) < 0.05);
  });
});

describe('restoreAndMeasure with a reference', () => {
  it('reports what each applied step gained, and keeps the whole-page metrics', async () => {
    const cleanPng = await renderCleanPage({ seed: 32 });
    const page = await readGray(await degradePage(cleanPng, randomDegradation(32), 32));
    const clean = await readGray(cleanPng);
    const result = await restoreAndMeasure({ page, reference: clean, steps: ['denoise', 'deskew', 'normalize'] });
    const reference = result.metrics.reference;
    assert.ok(reference);
    assertExplained(result.records);
    let total = 0;
    for (const record of result.records) {
      if (!record.applied) {
        assert.equal(record.referenceGain, undefined);
        continue;
      }
      assert.ok(record.referenceGain, JSON.stringify(record));
      total += record.referenceGain.psnrGain;
    }
    assert.ok(Math.abs(total - reference.psnrGain) < 0.01, `${total} vs ${JSON.stringify(reference)}`);
    assert.ok(recordOf(result.records, 'deskew').applied);
    assert.ok((recordOf(result.records, 'normalize').referenceGain?.psnrGain ?? 0) > 1);
  });
});
