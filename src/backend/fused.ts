/**
 * Fused operations with native kernels where the backend has them (the `blas` backend registers
 * TopoprobeGelu, TopoprobeLayerNorm, TopoprobeDropout and their gradients, TopoprobeAdamW and
 * TopoprobeSquaredNorm, and an AdamW that writes in place; webgpu registers TopoprobeGelu and its gradient,
 * a dropout mask and a three-pass AdamW in WGSL, src/backend/webgpu.ts), and the same mathematics as
 * ordinary tfjs ops everywhere else. One native pass replaces 5-20 elementwise kernels (and their gradients), which is
 * most of a BERT step's non-matmul time. The model and the optimizer call these functions and never a
 * backend directly.
 */
import * as tf from '@tensorflow/tfjs';
import { WEBGPU_KERNELS } from './webgpu.js';

export const FUSED_KERNELS = {
  gelu: 'TopoprobeGelu',
  geluGrad: 'TopoprobeGeluGrad',
  layerNorm: 'TopoprobeLayerNorm',
  layerNormGrad: 'TopoprobeLayerNormGrad',
  dropout: 'TopoprobeDropout',
  adamw: 'TopoprobeAdamW',
  squaredNorm: 'TopoprobeSquaredNorm',
} as const;

/**
 * torch.nn.Linear on a matrix: x [n, in] -> x W^T + b, with W [out, in]. tfjs-backend-wasm 4.22's
 * _FusedMatMul adds the bias wrongly when transposeB is set (off by up to 1.2 on random 6x8x7 inputs;
 * test/bert.test.ts catches it on the torch reference), so wasm gets a plain matMul + add. Elsewhere the
 * fused kernel saves a pass (blas folds the bias into sgemm).
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  if (tf.getBackend() === 'wasm') return tf.add(tf.matMul(x, weight as tf.Tensor2D, false, true), bias) as tf.Tensor2D;
  return tf.fused.matMul({ a: x, b: weight as tf.Tensor2D, transposeB: true, bias }) as tf.Tensor2D;
}

function native(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

/** tf.customGrad with the inputs typed as what they are (tfjs types them as a union with the save function). */
function customGrad<F extends (...args: never[]) => tf.Tensor>(
  f: (...args: [...Parameters<F>, tf.GradSaveFunc]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): F {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as F;
}

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(kernel, inputs, attrs);
  return Array.isArray(out) ? out : [out];
}

const geluNative = customGrad<(x: tf.Tensor) => tf.Tensor>((x, save) => {
  save([x]);
  return {
    value: run(FUSED_KERNELS.gelu, { x })[0]!,
    gradFunc: (dy, saved) => run(FUSED_KERNELS.geluGrad, { x: saved[0]!, dy })[0]!,
  };
});

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)), as Hugging Face's "gelu". */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (native(FUSED_KERNELS.gelu) && x.dtype === 'float32') return geluNative(x);
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

const layerNormNative = new Map<number, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>();

function layerNormFor(eps: number): (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor {
  let f = layerNormNative.get(eps);
  if (!f) {
    f = customGrad<(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>((x, gamma, beta, save) => {
      const [y, mean, rstd] = run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { eps });
      save([x, gamma, mean!, rstd!]);
      return {
        value: y!,
        gradFunc: (dy, saved) => {
          const [sx, sgamma, smean, srstd] = saved;
          return run(FUSED_KERNELS.layerNormGrad, { dy, x: sx!, gamma: sgamma!, mean: smean!, rstd: srstd! });
        },
      };
    });
    layerNormNative.set(eps, f);
  }
  return f;
}

/** LayerNorm over the last axis with biased variance (torch.nn.LayerNorm): (x - mean) / sqrt(var + eps) * gamma + beta. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (native(FUSED_KERNELS.layerNorm) && x.dtype === 'float32') return layerNormFor(eps)(x, gamma, beta);
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest by 1 / (1 - rate).
 * The mask depends only on `seed` (and the backend: the native kernel draws its own numbers).
 */
export function dropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate === 0) return x;
  if (native(FUSED_KERNELS.dropout) && x.dtype === 'float32') {
    const f = customGrad<(x: tf.Tensor) => tf.Tensor>((input, save) => {
      const [y, mask] = run(FUSED_KERNELS.dropout, { x: input }, { rate, seed });
      save([mask!]);
      return { value: y!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
    });
    return f(x);
  }
  if (native(WEBGPU_KERNELS.dropoutMask) && x.dtype === 'float32') {
    // The mask is drawn on the GPU; multiplying by it gives the gradient dy * mask.
    return tf.tidy(() => tf.mul(x, run(WEBGPU_KERNELS.dropoutMask, {}, { shape: [...x.shape], rate, seed })[0]!));
  }
  return tf.dropout(x, rate, undefined, seed);
}

