/**
 * Hidden states of every submodule for a batch of inputs, as plain arrays with padding removed: the
 * library behind `topoprobe hidden-states`, for users who dump representations for analysis.
 */
import * as tf from '@tensorflow/tfjs';
import type { BertModel } from './bert.js';
import { padBatch, disposeBatch, type EncodedSequence } from '../data/batch.js';
import { TopoprobeError } from '../util/errors.js';

export interface SequenceHiddenStates {
  ids: number[];
  /** (numLayers + 1) x length x hidden: index 0 is the embedding output, i the output of layer i. */
  hidden_states: number[][][];
  pooled: number[];
}

/** Checks that every id is a valid row of the model's embedding table. */
export function checkIds(seqs: readonly EncodedSequence[], model: BertModel): void {
  const vocab = model.config.vocab_size;
  const maxLen = model.config.max_position_embeddings;
  seqs.forEach((s, i) => {
    if (s.ids.length === 0) throw new TopoprobeError(`input ${i + 1} is empty`);
    if (s.ids.length > maxLen) {
      throw new TopoprobeError(`input ${i + 1} has ${s.ids.length} tokens, more than the model's max_position_embeddings ${maxLen}`);
    }
    const bad = s.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad !== undefined) throw new TopoprobeError(`input ${i + 1}: id ${bad} is outside the vocabulary [0, ${vocab})`);
    const badType = s.tokenTypeIds?.find((t) => !Number.isInteger(t) || t < 0 || t >= model.config.type_vocab_size);
    if (badType !== undefined) throw new TopoprobeError(`input ${i + 1}: token type ${badType} is outside [0, ${model.config.type_vocab_size})`);
  });
}

/** Runs all sequences as one right-padded batch (evaluation mode) and returns real-token states. */
export async function hiddenStates(model: BertModel, seqs: readonly EncodedSequence[], padId = model.config.pad_token_id): Promise<SequenceHiddenStates[]> {
  checkIds(seqs, model);
  const batch = padBatch(seqs, padId);
  const out = model.forward(batch, { hiddenStates: 'all' });
  try {
    const layers: number[][][][] = [];
    for (const i of [...out.hiddenStates.keys()].sort((a, b) => a - b)) layers.push((await out.hiddenStates.get(i)!.array()) as number[][][]);
    const pooled = (await out.pooled!.array()) as number[][];
    return seqs.map((s, b) => ({
      ids: [...s.ids],
      hidden_states: layers.map((layer) => layer[b]!.slice(0, batch.lengths[b])),
      pooled: pooled[b]!,
    }));
  } finally {
    tf.dispose([...out.hiddenStates.values(), out.lastHiddenState, out.pooled!]);
    if (out.logits) out.logits.dispose();
    disposeBatch(batch);
  }
}
