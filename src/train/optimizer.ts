/**
 * AdamW (Loshchilov & Hutter), as torch.optim.AdamW computes it, and clipping by global norm.
 *
 *   p <- p - lr * wd * p                       (decoupled weight decay, skipped for biases and LayerNorm)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 */
import * as tf from '@tensorflow/tfjs';
import { ADAMW_KERNEL, SQUARED_NORM_KERNEL, adamwInPlace } from '../backend/blas.js';

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
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    const fused = tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
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
      const decay = this.noDecay(name) ? 0 : this.weightDecay;
      if (fused) {
        // One native pass (src/backend/blas.ts) instead of a dozen elementwise kernels; in place when
        // nothing else shares the parameter's storage.
        const attrs = { lr, beta1: b1, beta2: b2, epsilon: eps, weightDecay: decay, c1, c2, gradScale };
        if (adamwInPlace(p, m, v, g, attrs)) continue;
        const [pNew, mNew, vNew] = tf.engine().runKernel(ADAMW_KERNEL, { p, m, v, g }, { ...attrs }) as tf.Tensor[];
        p.assign(pNew!);
        m.assign(mNew!);
        v.assign(vNew!);
        tf.dispose([pNew!, mNew!, vNew!]);
        continue;
      }
      tf.tidy(() => {
        const gs = gradScale === 1 ? g : tf.mul(g, gradScale);
        const mNew = tf.add(tf.mul(m, b1), tf.mul(gs, 1 - b1));
        const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.square(gs), 1 - b2));
        const update = tf.div(tf.div(mNew, c1), tf.add(tf.sqrt(tf.div(vNew, c2)), eps));
        const decayed = decay > 0 ? tf.mul(p, 1 - lr * decay) : p;
        m.assign(mNew);
        v.assign(vNew);
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /** The moment estimates, for checkpointing. */
  state(): { step: number; m: Map<string, tf.Variable>; v: Map<string, tf.Variable> } {
    return { step: this.step, m: this.m, v: this.v };
  }

  /** Restores moment estimates written by `state()`. */
  load(state: { step: number; m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> }): void {
    this.dispose();
    this.step = state.step;
    for (const [k, t] of state.m) this.m.set(k, tf.variable(t, false));
    for (const [k, t] of state.v) this.v.set(k, tf.variable(t, false));
    // tf.variable shares the tensors' data; the caller still owns (and disposes) `state`'s tensors.
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** The global L2 norm of a set of gradients (one native pass per tensor where the backend has it). */
export function globalNorm(grads: Record<string, tf.Tensor>): number {
  const fused = tf.getKernel(SQUARED_NORM_KERNEL, tf.getBackend()) !== undefined;
  return tf.tidy(() => {
    const squares = Object.values(grads).map((g) =>
      fused ? (tf.engine().runKernel(SQUARED_NORM_KERNEL, { x: g }) as tf.Tensor) : tf.sum(tf.square(g)),
    );
    return Math.sqrt(tf.addN(squares).dataSync()[0]!);
  });
}

/** torch.nn.utils.clip_grad_norm_'s factor: maxNorm / (norm + 1e-6) when that is below 1, else 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  const factor = maxNorm / (norm + 1e-6);
  return factor < 1 ? factor : 1;
}
