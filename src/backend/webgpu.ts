/**
 * The `webgpu` backend: @tensorflow/tfjs-backend-webgpu on Dawn's Node binding (the `webgpu` package), which
 * reaches NVIDIA, AMD and Intel GPUs through Vulkan, Apple GPUs through Metal and Windows GPUs through D3D12,
 * with no CUDA toolkit. Both packages are optional dependencies.
 *
 * Set-up, once per process: Dawn's WebGPU globals are installed, `navigator.gpu` is Dawn's GPU object (the
 * tfjs backend registers itself only when it sees one), and an adapter is asked for first so that the choice
 * can be explained: `auto` takes only a hardware adapter, never a software fallback (SwiftShader, llvmpipe,
 * lavapipe, WARP), which is far slower than `blas`; `--backend webgpu` takes either.
 *
 * What differs from the CPU backends, and why the rest of the code reads tensors with `await t.data()`:
 * WebGPU has no synchronous read-back (tfjs's `readSync` needs `OffscreenCanvas`, which Node lacks), so
 * `dataSync`/`arraySync` fail on this backend. `syncReads()` tells the code paths that must choose.
 *
 * Kernels registered here, in WGSL, replace what would otherwise run in JavaScript or as many small kernels:
 * - `TopoprobeDropoutMask`: the dropout mask (0 or 1 / (1 - rate)) from a counter-based hash of the seed
 *   and the element's index, drawn on the GPU (tf.dropout draws every number in JavaScript and uploads it:
 *   hundreds of millions a bert-large step);
 * - `TopoprobeGelu` / `TopoprobeGeluGrad`: exact GELU and its gradient, one pass each;
 * - `TopoprobeAdamWPart`: one AdamW update in three passes (m, v, p) instead of about twelve;
 * - `UnsortedSegmentSum` (the gradient of every embedding lookup), replacing tfjs's own, which adds with
 *   atomics in whatever order the GPU's threads arrive, so the same seed did not give the same weights:
 *   here one thread per column adds the rows in order.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** What the adapter said about itself. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software implementation (WebGPU's own flag, or a known software driver's name). */
  software: boolean;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i;

let installed: { adapter: AdapterInfo } | undefined;

/** Dawn's exports, typed as far as this file uses them. */
interface DawnModule {
  create(flags: string[]): { requestAdapter(opts?: Record<string, unknown>): Promise<DawnAdapter | null> };
  globals: Record<string, unknown>;
}
interface DawnAdapter {
  info?: Record<string, unknown>;
  isFallbackAdapter?: boolean;
}

/**
 * Where the Vulkan loader (libvulkan.so.1) is, on Linux; null when it is nowhere Dawn would find it. Dawn
 * reaches every Linux GPU through it, and without it writes a multi-line warning to the process's stderr,
 * so the loader is looked for first (LD_LIBRARY_PATH, the linker cache, the usual library folders).
 */
export function findVulkanLoader(): string | null {
  const name = 'libvulkan.so.1';
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
    if (r.status !== 0 || typeof r.stdout !== 'string') continue;
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith(`${name} `));
    if (line) return line.split('=>').pop()!.trim();
    break;
  }
  for (const d of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib']) {
    if (existsSync(join(d, name))) return join(d, name);
  }
  return null;
}

/**
 * Installs Dawn's `navigator.gpu` and describes its adapter; throws with the reason when there is none.
 * Idempotent: the first call's adapter is kept.
 */
export async function installWebGPU(): Promise<AdapterInfo> {
  if (installed) return installed.adapter;
  if (process.platform === 'linux' && !findVulkanLoader()) {
    throw new Error("no Vulkan loader (libvulkan.so.1; install libvulkan1, or your GPU driver's Vulkan support)");
  }
  const spec = 'webgpu';
  const dawn = (await import(spec)) as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter (no GPU driver with Vulkan, Metal or D3D12 support was found)');
  const info = adapter.info ?? {};
  const text = (k: string) => (typeof info[k] === 'string' ? (info[k] as string) : '');
  const described: AdapterInfo = {
    vendor: text('vendor'),
    architecture: text('architecture'),
    device: text('device'),
    description: text('description'),
    software: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE.test(`${text('vendor')} ${text('architecture')} ${text('device')} ${text('description')}`),
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  installed = { adapter: described };
  return described;
}

/** One line naming the adapter: "nvidia hopper (NVIDIA H200, ...)". */
export function adapterText(a: AdapterInfo): string {
  const name = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const detail = [a.device, a.description].filter(Boolean).join(', ');
  return `${name}${detail ? ` (${detail})` : ''}${a.software ? ', a software adapter' : ''}`;
}

/** Whether the current backend can read a tensor synchronously (every backend but webgpu). */
export function syncReads(): boolean {
  return tf.getBackend() !== 'webgpu';
}

// ---------------------------------------------------------------------------------------------------------
// WGSL kernels. A program object is what tfjs-backend-webgpu's runWebGPUProgram compiles: it declares the
// input names (bound as arrays `A`, `B`, ...), the output shape, the uniforms after tfjs's own, and the body
// of `main(index)`, with tfjs's helpers (`getAByOutputIndex`, `setOutputAtIndex`, `uniforms.size`).

interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size: boolean;
  uniforms?: string;
  getUserCode(): string;
}

