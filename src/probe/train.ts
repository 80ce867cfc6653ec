/**
 * Training and evaluating a depth probe on cached hidden states.
 *
 * An example is one sentence: the hidden states of its scored positions (already selected: real word pieces
 * in clean mode; every padded position, specials included, in the paper's mode) and, for the supervised probe,
 * a gold depth per position. The targets and the loss are objective.ts's: the mean squared error over all
 * scored positions of a batch of sentences, as in the authors' code. Training uses Adam; the probe kept is the one with the lowest held-out (dev) MSE over the epochs,
 * and the reported score is its MSE on the test sentences.
 */
import * as tf from '@tensorflow/tfjs';
import { DepthProbe } from './probe.js';
import { groupLabels, labelMse, targetLabels, type Target } from './objective.js';
import { Rng } from '../util/random.js';

export type { Target };

export interface ProbeExample {
  /** [n, hidden] hidden states of the scored positions, row-major. */
  states: Float32Array;
  /** Number of scored positions. */
  n: number;
  /** Gold target per scored position (for `sp`). */
  gold?: Float32Array;
}

export interface ProbeTrainOptions {
  hidden: number;
  rank?: number;
  initRange?: number;
  lr: number;
  epochs: number;
  /** Sentences per optimisation step. */
  batchSize: number;
  seed: number;
  /** Called after each epoch with the mean training loss and the dev MSE. */
  onEpoch?: (info: { epoch: number; trainLoss: number; devMse: number }) => void;
}

export interface ProbeTrainResult {
  probe: DepthProbe;
  /** 1-based epoch whose probe was kept (lowest dev MSE). */
  bestEpoch: number;
  devMse: number;
  trainLoss: number[];
}

/** Stacks examples' states into one [N, hidden] tensor. */
function stack(examples: readonly ProbeExample[], hidden: number): { x: tf.Tensor2D; offsets: number[] } {
  const total = examples.reduce((s, e) => s + e.n, 0);
  const data = new Float32Array(total * hidden);
  const offsets: number[] = [];
  let at = 0;
  for (const e of examples) {
    offsets.push(at);
    data.set(e.states.subarray(0, e.n * hidden), at * hidden);
    at += e.n;
  }
  return { x: tf.tensor2d(data, [total, hidden]), offsets };
}

/** Predicted depths per example (in batches, no gradient). */
export async function predictDepths(probe: DepthProbe, examples: readonly ProbeExample[], batchSize = 256): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const { x, offsets } = stack(batch, probe.hidden);
    const pred = tf.tidy(() => probe.predict(x));
    const values = (await pred.data()) as Float32Array;
    batch.forEach((e, j) => out.push(values.slice(offsets[j], offsets[j]! + e.n)));
    tf.dispose([x, pred]);
  }
  return out;
}

/** Mean squared error over all scored positions of `examples` against their `target` labels. */
export async function heldOutMse(probe: DepthProbe, examples: readonly ProbeExample[], target: Target): Promise<{ mse: number; tokens: number }> {
  const preds = await predictDepths(probe, examples);
  let sum = 0;
  let tokens = 0;
  examples.forEach((e, i) => {
    const p = preds[i]!;
    const t = targetLabels(target, p, e.gold);
    for (let k = 0; k < e.n; k++) sum += (p[k]! - t[k]!) ** 2;
    tokens += e.n;
  });
  return { mse: tokens > 0 ? sum / tokens : NaN, tokens };
}

/** A batch's labels under `target`: the gold depths, or the tree labels of the probe's current predictions. */
async function batchLabels(probe: DepthProbe, x: tf.Tensor2D, target: Target, groups: number[], gold: ReadonlyArray<ArrayLike<number> | undefined>): Promise<Float32Array> {
  if (target === 'sp') return groupLabels(target, new Float32Array(groups.reduce((a, b) => a + b, 0)), groups, gold);
  const pred = probe.predict(x);
  const values = await pred.data();
  pred.dispose();
  return groupLabels(target, values, groups, gold);
}

/** What a probe fitting loop needs of one batch: its loss (run inside the optimiser's tape) and cleanup. */
export interface PreparedBatch {
  loss: () => tf.Scalar;
  dispose: () => void;
}

/**
 * The probe fitting loop shared by the depth and distance probes: Adam on B, the training examples
 * shuffled each epoch (seeded), `prepare` turning a batch into its loss, and after each epoch the probe
 * scored on the dev examples by `devScore` (lower is better; it gets the epoch's mean training loss, for
 * when there is no dev set); B ends as the best epoch's weights.
 */
export async function fitProbe<E>(
  probe: { B: tf.Variable; weights(): Promise<Float32Array>; rank: number; hidden: number },
  train: readonly E[],
  opts: Pick<ProbeTrainOptions, 'lr' | 'epochs' | 'batchSize' | 'seed' | 'onEpoch'>,
  prepare: (batch: E[]) => Promise<PreparedBatch>,
  devScore: (trainLoss: number) => Promise<number>,
): Promise<{ bestEpoch: number; devMse: number; trainLoss: number[] }> {
  const optimizer = tf.train.adam(opts.lr);
  const rng = new Rng(opts.seed + 17);
  const order = train.map((_, i) => i);
  let best = { epoch: 0, score: Infinity, weights: await probe.weights() };
  const trainLoss: number[] = [];
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      rng.shuffle(order);
      let lossSum = 0;
      let steps = 0;
      for (let i = 0; i < order.length; i += opts.batchSize) {
        const prepared = await prepare(order.slice(i, i + opts.batchSize).map((j) => train[j]!));
        try {
          const loss = optimizer.minimize(prepared.loss, true, [probe.B])!;
          lossSum += (await loss.data())[0]!;
          loss.dispose();
        } finally {
          prepared.dispose();
        }
        steps += 1;
      }
      const mean = lossSum / Math.max(1, steps);
      const score = await devScore(mean);
      trainLoss.push(mean);
      opts.onEpoch?.({ epoch, trainLoss: mean, devMse: score });
      if (score < best.score) best = { epoch, score, weights: await probe.weights() };
    }
  } finally {
    optimizer.dispose();
  }
  const weights = tf.tensor2d(best.weights, [probe.rank, probe.hidden]);
  probe.B.assign(weights);
  weights.dispose();
  return { bestEpoch: best.epoch, devMse: best.score, trainLoss };
}

/**
 * Trains a depth probe for `target` on `train`, selecting the epoch by MSE on `dev`. A tree target's labels
 * are read off the probe's predictions on the batch just before each step's gradient (the same values the
 * step's own forward pass computes), so no tensor is read inside the tape.
 */
export async function trainProbe(target: Target, train: readonly ProbeExample[], dev: readonly ProbeExample[], opts: ProbeTrainOptions): Promise<ProbeTrainResult> {
  const probe = new DepthProbe({ hidden: opts.hidden, rank: opts.rank, initRange: opts.initRange, seed: opts.seed });
  const fit = await fitProbe(probe, train, opts, async (batch) => {
    const { x } = stack(batch, opts.hidden);
    const labels = await batchLabels(probe, x, target, batch.map((e) => e.n), batch.map((e) => e.gold));
    return { loss: () => labelMse(probe.predict(x), labels), dispose: () => x.dispose() };
  }, async (trainLoss) => (dev.length > 0 ? (await heldOutMse(probe, dev, target)).mse : trainLoss));
  return { probe, ...fit };
}
