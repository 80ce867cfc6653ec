/**
 * Evaluation metrics for depth probes.
 *
 * The structural-probes code of Hewitt & Manning (2019) reports two numbers for a depth probe, and
 * Li, Yin & Lin (2023) add a third:
 *
 * - DSpr. (`depthSpearman`): the Spearman rank correlation between the predicted and gold depths of
 *   each sentence's words, averaged first within each sentence length and then across the lengths
 *   5..50 that occur. Averaging per length first keeps the many short sentences from dominating.
 * - Root accuracy (`rootAccuracy`): how often the word with the smallest predicted depth is the gold
 *   root. Like H&M we skip punctuation (any excluded word) when picking that word.
 * - MSE (`mse`): the paper measures how tree-like a submodule's norms are by the mean squared error
 *   between them and their tree labels (see labels.ts).
 *
 * Spearman's rho is util/stats.ts's (scipy.stats.spearmanr: average ranks for ties); a sentence with a
 * constant prediction has an undefined (NaN) rho rather than an error, since a constant prediction is a
 * legitimate (if poor) probe output.
 */
import { check } from '../util/errors.js';
import { mean, spearman } from '../util/stats.js';

/**
 * Mean squared error between `pred` and `target` over the positions where `mask` is nonzero (all
 * positions without a mask). Masked-out positions are skipped, not multiplied by 0, so whatever they
 * hold (padding garbage, even NaN) cannot leak into the result. Throws when the lengths differ or when
 * no position is selected, rather than returning 0/0.
 */
export function mse(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  mask?: ArrayLike<number | boolean>,
): number {
  check(pred.length === target.length, () => `mse: pred has ${pred.length} entries but target has ${target.length}`);
  check(
    mask === undefined || mask.length === pred.length,
    () => `mse: mask has ${mask!.length} entries but pred has ${pred.length}`,
  );
  let s = 0;
  let count = 0;
  for (let i = 0; i < pred.length; i++) {
    if (mask !== undefined && !mask[i]) continue;
    const d = pred[i]! - target[i]!;
    s += d * d;
    count++;
  }
  check(count > 0, mask === undefined ? 'mse: pred and target are empty' : 'mse: mask selects no position');
  return s / count;
}

export interface DepthSpearmanResult {
  /** The mean over sentence lengths in range of the per-length mean Spearman; NaN if none in range. */
  value: number;
  /** Per sentence length in range (ascending), the mean Spearman of the sentences of that length. */
  perLength: Map<number, number>;
  /** How many sentences were in range and counted. */
  sentences: number;
}

/**
 * H&M's DSpr.: per sentence, Spearman's rho between predicted and gold depths over its words; then the
 * mean within each sentence length; then the mean of those per-length means over the lengths in
 * [minLength, maxLength] (inclusive, default 5..50) that occur. A sentence whose prediction is constant
 * has an undefined rho (NaN), and, as in H&M's numpy code, that NaN carries into its length's mean and
 * the overall value rather than being silently dropped.
 */
export function depthSpearman(
  sentences: ReadonlyArray<{ pred: ArrayLike<number>; gold: ArrayLike<number> }>,
  opts: { minLength?: number; maxLength?: number } = {},
): DepthSpearmanResult {
  const minLength = opts.minLength ?? 5;
  const maxLength = opts.maxLength ?? 50;
  check(Number.isInteger(minLength) && minLength >= 1, () => `depthSpearman: minLength must be a positive integer, got ${minLength}`);
  check(
    Number.isInteger(maxLength) && maxLength >= minLength,
    () => `depthSpearman: maxLength must be an integer >= minLength (${minLength}), got ${maxLength}`,
  );

  const byLength = new Map<number, number[]>();
  sentences.forEach((s, i) => {
    check(
      s.pred.length === s.gold.length,
      () => `depthSpearman: sentences[${i}] has ${s.pred.length} predicted depths but ${s.gold.length} gold depths`,
    );
    const n = s.pred.length;
    if (n < minLength || n > maxLength) return;
    const rho = spearman(s.pred, s.gold);
    const list = byLength.get(n);
    if (list) list.push(rho);
    else byLength.set(n, [rho]);
  });

  const perLength = new Map<number, number>();
  let counted = 0;
  for (const n of [...byLength.keys()].sort((x, y) => x - y)) {
    const rhos = byLength.get(n)!;
    perLength.set(n, mean(rhos));
    counted += rhos.length;
  }
  return { value: mean([...perLength.values()]), perLength, sentences: counted };
}

/**
 * The fraction of sentences whose word with the smallest predicted depth is the gold root (a 0-based
 * word index). Excluded words (e.g. punctuation, as H&M do) are passed over; if every word is excluded
 * the plain smallest is used, as in H&M's code. Among equal smallest depths the first word wins. NaN
 * for an empty list of sentences.
 */
export function rootAccuracy(
  sentences: ReadonlyArray<{ pred: ArrayLike<number>; goldRoot: number; exclude?: ArrayLike<boolean> }>,
): number {
  if (sentences.length === 0) return NaN;
  let correct = 0;
  sentences.forEach((s, i) => {
    const n = s.pred.length;
    check(n > 0, () => `rootAccuracy: sentences[${i}] has no words`);
    check(
      Number.isInteger(s.goldRoot) && s.goldRoot >= 0 && s.goldRoot < n,
      () => `rootAccuracy: sentences[${i}].goldRoot must be a word index in 0..${n - 1}, got ${s.goldRoot}`,
    );
    check(
      s.exclude === undefined || s.exclude.length === n,
      () => `rootAccuracy: sentences[${i}].exclude has ${s.exclude!.length} entries but pred has ${n}`,
    );
    for (let w = 0; w < n; w++) {
      check(!Number.isNaN(s.pred[w]), () => `rootAccuracy: sentences[${i}].pred[${w}] is NaN`);
    }
    let best = argminWhere(s.pred, (w) => !s.exclude?.[w]);
    if (best < 0) best = argminWhere(s.pred, () => true);
    if (best === s.goldRoot) correct++;
  });
  return correct / sentences.length;
}

/** The first index of the smallest value among the indices `keep` accepts; -1 if it accepts none. */
function argminWhere(xs: ArrayLike<number>, keep: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i < xs.length; i++) {
    if (keep(i) && (best < 0 || xs[i]! < xs[best]!)) best = i;
  }
  return best;
}
