/**
 * Word-to-word-piece alignment for text that comes already split into words (CoNLL-U tokens, for
 * instance): each word is tokenized on its own, so a piece never straddles two words, and every
 * piece knows the word it came from.
 */
import { TopoprobeError, check } from '../util/errors.js';
import { getLogger } from '../util/log.js';
import type { BertTokenizer } from '../tokenize/tokenizer.js';

export interface EncodeWordsOptions {
  /** The most tokens the encoding may have, [CLS] and [SEP] included (BERT models: 512). */
  maxLength?: number;
  /**
   * What to do when the words do not fit in `maxLength`: true (the default) drops whole words from
   * the end (`wordsCut` says how many); false throws a TopoprobeError.
   */
  truncation?: boolean;
}

export interface WordEncoding {
  ids: number[];
  tokenTypeIds: number[];
  tokens: string[];
  /** Per piece, the index of its word in `words`; null for [CLS] and [SEP]. */
  wordIndex: Array<number | null>;
  /**
   * Per word kept, the range [start, end) of its pieces in `ids`. A word with no pieces of its own
   * (only control characters, say) gets one [UNK], so every range is non-empty.
   */
  wordSpans: Array<[start: number, end: number]>;
  /** How many words at the end were dropped to fit `maxLength` (`wordSpans` covers the others). */
  wordsCut: number;
}

/**
 * Encodes pre-split words as `[CLS] pieces of word 0, pieces of word 1, ... [SEP]`, recording which
 * word each piece belongs to.
 */
export function encodeWords(tokenizer: BertTokenizer, words: readonly string[], opts: EncodeWordsOptions = {}): WordEncoding {
  const perWord = words.map((word) => {
    const pieces = tokenizer.tokenize(word);
    return pieces.length > 0 ? pieces : [tokenizer.unkToken];
  });

  let kept = perWord.length;
  const { maxLength, truncation = true } = opts;
  if (maxLength !== undefined) {
    check(Number.isInteger(maxLength) && maxLength > 0, `maxLength must be a positive integer, got ${maxLength}`);
    const specials = tokenizer.numSpecialTokens(false);
    const total = perWord.reduce((n, pieces) => n + pieces.length, specials);
    if (total > maxLength) {
      if (!truncation) {
        throw new TopoprobeError(
          `${words.length} words make ${total} tokens, over maxLength ${maxLength} (truncation is off); first words: ${words.slice(0, 8).join(' ')}`,
        );
      }
      check(maxLength >= specials, `maxLength ${maxLength} is less than the ${specials} special tokens the encoding needs`);
      let used = specials;
      kept = 0;
      while (kept < perWord.length && used + perWord[kept]!.length <= maxLength) used += perWord[kept++]!.length;
      getLogger().debug({ words: words.length, kept, tokens: total, maxLength }, 'cut words to fit maxLength');
    }
  }

  const pieces: string[] = [];
  const pieceWord: number[] = [];
  for (let w = 0; w < kept; w++) {
    for (const piece of perWord[w]!) {
      pieces.push(piece);
      pieceWord.push(w);
    }
  }

  const { ids, tokenTypeIds, tokens, sequenceIds } = tokenizer.assemble(pieces);
  const wordIndex: Array<number | null> = [];
  const wordSpans: Array<[number, number]> = [];
  let next = 0;
  sequenceIds.forEach((seq, position) => {
    if (seq === null) {
      wordIndex.push(null);
      return;
    }
    const w = pieceWord[next++]!;
    wordIndex.push(w);
    if (wordSpans.length === w) wordSpans.push([position, position + 1]);
    else wordSpans[w]![1] = position + 1;
  });
  return { ids, tokenTypeIds, tokens, wordIndex, wordSpans, wordsCut: words.length - kept };
}

/**
 * Spreads per-word values over the pieces: each piece gets its word's value and each special token
 * (`wordIndex` null) gets `special`. The depth probe uses it for gold depths per piece (Li, Yin & Lin
 * give [CLS] and [SEP] depth 2).
 */
export function spreadWordValues(values: readonly number[], wordIndex: ReadonlyArray<number | null>, special: number): number[] {
  return wordIndex.map((w, position) => {
    if (w === null) return special;
    const value = values[w];
    check(value !== undefined, `piece ${position} belongs to word ${w}, but there are only ${values.length} word values`);
    return value;
  });
}
