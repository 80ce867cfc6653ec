/**
 * The `blas` backend: tfjs's cpu backend with its hot kernels replaced by native code (OpenBLAS sgemm
 * for matrix products, C loops for elementwise ops, reductions, transposes, softmax and a fused AdamW).
 *
 * It is registered as its own backend (every cpu kernel is registered for it too, so anything not
 * replaced here runs as on cpu), which keeps the plain cpu backend available for comparison. Each
 * replacement handles float32 and falls back to the cpu kernel for anything else (int32, complex, an
 * attribute it does not cover), so results never depend on whether a fast path applied beyond float
 * rounding.
 *
 * The native part (native/topoprobe_native.c) is optional: it is built at install when a C compiler and
 * OpenBLAS are present (scripts/build-native.mjs). Without it `loadNative` says why and how to get it.
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../util/root.js';
import { TopoprobeError } from '../util/errors.js';
import { registerSegmentSumKernel } from './segment-sum.js';
import { FUSED_KERNELS, registerInPlaceAdamW, type AdamWAttrs } from './fused.js';

/** The addon's functions (see native/topoprobe_native.c for their contracts). */
export interface NativeKernels {
  gemm(ta: boolean, tb: boolean, m: number, n: number, k: number, a: Float32Array, offA: Int32Array, b: Float32Array, offB: Int32Array, out: Float32Array, accumulate: boolean): void;
  binary(op: number, a: Float32Array, stridesA: Int32Array, b: Float32Array, stridesB: Int32Array, out: Float32Array, shape: Int32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  reduce(op: number, x: Float32Array, shape: Int32Array, reduced: Int32Array, out: Float32Array): void;
  transpose(x: Float32Array, shape: Int32Array, perm: Int32Array, out: Float32Array): void;
  softmax(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  adamw(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, c1: number, c2: number, gradScale: number, pOut: Float32Array, mOut: Float32Array, vOut: Float32Array): void;
  gelu(x: Float32Array, out: Float32Array): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  layerNorm(x: Float32Array, rows: number, cols: number, gamma: Float32Array, beta: Float32Array, eps: number, y: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  layerNormGrad(dy: Float32Array, x: Float32Array, rows: number, cols: number, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array): void;
  dropout(x: Float32Array, rate: number, seed: number, y: Float32Array, mask: Float32Array): void;
  sumSquares(x: Float32Array): number;
  gather(params: Float32Array, rows: number, cols: number, indices: Int32Array, out: Float32Array): void;
  setThreads(n: number): void;
  getThreads(): number;
  config(): string;
}

export const NATIVE_HINT = 'for Debian/Ubuntu: apt-get install libopenblas-dev, then npm run build:native (or npm install again)';

export function nativeAddonPath(): string {
  return join(projectRoot(), 'native', 'build', 'topoprobe_native.node');
}

let native: NativeKernels | undefined;

/** Loads the addon, or throws an Error saying why it is not available and how to enable it. */
export function loadNative(): NativeKernels {
  if (native) return native;
  const path = nativeAddonPath();
  // OpenMP threads that spin between parallel loops would take the core the main thread needs.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  if (!existsSync(path)) throw new Error(`native kernels not built (${path} missing); ${NATIVE_HINT}`);
  try {
    native = createRequire(import.meta.url)(path) as NativeKernels;
  } catch (err) {
    throw new Error(`native kernels failed to load (${(err as Error).message.split('\n')[0]}); ${NATIVE_HINT}`);
  }
  return native;
}

/** The most threads `--threads` / `TOPOPROBE_THREADS` may ask for. */
export const MAX_THREADS = 1024;

/**
 * A thread count from a flag or the environment: a positive integer (decimal digits, at most
 * MAX_THREADS). Anything else (`abc`, `0`, `-2`, `1.5`, `4x`) is a TopoprobeError naming `source` and
 * the value as given.
 */
export function parseThreads(value: string, source: string): number {
  const v = value.trim();
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_THREADS)) {
    throw new TopoprobeError(`${source}: expected a whole number of threads from 1 to ${MAX_THREADS} (got "${value}")`);
  }
  return n;
}

/**
 * Threads for sgemm: `TOPOPROBE_THREADS` (unset or empty: not given), else every core the machine
 * offers. An invalid value is an error naming the variable, not silently ignored.
 */
export function defaultThreads(): number {
  const env = process.env.TOPOPROBE_THREADS;
  if (env === undefined || env.trim() === '') return availableParallelism();
  return parseThreads(env, 'TOPOPROBE_THREADS');
}

// ---------------------------------------------------------------------------------------------------
// Helpers over the cpu backend's storage.

type Backend = MathBackendCPU;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function f32(backend: Backend, t: tf.TensorInfo | undefined): Float32Array | null {
  if (!t || t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId)?.values;
  return v instanceof Float32Array ? v : null;
}

function output(backend: Backend, shape: number[], data: Float32Array): tf.TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', data);
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

/** Strides of `shape` read as the right-aligned broadcast to `out` (0 along broadcast axes). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): Int32Array {
  const own = contiguousStrides(shape);
  const strides = new Int32Array(out.length);
  const offset = out.length - shape.length;
  for (let d = 0; d < out.length; d++) {
    const k = d - offset;
    strides[d] = k < 0 || shape[k] === 1 ? 0 : own[k]!;
  }
  return strides;
}

/**
 * Merges neighbouring axes along which both operands step contiguously (or both stay put), so a
 * same-shape op becomes one flat loop and [32,64,768] + [64,768] becomes [32, 49152] + [49152].
 */
function collapse(shape: readonly number[], sa: Int32Array, sb: Int32Array): { shape: Int32Array; stridesA: Int32Array; stridesB: Int32Array } {
  const dims: number[] = [];
  const as: number[] = [];
  const bs: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1 && shape.length > 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && as[k] === sa[d]! * shape[d]! && bs[k] === sb[d]! * shape[d]!) {
      dims[k] = dims[k]! * shape[d]!;
      as[k] = sa[d]!;
      bs[k] = sb[d]!;
    } else {
      dims.push(shape[d]!);
      as.push(sa[d]!);
      bs.push(sb[d]!);
    }
  }
  if (dims.length === 0) return { shape: Int32Array.of(1), stridesA: Int32Array.of(0), stridesB: Int32Array.of(0) };
  return { shape: Int32Array.from(dims), stridesA: Int32Array.from(as), stridesB: Int32Array.from(bs) };
}

