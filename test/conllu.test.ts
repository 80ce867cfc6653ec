import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ConlluSentence,
  goldDepths,
  goldRootIndex,
  isPunctuation,
  parseConllu,
  readConllu,
} from '../src/data/conllu.js';
import { dataDir } from '../src/data/paths.js';
import { expectError } from './helpers.js';

/** A CoNLL-U line from its 10 columns written with spaces in between (none of these fields has a space). */
const row = (spaced: string): string => spaced.trim().split(/ +/).join('\t');

// Line numbers are given at the right; the text is joined with CRLF and has no final line break.
const SNIPPET = [
  '# newdoc id = doc1', // 1
  '# sent_id = s1', // 2
  "# text = I don't know.", // 3
  row('1   I     I     PRON  PRP _ 4 nsubj  _ _'), // 4
  row("2-3 don't _     _     _   _ _ _      _ _"), // 5  multiword token: skipped
  row('2   do    do    AUX   VBP _ 4 aux    _ _'), // 6
  row("3   n't   not   PART  RB  _ 4 advmod _ _"), // 7
  row('4   know  know  VERB  VB  _ 0 root   _ _'), // 8
  row('5   .     .     PUNCT .   _ 4 punct  _ _'), // 9
  '', // 10
  '# sent_id = s2', // 11
  row('1   The   the   DET   DT  _ 2 det    _ _'), // 12
  row('2   cat   cat   NOUN  NN  _ 6 nsubj  _ _'), // 13
  row('3   on    on    ADP   IN  _ 5 case   _ _'), // 14
  row('4   the   the   DET   DT  _ 5 det    _ _'), // 15
  row('5   mat   mat   NOUN  NN  _ 2 nmod   _ _'), // 16
  row('5.1 is    be    AUX   VBZ _ _ _      6:dep _'), // 17  empty node: skipped
  row('6   sleeps sleep VERB VBZ _ 0 root   _ _'), // 18
  row('7   .     .     PUNCT .   _ 6 punct  _ _'), // 19
  '', // 20
  '', // 21
  row('1   Go    go    VERB  VB  _ 0 root   _ _'), // 22
  row('2   -LRB- -lrb- PUNCT -LRB- _ 1 punct _ _'), // 23
].join('\r\n');

/** Parses `lines` (joined with LF) as bad.conllu and expects an error naming bad.conllu:<line> and `fragments`. */
function expectBad(lines: string[], line: number | null, ...fragments: string[]): string {
  const where = line === null ? 'bad.conllu' : `bad.conllu:${line}:`;
  return expectError(() => parseConllu(lines.join('\n'), 'bad.conllu'), where, ...fragments);
}

const GOOD = [row('1 a a X X _ 2 dep _ _'), row('2 b b X X _ 0 root _ _')];

