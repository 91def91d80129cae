/**
 * A small seeded PRNG (mulberry32, state advanced by splitmix-style constants). Training must be reproducible
 * from a seed, and Math.random cannot be seeded.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = mixSeed(seed);
  }

  /** Uniform in [0, 1), 32 bits of randomness. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /** An independent stream for sub-task `k` (e.g. tree k), so that streams do not depend on each other's use. */
  fork(k: number): Prng {
    return new Prng((this.next() * 4294967296) ^ Math.imul(k + 1, 0x9e3779b1));
  }
}

/** Spreads nearby seeds (0, 1, 2, ...) over the whole 32-bit state space. */
function mixSeed(seed: number): number {
  let z = (Math.trunc(seed) ^ 0x5bd1e995) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}
