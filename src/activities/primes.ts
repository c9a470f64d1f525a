/**
 * Segmented sieve of Eratosthenes: primes in [from, to) with memory bounded by the segment, so a chunk of work is
 * independent of every other chunk (which is what makes resuming from a checkpoint exact).
 */

export interface PrimeRangeSummary {
  count: number;
  sum: bigint;
  /** Largest prime in the range, or 0 if none. */
  largest: number;
}

const basePrimeCache: { limit: number; primes: Uint32Array } = { limit: 1, primes: new Uint32Array(0) };

/** Primes up to `limit` (inclusive) by a plain sieve; cached because every segment needs them. */
function basePrimes(limit: number): Uint32Array {
  if (limit <= basePrimeCache.limit) return basePrimeCache.primes.filter((p) => p <= limit);
  const composite = new Uint8Array(limit + 1);
  const primes: number[] = [];
  for (let n = 2; n <= limit; n++) {
    if (composite[n]) continue;
    primes.push(n);
    for (let m = n * n; m <= limit; m += n) composite[m] = 1;
  }
  basePrimeCache.limit = limit;
  basePrimeCache.primes = Uint32Array.from(primes);
  return basePrimeCache.primes;
}

/** Counts, sums and finds the largest prime in [from, to). */
export function countPrimesInRange(from: number, to: number): PrimeRangeSummary {
  const start = Math.max(from, 2);
  if (to <= start) return { count: 0, sum: 0n, largest: 0 };
  const composite = new Uint8Array(to - start);
  for (const p of basePrimes(Math.floor(Math.sqrt(to - 1)))) {
    const first = Math.max(p * p, Math.ceil(start / p) * p);
    for (let m = first; m < to; m += p) composite[m - start] = 1;
  }
  let count = 0;
  let sum = 0; // Safe: a segment's sum stays far below 2^53 for the chunk sizes the schema allows.
  let largest = 0;
  for (let i = 0; i < composite.length; i++) {
    if (composite[i]) continue;
    count++;
    sum += start + i;
    largest = start + i;
  }
  return { count, sum: BigInt(sum), largest };
}
