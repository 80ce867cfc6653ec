/**
 * GLUE task metrics, as the GLUE benchmark reports them and as the Hugging Face `glue` metric
 * computes them with scikit-learn and scipy. Which metrics a task reports, and which one selects models,
 * is the task registry's (src/data/glue.ts).
 *
 * Every function here takes the predictions and gold labels of the WHOLE evaluation set. MCC, F1 and
 * the correlations are not means over examples, so averaging per-batch values gives a different,
 * wrong number (and even accuracy comes out wrong when the last batch is short); callers must
 * concatenate the batches' predictions first.
 *
 * Conventions, decided once here:
 * - Inputs are `pred` first, `gold` second; the lengths must match and the set must not be empty
 *   (both throw a TopoprobeError naming the function).
 * - Classification predictions and labels are class ids: non-negative integers. MCC and F1 are for
 *   binary tasks and accept only 0 and 1, with 1 the positive class.
 * - MCC is 0 when its denominator is 0 (some row or column of the confusion matrix is empty, e.g. every
 *   prediction is one class), as scikit-learn's `matthews_corrcoef` returns, never NaN.
 * - F1 follows scikit-learn's `f1_score(average='binary', zero_division=0)`: 2TP / (2TP + FP + FN),
 *   and 0 when there are no predicted and no true positives (that fraction is 0/0).
 * - Pearson and Spearman (STS-B) are NaN when undefined (fewer than two examples, or constant
 *   predictions or labels), as scipy gives; `taskMetrics` reports such a value as null so that a
 *   report never carries a NaN that JSON would turn into null silently or a comparison would
 *   mis-order. Regression predictions must be finite: a NaN or infinite prediction (a diverged model)
 *   throws rather than being reported as an undefined correlation.
 */
import { check } from '../util/errors.js';
import { mean, pearson, spearman } from '../util/stats.js';
import { GLUE_TASKS, glueTaskInfo, isGlueTask, type GlueTask, type TaskMetricName } from '../data/glue.js';

export type { TaskMetricName };

/** The model-selection metric of a task (its registry entry's `primary`, see src/data/glue.ts). */
export function primaryMetric(task: GlueTask): TaskMetricName {
  checkTask(task, 'primaryMetric');
  return glueTaskInfo(task).primary;
}

/** Whether a larger value of `metric` is better. True for every metric here; compare with this. */
export function higherIsBetter(metric: TaskMetricName): boolean {
  check(
    (['mcc', 'accuracy', 'f1', 'pearson', 'spearman'] as const).includes(metric),
    () => `higherIsBetter: unknown metric ${JSON.stringify(metric)}`,
  );
  return true;
}

/**
 * GLUE's metrics for `task` over the whole evaluation set: cola {mcc}; mrpc, qqp {accuracy, f1};
 * stsb {pearson, spearman}; every other task {accuracy}. An undefined value (a correlation of a
 * constant prediction) is null, never NaN. For the classification tasks predictions and labels are
 * class ids (argmax of the logits); for STS-B they are the real-valued similarity scores.
 */
export function taskMetrics(
  task: GlueTask,
  predictions: readonly number[],
  labels: readonly number[],
): Record<string, number | null> {
  checkTask(task, 'taskMetrics');
  checkPair(predictions, labels, `taskMetrics(${task})`);
  const out: Record<string, number | null> = {};
  for (const name of glueTaskInfo(task).metrics) {
    const value = METRIC_FNS[name](predictions, labels);
    out[name] = Number.isNaN(value) ? null : value;
  }
  return out;
}

const METRIC_FNS: Readonly<Record<TaskMetricName, (pred: readonly number[], gold: readonly number[]) => number>> = {
  mcc: matthewsCorrelation,
  accuracy,
  f1,
  pearson: pearsonCorrelation,
  spearman: spearmanCorrelation,
};

/**
 * Whether every prediction is the same value: a constant predictor (for classification, one class
 * for every example), which comparison code flags since its accuracy only reflects the label balance,
 * its MCC is 0 and its correlations undefined. True for a single prediction; throws on an empty list
 * or a NaN.
 */
export function isCollapsed(predictions: readonly number[]): boolean {
  check(predictions.length > 0, 'isCollapsed: predictions is empty');
  for (let i = 0; i < predictions.length; i++) {
    check(!Number.isNaN(predictions[i]), () => `isCollapsed: predictions[${i}] is NaN`);
  }
  return predictions.every((p) => p === predictions[0]);
}

