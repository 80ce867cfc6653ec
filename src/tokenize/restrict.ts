/**
 * A vocabulary restricted to the word pieces a corpus uses, so that a small model is not mostly
 * embedding table (bert-uncased has 30,522 pieces; a 256-wide table of them is 7.8M parameters).
 *
 * Kept, in the original id order (so the new ids are the old ones renumbered, and [PAD] stays 0):
 *   - the special tokens [PAD], [UNK], [CLS], [SEP], [MASK];
 *   - every single-character piece (`x` and `##x`) that the corpus uses or whose character is printable
 *     ASCII: WordPiece's greedy longest match then still splits any word of such characters that the
 *     full vocabulary can split, falling back to shorter pieces, so it does not become [UNK] (bert-uncased
 *     has about 2,000 single-character pieces, mostly CJK and other scripts an English corpus never uses);
 *   - every other piece the corpus uses at least `minCount` times (counted with the full vocabulary).
 * A word of the corpus whose pieces are all kept is tokenized exactly as the full vocabulary does:
 * the restricted longest match can be no longer than the full one, and the full one is still there.
 * The `[unusedN]` placeholders are dropped.
 */
import { check } from '../util/errors.js';

export const KEPT_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

export interface RestrictedVocab {
  /** The kept pieces; `vocab[i]` has the new id i. */
  vocab: string[];
  /** `originalIds[i]`: the id piece i had in the full vocabulary. */
  originalIds: number[];
}

/** The character of a single-character piece (`x` or `##x`), or null for a longer piece. */
function singleCharacter(token: string, prefix: string): string | null {
  const body = token.startsWith(prefix) && token.length > prefix.length ? token.slice(prefix.length) : token;
  return [...body].length === 1 ? body : null;
}

/**
 * The restricted vocabulary. `counts[id]` is how often the corpus uses piece `id` of `full`.
 */
export function restrictVocab(full: readonly string[], counts: ArrayLike<number>, opts: { minCount: number; prefix?: string }): RestrictedVocab {
  const prefix = opts.prefix ?? '##';
  check(Number.isInteger(opts.minCount) && opts.minCount >= 1, () => `vocabulary restriction: min_count must be a positive integer, got ${opts.minCount}`);
  check(counts.length === full.length, () => `vocabulary restriction: ${counts.length} counts for ${full.length} pieces`);
  for (const special of KEPT_SPECIAL_TOKENS) {
    check(full.includes(special), () => `vocabulary restriction: the vocabulary has no ${special}`);
  }
  const vocab: string[] = [];
  const originalIds: number[] = [];
  full.forEach((token, id) => {
    const special = (KEPT_SPECIAL_TOKENS as readonly string[]).includes(token);
    const placeholder = /^\[[^\]]+\]$/.test(token) && !special;
    const char = singleCharacter(token, prefix);
    const keptCharacter = char !== null && (counts[id]! > 0 || /^[\x21-\x7e]$/.test(char));
    if (special || (!placeholder && (keptCharacter || counts[id]! >= opts.minCount))) {
      vocab.push(token);
      originalIds.push(id);
    }
  });
  return { vocab, originalIds };
}
