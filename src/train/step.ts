/**
 * One optimisation step: forward, loss, backward, clipping, AdamW update. Shared by fine-tuning and the
 * benchmark so both measure and run the same thing.
 */
import * as tf from '@tensorflow/tfjs';
import type { BertModel, BertInputs } from '../model/bert.js';
import { isRegression } from '../model/config.js';
import { taskLoss } from './loss.js';
import { type AdamW, clipFactor, globalNorm } from './optimizer.js';

export interface StepResult {
  loss: number;
  gradNorm: number;
}

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

/** The task loss of `model` (which must have a head) on one batch. */
export function batchLoss(model: BertModel, inputs: BertInputs, labels: tf.Tensor1D, training: boolean): tf.Scalar {
  const out = model.forward(inputs, { training, hiddenStates: 'none' });
  return taskLoss(out.logits!, labels, isRegression(model.config));
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

/** forward + backward + clip + AdamW on one batch. */
export function trainingStep(
  model: BertModel,
  optimizer: AdamW,
  inputs: BertInputs,
  labels: tf.Tensor1D,
  opts: { lr: number; maxGradNorm?: number; training?: boolean },
): StepResult {
  const { value, grads } = parameterGrads(model.params, () => batchLoss(model, inputs, labels, opts.training ?? true));
  const loss = value.dataSync()[0]!;
  value.dispose();
  return { loss, gradNorm: applyGradients(optimizer, model.params, grads, opts.lr, opts.maxGradNorm) };
}