/** Looks up the cpu backend's own kernel, to fall back on. */
function cpuKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`blas backend: the cpu backend has no ${name} kernel`);
  return k.kernelFunc;
}

// ---------------------------------------------------------------------------------------------------
// Kernels.

const BINARY_OPS: Record<string, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6 };
const UNARY_OPS: Record<string, number> = {
  Exp: 0, Log: 1, Sqrt: 2, Rsqrt: 3, Square: 4, Neg: 5, Erf: 6, Tanh: 7, Abs: 8, Reciprocal: 9, Floor: 10, Sigmoid: 11, Relu: 12,
};
const REDUCE_OPS: Record<string, { op: number; axisAttr: string; mean?: boolean }> = {
  Sum: { op: 0, axisAttr: 'axis' },
  Mean: { op: 0, axisAttr: 'axis', mean: true },
  Max: { op: 1, axisAttr: 'reductionIndices' },
  Min: { op: 2, axisAttr: 'axis' },
};

function binaryKernel(nk: NativeKernels, name: string, op: number): tf.KernelFunc {
  const fallback = cpuKernel(name);
  return (args) => {
    const backend = args.backend as Backend;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!av || !bv) return fallback(args);
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = new Float32Array(size(shape));
    const dims = shape.length === 0 ? [1] : shape;
    const plan = collapse(dims, broadcastStrides(a.shape, dims), broadcastStrides(b.shape, dims));
    nk.binary(op, av, plan.stridesA, bv, plan.stridesB, out, plan.shape);
    return output(backend, shape, out);
  };
}

