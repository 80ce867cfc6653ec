/**
 * Times full training steps (forward, backward, clipping, AdamW) of a BERT with a classification head,
 * on random data of a given size. Reports the median over several steps after warm-up.
 */
import * as tf from '@tensorflow/tfjs';
import { BertModel } from '../model/bert.js';
import { parseBertConfig } from '../model/config.js';
import { AdamW } from './optimizer.js';
import { trainingStep } from './step.js';
import { Rng } from '../util/random.js';
import { currentBackend } from '../backend/index.js';
import { adapterText } from '../backend/webgpu.js';
import { summarize } from '../util/stats.js';

export interface BenchOptions {
  layers: number;
  hidden: number;
  heads: number;
  inter: number;
  batch: number;
  seq: number;
  vocab: number;
  labels: number;
  warmup: number;
  steps: number;
  seed: number;
  /** Also profile one more step kernel by kernel (tf.profile). */
  profile?: boolean;
  /** Called after each timed or warm-up step. */
  onStep?: (info: { step: number; warmup: boolean; ms: number }) => void;
}

export interface KernelTime {
  name: string;
  ms: number;
  calls: number;
}

export interface StepProfile {
  /** Wall time of the profiled step (profiling adds some overhead). */
  wall_ms: number;
  /** Per kernel, most expensive first. */
  kernels: KernelTime[];
  /** Time and arithmetic of the matrix products (BatchMatMul, _FusedMatMul). */
  matmul_ms: number;
  matmul_gflop: number;
  matmul_gflop_per_s: number;
}

export interface BenchResult {
  backend: string;
  threads?: number;
  /** The GPU adapter (webgpu). */
  adapter?: string;
  config: Omit<BenchOptions, 'onStep'>;
  parameters: number;
  ms_per_step: number;
  tokens_per_s: number;
  /** The step's matrix products (stepMatmulFlops) in TFLOP, and that over the step's time: a lower bound on their throughput. */
  matmul_tflop_per_step: number;
  matmul_tflop_per_s: number;
  step_ms: number[];
  warmup_ms: number[];
  profile?: StepProfile;
}

const MATMUL_KERNELS = new Set(['BatchMatMul', '_FusedMatMul']);

/** Multiply-adds x 2 of a matrix product, from its first operand's and its output's shapes. */
export function matmulFlops(aShape: readonly number[], outShape: readonly number[]): number {
  const M = outShape[outShape.length - 2]!;
  const aMatrix = aShape[aShape.length - 1]! * aShape[aShape.length - 2]!;
  const K = aMatrix / M;
  return 2 * outShape.reduce((x, y) => x * y, 1) * K;
}

/** Sums a tf.profile record by kernel name. */
export function summariseProfile(info: Awaited<ReturnType<typeof tf.profile>>, wallMs: number): StepProfile {
  const byName = new Map<string, KernelTime>();
  let matmulMs = 0;
  let flops = 0;
  for (const k of info.kernels) {
    // Op-level scopes (custom gradients: "fusedMatMul__op", "unnamed scope") contain kernels that are
    // listed on their own; counting both would count that time twice.
    if (/__op$/.test(k.name) || k.name === 'unnamed scope') continue;
    const ms = Number(k.kernelTimeMs) || 0;
    const entry = byName.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls += 1;
    byName.set(k.name, entry);
    if (MATMUL_KERNELS.has(k.name) && k.inputShapes[0] && k.outputShapes[0]) {
      matmulMs += ms;
      flops += matmulFlops(k.inputShapes[0], k.outputShapes[0]);
    }
  }
  const kernels = [...byName.values()].sort((a, b) => b.ms - a.ms).map((k) => ({ ...k, ms: Math.round(k.ms * 10) / 10 }));
  return { wall_ms: wallMs, kernels, matmul_ms: matmulMs, matmul_gflop: flops / 1e9, matmul_gflop_per_s: flops / 1e6 / matmulMs };
}


/**
 * Floating-point operations (2 per multiply-add) of one training step's matrix products: per layer the
 * query, key, value and output projections (4 x 2NH^2 for N = batch x seq tokens), the two feed-forward
 * products (2 x 2NHI) and the attention scores and context (2 x 2 B T^2 H), plus the pooler and classifier;
 * the backward pass does each product twice more (the gradients of both operands), so 3x the forward.
 */
export function stepMatmulFlops(o: { layers: number; hidden: number; inter: number; batch: number; seq: number; labels: number }): number {
  const n = o.batch * o.seq;
  const perLayer = 4 * 2 * n * o.hidden * o.hidden + 2 * 2 * n * o.hidden * o.inter + 2 * 2 * o.batch * o.seq * o.seq * o.hidden;
  const head = 2 * o.batch * o.hidden * o.hidden + 2 * o.batch * o.hidden * o.labels;
  return 3 * (o.layers * perLayer + head);
}

