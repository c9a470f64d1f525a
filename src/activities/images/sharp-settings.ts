/**
 * sharp's threading, set deliberately for small machines: one libvips thread per image (`sharp.concurrency`) and
 * several images in flight (the libuv pool, `UV_THREADPOOL_SIZE`, default 4), so that 2 cores stay busy without
 * every image fighting for them. Measured on a 2-core machine (the README's benchmark table has `npm run bench`'s
 * one-lane figure): a blur + brightness pipeline on a 2725×2225 photo runs at 2.2 images/s in one lane and 4.1–4.9
 * images/s in two. BACKROOM_SHARP_THREADS overrides.
 */
import sharp from 'sharp';

export function configureSharp(): void {
  const threads = Number(process.env.BACKROOM_SHARP_THREADS ?? 1);
  sharp.concurrency(Number.isInteger(threads) && threads > 0 ? threads : 1);
  // Batches read each file once: libvips' file cache would only hold descriptors open.
  sharp.cache({ files: 0 });
}