/** One AdamW update's settings; c1 and c2 are the bias corrections 1 - beta^t, gradScale the clip factor. */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  c1: number;
  c2: number;
  gradScale: number;
}

/** An AdamW that writes into p, m and v's own storage; false when it cannot (the caller falls back). */
export type InPlaceAdamW = (p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, attrs: AdamWAttrs) => boolean;

const inPlaceAdamW = new Map<string, InPlaceAdamW>();

/** Lets a backend offer an in-place AdamW (blas does). */
export function registerInPlaceAdamW(backendName: string, f: InPlaceAdamW): void {
  inPlaceAdamW.set(backendName, f);
}

/**
 * One AdamW update of parameter p with moments m and v from gradient g (see src/train/optimizer.ts):
 * in place where the backend offers it, else one native pass, else tfjs ops.
 */
export function adamwUpdate(p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, attrs: AdamWAttrs): void {
  if (inPlaceAdamW.get(tf.getBackend())?.(p, m, v, g, attrs)) return;
  if (native(WEBGPU_KERNELS.adamwPart)) {
    const [mNew, vNew, pNew] = [0, 1, 2].map((part) => run(WEBGPU_KERNELS.adamwPart, { p, m, v, g }, { ...attrs, part })[0]!);
    p.assign(pNew!);
    m.assign(mNew!);
    v.assign(vNew!);
    tf.dispose([pNew!, mNew!, vNew!]);
    return;
  }
  if (native(FUSED_KERNELS.adamw)) {
    const [pNew, mNew, vNew] = run(FUSED_KERNELS.adamw, { p, m, v, g }, { ...attrs });
    p.assign(pNew!);
    m.assign(mNew!);
    v.assign(vNew!);
    tf.dispose([pNew!, mNew!, vNew!]);
    return;
  }
  const { lr, beta1: b1, beta2: b2, epsilon: eps, weightDecay: decay, c1, c2, gradScale } = attrs;
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

/**
 * tf.addN in groups the backend can take at once: webgpu's AddN binds every input as a storage buffer,
 * and a device allows only so many per shader (8 on some). Elsewhere one tf.addN.
 */
export function addN(xs: tf.Tensor[]): tf.Tensor {
  const limits = (tf.backend() as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } }).device?.limits;
  const max = limits?.maxStorageBuffersPerShaderStage ? limits.maxStorageBuffersPerShaderStage - 1 : Infinity;
  if (xs.length <= max) return tf.addN(xs);
  return tf.tidy(() => {
    let acc = tf.addN(xs.slice(0, max));
    for (let i = max; i < xs.length; i += max - 1) acc = tf.addN([acc, ...xs.slice(i, i + max - 1)]);
    return acc;
  });
}

/** The sum of squares of x's elements, a scalar (native: accumulated in double). */
export function squaredNorm(x: tf.Tensor): tf.Tensor {
  return native(FUSED_KERNELS.squaredNorm) ? run(FUSED_KERNELS.squaredNorm, { x })[0]! : tf.sum(tf.square(x));
}
