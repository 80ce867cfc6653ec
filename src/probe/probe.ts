/**
 * Structural probes: linear maps whose squared norms are read as tree quantities.
 *
 * - DepthProbe (Hewitt & Manning 2019; Li, Yin & Lin 2023): f_B(h) = ||B h||^2 predicts a word's depth in its
 *   dependency tree. B is [rank, hidden]; the paper uses rank = hidden / 2 and initialises B uniformly in
 *   (-0.05, 0.05).
 * - DistanceProbe (Hewitt & Manning 2019): d_B(h_i, h_j) = ||B (h_i - h_j)||^2 predicts the tree distance of
 *   two words.
 *
 * Probes are trained on cached hidden states (src/probe/measure.ts) and saved as safetensors with one tensor,
 * `B`, so fine-tuning can start from a measured probe.
 */
import * as tf from '@tensorflow/tfjs';
import { readCopy } from '../backend/read.js';
import { Rng } from '../util/random.js';
import { readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { TopoprobeError } from '../util/errors.js';

export interface ProbeOptions {
  hidden: number;
  /** Rank of B (default hidden / 2, as the paper). */
  rank?: number;
  /** B starts uniform in (-initRange, initRange) (default 0.05, as the paper). */
  initRange?: number;
  seed?: number;
}

abstract class LinearProbe {
  readonly hidden: number;
  readonly rank: number;
  /** [rank, hidden] */
  readonly B: tf.Variable;

  constructor(opts: ProbeOptions & { weights?: Float32Array }) {
    this.hidden = opts.hidden;
    this.rank = opts.rank ?? Math.max(1, Math.floor(opts.hidden / 2));
    if (!Number.isInteger(this.rank) || this.rank < 1) throw new TopoprobeError(`probe rank must be a positive integer (got ${opts.rank})`);
    let values = opts.weights;
    if (!values) {
      const range = opts.initRange ?? 0.05;
      const rng = new Rng(opts.seed ?? 0);
      values = new Float32Array(this.rank * this.hidden);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng.uniform() - 1) * range;
    }
    if (values.length !== this.rank * this.hidden) {
      throw new TopoprobeError(`probe weights have ${values.length} values, expected rank ${this.rank} x hidden ${this.hidden}`);
    }
    const initial = tf.tensor2d(values, [this.rank, this.hidden]);
    this.B = tf.variable(initial, true);
    initial.dispose();
  }

  /** ||B x||^2 for each row of x [n, hidden] -> [n]. */
  protected squaredNorm(x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => tf.sum(tf.square(tf.matMul(x, this.B, false, true)), -1) as tf.Tensor1D);
  }

  /** Copies of the weights [rank, hidden]. */
  weights(): Promise<Float32Array> {
    return readCopy(this.B);
  }

  /** Saves B as `model.safetensors`-style file with metadata (strings). */
  async save(path: string, metadata: Record<string, string> = {}): Promise<void> {
    writeSafetensors(path, [{ name: 'B', shape: [this.rank, this.hidden], data: await this.weights() }], {
      metadata: { ...metadata, probe: this.kind, rank: String(this.rank), hidden: String(this.hidden) },
    });
  }

  abstract readonly kind: string;

  dispose(): void {
    this.B.dispose();
  }
}

export class DepthProbe extends LinearProbe {
  readonly kind = 'depth';

  /** Predicted depths (squared norms) of hidden states [n, hidden] -> [n]. */
  predict(h: tf.Tensor2D): tf.Tensor1D {
    return this.squaredNorm(h);
  }

  /** Loads a probe written by `save` (B [rank, hidden]). */
  static load(path: string): { probe: DepthProbe; metadata: Record<string, string> } {
    const { B, metadata } = readProbe(path);
    return { probe: new DepthProbe({ hidden: B.shape[1]!, rank: B.shape[0]!, weights: B.data }), metadata };
  }
}

export class DistanceProbe extends LinearProbe {
  readonly kind = 'distance';

  /** Predicted squared distances ||B (h_i - h_j)||^2 for all pairs of rows of h [n, hidden] -> [n, n]. */
  predict(h: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.predictBatch(h.expandDims(0) as tf.Tensor3D).squeeze([0]) as tf.Tensor2D);
  }

  /**
   * The same for a batch of padded sentences x [batch, length, hidden] -> [batch, length, length], as
   * |t_i|^2 + |t_j|^2 - 2 t_i . t_j with t = B h: one batched matrix product instead of the
   * [batch, length, length, rank] tensor of differences. Rows of padding give garbage the caller masks.
   */
  predictBatch(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, n] = x.shape;
      const t = tf.matMul(x.reshape([b * n, this.hidden]), this.B, false, true).reshape([b, n, this.rank]) as tf.Tensor3D;
      const sq = tf.sum(tf.square(t), -1); // [b, n]
      const gram = tf.matMul(t, t, false, true); // [b, n, n]
      return tf.sub(tf.add(sq.expandDims(2), sq.expandDims(1)), tf.mul(2, gram)) as tf.Tensor3D;
    });
  }

  static load(path: string): { probe: DistanceProbe; metadata: Record<string, string> } {
    const { B, metadata } = readProbe(path);
    return { probe: new DistanceProbe({ hidden: B.shape[1]!, rank: B.shape[0]!, weights: B.data }), metadata };
  }
}

function readProbe(path: string): { B: { shape: number[]; data: Float32Array }; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(path);
  const B = tensors.get('B');
  if (!B || B.shape.length !== 2 || !(B.data instanceof Float32Array)) {
    throw new TopoprobeError(`${path}: not a probe file (expected one float tensor "B" of shape [rank, hidden])`);
  }
  return { B: { shape: B.shape, data: B.data }, metadata };
}
