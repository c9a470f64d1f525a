/**
 * Images made by an attacker, opened the way every job opens a user's image (`openImage`, through processMedia's
 * activity and restoration's `readGray`): decompression bombs, SVGs that reach for other files, the network or
 * exponential entities, HEIC, animations, and non-images whose content must not leak into messages. Every file is
 * generated here, in a temporary data dir.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { describeImageError } from '../../src/activities/images/image-errors';
import { SVG_MAX_ELEMENTS } from '../../src/activities/images/open-image';
import { processImage } from '../../src/activities/images/process-media';
import { readGray } from '../../src/activities/restoration/gray-image';
import { runActivity } from '../helpers/activity';

// ---- generators of hostile files -------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid 1-bit PNG of `width`×`height` zeros: ~110 KB for 30000×30000, 2.7 GB once decoded to RGB. */
function pngBomb(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 1; // bit depth 1, greyscale
  const rows = Buffer.alloc((1 + Math.ceil(width / 8)) * height);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A real small JPEG whose frame header (SOF) now claims `width`×`height`. */
async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#888888' } })
    .jpeg()
    .toBuffer();
  for (let i = 2; i < jpeg.length - 9; i += 2 + jpeg.readUInt16BE(i + 2)) {
    const marker = jpeg[i + 1] ?? 0;
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
  }
  throw new Error('no SOF marker');
}

/** A 35-byte GIF whose screen and only frame claim 65535×65535. */
function gifClaiming65535(): Buffer {
  const lo = 0xff;
  const hi = 0xff;
  return Buffer.from([
    ...Buffer.from('GIF89a'),
    ...[lo, hi, lo, hi, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff], // screen, 2-colour palette
    ...[0x2c, 0, 0, 0, 0, lo, hi, lo, hi, 0], // image descriptor
    ...[2, 2, 0x44, 0x01, 0, 0x3b], // a few LZW bytes, trailer
  ]);
}

/** A real small WebP (lossless or lossy) whose bitstream header now claims 16383×16383 (the format's maximum). */
async function webpClaimingMax(lossless: boolean): Promise<Buffer> {
  const webp = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#888888' } })
    .webp(lossless ? { lossless: true } : { quality: 50 })
    .toBuffer();
  if (lossless) {
    const bits = webp.readUInt32LE(21); // VP8L: 14 bits width-1, 14 bits height-1, alpha, version
    webp.writeUInt32LE(((bits & 0xf0000000) | 16382 | (16382 << 14)) >>> 0, 21);
  } else {
    webp.writeUInt16LE(16383, 26); // VP8 key frame: 14 bits width, 2 bits scale; then height
    webp.writeUInt16LE(16383, 28);
  }
  return webp;
}

function box(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
}

function fullBox(type: string, version: number, ...parts: Buffer[]): Buffer {
  return box(type, Buffer.from([version, 0, 0, 0]), ...parts);
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);

/**
 * A minimal, structurally valid HEIC: ftyp `heic`, a meta box whose primary item is an `hvc1` (HEVC) image with its
 * `hvcC` and `ispe` (64×64) properties, and an mdat whose coded bytes are junk, as sharp cannot write HEVC.
 */
function heic(): Buffer {
  const ftyp = box('ftyp', Buffer.from('heic'), u32(0), Buffer.from('mif1heic'));
  const hdlr = fullBox('hdlr', 0, u32(0), Buffer.from('pict'), Buffer.alloc(12), Buffer.from('\0'));
  const pitm = fullBox('pitm', 0, u16(1));
  const iinf = fullBox('iinf', 0, u16(1), fullBox('infe', 2, u16(1), u16(0), Buffer.from('hvc1\0')));
  const hvcC = box(
    'hvcC',
    Buffer.from([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5a, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]),
  );
  const iprp = box(
    'iprp',
    box('ipco', hvcC, fullBox('ispe', 0, u32(64), u32(64))),
    fullBox('ipma', 0, u32(1), u16(1), Buffer.from([2, 0x81, 0x02])),
  );
  const coded = Buffer.from([0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x00]);
  const meta = (offset: number) =>
    fullBox(
      'meta',
      0,
      hdlr,
      pitm,
      fullBox('iloc', 0, Buffer.from([0x44, 0x00]), u16(1), u16(1), u16(0), u16(1), u32(offset), u32(coded.length)),
      iinf,
      iprp,
    );
  const offset = ftyp.length + meta(0).length + 8;
  return Buffer.concat([ftyp, meta(offset), box('mdat', coded)]);
}