describe('conllu: parseConllu on a hand-written snippet', () => {
  const sentences = parseConllu(SNIPPET, 'snippet.conllu');

  it('finds the three sentences, their comments and first lines', () => {
    expect(sentences.map((s) => s.id)).to.deep.equal(['s1', 's2', undefined]);
    expect(sentences.map((s) => s.text)).to.deep.equal(["I don't know.", undefined, undefined]);
    expect(sentences.map((s) => s.line)).to.deep.equal([1, 11, 22]);
  });

  it('keeps the syntactic words of a multiword token and skips empty nodes', () => {
    expect(sentences[0]!.words.map((w) => w.form)).to.deep.equal(['I', 'do', "n't", 'know', '.']);
    expect(sentences[1]!.words.map((w) => w.form)).to.deep.equal(['The', 'cat', 'on', 'the', 'mat', 'sleeps', '.']);
    expect(sentences[1]!.words.map((w) => w.index)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
  });

  it('reads every field it keeps, with no carriage return left over', () => {
    expect(sentences[0]!.words[2]).to.deep.equal({ index: 3, form: "n't", upos: 'PART', xpos: 'RB', head: 4, deprel: 'advmod' });
    expect(sentences[2]!.words[1]).to.deep.equal({ index: 2, form: '-LRB-', upos: 'PUNCT', xpos: '-LRB-', head: 1, deprel: 'punct' });
  });

  it('gives hand-computed depths with the root at 1 (the default) and at 0', () => {
    expect(goldDepths(sentences[0]!)).to.deep.equal([2, 2, 2, 1, 2]);
    expect(goldDepths(sentences[0]!, 0)).to.deep.equal([1, 1, 1, 0, 1]);
    // The(3) <- cat(2) <- sleeps(1); on(4), the(4) <- mat(3) <- cat; .(2) <- sleeps
    expect(goldDepths(sentences[1]!, 1)).to.deep.equal([3, 2, 4, 4, 3, 1, 2]);
    expect(goldDepths(sentences[1]!, 0)).to.deep.equal([2, 1, 3, 3, 2, 0, 1]);
    expect(goldDepths(sentences[2]!)).to.deep.equal([1, 2]);
  });

  it('finds the root word', () => {
    expect(sentences.map(goldRootIndex)).to.deep.equal([3, 5, 0]);
  });

  it('parses LF text the same, with or without a final line break, and ignores a byte-order mark', () => {
    const lf = SNIPPET.replace(/\r\n/g, '\n');
    expect(parseConllu(lf, 'x')).to.deep.equal(sentences);
    expect(parseConllu(lf + '\n\n', 'x')).to.deep.equal(sentences);
    expect(parseConllu('\uFEFF' + SNIPPET, 'x')).to.deep.equal(sentences);
  });

  it('ignores a block of comments alone', () => {
    const s = parseConllu(['# global.columns = ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC', '', ...GOOD].join('\n'), 'x');
    expect(s).to.have.length(1);
    expect(s[0]!.line).to.equal(3);
  });
});

describe('conllu: isPunctuation', () => {
  it('is true for UPOS PUNCT and for Hewitt & Manning\'s XPOS set', () => {
    expect(isPunctuation({ upos: 'PUNCT', xpos: 'HYPH' })).to.equal(true);
    for (const xpos of ["''", ',', '.', ':', '``', '-LRB-', '-RRB-']) {
      expect(isPunctuation({ upos: 'SYM', xpos }), xpos).to.equal(true);
    }
  });

  it('is false otherwise', () => {
    expect(isPunctuation({ upos: 'SYM', xpos: '$' })).to.equal(false);
    expect(isPunctuation({ upos: 'NOUN', xpos: 'NN' })).to.equal(false);
    expect(isPunctuation({ upos: 'X', xpos: '-lrb-' })).to.equal(false);
  });
});

describe('conllu: errors name the file and line', () => {
  it('a wrong column count', () => {
    expectBad([GOOD[0]!, '2\tb\tb\tX\tX\t_\t0\troot\t_'], 2, 'expected 10 tab-separated columns, found 9');
    expectBad([...GOOD, '', '1 a a X X _ 0 root _ _'], 4, 'found 1', 'not spaces');
    expectBad([GOOD[0]!, '2-3\tbc\t_\t_\t_\t_\t_\t_\t_', ...GOOD.slice(1)], 2, 'found 9');
  });

  it('a non-integer ID', () => {
    expectBad([row('x a a X X _ 0 root _ _')], 1, 'ID (column 1)', '"x"');
    expectBad([GOOD[0]!, row('-2 b b X X _ 0 root _ _')], 2, 'ID (column 1)');
  });

  it('a non-integer HEAD', () => {
    expectBad([GOOD[0]!, row('2 b b X X _ _ root _ _')], 2, 'HEAD (column 7)', 'word 2', '"_"');
    expectBad([row('1 a a X X _ 1.5 dep _ _')], 1, 'HEAD (column 7)', '"1.5"');
    expectBad([row('1 a a X X _ -1 dep _ _')], 1, 'HEAD (column 7)');
  });

  it('IDs that do not run 1..n in order', () => {
    expectBad(['# sent_id = q', row('2 a a X X _ 0 root _ _')], 2, 'expected ID 1, got 2', 'sent_id q');
    expectBad([GOOD[0]!, row('3 b b X X _ 0 root _ _')], 2, 'expected ID 2, got 3');
    expectBad([...GOOD, row('2 c c X X _ 2 dep _ _')], 3, 'expected ID 3, got 2');
    expectBad([row('0 a a X X _ 0 root _ _')], 1, 'expected ID 1, got 0');
  });

  it('a HEAD out of range', () => {
    expectBad([...GOOD, '', GOOD[0]!, row('2 b b X X _ 3 dep _ _'), row('3 c c X X _ 0 root _ _'), row('4 d d X X _ 9 dep _ _')], 7, 'HEAD', 'is 9, out of range', '4 words');
  });

  it('no root', () => {
    expectBad([...GOOD, '', '# sent_id = loop', row('1 a a X X _ 2 dep _ _'), row('2 b b X X _ 1 dep _ _')], 4, 'no root', 'sent_id loop');
  });

  it('several roots', () => {
    expectBad([row('1 a a X X _ 0 root _ _'), row('2 b b X X _ 1 dep _ _'), row('3 c c X X _ 0 root _ _')], 3, '2 roots', 'words 1, 3', 'lines 1, 3');
  });

  it('a cycle', () => {
    const msg = expectBad(
      [...GOOD, '', row('1 a a X X _ 0 root _ _'), row('2 b b X X _ 4 dep _ _'), row('3 c c X X _ 2 dep _ _'), row('4 d d X X _ 3 dep _ _')],
      5,
      'cycle',
    );
    expect(msg).to.include('2 -> 4 -> 3 -> 2');
    expectBad([row('1 a a X X _ 0 root _ _'), row('2 b b X X _ 2 dep _ _')], 2, 'cycle', '2 -> 2');
  });

  it('an empty file, or one with no sentences', () => {
    expectBad([''], null, 'no sentences');
    expectBad(['', '', '\r'], null, 'no sentences');
    expectBad(['# just a comment'], null, 'no sentences');
  });

  it('a sentence with no words', () => {
    expectBad([...GOOD, '', '# sent_id = e', '# text = nothing'], 4, 'sent_id e', 'no words');
    expectBad([...GOOD, '', row('1.1 a a X X _ _ _ 0:root _')], 4, 'no words');
  });

  it('counts lines across CRLF text and several sentences', () => {
    const text = [...GOOD, '', '', '# sent_id = third', ...GOOD, '', row('1 a a X X _ 2 dep _ _'), row('2 b b X X _ 3 dep _ _')].join('\r\n');
    expectError(() => parseConllu(text, 'crlf.conllu'), 'crlf.conllu:10:', 'out of range');
  });
});

describe('conllu: readConllu', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-conllu-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file and names it in errors', () => {
    const good = join(dir, 'good.conllu');
    writeFileSync(good, SNIPPET);
    expect(readConllu(good)).to.deep.equal(parseConllu(SNIPPET, good));
    const bad = join(dir, 'bad.conllu');
    writeFileSync(bad, [...GOOD, '', '1\ta'].join('\n'));
    expectError(() => readConllu(bad), `${bad}:4:`, 'found 2');
    const empty = join(dir, 'empty.conllu');
    writeFileSync(empty, '');
    expectError(() => readConllu(empty), empty, 'no sentences');
  });

  it('reads UTF-8 text, and refuses invalid UTF-8 naming the file and the line of the first bad byte', () => {
    const lines = ['# sent_id = s9', '# text = a cafe', row('1   café  café  NOUN  NN  _ 0 root   _ _'), ''];
    const good = join(dir, 'utf8.conllu');
    writeFileSync(good, lines.join('\n'));
    expect(readConllu(good)[0]!.words[0]!.form).to.equal('café');
    // The same text with é in Latin-1 (one byte 0xE9), as a file saved in the wrong encoding has it.
    const latin1 = join(dir, 'latin1.conllu');
    writeFileSync(latin1, Buffer.from(lines.join('\r\n'), 'latin1'));
    const message = expectError(() => readConllu(latin1), `CoNLL-U file ${latin1}: invalid UTF-8 at line 3, byte 6 of the line (bytes 0xe9 0x09`);
    expect(message).to.include('iconv');
  });

  it('names a missing file', () => {
    const missing = join(dir, 'missing.conllu');
    expectError(() => readConllu(missing), 'cannot read CoNLL-U file', missing);
  });
});

