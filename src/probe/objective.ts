/**
 * The probe objective, defined once for probe training (`topoprobe measure`), X_ssp tracking and guided
 * fine-tuning: what a depth probe's predicted norms are compared with (its target), and the mean squared
 * error against it.
 *
 * Targets (the words configs use):
 * - `sp`         gold dependency depths (X_sp), fixed;
 * - `ssp`        the greedy tree labels of the probe's own current predictions (X_ssp), recomputed every
 *                step and carrying no gradient;
 * - `essp`       the same labels read in reversed position order (X_essp);
 * - `ssp-exact`, `essp-exact`: the least-squares tree-consistent labels instead of the greedy ones.
 *
 * The label operators themselves (greedy, reversed, exact) are pure functions in labels.ts. A measure
 * config chooses the operator for both tree metrics at once (`labels: greedy | exact`: `measureTarget`);
 * a guide names its target directly (`labels: ssp | essp | ssp-exact | essp-exact`; `exact` is read as
 * `ssp-exact`, its old spelling).
 */
import * as tf from '@tensorflow/tfjs';
import { treeLabels } from './labels.js';

export const TREE_TARGETS = ['ssp', 'essp', 'ssp-exact', 'essp-exact'] as const;
export type TreeTarget = (typeof TREE_TARGETS)[number];
export type Target = 'sp' | TreeTarget;

/** The measure config's choice of label operator for X_ssp and X_essp. */
export type LabelOperator = 'greedy' | 'exact';

/** The target a measured metric trains its probe towards. */
export function measureTarget(metric: 'x_sp' | 'x_ssp' | 'x_essp', operator: LabelOperator): Target {
  if (metric === 'x_sp') return 'sp';
  const base = metric === 'x_ssp' ? 'ssp' : 'essp';
  return operator === 'exact' ? `${base}-exact` : base;
}

/** The measured metric whose probe fits a target (the reversed targets are X_essp's). */
export function targetMetric(target: Target): 'x_sp' | 'x_ssp' | 'x_essp' {
  if (target === 'sp') return 'x_sp';
  return target === 'essp' || target === 'essp-exact' ? 'x_essp' : 'x_ssp';
}

/** The labels of one sentence's predictions under `target` (its gold depths for `sp`). */
export function targetLabels(target: Target, pred: ArrayLike<number>, gold?: ArrayLike<number>): ArrayLike<number> {
  if (target === 'sp') {
    if (!gold) throw new Error('supervised probe example without gold depths');
    return gold;
  }
  if (target === 'ssp' || target === 'essp') return treeLabels(pred, target);
  const exact = treeLabels(pred, 'exact');
  return target === 'ssp-exact' ? exact : exact.reverse();
}

/**
 * The labels of consecutive groups of predictions (one group per sentence, `groups[j]` positions long),
 * as one flat array; `gold[j]` is sentence j's gold depths for `sp`.
 */
export function groupLabels(target: Target, values: ArrayLike<number>, groups: readonly number[], gold?: ReadonlyArray<ArrayLike<number> | undefined>): Float32Array {
  const out = new Float32Array(values.length);
  let at = 0;
  groups.forEach((n, j) => {
    const sentence = Array.from({ length: n }, (_, k) => values[at + k]!);
    out.set(Array.from(targetLabels(target, sentence, gold?.[j])), at);
    at += n;
  });
  return out;
}

/**
 * The probe loss: the mean squared error between predictions `pred` (flat, grouped by sentence as in
 * `groupLabels`) and their labels, over all positions. Differentiable in `pred`; the labels are read
 * from its current values and carry no gradient.
 */
export function probeMse(pred: tf.Tensor1D, groups: readonly number[], target: Target, gold?: ReadonlyArray<ArrayLike<number> | undefined>): tf.Scalar {
  return labelMse(pred, groupLabels(target, pred.dataSync(), groups, gold));
}

/** The mean squared error between predictions and given labels (held fixed: no gradient reaches them). */
export function labelMse(pred: tf.Tensor1D, labels: Float32Array): tf.Scalar {
  if (pred.shape[0] !== labels.length) throw new Error(`labelMse: ${pred.shape[0]} predictions for ${labels.length} labels`);
  return tf.mean(tf.square(tf.sub(pred, tf.tensor1d(labels)))) as tf.Scalar;
}
