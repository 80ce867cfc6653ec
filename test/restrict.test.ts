import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { restrictVocab, KEPT_SPECIAL_TOKENS } from '../src/tokenize/restrict.js';
import { BertTokenizer } from '../src/tokenize/tokenizer.js';
import { readVocabFile } from '../src/tokenize/vocab.js';
import { bertUncasedVocabPath, dataDir } from '../src/data/paths.js';
import { expectError, haveData } from './helpers.js';

describe('vocabulary restriction', () => {
  // id:        0        1            2            3        4        5        6         7    8    9      10   11     12    13     14     15      16      17      18     19
  const full = ['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', '##a', 'é', '##é', '中', '##中', 'the', '##s', 'play', '##ing', 'rare', '[foo]'];
  const counts = [0, 5, 0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 1, 9, 4, 2, 1, 1, 0];

  it('keeps specials, printable ASCII single characters, used single characters and pieces used min_count times, in the original order', () => {
    const r = restrictVocab(full, counts, { minCount: 2 });
    expect(r.vocab).to.deep.equal(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', '##a', 'é', '##中', 'the', '##s', 'play']);
    expect(r.originalIds).to.deep.equal([0, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16]);
    r.vocab.forEach((t, i) => expect(full[r.originalIds[i]!]).to.equal(t));
    // min_count 1 adds the pieces used once; [unused0] stays out although "used".
    const one = restrictVocab(full, counts, { minCount: 1 });
    expect(one.vocab).to.deep.equal(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', '##a', 'é', '##中', 'the', '##s', 'play', '##ing', 'rare']);
    // A high threshold keeps only specials and characters.
    expect(restrictVocab(full, counts, { minCount: 100 }).vocab).to.deep.equal(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', '##a', 'é', '##中', '##s']);
  });

  it('another continuation prefix', () => {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '@@x', '@@xy', '##xy', 'ü'];
    // '@@x' is a single character with prefix '@@'; '##xy' is then a 4-character piece.
    expect(restrictVocab(vocab, [0, 0, 0, 0, 0, 0, 0, 0, 0], { minCount: 1, prefix: '@@' }).vocab).to.deep.equal(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '@@x']);
  });

  it('rejects a bad min_count, a counts array of another length and a vocabulary without a special', () => {
    for (const m of [0, -1, 1.5]) expectError(() => restrictVocab(full, counts, { minCount: m }), 'min_count must be a positive integer', String(m));
    expectError(() => restrictVocab(full, counts.slice(1), { minCount: 1 }), `${counts.length - 1} counts for ${full.length} pieces`);
    for (const special of KEPT_SPECIAL_TOKENS) {
      expectError(() => restrictVocab(full.filter((t) => t !== special), counts.slice(1), { minCount: 1 }), `the vocabulary has no ${special}`);
    }
  });

  describe('with bert-uncased', function () {
    let fullVocab: string[];
    let fullTok: BertTokenizer;
    let lines: string[];
    before(function () {
      if (!haveData('bert-uncased/vocab.txt', 'cola/in_domain_train.tsv')) this.skip();
      fullVocab = readVocabFile(bertUncasedVocabPath());
      fullTok = BertTokenizer.fromVocab(fullVocab);
      lines = readFileSync(join(dataDir(), 'cola', 'in_domain_train.tsv'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')[3]!);
    });

    const countsOf = (text: readonly string[]) => {
      const c = new Uint32Array(fullVocab.length);
      for (const l of text) for (const id of fullTok.tokensToIds(fullTok.tokenize(l))) c[id]! += 1;
      return c;
    };

    it('tokenizes every word of the corpus exactly as the full vocabulary (min_count 1)', () => {
      const corpus = lines.slice(0, 400);
      const r = restrictVocab(fullVocab, countsOf(corpus), { minCount: 1 });
      expect(r.vocab.length).to.be.above(500).and.below(5000);
      expect(r.vocab.slice(0, 1)).to.deep.equal(['[PAD]']);
      expect(r.vocab.some((t) => t.startsWith('[unused'))).to.equal(false);
      for (let i = 1; i < r.originalIds.length; i++) expect(r.originalIds[i]!).to.be.above(r.originalIds[i - 1]!);
      const small = BertTokenizer.fromVocab(r.vocab);
      for (const line of corpus) {
        const pieces = fullTok.tokenize(line);
        expect(small.tokenize(line), line).to.deep.equal(pieces);
        // The renumbered ids map back to the full ones.
        expect(small.tokensToIds(pieces).map((id) => r.originalIds[id])).to.deep.equal(fullTok.tokensToIds(pieces));
      }
    });

    it('with min_count 3: words whose pieces are kept tokenize identically, the rest split into kept pieces without [UNK]', () => {
      const corpus = lines.slice(0, 400);
      const r = restrictVocab(fullVocab, countsOf(corpus), { minCount: 3 });
      const kept = new Set(r.vocab);
      const small = BertTokenizer.fromVocab(r.vocab);
      let same = 0;
      let resplit = 0;
      // Later CoLA lines too: unseen words must not become [UNK] either.
      for (const line of [...corpus, ...lines.slice(400, 600), 'xylophonists quizzically bewildered'].flatMap((l) => l.split(/\s+/).filter(Boolean))) {
        const a = fullTok.tokenize(line);
        const b = small.tokenize(line);
        if (a.every((p) => kept.has(p))) {
          expect(b, line).to.deep.equal(a);
          same += 1;
        } else {
          if (!a.includes('[UNK]')) expect(b, line).to.not.include('[UNK]');
          const glue = (ps: string[]) => ps.map((p) => p.replace(/^##/, '')).join('');
          expect(glue(b), line).to.equal(glue(a));
          for (const p of b) expect(kept.has(p), `${p} of ${line}`).to.equal(true);
          resplit += 1;
        }
      }
      expect(same).to.be.above(1000);
      expect(resplit).to.be.above(50);
      expect(r.vocab.length).to.be.below(restrictVocab(fullVocab, countsOf(corpus), { minCount: 1 }).vocab.length);
    });
  });
});