function unaryKernel(nk: NativeKernels, name: string, op: number): tf.KernelFunc {
  const fallback = cpuKernel(name);
  return (args) => {
    const backend = args.backend as Backend;
    const x = args.inputs.x as tf.TensorInfo;
    const xv = f32(backend, x);
    if (!xv) return fallback(args);
    const out = new Float32Array(xv.length);
    nk.unary(op, xv, out);
    return output(backend, [...x.shape], out);
  };
}

function reduceKernel(nk: NativeKernels, name: string, spec: { op: number; axisAttr: string; mean?: boolean }): tf.KernelFunc {
  const fallback = cpuKernel(name);
  return (args) => {
    const backend = args.backend as Backend;
    const x = args.inputs.x as tf.TensorInfo;
    const xv = f32(backend, x);
    if (!xv || x.shape.length === 0) return fallback(args);
    const attrs = args.attrs as Record<string, unknown>;
    const axes = tf.util.parseAxisParam(attrs[spec.axisAttr] as number | number[], x.shape);
    const reduced = new Int32Array(x.shape.length);
    for (const a of axes) reduced[a] = 1;
    const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
    if ((spec.op !== 0 && count === 0)) return fallback(args);
    const outShape = x.shape.map((d, i) => (reduced[i] ? 1 : d));
    const out = new Float32Array(size(outShape));
    nk.reduce(spec.op, xv, Int32Array.from(x.shape), reduced, out);
    if (spec.mean) for (let i = 0; i < out.length; i++) out[i] = out[i]! / count;
    const shape = attrs.keepDims ? outShape : x.shape.filter((_, i) => !reduced[i]);
    return output(backend, shape, out);
  };
}

function transposeKernel(nk: NativeKernels): tf.KernelFunc {
  const fallback = cpuKernel('Transpose');
  return (args) => {
    const backend = args.backend as Backend;
    const x = args.inputs.x as tf.TensorInfo;
    const xv = f32(backend, x);
    const perm = (args.attrs as { perm: number[] }).perm;
    if (!xv || x.shape.length === 0 || x.shape.length > 8) return fallback(args);
    if (perm.every((p, i) => p === i)) {
      // The identity permutation (e.g. in the gradient of an axis-0 gather): share the data, as Identity does.
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    const out = new Float32Array(xv.length);
    nk.transpose(xv, Int32Array.from(x.shape), Int32Array.from(perm), out);
    return output(backend, perm.map((p) => x.shape[p]!), out);
  };
}

function softmaxKernel(nk: NativeKernels): tf.KernelFunc {
  const fallback = cpuKernel('Softmax');
  return (args) => {
    const backend = args.backend as Backend;
    const x = args.inputs.logits as tf.TensorInfo;
    const xv = f32(backend, x);
    const rank = x.shape.length;
    const dim = (args.attrs as { dim: number }).dim;
    if (!xv || rank === 0 || (dim !== -1 && dim !== rank - 1)) return fallback(args);
    const cols = x.shape[rank - 1]!;
    const out = new Float32Array(xv.length);
    if (cols > 0) nk.softmax(xv, xv.length / cols, cols, out);
    return output(backend, [...x.shape], out);
  };
}

/**
 * Batched matrix product with numpy's semantics: a [...batchA, M, K] (or [..., K, M] transposed), b
 * [...batchB, K, N]; batch dimensions broadcast. With `rowBias` (length N) the output starts as the bias
 * and sgemm accumulates onto it, which saves a separate pass. Returns null when it cannot handle the
 * operands.
 */
function matMul(nk: NativeKernels, backend: Backend, a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean, rowBias?: Float32Array): tf.TensorInfo | null {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!av || !bv || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const K2 = tb ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (K !== K2) return null;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = tf.backend_util.assertAndGetBroadcastShape(batchA, batchB);
  const nBatch = size(batch);
  const offA = new Int32Array(nBatch);
  const offB = new Int32Array(nBatch);
  const stA = broadcastStrides(batchA, batch);
  const stB = broadcastStrides(batchB, batch);
  const idx = new Array<number>(batch.length).fill(0);
  for (let i = 0; i < nBatch; i++) {
    let oa = 0;
    let ob = 0;
    for (let d = 0; d < batch.length; d++) {
      oa += idx[d]! * stA[d]!;
      ob += idx[d]! * stB[d]!;
    }
    offA[i] = oa * M * K;
    offB[i] = ob * K * N;
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d]! < batch[d]!) break;
      idx[d] = 0;
    }
  }
  const out = new Float32Array(nBatch * M * N);
  if (rowBias) {
    if (rowBias.length !== N) return null;
    for (let r = 0; r < nBatch * M; r++) out.set(rowBias, r * N);
  }
  nk.gemm(ta, tb, M, N, K, av, offA, bv, offB, out, rowBias !== undefined);
  return output(backend, [...batch, M, N], out);
}

