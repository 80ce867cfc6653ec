/**
 * One optimisation update, the same for every objective: the gradients of one or more micro-batches'
 * losses (summed, each loss divided by their number, so that k accumulated batches of b equal one batch
 * of k*b), then clipping by global norm and AdamW. The training loop (loop.ts) and the benchmark
 * (bench.ts) both run exactly this.
 */
import * as tf from '@tensorflow/tfjs';
import type { BertModel, BertInputs } from '../model/bert.js';
import { isRegression } from '../model/config.js';
import { taskLoss } from './loss.js';
import { type AdamW, clipFactor, globalNorm } from './optimizer.js';

/** One micro-batch's loss for the gradient and its named values to log; called inside the gradient tape. */
export type LossFn = () => { loss: tf.Scalar; terms: Record<string, number> };

/** Gradients of `lossFn` with respect to every trainable parameter, keyed by Hugging Face name. */
export function parameterGrads(
  params: Map<string, tf.Variable>,
  lossFn: () => tf.Scalar,
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const vars = [...params.values()].filter((v) => v.trainable);
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const byName: Record<string, tf.Tensor> = {};
  for (const [name, v] of params) {
    const g = grads[v.name];
    if (g) byName[name] = g;
  }
  return { value, grads: byName };
}

/** The summed gradients of the micro-batches' losses, each divided by their number, and their mean terms. */
export function accumulateGradients(params: Map<string, tf.Variable>, micro: readonly LossFn[]): { grads: Record<string, tf.Tensor>; terms: Record<string, number> } {
  let grads: Record<string, tf.Tensor> = {};
  const sums: Record<string, number> = {};
  micro.forEach((lossFn, i) => {
    const { value, grads: g } = parameterGrads(params, () => {
      const { loss, terms } = lossFn();
      for (const [k, v] of Object.entries(terms)) sums[k] = (sums[k] ?? 0) + v;
      return tf.div(loss, micro.length) as tf.Scalar;
    });
    value.dispose();
    if (i === 0) grads = g;
    for (const [k, t] of i === 0 ? [] : Object.entries(g)) {
      const sum = tf.add(grads[k]!, t);
      tf.dispose([grads[k]!, t]);
      grads[k] = sum;
    }
  });
  return { grads, terms: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / micro.length])) };
}

/**
 * Clips by global norm (when `maxGradNorm` is given) and applies one AdamW update; the gradients are
 * consumed (disposed). Returns the norm before clipping.
 */
export function applyGradients(
  optimizer: AdamW,
  params: Map<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  lr: number,
  maxGradNorm?: number | null,
): number {
  const norm = globalNorm(grads);
  const scale = maxGradNorm !== undefined && maxGradNorm !== null ? clipFactor(norm, maxGradNorm) : 1;
  optimizer.apply(params, grads, lr, scale);
  tf.dispose(Object.values(grads));
  return norm;
}

/** The task loss of `model` (which must have a head) on one batch. */
export function batchLoss(model: BertModel, inputs: BertInputs, labels: tf.Tensor1D, training: boolean): tf.Scalar {
  const out = model.forward(inputs, { training, hiddenStates: 'none' });
  return taskLoss(out.logits!, labels, isRegression(model.config));
}

/** forward + backward + clip + AdamW on one batch of a task (the benchmark's step). */
export function trainingStep(
  model: BertModel,
  optimizer: AdamW,
  inputs: BertInputs,
  labels: tf.Tensor1D,
  opts: { lr: number; maxGradNorm?: number; training?: boolean },
): { loss: number; gradNorm: number } {
  const { grads, terms } = accumulateGradients(model.params, [
    () => {
      const loss = batchLoss(model, inputs, labels, opts.training ?? true);
      return { loss, terms: { loss: loss.dataSync()[0]! } };
    },
  ]);
  return { loss: terms.loss!, gradNorm: applyGradients(optimizer, model.params, grads, opts.lr, opts.maxGradNorm) };
}
