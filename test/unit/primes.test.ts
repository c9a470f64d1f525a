import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countPrimesInRange } from '../../src/activities/primes';

function naivePrimes(from: number, to: number): number[] {
  const primes: number[] = [];
  for (let n = Math.max(2, from); n < to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) primes.push(n);
  }
  return primes;
}

describe('countPrimesInRange', () => {
  for (const [from, to] of [
    [0, 2],
    [0, 3],
    [0, 100],
    [90, 200],
    [9_973, 10_007],
    [1_000_000, 1_010_000],
  ] as const) {
    it(`matches trial division on [${from}, ${to})`, () => {
      const expected = naivePrimes(from, to);
      const got = countPrimesInRange(from, to);
      assert.equal(got.count, expected.length);
      assert.equal(got.sum, BigInt(expected.reduce((a, b) => a + b, 0)));
      assert.equal(got.largest, expected.at(-1) ?? 0);
    });
  }

  it('adds up across segments to the whole range', () => {
    const whole = countPrimesInRange(0, 200_000);
    let count = 0;
    for (let start = 0; start < 200_000; start += 30_000)
      count += countPrimesInRange(start, Math.min(200_000, start + 30_000)).count;
    assert.equal(count, whole.count);
    assert.equal(whole.count, 17_984);
  });
});
