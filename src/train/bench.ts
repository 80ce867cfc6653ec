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
  config: Omit<BenchOptions, 'onStep'>;
  parameters: number;
  ms_per_step: number;
  tokens_per_s: number;
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
  const time = (warmup: boolean, step: number): number => {
    const t0 = performance.now();
    trainingStep(model, optimizer, { inputIds, attentionMask }, labels, { lr: 2e-5, maxGradNorm: 1 });
    const ms = performance.now() - t0;
    onStep?.({ step, warmup, ms });
    return ms;
  };
  try {
    const warmupMs = Array.from({ length: opts.warmup }, (_, i) => time(true, i));
    const stepMs = Array.from({ length: opts.steps }, (_, i) => time(false, i));
    const ms = summarize(stepMs).median;
    let profile: StepProfile | undefined;
    if (opts.profile) {
      const t0 = performance.now();
      const info = await tf.profile(() => {
        trainingStep(model, optimizer, { inputIds, attentionMask }, labels, { lr: 2e-5, maxGradNorm: 1 });
      });
      profile = summariseProfile(info, performance.now() - t0);
    }
    return {
      backend: currentBackend()?.name ?? tf.getBackend(),
      ...(currentBackend()?.threads !== undefined ? { threads: currentBackend()!.threads } : {}),
      config,
      parameters: model.parameterCount(),
      ms_per_step: ms,
      tokens_per_s: (opts.batch * opts.seq * 1000) / ms,
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
 * allocation included, as in training): 1024^3 and the BERT-base feed-forward shapes. Median of `reps`.
 */
export function benchGemm(reps = 5): GemmResult[] {
  const shapes: Array<[string, number, number, number, boolean]> = [
    ['square 1024', 1024, 1024, 1024, false],
    ['ffn up [2048,768]x[3072,768]^T', 2048, 3072, 768, true],
    ['ffn down [2048,3072]x[768,3072]^T', 2048, 768, 3072, true],
  ];
  const rng = new Rng(7);
  return shapes.map(([shape, m, n, k, transposeB]) => {
    const fill = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
    const a = tf.tensor2d(fill(m * k), [m, k]);
    const b = tf.tensor2d(fill(k * n), transposeB ? [n, k] : [k, n]);
    const once = () => {
      const t0 = performance.now();
      const c = tf.matMul(a, b, false, transposeB);
      c.dataSync();
      const dt = performance.now() - t0;
      c.dispose();
      return dt;
    };
    once();
    const ms = summarize(Array.from({ length: reps }, once)).median;
    tf.dispose([a, b]);
    return { shape, m, n, k, transposeB, ms, gflop_per_s: (2 * m * n * k) / ms / 1e6 };
  });
}
