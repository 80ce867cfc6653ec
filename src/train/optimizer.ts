/**
 * AdamW (Loshchilov & Hutter), as torch.optim.AdamW computes it, and clipping by global norm.
 *
 *   p <- p - lr * wd * p                       (decoupled weight decay, skipped for biases and LayerNorm)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 */
import * as tf from '@tensorflow/tfjs';
import { addN, adamwUpdate, squaredNorm } from '../backend/fused.js';
import { readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { readCopy } from '../backend/read.js';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  /** Parameters that get no weight decay; by default biases and LayerNorm weights, as in BERT recipes. */
  noDecay?: (name: string) => boolean;
}

export const defaultNoDecay = (name: string): boolean => name.endsWith('.bias') || name.includes('LayerNorm');

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly noDecay: (name: string) => boolean;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Number of updates applied so far. */
  step = 0;

  constructor(opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.noDecay = opts.noDecay ?? defaultNoDecay;
  }

  /**
   * Applies one update with learning rate `lr` to every parameter that has a gradient. The gradients are
   * first multiplied by `gradScale` (how clipping by global norm is applied without another pass).
   */
  apply(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.step += 1;
    const { beta1, beta2, epsilon } = this;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (const [name, p] of params) {
      const g = grads[name];
      if (!g) continue;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        m = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        v = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        this.m.set(name, m);
        this.v.set(name, v);
      }
      // One native pass where the backend has one (in place when nothing else shares the storage).
      adamwUpdate(p, m, v, g, { lr, beta1, beta2, epsilon, weightDecay: this.noDecay(name) ? 0 : this.weightDecay, c1, c2, gradScale });
    }
  }

  /** Saves the step and the moments (`m.<name>`, `v.<name>`) as safetensors, for checkpoints. */
  async save(path: string): Promise<void> {
    const moments: Array<{ name: string; shape: number[]; data: Float32Array }> = [];
    for (const [name, t] of this.m) {
      moments.push({ name: `m.${name}`, shape: [...t.shape], data: await readCopy(t) });
      moments.push({ name: `v.${name}`, shape: [...t.shape], data: await readCopy(this.v.get(name)!) });
    }
    writeSafetensors(path, moments, { metadata: { step: String(this.step) } });
  }

  /** Restores what `save` wrote. */
  restore(path: string): void {
    const { tensors, metadata } = readSafetensors(path);
    this.dispose();
    this.step = Number(metadata.step);
    for (const [name, t] of tensors) (name.startsWith('m.') ? this.m : this.v).set(name.slice(2), tf.tidy(() => tf.variable(tf.tensor(t.data as Float32Array, t.shape), false)));
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** The squared global L2 norm of a set of gradients, a scalar (one native pass per tensor where the backend has it). */
export function squaredGlobalNorm(grads: Record<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => addN(Object.values(grads).map(squaredNorm)) as tf.Scalar);
}

/** The global L2 norm of a set of gradients. */
export async function globalNorm(grads: Record<string, tf.Tensor>): Promise<number> {
  const sq = squaredGlobalNorm(grads);
  const value = (await sq.data())[0]!;
  sq.dispose();
  return Math.sqrt(value);
}

/** torch.nn.utils.clip_grad_norm_'s factor: maxNorm / (norm + 1e-6) when that is below 1, else 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  const factor = maxNorm / (norm + 1e-6);
  return factor < 1 ? factor : 1;
}