function batchMatMulKernel(nk: NativeKernels): tf.KernelFunc {
  const fallback = cpuKernel('BatchMatMul');
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    return matMul(nk, args.backend as Backend, a, b, transposeA, transposeB) ?? fallback(args);
  };
}

function fusedMatMulKernel(nk: NativeKernels): tf.KernelFunc {
  const fallback = cpuKernel('_FusedMatMul');
  return (args) => {
    const backend = args.backend as Backend;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: string };
    const activation = attrs.activation ?? 'linear';
    if (preluActivationWeights || !['linear', 'relu'].includes(activation)) return fallback(args);
    const biasValues = bias ? f32(backend, bias) : undefined;
    if (bias && !biasValues) return fallback(args);
    // A bias over the last axis rides along in sgemm; any other broadcastable bias is added afterwards.
    const rowBias = bias && bias.shape.length === 1 ? biasValues! : undefined;
    const product = matMul(nk, backend, a!, b!, attrs.transposeA, attrs.transposeB, rowBias);
    if (!product) return fallback(args);
    let result = product;
    if (bias && !rowBias) {
      const shape = tf.backend_util.assertAndGetBroadcastShape(product.shape, bias.shape);
      if (shape.length !== product.shape.length || shape.some((d, i) => d !== product.shape[i])) {
        backend.disposeIntermediateTensorInfo(product);
        return fallback(args);
      }
      const out = new Float32Array(size(shape));
      nk.binary(BINARY_OPS.Add!, f32(backend, product)!, broadcastStrides(product.shape, shape), biasValues!, broadcastStrides(bias.shape, shape), out, Int32Array.from(shape));
      backend.disposeIntermediateTensorInfo(product);
      result = output(backend, shape, out);
    }
    if (activation === 'relu') {
      const data = f32(backend, result)!;
      const out = new Float32Array(data.length);
      nk.unary(UNARY_OPS.Relu!, data, out);
      backend.disposeIntermediateTensorInfo(result);
      result = output(backend, [...product.shape], out);
    }
    return result;
  };
}

function adamwKernel(nk: NativeKernels): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as Backend;
    const { p, m, v, g } = args.inputs as Record<string, tf.TensorInfo>;
    const attrs = args.attrs as unknown as { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; c1: number; c2: number; gradScale: number };
    const [pv, mv, vv, gv] = [p, m, v, g].map((t) => f32(backend, t));
    if (!pv || !mv || !vv || !gv) throw new Error(`${FUSED_KERNELS.adamw}: float32 inputs required`);
    const po = new Float32Array(pv.length);
    const mo = new Float32Array(pv.length);
    const vo = new Float32Array(pv.length);
    nk.adamw(pv, mv, vv, gv, attrs.lr, attrs.beta1, attrs.beta2, attrs.epsilon, attrs.weightDecay, attrs.c1, attrs.c2, attrs.gradScale, po, mo, vo);
    return [output(backend, [...p!.shape], po), output(backend, [...p!.shape], mo), output(backend, [...p!.shape], vo)];
  };
}

