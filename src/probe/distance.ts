/**
 * Training and applying Hewitt & Manning's distance probe on cached hidden states.
 *
 * An example is one sentence: the hidden states of its real word pieces, each piece's word, and the gold
 * tree distances between its words. A piece inherits its word's distances (two pieces of one word are 0
 * apart), as the depth probe's pieces inherit their word's depth. The loss is structural-probes': per
 * sentence the summed absolute difference between predicted and gold distances over all n x n piece
 * pairs, divided by n^2, averaged over the sentences of a batch. Training is `fitProbe`'s (Adam, the
 * epoch with the lowest dev loss kept).
 *
 * For evaluation the predictions are merged to words as the depth probe's are: a word pair's distance is
 * the mean over its piece pairs, and a word's distance to itself is 0. UUAS and distance Spearman
 * (metrics.ts) are computed on those word-level matrices.
 */
import * as tf from '@tensorflow/tfjs';
import { DistanceProbe } from './probe.js';
import { fitProbe, type ProbeTrainOptions } from './train.js';

export interface DistanceExample {
  /** [n, hidden] hidden states of the sentence's real word pieces, row-major. */
  states: Float32Array;
  /** Number of pieces. */
  n: number;
  /** Per piece, its word (0 .. words - 1). */
  pieceWord: Int32Array;
  /** Number of words. */
  words: number;
  /** [words, words] gold tree distances, row-major (needed for training and the loss). */
  gold?: Float32Array;
}

/** A batch padded to its longest sentence: states [b, L, hidden], and per pair its gold and weight 1/n^2. */
interface PaddedBatch {
  x: tf.Tensor3D;
  gold: tf.Tensor3D;
  weight: tf.Tensor3D;
  length: number;
}

function padBatch(batch: readonly DistanceExample[], hidden: number, withGold: boolean): PaddedBatch {
  const b = batch.length;
  const L = Math.max(1, ...batch.map((e) => e.n));
  const x = new Float32Array(b * L * hidden);
  const gold = new Float32Array(withGold ? b * L * L : 0);
  const weight = new Float32Array(withGold ? b * L * L : 0);
  batch.forEach((e, s) => {
    x.set(e.states.subarray(0, e.n * hidden), s * L * hidden);
    if (!withGold) return;
    if (!e.gold) throw new Error('distance probe example without gold distances');
    const w = 1 / (e.n * e.n);
    for (let i = 0; i < e.n; i++) {
      const wi = e.pieceWord[i]!;
      for (let j = 0; j < e.n; j++) {
        const at = (s * L + i) * L + j;
        gold[at] = e.gold[wi * e.words + e.pieceWord[j]!]!;
        weight[at] = w;
      }
    }
  });
  return {
    x: tf.tensor3d(x, [b, L, hidden]),
    gold: tf.tensor3d(gold, withGold ? [b, L, L] : [0, L, L]),
    weight: tf.tensor3d(weight, withGold ? [b, L, L] : [0, L, L]),
    length: L,
  };
}

function disposeBatch(p: PaddedBatch): void {
  tf.dispose([p.x, p.gold, p.weight]);
}

/** structural-probes' L1 loss of a padded batch: mean over sentences of sum |pred - gold| / n^2. */
function batchLoss(probe: DistanceProbe, p: PaddedBatch): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(tf.abs(tf.sub(probe.predictBatch(p.x), p.gold)), p.weight)), p.x.shape[0]) as tf.Scalar);
}

/** The mean per-sentence loss over `examples` (no gradient). */
export async function distanceLoss(probe: DistanceProbe, examples: readonly DistanceExample[], batchSize = 32): Promise<number> {
  let sum = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const p = padBatch(batch, probe.hidden, true);
    const loss = batchLoss(probe, p);
    sum += (await loss.data())[0]! * batch.length;
    loss.dispose();
    disposeBatch(p);
  }
  return examples.length > 0 ? sum / examples.length : NaN;
}

export interface DistanceTrainResult {
  probe: DistanceProbe;
  bestEpoch: number;
  /** The kept epoch's dev loss. */
  devLoss: number;
  trainLoss: number[];
}

/** Trains a distance probe on `train`, keeping the epoch with the lowest loss on `dev`. */
export async function trainDistanceProbe(train: readonly DistanceExample[], dev: readonly DistanceExample[], opts: ProbeTrainOptions): Promise<DistanceTrainResult> {
  const probe = new DistanceProbe({ hidden: opts.hidden, rank: opts.rank, initRange: opts.initRange, seed: opts.seed });
  const fit = await fitProbe(probe, train, opts, async (batch) => {
    const p = padBatch(batch, opts.hidden, true);
    return { loss: () => batchLoss(probe, p), dispose: () => disposeBatch(p) };
  }, async (trainLoss) => (dev.length > 0 ? distanceLoss(probe, dev) : trainLoss));
  return { probe, bestEpoch: fit.bestEpoch, devLoss: fit.devMse, trainLoss: fit.trainLoss };
}

/**
 * Merges a piece-level distance matrix [n, n] (row-major) into words: the mean over each word pair's
 * piece pairs, 0 on the diagonal. Returns words x words rows.
 */
export function mergeToWords(pred: ArrayLike<number>, n: number, pieceWord: ArrayLike<number>, words: number): number[][] {
  const sum = Array.from({ length: words }, () => new Array<number>(words).fill(0));
  const count = Array.from({ length: words }, () => new Array<number>(words).fill(0));
  for (let i = 0; i < n; i++) {
    const u = pieceWord[i]!;
    for (let j = 0; j < n; j++) {
      const v = pieceWord[j]!;
      sum[u]![v]! += pred[i * n + j]!;
      count[u]![v]! += 1;
    }
  }
  return sum.map((row, u) => row.map((s, v) => (u === v ? 0 : count[u]![v]! > 0 ? s / count[u]![v]! : NaN)));
}

/** Word-level predicted distances (see `mergeToWords`) for each example. */
export async function predictWordDistances(probe: DistanceProbe, examples: readonly DistanceExample[], batchSize = 32): Promise<number[][][]> {
  const out: number[][][] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const p = padBatch(batch, probe.hidden, false);
    const pred = probe.predictBatch(p.x);
    const values = (await pred.data()) as Float32Array;
    const L = p.length;
    batch.forEach((e, s) => {
      const own = new Float32Array(e.n * e.n);
      for (let a = 0; a < e.n; a++) own.set(values.subarray((s * L + a) * L, (s * L + a) * L + e.n), a * e.n);
      out.push(mergeToWords(own, e.n, e.pieceWord, e.words));
    });
    pred.dispose();
    disposeBatch(p);
  }
  return out;
}
