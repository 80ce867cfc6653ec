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
import { readScalars } from '../backend/read.js';
import { type AdamW, clipFactor, squaredGlobalNorm } from './optimizer.js';

/**
 * One micro-batch's loss for the gradient and its named values to log, as scalars; called inside the
 * gradient tape. The values are read after the update's last micro-batch, all in one transfer (a GPU
 * backend has no synchronous read).
 */
export type LossFn = () => { loss: tf.Scalar; terms: Record<string, tf.Scalar> };

/**
 * A micro-batch: whatever must be read from the device before the tape (tree labels of the current
 * predictions, on a backend without synchronous reads) is awaited here, and the loss closure returned.
 */
export type MicroBatch = () => LossFn | Promise<LossFn>;

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

/**
 * The summed gradients of the micro-batches' losses, each divided by their number, and each micro-batch's
 * terms (scalars, still on the device: `readUpdate` reads them).
 */
export async function accumulateGradients(
  params: Map<string, tf.Variable>,
  micro: readonly MicroBatch[],
): Promise<{ grads: Record<string, tf.Tensor>; terms: Array<Record<string, tf.Scalar>> }> {
  let grads: Record<string, tf.Tensor> = {};
  const terms: Array<Record<string, tf.Scalar>> = [];
  for (const [i, prepare] of micro.entries()) {
    const lossFn = await prepare();
    const { value, grads: g } = parameterGrads(params, () => {
      const { loss, terms: t } = lossFn();
      terms.push(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, tf.keep(v)])));
      return tf.div(loss, micro.length) as tf.Scalar;
    });
    value.dispose();
    if (i === 0) grads = g;
    for (const [k, t] of i === 0 ? [] : Object.entries(g)) {
      const sum = tf.add(grads[k]!, t);
      tf.dispose([grads[k]!, t]);
      grads[k] = sum;
    }
  }
  return { grads, terms };
}

/**
 * What an update logs and checks, read in one transfer: the mean of each term over the micro-batches
 * (summed in double precision) and the gradients' global norm before clipping. The terms are disposed.
 */
export async function readUpdate(grads: Record<string, tf.Tensor>, terms: Array<Record<string, tf.Scalar>>): Promise<{ terms: Record<string, number>; norm: number }> {
  const flat: Record<string, tf.Scalar> = { norm: squaredGlobalNorm(grads) };
  terms.forEach((t, i) => Object.entries(t).forEach(([k, v]) => (flat[`${i}:${k}`] = v)));
  const values = await readScalars(flat);
  const sums: Record<string, number> = {};
  terms.forEach((t, i) => Object.keys(t).forEach((k) => (sums[k] = (sums[k] ?? 0) + values[`${i}:${k}`]!)));
  return { terms: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / terms.length])), norm: Math.sqrt(values.norm!) };
}

/**
 * Clips by global norm (the norm `readUpdate` read; when `maxGradNorm` is given) and applies one AdamW
 * update; the gradients are consumed (disposed).
 */
export function applyGradients(
  optimizer: AdamW,
  params: Map<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  lr: number,
  norm: number,
  maxGradNorm?: number | null,
): void {
  const scale = maxGradNorm !== undefined && maxGradNorm !== null ? clipFactor(norm, maxGradNorm) : 1;
  optimizer.apply(params, grads, lr, scale);
  tf.dispose(Object.values(grads));
}

/** The task loss of `model` (which must have a head) on one batch. */
export function batchLoss(model: BertModel, inputs: BertInputs, labels: tf.Tensor1D, training: boolean): tf.Scalar {
  const out = model.forward(inputs, { training, hiddenStates: 'none' });
  return taskLoss(out.logits!, labels, isRegression(model.config));
}

/** forward + backward + clip + AdamW on one batch of a task (the benchmark's step). */
export async function trainingStep(
  model: BertModel,
  optimizer: AdamW,
  inputs: BertInputs,
  labels: tf.Tensor1D,
  opts: { lr: number; maxGradNorm?: number; training?: boolean },
): Promise<{ loss: number; gradNorm: number }> {
  const { grads, terms } = await accumulateGradients(model.params, [
    () => () => {
      const loss = batchLoss(model, inputs, labels, opts.training ?? true);
      return { loss, terms: { loss } };
    },
  ]);
  const read = await readUpdate(grads, terms);
  applyGradients(optimizer, model.params, grads, opts.lr, read.norm, opts.maxGradNorm);
  return { loss: read.terms.loss!, gradNorm: read.norm };
}
