/**
 * A held-out part of a training split, for choosing recipes and settings without touching the evaluation
 * set that gets reported (`data.holdout` in a train config; `data.eval_split: holdout` evaluates on it).
 *
 * The split is a shuffle with a fixed salt, not the run's seed: every run of every seed and recipe holds
 * out the same examples, so runs compared on the held-out part were never trained on any of it.
 */
import { check } from '../util/errors.js';
import { Rng } from '../util/random.js';

/** The shuffle's seed; fixed so that the held-out examples do not depend on the run. */
export const HOLDOUT_SALT = 0x5eed_4011;

/**
 * Splits example indices 0..n-1: round(n * fraction) of them held out, chosen by a shuffle seeded with
 * HOLDOUT_SALT; both lists ascending. A fraction must lie strictly between 0 and 1 and leave at least one
 * example on each side.
 */
export function holdoutSplit(n: number, fraction: number, field = 'data.holdout'): { train: number[]; holdout: number[] } {
  check(Number.isInteger(n) && n >= 0, () => `holdoutSplit: n must be a non-negative integer, got ${n}`);
  check(Number.isFinite(fraction) && fraction > 0 && fraction < 1, () => `${field}: must be a fraction strictly between 0 and 1, got ${fraction}`);
  const size = Math.round(n * fraction);
  check(size >= 1 && size < n, () => `${field}: ${fraction} of ${n} examples leaves ${size} held out and ${n - size} to train on; both need at least one`);
  const held = new Set(new Rng(HOLDOUT_SALT).shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, size));
  const train: number[] = [];
  const holdout: number[] = [];
  for (let i = 0; i < n; i++) (held.has(i) ? holdout : train).push(i);
  return { train, holdout };
}
