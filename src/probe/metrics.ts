/**
 * Evaluation metrics for depth and distance probes.
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
 * For a distance probe H&M report two more (see their doc comments): UUAS (`uuas`), how many of the gold
 * tree's edges the minimum spanning tree of the predicted distances recovers, and a distance Spearman
 * (`distanceSpearman`), averaged per sentence length as DSpr. is.
 *
 * Spearman's rho is util/stats.ts's (scipy.stats.spearmanr: average ranks for ties); a sentence with a
 * constant prediction has an undefined (NaN) rho rather than an error, since a constant prediction is a
 * legitimate (if poor) probe output.
 */
import { check } from '../util/errors.js';
import { mean, spearman } from '../util/stats.js';
import { minimumSpanningTree } from './tree.js';

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
  const { minLength, maxLength } = lengthRange('depthSpearman', opts);
  const byLength = new Map<number, number[]>();
  const counts = new Map<number, number>();
  sentences.forEach((s, i) => {
    check(
      s.pred.length === s.gold.length,
      () => `depthSpearman: sentences[${i}] has ${s.pred.length} predicted depths but ${s.gold.length} gold depths`,
    );
    const n = s.pred.length;
    if (n < minLength || n > maxLength) return;
    addToLength(byLength, counts, n, [spearman(s.pred, s.gold)]);
  });
  return averageByLength(byLength, counts);
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

/**
 * H&M's UUAS (undirected unlabeled attachment score) for a distance probe, as structural-probes'
 * `report_uuas_and_tikz` computes it: per sentence, the gold edges are the minimum spanning tree of the
 * gold distance matrix and the predicted edges that of the predicted matrix, both over the words that
 * are not excluded (H&M exclude punctuation, whose pairs they never look at); `correct` counts the gold
 * edges that are also predicted (undirected) and `total` the gold edges, summed over all sentences (a
 * sentence of k kept words has k - 1 of them); `value` is correct / total, NaN when total is 0. Every
 * sentence counts, whatever its length. The trees are tree.ts's `minimumSpanningTree` (the weight of a
 * pair is the smaller of its two entries; ties broken as H&M's sort breaks them on symmetric matrices).
 *
 * The gold matrix is usually `goldDistances` of the full sentence, so with an internal punctuation word
 * left out the gold tree over the rest is the spanning tree of those tree distances, not the dependency
 * tree itself, exactly as in H&M's code. Throws on a matrix that is not n x n, an `exclude` of the wrong
 * length, or a NaN between two kept words, naming the sentence.
 */
export function uuas(
  sentences: ReadonlyArray<{
    pred: ReadonlyArray<ArrayLike<number>>;
    gold: ReadonlyArray<ArrayLike<number>>;
    exclude?: ArrayLike<boolean>;
  }>,
): { value: number; correct: number; total: number } {
  let correct = 0;
  let total = 0;
  sentences.forEach((s, i) => {
    const n = s.gold.length;
    checkSquare('uuas', `sentences[${i}].gold`, s.gold, n);
    checkSquare('uuas', `sentences[${i}].pred`, s.pred, n);
    check(
      s.exclude === undefined || s.exclude.length === n,
      () => `uuas: sentences[${i}].exclude has ${s.exclude!.length} entries but the sentence has ${n} words`,
    );
    const keep = Array.from({ length: n }, (_, w) => !s.exclude?.[w]);
    for (const [what, m] of [['gold', s.gold], ['pred', s.pred]] as const) {
      for (let a = 0; a < n; a++) {
        if (!keep[a]) continue;
        for (let b = 0; b < n; b++) {
          check(
            a === b || !keep[b] || !Number.isNaN(m[a]![b]),
            () => `uuas: sentences[${i}].${what}[${a}][${b}] is NaN`,
          );
        }
      }
    }
    const goldEdges = minimumSpanningTree(s.gold, keep);
    const predicted = new Set(minimumSpanningTree(s.pred, keep).map(([a, b]) => a * n + b));
    for (const [a, b] of goldEdges) if (predicted.has(a * n + b)) correct++;
    total += goldEdges.length;
  });
  return { value: total === 0 ? NaN : correct / total, correct, total };
}

