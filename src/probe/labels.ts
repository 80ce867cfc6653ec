/**
 * Tree labels: turning a probe's predicted norms into depths a tree could have.
 *
 * A tree topological probe (Li, Yin & Lin 2023) maps each token's hidden state to a scalar, its
 * "norm", which should behave like the token's depth in the sentence's dependency tree. Any rooted
 * tree's depths have a simple shape: exactly one word (the root) sits at depth 1, and the depths that
 * occur form an unbroken range 1..K (a word at depth d+1 needs a parent at depth d). We call integer
 * labels with that shape *tree-consistent*. The paper scores a submodule by how far its norms are from
 * the nearest such labels, and fine-tunes with those labels as targets, so the operator that picks the
 * labels matters.
 *
 * Three operators live here, all working per sentence:
 *
 * - `ssp`: the authors' greedy operator (X_ssp). Sort the positions by norm, ascending, keeping
 *   position order among equal norms. The smallest gets 1, the next 2. Walking on in sorted order, each
 *   norm x either keeps the previous label L or takes L + 1: it keeps L when |x - L| < |L + 1 - x| and
 *   rises otherwise (so a norm exactly halfway rises). Labels can only climb by one per step, so a huge
 *   gap in the norms still costs just one level.
 * - `essp`: the same labels read with the positions reversed, out[i] = ssp[n - 1 - i] (X_essp).
 * - `exact`: the least-squares projection of the norms onto tree-consistent labels, i.e. the labels
 *   minimising sum_i (x_i - l_i)^2. By the rearrangement inequality an optimal labelling gives labels
 *   that never decrease along the sorted norms, and a non-decreasing tree-consistent sequence is exactly
 *   one with l_1 = 1, l_2 = 2 and each later label equal to its predecessor or one more. Dynamic
 *   programming over the sorted norms with the current label as state finds it in O(n^2).
 *
 * The greedy operator only looks one step ahead, so it can be worse than `exact`; `greedyGap` reports
 * both squared errors so the difference can be measured.
 *
 * Batched versions work on flat row-major [batch, seqLen] arrays with a 0/1 mask of the positions that
 * take part (the probe's clean mode masks out [CLS], [SEP] and padding; the paper's mode passes an
 * all-ones mask over the padded length).
 */
import { check } from '../util/errors.js';

/** Which label operator: the paper's greedy `ssp`, its reversal `essp`, or the least-squares `exact`. */
export type LabelVariant = 'ssp' | 'essp' | 'exact';

const VARIANTS: readonly LabelVariant[] = ['ssp', 'essp', 'exact'];

/**
 * Tree-consistent labels for one sentence's norms (see the module comment for the three variants).
 * Norms must be finite numbers; an empty input gives [] and a single norm gives [1].
 *
 * `exact` breaks ties deterministically: among equal norms the earlier position never gets the higher
 * label (the stable sort), and among label sequences of equal cost it returns the pointwise highest
 * one. The optimal sequences are closed under pointwise max (the cost is a sum over positions), so that
 * sequence exists and is itself optimal; it matches `ssp`'s rule that a norm exactly halfway rises.
 * Costs within a relative 1e-12 of each other count as equal, so rounding cannot split a true tie.
 */
export function treeLabels(norms: ArrayLike<number>, variant: LabelVariant = 'ssp'): number[] {
  check(VARIANTS.includes(variant), () => `treeLabels: variant must be one of ${VARIANTS.join(', ')}, got ${String(variant)}`);
  for (let i = 0; i < norms.length; i++) {
    check(Number.isFinite(norms[i]), () => `treeLabels: norms[${i}] is ${norms[i]}; norms must be finite numbers`);
  }
  return labelsUnchecked(norms, variant);
}

/** Whether `labels` could be a tree's depths: integers, exactly one 1, and the values present are 1..K. */
export function isTreeConsistent(labels: ArrayLike<number>): boolean {
  const n = labels.length;
  if (n === 0) return false; // no root
  const seen = new Uint8Array(n + 1); // a valid label is at most n
  let ones = 0;
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (!Number.isInteger(l) || l < 1 || l > n) return false;
    if (l === 1) ones++;
    seen[l] = 1;
  }
  if (ones !== 1) return false;
  let max = 0;
  while (max < n && seen[max + 1]) max++;
  for (let l = max + 1; l <= n; l++) if (seen[l]) return false; // a gap below l
  return true;
}

/** The summed (not averaged) squared error sum_i (norms_i - labels_i)^2. */
export function squaredError(norms: ArrayLike<number>, labels: ArrayLike<number>): number {
  check(
    norms.length === labels.length,
    () => `squaredError: norms has ${norms.length} entries but labels has ${labels.length}`,
  );
  let s = 0;
  for (let i = 0; i < norms.length; i++) {
    const d = norms[i]! - labels[i]!;
    s += d * d;
  }
  return s;
}

/**
 * Labels for each row of a flat row-major [batch, seqLen] array of norms, computed over the positions
 * where `mask` is 1 (in position order) and written back at those positions; every other position gets
 * 0. Norms at masked-out positions are never read, so padding may hold anything. `essp` reverses
 * among the masked positions of each row.
 */