async function animated(format: 'gif' | 'webp'): Promise<Buffer> {
  const frames = await Promise.all(
    ['#ff0000', '#00ff00', '#0000ff'].map((background) =>
      sharp({ create: { width: 16, height: 16, channels: 3, background } })
        .png()
        .toBuffer(),
    ),
  );
  const joined = sharp(frames, { join: { animated: true } });
  return format === 'gif' ? joined.gif().toBuffer() : joined.webp({ lossless: true }).toBuffer();
}

const SVG_OPEN =
  '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ' +
  'xmlns:xi="http://www.w3.org/2001/XInclude" width="64" height="64"><rect width="64" height="64" fill="#ffffff"/>';

function billionLaughs(): string {
  let entities = '<!ENTITY lol0 "lollollollollol">';
  for (let i = 1; i < 10; i++) entities += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
  return `<?xml version="1.0"?><!DOCTYPE svg [${entities}]>${SVG_OPEN}<text y="30">&lol9;</text></svg>`;
}

// ---- helpers -----------------------------------------------------------------------------------------------------

/** Peak RSS so far, in MB (monotonic: a bomb that allocated would show here even after it was freed). */
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** The error `promise` rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('the file was accepted'),
    (err: unknown) => err,
  );
}

function expectFailure(err: unknown, type: string, message?: RegExp): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, type, err.message);
  assert.equal(err.nonRetryable, true, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

// ---- the tests ---------------------------------------------------------------------------------------------------

describe('hostile images', () => {
  const saved = { dataDir: process.env.BACKROOM_DATA_DIR, maxPixels: process.env.BACKROOM_MAX_INPUT_PIXELS };
  const root = mkdtempSync(path.join(os.tmpdir(), 'hostile-'));
  const dataDir = path.join(root, 'data');
  const outside = path.join(root, 'outside');
  const inDir = path.join(dataDir, 'in');
  const write = (name: string, content: string | Buffer) => writeFileSync(path.join(inDir, name), content);

  before(async () => {
    process.env.BACKROOM_DATA_DIR = dataDir;
    delete process.env.BACKROOM_MAX_INPUT_PIXELS;
    mkdirSync(inDir, { recursive: true });
    mkdirSync(outside);
    const red = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    writeFileSync(path.join(outside, 'canary.png'), red);
    writeFileSync(path.join(outside, 'canary.txt'), 'CANARY-7f3a9c');
    writeFileSync(
      path.join(outside, 'other.svg'),
      '<svg xmlns="http://www.w3.org/2000/svg"><rect id="r" width="64" height="64" fill="#ff0000"/></svg>',
    );
    write('sibling.png', red);
    symlinkSync(path.join(outside, 'canary.png'), path.join(inDir, 'link.png'));
  });
  after(() => {
    for (const [key, value] of [
      ['BACKROOM_DATA_DIR', saved.dataDir],
      ['BACKROOM_MAX_INPUT_PIXELS', saved.maxPixels],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    rmSync(root, { recursive: true, force: true });
  });

  const run = (input: string) =>
    runActivity(new MockActivityEnvironment(), processImage, {
      input: `in/${input}`,
      outputDir: 'out',
      // Identity filter: the output is written as PNG (or the input's own format when sharp writes it).
      operations: [{ op: 'contrast', factor: 1 }],
    });

  /** Runs processImage on `name` and checks it fails as `type` within `ms` and `mb` of extra peak memory. */
  async function refusesFast(name: string, type: string, message: RegExp, ms = 2000, mb = 300) {
    const [peak, started] = [peakRssMb(), performance.now()];
    const err = await rejection(run(name));
    const elapsed = performance.now() - started;
    expectFailure(err, type, message);
    assert.ok(elapsed < ms, `${name}: ${Math.round(elapsed)} ms`);
    assert.ok(peakRssMb() - peak < mb, `${name}: peak RSS grew by ${Math.round(peakRssMb() - peak)} MB`);
    return err as ApplicationFailure;
  }

  describe('decompression bombs fail fast as ImageTooLarge, without allocating the pixels', () => {
    const tooLarge = /larger than the limit of 100,000,000 pixels \(a possible decompression bomb\)/;
    it('a 30000×30000 PNG of zeros (about 110 KB on disk)', async () => {
      const png = pngBomb(30000, 30000);
      assert.ok(png.length < 200_000, `${png.length} bytes`);
      write('bomb.png', png);
      await refusesFast('bomb.png', 'ImageTooLarge', tooLarge);
    });
    it('a JPEG header claiming 60000×60000, and one claiming 65535×65535 (over libjpeg’s own maximum)', async () => {
      write('huge.jpg', await jpegClaiming(60000, 60000));
      write('huger.jpg', await jpegClaiming(65535, 65535));
      await refusesFast('huge.jpg', 'ImageTooLarge', tooLarge);
      await refusesFast('huger.jpg', 'ImageTooLarge', tooLarge);
    });
    it('a 35-byte GIF claiming 65535×65535', async () => {
      write('huge.gif', gifClaiming65535());
      await refusesFast('huge.gif', 'ImageTooLarge', tooLarge);
    });
    it('lossless and lossy WebP headers claiming 16383×16383', async () => {
      write('huge-lossless.webp', await webpClaimingMax(true));
      write('huge-lossy.webp', await webpClaimingMax(false));
      await refusesFast('huge-lossless.webp', 'ImageTooLarge', tooLarge);
      await refusesFast('huge-lossy.webp', 'ImageTooLarge', tooLarge);
    });
    it('an SVG asking for a 100000×100000 canvas, and one over the SVG canvas limit (4096×4096)', async () => {
      write('huge.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect/></svg>');
      write('big.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="5000" height="5000"><rect/></svg>');
      await refusesFast('huge.svg', 'ImageTooLarge', /larger than the limit of 16,777,216 pixels/);
      const err = await refusesFast('big.svg', 'ImageTooLarge', /larger than the limit of 16,777,216 pixels/);
      assert.match(err.message, /SVGs are rendered at most 4096×4096/);
    });
    it('restoration reads (readGray) apply the same limit and name the file by its role', async () => {
      await assert.rejects(readGray(path.join(inDir, 'bomb.png'), { what: 'reference' }), (err: unknown) => {
        expectFailure(err, 'ImageTooLarge', /^The reference in\/bomb\.png is larger than the limit/);
        return true;
      });
    });
  });

  describe('SVGs load nothing from outside themselves', () => {
    let server: net.Server;
    let connections = 0;
    let port = 0;
    before(async () => {
      server = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as net.AddressInfo).port;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    /** Renders the SVG through processImage; returns its output's red and dark pixel counts and the warnings. */
    async function render(name: string, body: string, prolog = '') {
      write(name, `${prolog}${SVG_OPEN}${body}</svg>`);
      const result = await run(name);
      const output = path.join(dataDir, result.outputs[0]?.path ?? '');
      const { data, info } = await sharp(output).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      let red = 0;
      let dark = 0;
      for (let i = 0; i < data.length; i += info.channels) {
        const [r = 0, g = 0, b = 0] = [data[i], data[i + 1], data[i + 2]];
        if (r > 200 && g < 60 && b < 60) red++;
        if (r < 128 && g < 128 && b < 128) dark++;
      }
      return { red, dark, warnings: result.warnings ?? [] };
    }

    const external = (where: string) => `<image href="${where}" width="64" height="64"/>`;
    for (const [name, body] of [
      ['file-url', () => external(`file://${outside}/canary.png`)],
      ['absolute xlink:href', () => external(`${outside}/canary.png`).replace('href', 'xlink:href')],
      ['relative ../', () => external('../../outside/canary.png')],
      ['a sibling file in the data dir', () => external('sibling.png')],
      ['a symlink beside it leading out', () => external('link.png')],
      ['use of another SVG', () => `<use href="file://${outside}/other.svg#r"/>`],
      [
        'feImage',
        () => `<filter id="f"><feImage href="file://${outside}/canary.png"/></filter><rect filter="url(#f)"/>`,
      ],
      ['http to 127.0.0.1', () => external(`http://127.0.0.1:${port}/x.png`)],
      ['CSS @import', () => `<style>@import url("http://127.0.0.1:${port}/x.css");</style>`],
    ] as const) {
      it(`refers to ${name}: not read, no connection, and a warning says so`, async () => {
        const before = connections;
        const { red, warnings } = await render(`${name.replace(/\W+/g, '-')}.svg`, body());
        assert.equal(red, 0, 'the referenced red image must not appear');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(connections, before, 'no connection to the local server');
        assert.match(warnings.join('\n'), /refers to external files or URLs: they were not loaded/);
      });
    }

    it('XInclude of a text file outside: nothing included', async () => {
      const { dark } = await render(
        'xinclude.svg',
        `<text y="30"><xi:include href="${outside}/canary.txt" parse="text"/></text>`,
      );
      assert.equal(dark, 0, 'no text was drawn');
    });

    it('an external entity (file or http): refused as a malformed SVG, canary not quoted, no connection', async () => {
      const before = connections;
      for (const [name, system] of [
        ['xxe-file.svg', `file://${outside}/canary.txt`],
        ['xxe-http.svg', `http://127.0.0.1:${port}/e`],
      ] as const) {
        write(
          name,
          `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "${system}">]>${SVG_OPEN}<text>&x;</text></svg>`,
        );
        const err = await rejection(run(name));
        const failure = expectFailure(err, 'CorruptImage', /is not a well-formed SVG document/);
        assert.doesNotMatch(failure.message, /CANARY|Entity|&x;/);
      }
      assert.equal(connections, before);
    });

    it('an embedded data: image still renders, without a warning', async () => {
      const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } })
        .png()
        .toBuffer();
      const { red: count, warnings } = await render(
        'embedded.svg',
        external(`data:image/png;base64,${red.toString('base64')}`),
      );
      assert.equal(count, 64 * 64);
      assert.deepEqual(warnings, []);
    });
  });

  describe('SVG bombs fail fast as ImageTooComplex, bounded in time and memory', () => {
    const complex = /is an SVG too complex to render safely/;
    it('billion laughs (10 levels × 10 entities, 909 bytes)', async () => {
      write('laughs.svg', billionLaughs());
      const err = await refusesFast('laughs.svg', 'ImageTooComplex', complex);
      assert.doesNotMatch(err.message, /lol/);
    });
    it('quadratic blowup: a 100 KB entity referenced 20,000 times', async () => {
      const entity = `<!ENTITY a "${'A'.repeat(100_000)}">`;
      write('quadratic.svg', `<!DOCTYPE svg [${entity}]>${SVG_OPEN}<text>${'&a;'.repeat(20_000)}</text></svg>`);
      await refusesFast('quadratic.svg', 'ImageTooComplex', complex);
    });
    it('elements nested 10,000 deep (libxml2 stops at 256)', async () => {
      write('deep.svg', `${SVG_OPEN}${'<g>'.repeat(10_000)}${'</g>'.repeat(10_000)}</svg>`);
      await refusesFast('deep.svg', 'ImageTooComplex', complex);
    });
    it(`more than ${SVG_MAX_ELEMENTS.toLocaleString('en-US')} elements, plain and gzip-compressed (SVGZ)`, async () => {
      const svg = `${SVG_OPEN}${'<g/>'.repeat(SVG_MAX_ELEMENTS + 1)}</svg>`;
      write('many.svg', svg);
      write('many.svgz', gzipSync(svg));
      await refusesFast('many.svg', 'ImageTooComplex', /50,003 elements, over 50,000/);
      await refusesFast('many.svgz', 'ImageTooComplex', /50,003 elements, over 50,000/);
    });
    it('an SVG file over 10 MB is refused unread; 11 MB of HTML is not called an SVG', async () => {
      write('padded.svg', `${SVG_OPEN}<desc>${' '.repeat(11 * 1024 * 1024)}</desc></svg>`);
      write('page.html', `<html><body>${' '.repeat(11 * 1024 * 1024)}</body></html>`);
      await refusesFast('padded.svg', 'ImageTooComplex', /more than 10 MB of SVG/);
      await refusesFast('page.html', 'UnsupportedFormat', /is not an image in a supported format/);
    });
    it('a gzip that inflates past the SVG size limit', async () => {
      write('inflates.svgz', gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20)));
      await refusesFast('inflates.svgz', 'ImageTooComplex', /more than 10 MB of SVG/);
    });
    it('<use> fan-out (10 references × 12 levels): librsvg stops at 500,000 references', async () => {
      let defs = '<defs><rect id="u0" width="1" height="1"/>';
      for (let i = 1; i < 12; i++) defs += `<g id="u${i}">${`<use href="#u${i - 1}"/>`.repeat(10)}</g>`;
      write('use-bomb.svg', `${SVG_OPEN}${defs}</defs><use href="#u11"/></svg>`);
      await refusesFast('use-bomb.svg', 'ImageTooComplex', complex, 20_000);
    });
  });

  describe('HEIC', () => {
    const heicMessage =
      /in\/photo\.heic is a HEIC image: HEIC\/HEVC is not supported \(sharp's libvips has no HEVC decoder\); convert it to JPEG or AVIF\./;
    it('is refused as UnsupportedFormat with the reason and what to do, by processMedia and restoration', async () => {
      write('photo.heic', heic());
      const err = await refusesFast('photo.heic', 'UnsupportedFormat', heicMessage);
      assert.doesNotMatch(err.message, /corrupt|bad seek/);
      await assert.rejects(readGray(path.join(inDir, 'photo.heic')), (e: unknown) => {
        expectFailure(e, 'UnsupportedFormat', heicMessage);
        return true;
      });
    });
    it("maps libheif's decoder errors to the same message", () => {
      const message =
        `${path.join(inDir, 'photo.heic')}: bad seek to 1024\nheif: Error while loading plugin: Support for this ` +
        'compression format has not been built in: HEVC (a suitable decoder plugin is libde265) (11.6003)';
      expectFailure(
        describeImageError(new Error(message), path.join(inDir, 'photo.heic'), 'input', { format: 'heif' }),
        'UnsupportedFormat',
        heicMessage,
      );
    });
  });

  describe('animations: the first frame is processed, and a warning says so', () => {
    for (const format of ['gif', 'webp'] as const) {
      it(`an animated ${format === 'gif' ? 'GIF' : 'WebP'} of 3 frames`, async () => {
        write(`animated.${format}`, await animated(format));
        const result = await run(`animated.${format}`);
        assert.deepEqual(result.warnings, [
          `animated ${format === 'gif' ? 'GIF' : 'WebP'} with 3 frames: only the first frame was processed`,
        ]);
        assert.deepEqual([result.width, result.height], [16, 16]);
        const { data } = await sharp(path.join(dataDir, result.outputs[0]?.path ?? ''))
          .raw()
          .toBuffer({ resolveWithObject: true });
        const [r = 0, g = 0, b = 0] = data;
        assert.ok(r > 200 && g < 60 && b < 60, `the first (red) frame, not ${[r, g, b].join(',')}`);
      });
    }
    it('a still image has no warnings field', async () => {
      write(
        'still.png',
        await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
          .png()
          .toBuffer(),
      );
      assert.equal((await run('still.png')).warnings, undefined);
    });
  });

  describe('messages never quote the file', () => {
    const secret = /SECRET|root:|daemon|bin\/bash/;
    for (const [name, content, type] of [
      ['notes.jpg', 'this is not an image SECRET-TEXT\n'.repeat(20), 'UnsupportedFormat'],
      [
        'page.jpg',
        '<!DOCTYPE html><html><head><title>SECRET</title></head><body>SECRET</body></html>',
        'UnsupportedFormat',
      ],
      [
        'inline-svg.jpg',
        '<html><body>SECRET<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg></body></html>',
        'CorruptImage',
      ],
      [
        'passwd.jpg',
        'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n',
        'UnsupportedFormat',
      ],
      ['tag.svg', '<svg xmlns="http://www.w3.org/2000/svg"><SECRETTAG></svg>', 'CorruptImage'],
      ['xml.jpg', '<?xml version="1.0"?><secret-root>SECRET</secret-root>', 'UnsupportedFormat'],
      [
        'jpeg-magic.jpg',
        Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('SECRET'.repeat(20))]),
        'CorruptImage',
      ],
      [
        'png-magic.png',
        Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from('SECRET'.repeat(20))]),
        'CorruptImage',
      ],
      ['gif-magic.gif', Buffer.from('GIF89aSECRET'.repeat(5)), 'CorruptImage'],
      ['tiff-magic.tif', Buffer.concat([Buffer.from('II*\0'), Buffer.from('SECRET'.repeat(20))]), 'UnsupportedFormat'],
    ] as const) {
      it(`${name}: ${type}, without its content or the data dir's absolute path`, async () => {
        write(name, content);
        const err = await rejection(run(name));
        const failure = expectFailure(err, type, new RegExp(`The input in/${name.replace('.', '\\.')} `));
        assert.doesNotMatch(failure.message, secret);
        assert.ok(!failure.message.includes(dataDir), failure.message);
      });
    }
    it('a decoder message keeps its fixed phrases but drops quoted text and absolute paths', () => {
      const file = path.join(inDir, 'x.tif');
      const failure = describeImageError(
        new Error(`${file}: TIFFFetchNormalTag: ASCII value for tag "SECRET-DocumentName" does not end in null byte`),
        file,
        'input',
        { format: 'tiff' },
      );
      expectFailure(
        failure,
        'CorruptImage',
        /^The input in\/x\.tif is a corrupt or truncated image \(in\/x\.tif: TIFFFetchNormalTag/,
      );
      assert.doesNotMatch(failure.message, /SECRET/);
    });
  });
});