export async function benchTrainingStep(opts: BenchOptions): Promise<BenchResult> {
  const { onStep, ...config } = opts;
  const bertConfig = parseBertConfig({
    vocab_size: opts.vocab,
    hidden_size: opts.hidden,
    num_hidden_layers: opts.layers,
    num_attention_heads: opts.heads,
    intermediate_size: opts.inter,
    max_position_embeddings: Math.max(512, opts.seq),
    num_labels: opts.labels,
  });
  const model = BertModel.init(bertConfig, { head: true, seed: opts.seed });
  const optimizer = new AdamW({ weightDecay: 0.01 });
  const rng = new Rng(opts.seed + 1);
  const ids = new Int32Array(opts.batch * opts.seq);
  for (let i = 0; i < ids.length; i++) ids[i] = i % opts.seq === 0 ? 101 % opts.vocab : rng.int(opts.vocab);
  const inputIds = tf.tensor2d(ids, [opts.batch, opts.seq], 'int32');
  const attentionMask = tf.ones([opts.batch, opts.seq], 'int32') as tf.Tensor2D;
  const labels = tf.tensor1d(Array.from({ length: opts.batch }, () => rng.int(opts.labels)), 'int32');
  // A step ends when its update is on the device: the parameters are read back (one value), so a GPU's queue
  // is drained before the clock stops.
  const settle = async () => {
    const probe = model.params.values().next().value!;
    await tf.tidy(() => probe.flatten().slice(0, 1)).data();
  };
  const time = async (warmup: boolean, step: number): Promise<number> => {
    const t0 = performance.now();
    await trainingStep(model, optimizer, { inputIds, attentionMask }, labels, { lr: 2e-5, maxGradNorm: 1 });
    await settle();
    const ms = performance.now() - t0;
    onStep?.({ step, warmup, ms });
    return ms;
  };
  try {
    const warmupMs: number[] = [];
    for (let i = 0; i < opts.warmup; i++) warmupMs.push(await time(true, i));
    const stepMs: number[] = [];
    for (let i = 0; i < opts.steps; i++) stepMs.push(await time(false, i));
    const ms = summarize(stepMs).median;
    let profile: StepProfile | undefined;
    if (opts.profile) {
      const t0 = performance.now();
      const info = await tf.profile(async () => {
        await trainingStep(model, optimizer, { inputIds, attentionMask }, labels, { lr: 2e-5, maxGradNorm: 1 });
      });
      profile = summariseProfile(info, performance.now() - t0);
    }
    const flops = stepMatmulFlops(opts);
    const adapter = currentBackend()?.adapter;
    return {
      backend: currentBackend()?.name ?? tf.getBackend(),
      ...(currentBackend()?.threads !== undefined ? { threads: currentBackend()!.threads } : {}),
      ...(adapter ? { adapter: adapterText(adapter) } : {}),
      config,
      parameters: model.parameterCount(),
      ms_per_step: ms,
      tokens_per_s: (opts.batch * opts.seq * 1000) / ms,
      matmul_tflop_per_step: flops / 1e12,
      matmul_tflop_per_s: flops / 1e12 / (ms / 1000),
      step_ms: stepMs,
      warmup_ms: warmupMs,
      ...(profile ? { profile } : {}),
    };
  } finally {
    tf.dispose([inputIds, attentionMask, labels]);
    optimizer.dispose();
    model.dispose();
  }
}

export interface GemmResult {
  shape: string;
  m: number;
  n: number;
  k: number;
  transposeB: boolean;
  ms: number;
  gflop_per_s: number;
}

/**
 * Single-precision matrix-product throughput through tf.matMul on the current backend (output
 * allocation included, as in training): 1024^3 and the BERT-base and bert-large feed-forward shapes.
 * Each timing runs `chain` products back to back and reads one value of the last (on a GPU, so that
 * the queue's latency is spread over many products); the median of `reps` timings.
 */
export async function benchGemm(reps = 5, chain = 1): Promise<GemmResult[]> {
  const shapes: Array<[string, number, number, number, boolean]> = [
    ['square 1024', 1024, 1024, 1024, false],
    ['ffn up [2048,768]x[3072,768]^T', 2048, 3072, 768, true],
    ['ffn down [2048,3072]x[768,3072]^T', 2048, 768, 3072, true],
    ['large ffn up [4096,1024]x[4096,1024]^T', 4096, 4096, 1024, true],
  ];
  const rng = new Rng(7);
  const out: GemmResult[] = [];
  for (const [shape, m, n, k, transposeB] of shapes) {
    const fill = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
    const a = tf.tensor2d(fill(m * k), [m, k]);
    const b = tf.tensor2d(fill(k * n), transposeB ? [n, k] : [k, n]);
    const once = async () => {
      const t0 = performance.now();
      let c: tf.Tensor | null = null;
      for (let i = 0; i < chain; i++) {
        c?.dispose();
        c = tf.matMul(a, b, false, transposeB);
      }
      const first = tf.tidy(() => c!.flatten().slice(0, 1));
      await first.data();
      const dt = (performance.now() - t0) / chain;
      tf.dispose([c!, first]);
      return dt;
    };
    await once();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) times.push(await once());
    const ms = summarize(times).median;
    tf.dispose([a, b]);
    out.push({ shape, m, n, k, transposeB, ms, gflop_per_s: (2 * m * n * k) / ms / 1e6 });
  }
  return out;
}
