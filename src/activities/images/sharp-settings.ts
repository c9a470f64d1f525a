/**
 * sharp's threading, set deliberately for small machines: one libvips thread per image (`sharp.concurrency`) and
 * several images in flight (the libuv pool, `UV_THREADPOOL_SIZE`, default 4), so that 2 cores stay busy without
 * every image fighting for them. Measured on a 2-core machine with blur(3) + brightness(1.3) + JPEG on the
 * 2725×2225 photo (`npm run bench -- restoration`), images/s: 1 thread × 1 image in flight 7.9, 1 × 2 12.2, 1 × 4
 * 12.4, 2 × 1 9.1, 2 × 2 11.3: one thread per image with two or more images in flight keeps both cores busiest.
 * BACKROOM_SHARP_THREADS overrides.
 */
import sharp from 'sharp';

export function configureSharp(): void {
  const threads = Number(process.env.BACKROOM_SHARP_THREADS ?? 1);
  sharp.concurrency(Number.isInteger(threads) && threads > 0 ? threads : 1);
  // Batches read each file once: libvips' file cache would only hold descriptors open.
  sharp.cache({ files: 0 });
}
