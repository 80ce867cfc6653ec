import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { bertUncasedVocabPath } from '../src/data/paths.js';
import { encodeWords, spreadWordValues } from '../src/data/alignment.js';
import { BertTokenizer, tokenizerFromVocabFile } from '../src/tokenize/tokenizer.js';
import { TopoprobeError } from '../src/util/errors.js';

/** ids are the indices. */
const TINY = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', // 0-4
  'the', 'cat', 'sat', 'on', 'mat', // 5-9
  '##s', '.', ',', 'un', '##believ', // 10-14
  '##able', '!', // 15-16
];

describe('alignment: encodeWords (small vocabulary)', () => {
  const tok = BertTokenizer.fromVocab(TINY);
  const words = ['The', 'cats', ',', 'unbelievable', '!'];

  it('gives each word its own pieces, with hand-checked spans', () => {
    const e = encodeWords(tok, words);
    expect(e.tokens).to.deep.equal(['[CLS]', 'the', 'cat', '##s', ',', 'un', '##believ', '##able', '!', '[SEP]']);
    expect(e.ids).to.deep.equal([2, 5, 6, 10, 12, 13, 14, 15, 16, 3]);
    expect(e.tokenTypeIds).to.deep.equal(new Array(10).fill(0));
    expect(e.wordIndex).to.deep.equal([null, 0, 1, 1, 2, 3, 3, 3, 4, null]);
    expect(e.wordSpans).to.deep.equal([[1, 2], [2, 4], [4, 5], [5, 8], [8, 9]]);
    expect(e.wordsCut).to.equal(0);
  });

  it('never merges words, even when they would join as one text', () => {
    // Joined, "cat" + "s" would be the one word "cats"; kept apart, "s" is a word of its own ([UNK] here).
    const e = encodeWords(tok, ['cat', 's']);
    expect(e.tokens).to.deep.equal(['[CLS]', 'cat', '[UNK]', '[SEP]']);
    expect(e.wordSpans).to.deep.equal([[1, 2], [2, 3]]);
  });

  it('gives a word with no pieces of its own one [UNK]', () => {
    const e = encodeWords(tok, ['the', '\u0007', 'cat']);
    expect(e.ids).to.deep.equal([2, 5, 1, 6, 3]);
    expect(e.wordSpans).to.deep.equal([[1, 2], [2, 3], [3, 4]]);
  });

  it('drops whole words from the end to fit maxLength, and says how many', () => {
    // 8 pieces + 2 specials = 10 tokens.
    expect(encodeWords(tok, words, { maxLength: 10 }).wordsCut).to.equal(0);
    const e = encodeWords(tok, words, { maxLength: 8 }); // "unbelievable" (3 pieces) no longer fits whole
    expect(e.tokens).to.deep.equal(['[CLS]', 'the', 'cat', '##s', ',', '[SEP]']);
    expect(e.wordIndex).to.deep.equal([null, 0, 1, 1, 2, null]);
    expect(e.wordSpans).to.deep.equal([[1, 2], [2, 4], [4, 5]]);
    expect(e.wordsCut).to.equal(2);
    expect(encodeWords(tok, words, { maxLength: 2 }).ids).to.deep.equal([2, 3]);
  });

  it('throws, saying length and limit, when the words do not fit and truncation is off', () => {
    expect(() => encodeWords(tok, words, { maxLength: 9, truncation: false })).to.throw(TopoprobeError, /5 words make 10 tokens, over maxLength 9/);
  });
});

describe('alignment: spreadWordValues', () => {
  it('gives each piece its word value and specials the special value', () => {
    expect(spreadWordValues([1, 2, 3], [null, 0, 0, 1, 2, 2, 2, null], 2)).to.deep.equal([2, 1, 1, 2, 3, 3, 3, 2]);
    expect(spreadWordValues([0.5, -1], [null, 1, 0, null], 0)).to.deep.equal([0, -1, 0.5, 0]);
  });

  it('complains when a piece points past the values', () => {
    expect(() => spreadWordValues([1], [null, 0, 1, null], 2)).to.throw(TopoprobeError, /word 1.*only 1 word values/);
  });
});

describe('alignment: bert-uncased vocabulary', function () {
  const vocabPath = bertUncasedVocabPath();
  let tok: BertTokenizer;
  before(function () {
    if (!existsSync(vocabPath)) {
      console.log(`    (skipped: no bert-uncased vocabulary at ${vocabPath})`);
      this.skip();
    }
    tok = tokenizerFromVocabFile(vocabPath);
  });

  // A CoNLL-U-like sentence: punctuation words, contractions split by the pre-tokenizer, rare words.
  const words = ['The', 'embeddings', "weren't", 'tokenized', ',', 'Dr.', 'Smith', 'said', '!'];

  it('gives hand-checked word spans', () => {
    const e = encodeWords(tok, words);
    expect(e.tokens).to.deep.equal([
      '[CLS]', 'the', 'em', '##bed', '##ding', '##s', 'weren', "'", 't', 'token', '##ized', ',', 'dr', '.', 'smith', 'said', '!', '[SEP]',
    ]);
    expect(e.wordSpans).to.deep.equal([[1, 2], [2, 6], [6, 9], [9, 11], [11, 12], [12, 14], [14, 15], [15, 16], [16, 17]]);
    expect(e.wordIndex).to.deep.equal([null, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 7, 8, null]);
    // Here, as the words hold no spaces and split where BERT would split anyway, it equals encoding the text.
    expect(e.ids).to.deep.equal(tok.encode(words.join(' ')).ids);
  });

  it('each span detokenizes to its lowercased word', () => {
    const e = encodeWords(tok, words);
    e.wordSpans.forEach(([start, end], w) => {
      const text = e.tokens.slice(start, end).map((p) => p.replace(/^##/, '')).join('');
      expect(text, words[w]).to.equal(words[w]!.toLowerCase());
    });
  });

  it('spreads gold depths over pieces (specials at depth 2)', () => {
    const depths = [2, 1, 2, 0, 1, 2, 1, 0, 1];
    const e = encodeWords(tok, words);
    expect(spreadWordValues(depths, e.wordIndex, 2)).to.deep.equal([2, 2, 1, 1, 1, 1, 2, 2, 2, 0, 0, 1, 2, 2, 1, 0, 1, 2]);
  });
});
