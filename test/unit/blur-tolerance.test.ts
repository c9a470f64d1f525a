/** processMedia's blur against the exact (float) Gaussian: the look stays within BLUR_MIN_PSNR_DB. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { BLUR_MIN_PSNR_DB, BLUR_PRECISION, applyFilter } from '../../src/activities/images/process-media';
import { psnr } from '../../src/activities/restoration/quality';
import { fixtureFile } from '../helpers/fixtures';

async function pixels(pipeline: sharp.Sharp) {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width * info.channels, height: info.height };
}

describe('blur tolerance', () => {
  for (const name of ['landscape.jpg', 'Landscape_6.jpg', 'cmyk.jpg']) {
    for (const radius of [1, 3, 10]) {
      it(`${name}, radius ${radius}: PSNR ≥ ${BLUR_MIN_PSNR_DB} dB against the float Gaussian`, async () => {
        const input = () =>
          sharp(fixtureFile(`images/${name}`))
            .rotate()
            .toColourspace('srgb');
        const ours = await pixels(applyFilter(input(), { op: 'blur', radius }));
        const exact = await pixels(input().blur({ sigma: radius, precision: 'float' }));
        const db = psnr(ours, exact);
        assert.ok(db >= BLUR_MIN_PSNR_DB, `${BLUR_PRECISION} blur at ${db.toFixed(2)} dB`);
      });
    }
  }

  it('the blur + brightness 1.3 pipeline stays within the tolerance too (brightness amplifies differences)', async () => {
    const input = () => sharp(fixtureFile('images/landscape.jpg')).rotate();
    const ours = await pixels(
      applyFilter(applyFilter(input(), { op: 'blur', radius: 3 }), { op: 'brightness', factor: 1.3 }),
    );
    const exact = await pixels(input().blur({ sigma: 3, precision: 'float' }).linear(1.3, 0));
    assert.ok(psnr(ours, exact) >= BLUR_MIN_PSNR_DB, `${psnr(ours, exact).toFixed(2)} dB`);
  });
});
