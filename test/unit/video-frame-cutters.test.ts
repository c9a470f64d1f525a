/**
 * ffmpeg's output pipes arrive in chunks of any size: the raw frames and the candidates' JPEGs are cut back into
 * whole frames and images wherever the chunk boundaries fall, the last image of a stream included, and a byte pair
 * that looks like an end marker inside a JPEG's tables does not end the image.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { ffmpegPath } from '../../src/activities/video/ffmpeg';
import { FrameCutter, JpegCutter } from '../../src/activities/video/frames';

/** `data` in chunks of the given sizes, cycling through them. */
function chunks(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** What ffmpeg writes for candidates: a stream of JPEGs (five 320×180 test pictures). */
function ffmpegJpegStream(): Buffer {
  return execFileSync(ffmpegPath(), [
    ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=5', '-frames:v', '5'],
    ...['-c:v', 'mjpeg', '-q:v', '3', '-f', 'image2pipe', 'pipe:1'],
  ]);
}

describe('cutting ffmpeg output back into frames and images', () => {
  it('gives every raw frame whole, as views where a chunk holds it, whatever the chunk sizes', () => {
    const frameBytes = 100;
    const stream = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 251));
    for (const sizes of [[1000], [64], [1, 99, 250, 7], [100], [333]]) {
      const cutter = new FrameCutter(frameBytes);
      const frames = chunks(stream, sizes).flatMap((chunk) => cutter.push(chunk));
      assert.equal(frames.length, 10, `chunks of ${sizes.join(', ')}: ten frames`);
      frames.forEach((frame, i) => assert.ok(frame.equals(stream.subarray(i * 100, (i + 1) * 100)), `frame ${i}`));
    }
  });

  it("gives each of ffmpeg's JPEGs whole, the last one included, wherever the chunks end", async () => {
    const stream = ffmpegJpegStream();
    for (const sizes of [[stream.length], [65536], [1], [3, 1000, 17], [4096]]) {
      const cutter = new JpegCutter();
      const images = chunks(stream, sizes).flatMap((chunk) => cutter.push(chunk));
      assert.equal(images.length, 5, `chunks of ${sizes.join(', ')}: five images`);
      assert.ok(Buffer.concat(images).equals(stream), 'nothing lost or added');
      for (const image of images) {
        const { width, height, format } = await sharp(image).metadata();
        assert.deepEqual([format, width, height], ['jpeg', 320, 180]);
      }
    }
  });

  it('does not take 0xFF 0xD9 inside a table for the end of the image', async () => {
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#80a0c0' } })
      .jpeg({ quality: 50 })
      .toBuffer();
    // Put an end-marker-like pair into the first quantisation table's values (its segment length is unchanged).
    const dqt = jpeg.indexOf(Buffer.from([0xff, 0xdb]));
    assert.ok(dqt > 0, 'the encoder wrote a quantisation table');
    const tricky = Buffer.from(jpeg);
    tricky[dqt + 10] = 0xff;
    tricky[dqt + 11] = 0xd9;
    const cutter = new JpegCutter();
    const images = [...cutter.push(tricky.subarray(0, dqt + 12)), ...cutter.push(tricky.subarray(dqt + 12))];
    assert.equal(images.length, 1);
    assert.equal(images[0]!.length, tricky.length, 'the whole image, not up to the pair in the table');
  });
});