/** Every sentence's depths (root at 1) form the tree its HEADs describe; the root-at-0 depths are one less. */
function checkTree(s: ConlluSentence): void {
  const d1 = goldDepths(s, 1);
  const d0 = goldDepths(s, 0);
  const where = `sentence at line ${s.line}`;
  expect(d1.filter((d) => d === 1), where).to.have.length(1);
  expect(d1.indexOf(1), where).to.equal(goldRootIndex(s));
  s.words.forEach((w, i) => {
    if (w.head !== 0) expect(d1[i], `${where}, word ${w.index}`).to.equal(d1[w.head - 1]! + 1);
    expect(d0[i]).to.equal(d1[i]! - 1);
  });
}

describe('conllu: the EWT subset (real data; skipped when absent)', () => {
  const files: Array<[split: string, sentences: number]> = [
    ['train', 2021],
    ['dev', 1382],
    ['test', 711],
  ];
  for (const [split, count] of files) {
    it(`${split}: ${count} sentences, each a tree`, function () {
      const path = join(dataDir(), 'ud-ewt', `en_ewt-ud-${split}.conllu`);
      if (!existsSync(path)) this.skip();
      const sentences = readConllu(path);
      expect(sentences).to.have.length(count);
      for (const s of sentences) {
        expect(s.words.length).to.be.greaterThan(0);
        checkTree(s);
      }
      expect(sentences.some((s) => s.words.some(isPunctuation))).to.equal(true);
    });
  }
});
