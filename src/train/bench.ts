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
  /** Called after each timed or warm-up step. */
  onStep?: (info: { step: number; warmup: boolean; ms: number }) => void;
}

export interface BenchResult {
  backend: string;
  config: Omit<BenchOptions, 'onStep'>;
  parameters: number;
  ms_per_step: number;
  tokens_per_s: number;
  step_ms: number[];
  warmup_ms: number[];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function benchTrainingStep(opts: BenchOptions): BenchResult {
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
    const ms = median(stepMs);
    return {
      backend: currentBackend()?.name ?? tf.getBackend(),
      config,
      parameters: model.parameterCount(),
      ms_per_step: ms,
      tokens_per_s: (opts.batch * opts.seq * 1000) / ms,
      step_ms: stepMs,
      warmup_ms: warmupMs,
    };
  } finally {
    tf.dispose([inputIds, attentionMask, labels]);
    optimizer.dispose();
    model.dispose();
  }
}
