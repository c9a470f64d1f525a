/** 8-bit grayscale rasters: the form every restoration algorithm works on. */
import sharp from 'sharp';
import { maxInputPixels } from '../images/image-errors';
import { openImage } from '../images/open-image';

/** Row-major, one byte per pixel (0 = black ink, 255 = white paper). */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Decodes an image into grey (upright per EXIF, transparency flattened onto white). A file goes through `openImage`
 * (pixel limit, SVG from memory, HEIC refused, first frame only; failures are clear, non-retryable and named by
 * `what`); a buffer is an image the job made itself.
 */
export async function readGray(
  input: string | Buffer,
  options: { maxPixels?: number; what?: string } = {},
): Promise<GrayImage> {
  const toGray = async (image: sharp.Sharp): Promise<GrayImage> => {
    const { data, info } = await image
      .rotate()
      .flatten({ background: '#ffffff' })
      .grayscale()
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  };
  if (typeof input !== 'string') {
    return toGray(sharp(input, { limitInputPixels: options.maxPixels ?? maxInputPixels(), failOn: 'error' }));
  }
  const opened = await openImage(input, options.what, options);
  try {
    return await toGray(opened.image);
  } catch (err) {
    throw opened.failure(err);
  }
}

/** A sharp pipeline over a grey raster (for resizing, filtering and encoding). */
export function grayToSharp(image: GrayImage): sharp.Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 1 } });
}
