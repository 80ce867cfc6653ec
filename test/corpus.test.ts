import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCorpus, splitHeldOut, chunkPieces, encodeCorpus } from '../src/data/corpus.js';
import { BertTokenizer } from '../src/tokenize/tokenizer.js';
import { expectError } from './helpers.js';

describe('pretraining corpus', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-corpus-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const write = (name: string, text: string | Uint8Array) => {
    const path = join(scratch, name);
    writeFileSync(path, text);
    return path;
  };

  describe('readCorpus', () => {
    it('reads lines of several files in order, trimmed, skipping blank ones (LF and CRLF)', () => {
      const a = write('a.txt', 'The cat sat.\n\n   \n  A dog ran.  \n');
      const b = write('b.txt', 'one\r\n\r\ntwo\r\nthree');
      const corpus = readCorpus([a, b]);
      expect(corpus.lines).to.deep.equal(['The cat sat.', 'A dog ran.', 'one', 'two', 'three']);
      expect(corpus.files).to.deep.equal([{ path: a, lines: 2 }, { path: b, lines: 3 }]);
    });

    it('errors name the field, its index and the file', () => {
      const good = write('good.txt', 'text\n');
      const missing = join(scratch, 'missing.txt');
      expectError(() => readCorpus([good, missing]), `corpus.files[1]: ${missing} does not exist`);
      const empty = write('empty.txt', '');
      expectError(() => readCorpus([empty, good]), `corpus.files[0]: ${empty} has no text`);
      const blank = write('blank.txt', '\n  \n\t\n');
      expectError(() => readCorpus([good, good, blank], 'extra.files'), `extra.files[2]: ${blank} has no text`);
      const dir = join(scratch, 'sub');
      mkdirSync(dir);
      expectError(() => readCorpus([dir]), `corpus.files[0]: ${dir} is not a file`);
      const binary = write('bin.dat', new Uint8Array([104, 105, 0, 1, 2, 10]));
      expectError(() => readCorpus([binary]), `corpus.files[0]: ${binary} is not a text file`);
      expectError(() => readCorpus([]), 'corpus.files: no corpus files given');
    });
  });

  describe('splitHeldOut', () => {
    it('is deterministic for a seed, disjoint, covering and sorted; another seed draws other lines', () => {
      const a = splitHeldOut(200, 30, 5);
      expect(splitHeldOut(200, 30, 5)).to.deep.equal(a);
      expect(a.heldOut).to.have.length(30);
      expect(a.train).to.have.length(170);
      const all = [...a.heldOut, ...a.train].sort((x, y) => x - y);
      expect(all).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
      for (const part of [a.heldOut, a.train]) for (let i = 1; i < part.length; i++) expect(part[i]!).to.be.above(part[i - 1]!);
      const b = splitHeldOut(200, 30, 6);
      expect(b.heldOut).to.not.deep.equal(a.heldOut);
      // A random draw, not the first or last lines.
      expect(a.heldOut.some((i) => i < 100) && a.heldOut.some((i) => i >= 100)).to.equal(true);
      expect(splitHeldOut(5, 0, 1)).to.deep.equal({ heldOut: [], train: [0, 1, 2, 3, 4] });
      expect(splitHeldOut(5, 4, 1).train).to.have.length(1);
    });

    it('refuses a held-out share that leaves nothing for training', () => {
      expectError(() => splitHeldOut(10, 10, 1), 'corpus.held_out: 10 held-out lines leave none of the 10 for training');
      expectError(() => splitHeldOut(10, 12, 1), 'corpus.held_out');
    });
  });

  describe('chunkPieces', () => {
    it('cuts into [CLS] chunk [SEP] sequences of at most max_length', () => {
      expect(chunkPieces([1, 2, 3, 4, 5, 6, 7], 5, 101, 102)).to.deep.equal([
        [101, 1, 2, 3, 102],
        [101, 4, 5, 6, 102],
        [101, 7, 102],
      ]);
      expect(chunkPieces([1, 2, 3], 5, 101, 102)).to.deep.equal([[101, 1, 2, 3, 102]]);
      expect(chunkPieces([1, 2, 3, 4, 5, 6], 5, 101, 102)).to.deep.equal([[101, 1, 2, 3, 102], [101, 4, 5, 6, 102]]);
      expect(chunkPieces([1, 2], 3, 101, 102)).to.deep.equal([[101, 1, 102], [101, 2, 102]]);
      expect(chunkPieces([], 5, 101, 102)).to.deep.equal([]);
      expectError(() => chunkPieces([1], 2, 101, 102), 'corpus.max_length must be at least 3, got 2');
    });
  });

  describe('encodeCorpus', () => {
    it('encodes lines as word-piece ids, chunking long ones and skipping lines with nothing to predict', () => {
      //               0        1        2        3        4         5      6      7      8       9
      const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'play', '##ing', '.'];
      const tok = BertTokenizer.fromVocab(vocab);
      const { sequences, cut, skipped } = encodeCorpus(['The cat sat.', 'playing the cat sat the cat', 'zebra', '\u0000'], tok, 6);
      expect(sequences).to.deep.equal([
        [2, 5, 6, 7, 10, 3],
        [2, 8, 9, 5, 6, 3],
        [2, 7, 5, 6, 3],
      ]);
      expect(cut).to.equal(1);
      // 'zebra' is only [UNK] (a special token, never masked) and '\u0000' has no pieces at all.
      expect(skipped).to.equal(2);
    });
  });
});