export function treeLabelsBatch(
  norms: ArrayLike<number>,
  mask: ArrayLike<number>,
  batch: number,
  seqLen: number,
  variant: LabelVariant = 'ssp',
): Float32Array {
  check(Number.isInteger(batch) && batch >= 0, () => `treeLabelsBatch: batch must be a non-negative integer, got ${batch}`);
  check(Number.isInteger(seqLen) && seqLen >= 0, () => `treeLabelsBatch: seqLen must be a non-negative integer, got ${seqLen}`);
  check(
    norms.length === batch * seqLen,
    () => `treeLabelsBatch: norms has ${norms.length} entries, expected batch * seqLen = ${batch} * ${seqLen}`,
  );
  check(
    mask.length === batch * seqLen,
    () => `treeLabelsBatch: mask has ${mask.length} entries, expected batch * seqLen = ${batch} * ${seqLen}`,
  );
  check(VARIANTS.includes(variant), () => `treeLabelsBatch: variant must be one of ${VARIANTS.join(', ')}, got ${String(variant)}`);

  const out = new Float32Array(batch * seqLen);
  const positions: number[] = [];
  const rowNorms: number[] = [];
  for (let b = 0; b < batch; b++) {
    positions.length = 0;
    rowNorms.length = 0;
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      const m = mask[i];
      check(m === 0 || m === 1, () => `treeLabelsBatch: mask[row ${b}, position ${t}] is ${m}; mask values must be 0 or 1`);
      if (m === 0) continue;
      const x = norms[i]!;
      check(Number.isFinite(x), () => `treeLabelsBatch: norms[row ${b}, position ${t}] is ${x}; norms must be finite numbers`);
      positions.push(i);
      rowNorms.push(x);
    }
    const labels = labelsUnchecked(rowNorms, variant);
    for (let k = 0; k < positions.length; k++) out[positions[k]!] = labels[k]!;
  }
  return out;
}

/**
 * The squared errors of the paper's greedy labels and of the least-squares labels for the same norms,
 * so the README can say how far the greedy operator is from the optimum. `greedy >= exact` always.
 */
export function greedyGap(norms: ArrayLike<number>): { greedy: number; exact: number } {
  return {
    greedy: squaredError(norms, treeLabels(norms, 'ssp')),
    exact: squaredError(norms, treeLabels(norms, 'exact')),
  };
}

// ---------------------------------------------------------------------------------------------------

/** The variants on already validated norms. */
function labelsUnchecked(norms: ArrayLike<number>, variant: LabelVariant): number[] {
  const n = norms.length;
  const order = sortedOrder(norms);
  const sorted = order.map((i) => norms[i]!);
  const sortedLabels = variant === 'exact' ? exactSorted(sorted) : greedySorted(sorted);

  const byPosition = new Array<number>(n);
  for (let k = 0; k < n; k++) byPosition[order[k]!] = sortedLabels[k]!;
  if (variant === 'essp') byPosition.reverse();
  return byPosition;
}

/** Positions sorted by norm ascending; equal norms keep position order (Array.prototype.sort is stable). */
function sortedOrder(norms: ArrayLike<number>): number[] {
  return Array.from({ length: norms.length }, (_, i) => i).sort((a, b) => norms[a]! - norms[b]!);
}

/** The paper's greedy rule on ascending norms: 1, 2, then keep L while strictly nearer than L + 1. */
function greedySorted(sorted: readonly number[]): number[] {
  const labels: number[] = [];
  for (let k = 0; k < sorted.length; k++) {
    if (k < 2) {
      labels.push(k + 1);
      continue;
    }
    const x = sorted[k]!;
    const L = labels[k - 1]!;
    labels.push(Math.abs(x - L) < Math.abs(L + 1 - x) ? L : L + 1);
  }
  return labels;
}

/** Whether two costs are equal up to rounding (relative 1e-12); an infinite cost ties only itself. */
function tied(a: number, b: number): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * The least-squares non-decreasing labels on ascending norms: l_1 = 1, l_2 = 2, l_k in {l_{k-1},
 * l_{k-1} + 1}. cost[L] after step k is the least squared error of the first k + 1 norms with the last
 * one labelled L (labels 2..k+1 are reachable at step k >= 1). `rose[k][L]` records whether the best
 * way to reach L at step k came from L - 1. Ties go to the higher label: the highest final label among
 * the optimal ones, and, walking back, the predecessor that keeps the label. That yields the pointwise
 * highest optimal sequence (see treeLabels).
 */
function exactSorted(sorted: readonly number[]): number[] {
  const n = sorted.length;
  if (n <= 2) return sorted.map((_, k) => k + 1);

  const sq = (x: number, l: number): number => (x - l) * (x - l);
  // cost[L] for L in 0..n+1; only 2..k+1 are meaningful at step k.
  let cost = new Float64Array(n + 2).fill(Infinity);
  let next = new Float64Array(n + 2);
  cost[2] = sq(sorted[0]!, 1) + sq(sorted[1]!, 2);
  const rose: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0)];

  for (let k = 2; k < n; k++) {
    const x = sorted[k]!;
    const r = new Uint8Array(k + 2);
    next.fill(Infinity);
    for (let L = 2; L <= k + 1; L++) {
      const keep = L <= k ? cost[L]! : Infinity; // previous label L, reachable if L <= k
      const rise = L - 1 >= 2 ? cost[L - 1]! : Infinity; // previous label L - 1
      const keepWins = keep < rise || tied(keep, rise);
      next[L] = (keepWins ? keep : rise) + sq(x, L);
      r[L] = keepWins ? 0 : 1;
    }
    rose.push(r);
    [cost, next] = [next, cost];
  }

  // The highest final label whose cost ties the minimum.
  let best = Infinity;
  for (let L = 2; L <= n; L++) best = Math.min(best, cost[L]!);
  let L = n;
  while (!tied(cost[L]!, best)) L--;

  const labels = new Array<number>(n);
  for (let k = n - 1; k >= 2; k--) {
    labels[k] = L;
    if (rose[k]![L]) L--;
  }
  labels[1] = 2;
  labels[0] = 1;
  return labels;
}