/** The fraction of examples whose predicted class id equals the gold one. */
export function accuracy(pred: readonly number[], gold: readonly number[]): number {
  checkPair(pred, gold, 'accuracy');
  checkClassIds(pred, 'accuracy', 'pred');
  checkClassIds(gold, 'accuracy', 'gold');
  return mean(pred.map((p, i) => (p === gold[i] ? 1 : 0)));
}

/**
 * Matthews correlation coefficient for binary 0/1 labels:
 *   (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)),
 * and 0 when the denominator is 0 (as scikit-learn), so an all-one-class prediction scores 0.
 */
export function matthewsCorrelation(pred: readonly number[], gold: readonly number[]): number {
  const { tp, tn, fp, fn } = confusion(pred, gold, 'matthewsCorrelation');
  // Two square roots rather than one of the whole product keep huge counts far from overflow.
  const denom = Math.sqrt((tp + fp) * (tp + fn)) * Math.sqrt((tn + fp) * (tn + fn));
  if (denom === 0) return 0;
  return Math.max(-1, Math.min(1, (tp * tn - fp * fn) / denom));
}

/**
 * Binary F1 of the positive class 1: 2TP / (2TP + FP + FN), the harmonic mean of precision and
 * recall. Following scikit-learn's zero_division=0, it is 0 when there are no predicted and no true
 * positives (and, as the formula gives anyway, 0 whenever TP = 0).
 */
export function f1(pred: readonly number[], gold: readonly number[]): number {
  const { tp, fp, fn } = confusion(pred, gold, 'f1');
  const denom = 2 * tp + fp + fn;
  return denom === 0 ? 0 : (2 * tp) / denom;
}

/** Pearson's r between predicted and gold scores; NaN when undefined (n < 2 or a constant input). */
export function pearsonCorrelation(pred: readonly number[], gold: readonly number[]): number {
  checkPair(pred, gold, 'pearsonCorrelation');
  checkFinite(pred, 'pearsonCorrelation', 'pred');
  checkFinite(gold, 'pearsonCorrelation', 'gold');
  return pearson(pred, gold);
}

/**
 * Spearman's rho (Pearson of the average ranks, ties averaged, as scipy.stats.spearmanr) between
 * predicted and gold scores; NaN when undefined (n < 2 or a constant input).
 */
export function spearmanCorrelation(pred: readonly number[], gold: readonly number[]): number {
  checkPair(pred, gold, 'spearmanCorrelation');
  checkFinite(pred, 'spearmanCorrelation', 'pred');
  checkFinite(gold, 'spearmanCorrelation', 'gold');
  return spearman(pred, gold);
}

interface Confusion {
  tp: number;
  tn: number;
  fp: number;
  fn: number;
}

function confusion(pred: readonly number[], gold: readonly number[], fn: string): Confusion {
  checkPair(pred, gold, fn);
  checkBinary(pred, fn, 'pred');
  checkBinary(gold, fn, 'gold');
  const c: Confusion = { tp: 0, tn: 0, fp: 0, fn: 0 };
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === 1) {
      if (gold[i] === 1) c.tp++;
      else c.fp++;
    } else if (gold[i] === 1) c.fn++;
    else c.tn++;
  }
  return c;
}

function checkTask(task: string, fn: string): void {
  check(
    isGlueTask(task),
    () => `${fn}: unknown GLUE task ${JSON.stringify(task)} (known: ${GLUE_TASKS.join(', ')})`,
  );
}

function checkPair(pred: readonly number[], gold: readonly number[], fn: string): void {
  check(
    pred.length === gold.length,
    () => `${fn}: predictions have ${pred.length} entries but labels have ${gold.length}`,
  );
  check(pred.length > 0, () => `${fn}: the evaluation set is empty`);
}

function checkBinary(xs: readonly number[], fn: string, what: string): void {
  for (let i = 0; i < xs.length; i++) {
    check(xs[i] === 0 || xs[i] === 1, () => `${fn}: ${what}[${i}] must be a binary label 0 or 1, got ${xs[i]}`);
  }
}

function checkClassIds(xs: readonly number[], fn: string, what: string): void {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    check(Number.isInteger(x) && x >= 0, () => `${fn}: ${what}[${i}] must be a class id (a non-negative integer), got ${x}`);
  }
}

function checkFinite(xs: readonly number[], fn: string, what: string): void {
  for (let i = 0; i < xs.length; i++) {
    check(Number.isFinite(xs[i]), () => `${fn}: ${what}[${i}] must be a finite number, got ${xs[i]}`);
  }
}