/** The fused kernels of src/backend/fused.ts. */
function fusedKernels(nk: NativeKernels): Record<string, tf.KernelFunc> {
  const need = (backend: Backend, t: tf.TensorInfo | undefined, what: string): Float32Array => {
    const v = f32(backend, t);
    if (!v) throw new Error(`${what}: float32 input required`);
    return v;
  };
  return {
    [FUSED_KERNELS.gelu]: (args) => {
      const backend = args.backend as Backend;
      const x = args.inputs.x as tf.TensorInfo;
      const out = new Float32Array(size(x.shape));
      nk.gelu(need(backend, x, 'gelu'), out);
      return output(backend, [...x.shape], out);
    },
    [FUSED_KERNELS.geluGrad]: (args) => {
      const backend = args.backend as Backend;
      const { x, dy } = args.inputs as Record<string, tf.TensorInfo>;
      const out = new Float32Array(size(x!.shape));
      nk.geluGrad(need(backend, x, 'geluGrad'), need(backend, dy, 'geluGrad'), out);
      return output(backend, [...x!.shape], out);
    },
    [FUSED_KERNELS.layerNorm]: (args) => {
      const backend = args.backend as Backend;
      const { x, gamma, beta } = args.inputs as Record<string, tf.TensorInfo>;
      const cols = x!.shape[x!.shape.length - 1]!;
      const rows = size(x!.shape) / cols;
      const y = new Float32Array(rows * cols);
      const mean = new Float32Array(rows);
      const rstd = new Float32Array(rows);
      nk.layerNorm(need(backend, x, 'layerNorm'), rows, cols, need(backend, gamma, 'layerNorm'), need(backend, beta, 'layerNorm'), (args.attrs as { eps: number }).eps, y, mean, rstd);
      const lead = x!.shape.slice(0, -1);
      return [output(backend, [...x!.shape], y), output(backend, lead, mean), output(backend, lead, rstd)];
    },
    [FUSED_KERNELS.layerNormGrad]: (args) => {
      const backend = args.backend as Backend;
      const { dy, x, gamma, mean, rstd } = args.inputs as Record<string, tf.TensorInfo>;
      const cols = x!.shape[x!.shape.length - 1]!;
      const rows = size(x!.shape) / cols;
      const dx = new Float32Array(rows * cols);
      const dgamma = new Float32Array(cols);
      const dbeta = new Float32Array(cols);
      const v = (t: tf.TensorInfo | undefined) => need(backend, t, 'layerNormGrad');
      nk.layerNormGrad(v(dy), v(x), rows, cols, v(gamma), v(mean), v(rstd), dx, dgamma, dbeta);
      return [output(backend, [...x!.shape], dx), output(backend, [cols], dgamma), output(backend, [cols], dbeta)];
    },
    [FUSED_KERNELS.dropout]: (args) => {
      const backend = args.backend as Backend;
      const x = args.inputs.x as tf.TensorInfo;
      const { rate, seed } = args.attrs as { rate: number; seed: number };
      const y = new Float32Array(size(x.shape));
      const mask = new Float32Array(y.length);
      nk.dropout(need(backend, x, 'dropout'), rate, seed, y, mask);
      return [output(backend, [...x.shape], y), output(backend, [...x.shape], mask)];
    },
  };
}

/**
 * AdamW written into the parameter's and moments' own storage, as torch does, instead of three new
 * arrays per parameter per step (for bert-large, 4 GB of fresh memory a step). Only on the blas backend
 * and only when nothing else shares their data (reference count 1); returns false otherwise, and the
 * caller takes the ordinary path.
 */
function adamwInPlace(p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, attrs: AdamWAttrs): boolean {
  if (!native || tf.getBackend() !== 'blas') return false;
  const backend = tf.backend() as Backend;
  const arrays: Float32Array[] = [];
  for (const t of [p, m, v]) {
    const entry = backend.data.get(t.dataId);
    if (!entry || entry.refCount !== 1 || t.dtype !== 'float32' || !(entry.values instanceof Float32Array)) return false;
    arrays.push(entry.values);
  }
  const gv = f32(backend, g);
  if (!gv || gv.length !== arrays[0]!.length) return false;
  const [pv, mv, vv] = arrays as [Float32Array, Float32Array, Float32Array];
  native.adamw(pv, mv, vv, gv, attrs.lr, attrs.beta1, attrs.beta2, attrs.epsilon, attrs.weightDecay, attrs.c1, attrs.c2, attrs.gradScale, pv, mv, vv);
  return true;
}