/**
 * H&M's distance Spearman (DSpr. for the distance probe), as structural-probes' `report_spearmanr`
 * computes it for distances: for each sentence of n words and each word i, Spearman's rho between row i
 * of the predicted matrix and row i of the gold one, over all n entries (the zero distance of the word to
 * itself included, and punctuation not left out); all the rows of all the sentences of length n pooled
 * into one list for length n and averaged; then the mean of those per-length means over the lengths in
 * [minLength, maxLength] (inclusive, default 5..50) that occur. Since every sentence of length n adds n
 * rows, a length's mean is also the mean of its sentences' mean rho. A constant row (in either matrix)
 * has an undefined rho (NaN), which carries into its length's mean and the overall value as in
 * depthSpearman. `sentences` in the result counts the sentences in range. Throws on a matrix that is not
 * n x n or a NaN entry in a sentence in range, naming the sentence, and on a bad range.
 */
export function distanceSpearman(
  sentences: ReadonlyArray<{ pred: ReadonlyArray<ArrayLike<number>>; gold: ReadonlyArray<ArrayLike<number>> }>,
  opts: { minLength?: number; maxLength?: number } = {},
): DepthSpearmanResult {
  const { minLength, maxLength } = lengthRange('distanceSpearman', opts);
  const byLength = new Map<number, number[]>();
  const counts = new Map<number, number>();
  sentences.forEach((s, i) => {
    const n = s.gold.length;
    checkSquare('distanceSpearman', `sentences[${i}].gold`, s.gold, n);
    checkSquare('distanceSpearman', `sentences[${i}].pred`, s.pred, n);
    if (n < minLength || n > maxLength) return;
    for (const [what, m] of [['gold', s.gold], ['pred', s.pred]] as const) {
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          check(!Number.isNaN(m[a]![b]), () => `distanceSpearman: sentences[${i}].${what}[${a}][${b}] is NaN`);
        }
      }
    }
    addToLength(byLength, counts, n, Array.from({ length: n }, (_, w) => spearman(s.pred[w]!, s.gold[w]!)));
  });
  return averageByLength(byLength, counts);
}

/** Adds one sentence of length n (its rhos: one, or one per row) to the per-length pools. */
function addToLength(byLength: Map<number, number[]>, counts: Map<number, number>, n: number, rhos: readonly number[]): void {
  const list = byLength.get(n);
  if (list) list.push(...rhos);
  else byLength.set(n, [...rhos]);
  counts.set(n, (counts.get(n) ?? 0) + 1);
}

/** The mean per length (ascending), the mean of those means, and the number of sentences pooled. */
function averageByLength(byLength: Map<number, number[]>, counts: Map<number, number>): DepthSpearmanResult {
  const perLength = new Map<number, number>();
  let counted = 0;
  for (const n of [...byLength.keys()].sort((x, y) => x - y)) {
    perLength.set(n, mean(byLength.get(n)!));
    counted += counts.get(n)!;
  }
  return { value: mean([...perLength.values()]), perLength, sentences: counted };
}

/** The [minLength, maxLength] range of the Spearman metrics (default 5..50), checked as depthSpearman checks it. */
function lengthRange(fn: string, opts: { minLength?: number; maxLength?: number }): { minLength: number; maxLength: number } {
  const minLength = opts.minLength ?? 5;
  const maxLength = opts.maxLength ?? 50;
  check(Number.isInteger(minLength) && minLength >= 1, () => `${fn}: minLength must be a positive integer, got ${minLength}`);
  check(
    Number.isInteger(maxLength) && maxLength >= minLength,
    () => `${fn}: maxLength must be an integer >= minLength (${minLength}), got ${maxLength}`,
  );
  return { minLength, maxLength };
}

/** Checks that `m` is an n x n matrix (n rows, each of n entries). */
function checkSquare(fn: string, what: string, m: ReadonlyArray<ArrayLike<number>>, n: number): void {
  check(m.length === n, () => `${fn}: ${what} has ${m.length} rows but the gold matrix has ${n}`);
  for (let r = 0; r < n; r++) {
    const row = m[r];
    check(
      row !== undefined && row !== null && row.length === n,
      () => `${fn}: ${what}[${r}] has ${row?.length ?? 'no'} entries; an n x n matrix needs ${n} (n = ${n})`,
    );
  }
}
