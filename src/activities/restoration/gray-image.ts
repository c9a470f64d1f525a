/** 8-bit grayscale rasters: the form every restoration algorithm works on. */
import sharp from 'sharp';

/** Row-major, one byte per pixel (0 = black ink, 255 = white paper). */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes any image sharp reads into grey (upright per EXIF, transparency flattened onto white). */
export async function readGray(input: string | Buffer, options: { maxPixels?: number } = {}): Promise<GrayImage> {
  const { data, info } = await sharp(input, { limitInputPixels: options.maxPixels ?? 100_000_000, failOn: 'error' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .grayscale()
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** A sharp pipeline over a grey raster (for resizing, filtering and encoding). */
export function grayToSharp(image: GrayImage): sharp.Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 1 } });
}
