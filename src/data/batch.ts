/**
 * Padding encoded sequences into one batch (right padding, as BERT expects).
 */
import * as tf from '@tensorflow/tfjs';

export interface EncodedSequence {
  ids: readonly number[];
  tokenTypeIds?: readonly number[];
}

export interface PaddedBatch {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  tokenTypeIds: tf.Tensor2D;
  /** Real length of each sequence. */
  lengths: number[];
}

/** Pads to the longest sequence (or `padTo`, if longer) with `padId`, mask 0 and token type 0. */
export function padBatch(seqs: readonly EncodedSequence[], padId: number, padTo = 0): PaddedBatch {
  const width = Math.max(padTo, ...seqs.map((s) => s.ids.length));
  const n = seqs.length;
  const ids = new Int32Array(n * width).fill(padId);
  const mask = new Int32Array(n * width);
  const types = new Int32Array(n * width);
  seqs.forEach((s, b) => {
    s.ids.forEach((id, t) => {
      ids[b * width + t] = id;
      mask[b * width + t] = 1;
      types[b * width + t] = s.tokenTypeIds?.[t] ?? 0;
    });
  });
  return {
    inputIds: tf.tensor2d(ids, [n, width], 'int32'),
    attentionMask: tf.tensor2d(mask, [n, width], 'int32'),
    tokenTypeIds: tf.tensor2d(types, [n, width], 'int32'),
    lengths: seqs.map((s) => s.ids.length),
  };
}

export function disposeBatch(batch: PaddedBatch): void {
  tf.dispose([batch.inputIds, batch.attentionMask, batch.tokenTypeIds]);
}