interface WebGPUBackendLike {
  runWebGPUProgram(program: Program, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Array<{ type: string; data: number[] }>): tf.TensorInfo;
}

const WORKGROUP = 64;

function flatProgram(key: string, shape: number[], inputs: string[], uniforms: string, body: string): Program {
  const size = shape.reduce((a, b) => a * b, 1);
  // Flat dispatch over at most 65535 workgroups per dimension (tfjs's layout helper does the same).
  const groups = Math.ceil(size / WORKGROUP);
  const x = Math.min(groups, 65535);
  const y = Math.ceil(groups / x);
  return {
    variableNames: inputs,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [x, y, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    ...(uniforms ? { uniforms } : {}),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`,
  };
}

/**
 * The counter-based generator behind the dropout mask: a uniform number in [0, 1) for element `index`
 * under `seed`, from two rounds of the PCG hash (the same integer arithmetic in WGSL and here, so a test
 * can check the GPU's mask against this function).
 */
export function hashUniform(seed: number, index: number): number {
  const pcg = (v: number) => {
    const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
    const word = Math.imul(((state >>> (((state >>> 28) + 4) >>> 0)) ^ state) >>> 0, 277803737) >>> 0;
    return ((word >>> 22) ^ word) >>> 0;
  };
  return (pcg((pcg(index >>> 0) ^ (seed >>> 0)) >>> 0) >>> 8) / 16777216;
}

const PCG_WGSL = `
  fn pcg(v : u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
  }`;

export const WEBGPU_KERNELS = {
  dropoutMask: 'TopoprobeDropoutMask',
  gelu: 'TopoprobeGelu',
  geluGrad: 'TopoprobeGeluGrad',
  adamwPart: 'TopoprobeAdamWPart',
} as const;

// WGSL has no erf: Numerical Recipes' erfc (Chebyshev-fitted, fractional error below 1.2e-7 everywhere).
const ERF_WGSL = `
  fn erf_(x : f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
      t * (-0.82215223 + t * 0.17087277)))))))));
    return select(r - 1.0, 1.0 - r, x >= 0.0);
  }`;

let registeredSegmentSum = false;

/**
 * out[s, j] = the sum, in row order, of x[i, j] over the rows i with segmentIds[i] = s (ids outside
 * [0, numSegments) dropped, as TensorFlow does): one thread per column j, so no two threads write one
 * element and the order of the additions is fixed.
 */
function segmentSumKernel({ inputs, backend, attrs }: { inputs: { x: tf.TensorInfo; segmentIds: tf.TensorInfo }; backend: unknown; attrs: { numSegments: number } }): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const idsRank = segmentIds.shape.length;
  for (let d = 0; d < idsRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`);
  }
  const n = segmentIds.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(idsRank).reduce((a, b) => a * b, 1);
  const segments = attrs.numSegments;
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  const zero = dtype === 'int32' ? '0' : '0.0';
  const groups = Math.ceil(inner / WORKGROUP);
  const program: Program = {
    variableNames: ['A', 'B'],
    outputShape: [segments, ...x.shape.slice(idsRank)],
    shaderKey: `topoprobe_segment_sum_${dtype}`,
    dispatchLayout: { x: [0] },
    dispatch: [groups, 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: false,
    uniforms: 'inner : i32, n : i32, segments : i32,',
    getUserCode: () => `
      fn main(j : i32) {
        if (j >= uniforms.inner) { return; }
        for (var s = 0; s < uniforms.segments; s++) { result[s * uniforms.inner + j] = ${zero}; }
        for (var i = 0; i < uniforms.n; i++) {
          let s = i32(B[i]);
          if (s >= 0 && s < uniforms.segments) {
            result[s * uniforms.inner + j] = result[s * uniforms.inner + j] + A[i * uniforms.inner + j];
          }
        }
      }`,
  };
  return (backend as WebGPUBackendLike).runWebGPUProgram(program, [x, segmentIds], dtype, [
    { type: 'int32', data: [inner] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [segments] },
  ]);
}

function registerOnce(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, 'webgpu')) return;
  tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
}

