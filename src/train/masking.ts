/**
 * BERT's masked-language-model corruption, as a pure function of a sequence and a random generator.
 *
 * Following Google's `create_pretraining_data.py` (Devlin et al. 2019):
 *   - the candidates are the sequence's word pieces that are not special tokens ([CLS], [SEP], [PAD], ...);
 *   - exactly max(1, round(candidates × probability)) of them are selected, in a seeded random order;
 *     with whole-word masking the candidates are whole words (a piece and the `##` pieces after it),
 *     taken in random order and skipped when they would overshoot the count, so a word is selected
 *     entirely or not at all;
 *   - each selected piece becomes [MASK] with probability `maskRatio` (0.8), a random piece with
 *     probability `randomRatio` (0.1), and stays itself otherwise (0.1);
 *   - the model is scored on the selected positions only, against the original pieces.
 *
 * A fixed count (rather than Hugging Face's independent 15% coin per piece) gives every sentence at
 * least one prediction, which matters for the short sentences of this project's corpora.
 */
import type { Rng } from '../util/random.js';
import { check } from '../util/errors.js';

export interface MaskingOptions {
  /** Fraction of candidate pieces selected for prediction (BERT: 0.15). */
  probability: number;
  /** Of the selected pieces, the fraction replaced by [MASK] (BERT: 0.8). */
  maskRatio: number;
  /** Of the selected pieces, the fraction replaced by a random piece (BERT: 0.1); the rest stay. */
  randomRatio: number;
  /** Select whole words (a piece plus the `##` pieces that continue it) instead of single pieces. */
  wholeWord: boolean;
  maskId: number;
  /** Ids never selected (special tokens). */
  specialIds: ReadonlySet<number>;
  /** Ids a random replacement is drawn from (uniformly); usually every non-special piece. */
  randomIds: readonly number[];
}

export interface MaskedSequence {
  /** The corrupted input. */
  inputIds: number[];
  /** Selected positions, ascending. */
  positions: number[];
  /** The original piece at each selected position. */
  labels: number[];
}

export function checkMaskingOptions(opts: MaskingOptions): void {
  check(opts.probability > 0 && opts.probability < 1, () => `masking: probability must be in (0, 1), got ${opts.probability}`);
  check(opts.maskRatio >= 0 && opts.randomRatio >= 0 && opts.maskRatio + opts.randomRatio <= 1, () => `masking: mask (${opts.maskRatio}) and random (${opts.randomRatio}) ratios must be non-negative and sum to at most 1`);
  check(opts.randomRatio === 0 || opts.randomIds.length > 0, 'masking: random replacement needs at least one id to draw from');
}

/**
 * Corrupts one sequence. `continues[i]` says piece i continues the word of piece i - 1 (it starts
 * with `##`); it is only read with `wholeWord`.
 */
export function maskSequence(ids: readonly number[], continues: readonly boolean[], rng: Rng, opts: MaskingOptions): MaskedSequence {
  const groups: number[][] = [];
  ids.forEach((id, i) => {
    if (opts.specialIds.has(id)) return;
    const last = groups[groups.length - 1];
    if (opts.wholeWord && continues[i] && last && last[last.length - 1] === i - 1) last.push(i);
    else groups.push([i]);
  });
  const candidates = groups.reduce((n, g) => n + g.length, 0);
  const inputIds = [...ids];
  if (candidates === 0) return { inputIds, positions: [], labels: [] };
  const target = Math.max(1, Math.round(candidates * opts.probability));
  const selected: number[] = [];
  for (const group of rng.shuffle(groups)) {
    if (selected.length >= target) break;
    if (selected.length + group.length > target) continue;
    selected.push(...group);
  }
  if (selected.length === 0) selected.push(...groups[0]!); // every word is longer than the target: take one
  selected.sort((a, b) => a - b);
  for (const i of selected) {
    const r = rng.uniform();
    if (r < opts.maskRatio) inputIds[i] = opts.maskId;
    else if (r < opts.maskRatio + opts.randomRatio) inputIds[i] = opts.randomIds[rng.int(opts.randomIds.length)]!;
  }
  return { inputIds, positions: selected, labels: selected.map((i) => ids[i]!) };
}

/** `continues` for `maskSequence` from the pieces' strings. */
export function continuationFlags(tokens: readonly string[], prefix = '##'): boolean[] {
  return tokens.map((t) => t.startsWith(prefix) && t.length > prefix.length);
}