/** Sum of squares of a tensor's elements (for the global gradient norm), accumulated in double. */
function squaredNormKernel(nk: NativeKernels): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as Backend;
    const x = f32(backend, args.inputs.x as tf.TensorInfo);
    if (!x) throw new Error(`${FUSED_KERNELS.squaredNorm}: float32 input required`);
    return output(backend, [], new Float32Array([nk.sumSquares(x)]));
  };
}

/** Row gathers (embedding lookups): axis 0, no batch dimensions, float32 table, int32 ids. */
function gatherKernel(nk: NativeKernels): tf.KernelFunc {
  const fallback = cpuKernel('GatherV2');
  return (args) => {
    const backend = args.backend as Backend;
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    const xv = f32(backend, x);
    const ids = indices.dtype === 'int32' ? backend.data.get(indices.dataId)?.values : undefined;
    if (!xv || !(ids instanceof Int32Array) || x.shape.length === 0 || batchDims !== 0 || tf.util.parseAxisParam(axis, x.shape)[0] !== 0) return fallback(args);
    const rows = x.shape[0]!;
    const cols = size(x.shape.slice(1));
    for (const id of ids) {
      if (id < 0 || id >= rows) throw new Error(`GatherV2: index ${id} is not in [0, ${rows})`);
    }
    const out = new Float32Array(ids.length * cols);
    nk.gather(xv, rows, cols, ids, out);
    return output(backend, [...indices.shape, ...x.shape.slice(1)], out);
  };
}

/** Kernel names the blas backend replaces with native code. */
export const NATIVE_KERNELS = [
  'BatchMatMul', '_FusedMatMul', 'GatherV2', ...Object.keys(BINARY_OPS), ...Object.keys(UNARY_OPS), ...Object.keys(REDUCE_OPS), 'Transpose', 'Softmax',
  ...Object.values(FUSED_KERNELS),
];

let registered = false;

/**
 * Registers the `blas` backend (cpu kernels, then the native replacements). Throws (with the reason and
 * how to enable it) when the addon is not available.
 */
export function registerBlasBackend(threads = defaultThreads()): NativeKernels {
  const nk = loadNative();
  nk.setThreads(threads);
  if (registered) return nk;
  tf.registerBackend('blas', () => new MathBackendCPU(), 0);
  for (const config of tf.getKernelsForBackend('cpu')) {
    tf.registerKernel({ ...config, backendName: 'blas' });
  }
  const replace = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (tf.getKernel(kernelName, 'blas')) tf.unregisterKernel(kernelName, 'blas');
    tf.registerKernel({ kernelName, backendName: 'blas', kernelFunc });
  };
  for (const [name, op] of Object.entries(BINARY_OPS)) replace(name, binaryKernel(nk, name, op));
  for (const [name, op] of Object.entries(UNARY_OPS)) replace(name, unaryKernel(nk, name, op));
  for (const [name, spec] of Object.entries(REDUCE_OPS)) replace(name, reduceKernel(nk, name, spec));
  replace('Transpose', transposeKernel(nk));
  replace('Softmax', softmaxKernel(nk));
  replace('BatchMatMul', batchMatMulKernel(nk));
  replace('_FusedMatMul', fusedMatMulKernel(nk));
  replace(FUSED_KERNELS.adamw, adamwKernel(nk));
  replace(FUSED_KERNELS.squaredNorm, squaredNormKernel(nk));
  replace('GatherV2', gatherKernel(nk));
  for (const [name, kernelFunc] of Object.entries(fusedKernels(nk))) replace(name, kernelFunc);
  registerSegmentSumKernel('blas');
  registerInPlaceAdamW('blas', adamwInPlace);
  registered = true;
  return nk;
}

export type { KernelArgs };