/** Registers the WGSL kernels above for the webgpu backend (idempotent). */
export function registerWebGPUKernels(): void {
  if (!registeredSegmentSum) {
    registeredSegmentSum = true;
    if (tf.getKernel('UnsortedSegmentSum', 'webgpu')) tf.unregisterKernel('UnsortedSegmentSum', 'webgpu');
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'webgpu', kernelFunc: segmentSumKernel as unknown as tf.KernelFunc });
  }
  registerOnce(WEBGPU_KERNELS.dropoutMask, (({ backend, attrs }: { backend: unknown; attrs: { shape: number[]; rate: number; seed: number } }) => {
    const { shape, rate, seed } = attrs;
    const program = flatProgram('topoprobe_dropout_mask', shape, [], 'rate : f32, scale : f32, seed : u32,', `
      let u = f32(pcg(pcg(u32(index)) ^ uniforms.seed) >> 8u) / 16777216.0;
      setOutputAtIndex(index, select(uniforms.scale, 0.0, u < uniforms.rate));`);
    const code = program.getUserCode;
    program.getUserCode = () => `${PCG_WGSL}\n${code()}`;
    return (backend as WebGPUBackendLike).runWebGPUProgram(program, [], 'float32', [
      { type: 'float32', data: [rate] },
      { type: 'float32', data: [1 / (1 - rate)] },
      { type: 'uint32', data: [seed >>> 0] },
    ]);
  }) as unknown as tf.KernelFunc);

  registerOnce(WEBGPU_KERNELS.gelu, (({ inputs, backend }: { inputs: { x: tf.TensorInfo }; backend: unknown }) => {
    const program = flatProgram('topoprobe_gelu', [...inputs.x.shape], ['A'], '', `
      let x = getAByOutputIndex(index);
      setOutputAtIndex(index, 0.5 * x * (1.0 + erf_(x * 0.70710678118654752)));`);
    const code = program.getUserCode;
    program.getUserCode = () => `${ERF_WGSL}\n${code()}`;
    return (backend as WebGPUBackendLike).runWebGPUProgram(program, [inputs.x], 'float32');
  }) as unknown as tf.KernelFunc);

  registerOnce(WEBGPU_KERNELS.geluGrad, (({ inputs, backend }: { inputs: { x: tf.TensorInfo; dy: tf.TensorInfo }; backend: unknown }) => {
    // d/dx [x Phi(x)] = Phi(x) + x phi(x).
    const program = flatProgram('topoprobe_gelu_grad', [...inputs.x.shape], ['A', 'B'], '', `
      let x = getAByOutputIndex(index);
      let dy = getBByOutputIndex(index);
      let cdf = 0.5 * (1.0 + erf_(x * 0.70710678118654752));
      let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
      setOutputAtIndex(index, dy * (cdf + x * pdf));`);
    const code = program.getUserCode;
    program.getUserCode = () => `${ERF_WGSL}\n${code()}`;
    return (backend as WebGPUBackendLike).runWebGPUProgram(program, [inputs.x, inputs.dy], 'float32');
  }) as unknown as tf.KernelFunc);

  // part 0: the new first moment; 1: the new second moment; 2: the new parameter (from the old moments,
  // recomputing the new ones, so the three passes can run in any order before the assignments).
  registerOnce(WEBGPU_KERNELS.adamwPart, (({ inputs, backend, attrs }: {
    inputs: { p: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo };
    backend: unknown;
    attrs: { part: number; lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; c1: number; c2: number; gradScale: number };
  }) => {
    const a = attrs;
    const body = [
      'setOutputAtIndex(index, m1);',
      'setOutputAtIndex(index, v1);',
      'let update = (m1 / uniforms.c1) / (sqrt(v1 / uniforms.c2) + uniforms.epsilon);\n' +
        '      setOutputAtIndex(index, p * (1.0 - uniforms.lr * uniforms.weightDecay) - uniforms.lr * update);',
    ][a.part]!;
    const program = flatProgram(`topoprobe_adamw_${a.part}`, [...inputs.p.shape], ['A', 'B', 'C', 'D'],
      'lr : f32, beta1 : f32, beta2 : f32, epsilon : f32, weightDecay : f32, c1 : f32, c2 : f32, gradScale : f32,', `
      let p = getAByOutputIndex(index);
      let g = getDByOutputIndex(index) * uniforms.gradScale;
      let m1 = uniforms.beta1 * getBByOutputIndex(index) + (1.0 - uniforms.beta1) * g;
      let v1 = uniforms.beta2 * getCByOutputIndex(index) + (1.0 - uniforms.beta2) * g * g;
      ${body}`);
    return (backend as WebGPUBackendLike).runWebGPUProgram(program, [inputs.p, inputs.m, inputs.v, inputs.g], 'float32',
      [a.lr, a.beta1, a.beta2, a.epsilon, a.weightDecay, a.c1, a.c2, a.gradScale].map((x) => ({ type: 'float32', data: [x] })));
  }) as unknown as tf.KernelFunc);
}
