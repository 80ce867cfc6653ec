import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bertUncasedVocabPath } from '../src/data/paths.js';
import {
  BertTokenizer,
  buildBertTokenizerJson,
  loadTokenizer,
  longestFirstLengths,
  tokenizerFromVocabFile,
} from '../src/tokenize/tokenizer.js';
import { parseVocab } from '../src/tokenize/vocab.js';
import { TopoprobeError } from '../src/util/errors.js';

/** A small vocabulary: ids are the indices. */
const TINY = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', // 0-4
  'the', 'cat', 'sat', 'on', 'mat', // 5-9
  '##s', '.', ',', 'hello', 'Hello', // 10-14
  'un', '##believ', '##able', 'world', '!', // 15-19
];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'topoprobe-tokenize-'));
}

function writeFolder(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('tokenize: generated tokenizer.json', () => {
  it('is the JSON Hugging Face builds for an uncased BERT vocabulary', () => {
    const vocab: Record<string, number> = {};
    TINY.forEach((t, i) => (vocab[t] = i));
    const special = (id: number, content: string) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    });
    expect(buildBertTokenizerJson(TINY)).to.deep.equal({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [special(0, '[PAD]'), special(1, '[UNK]'), special(2, '[CLS]'), special(3, '[SEP]'), special(4, '[MASK]')],
      normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [
          { SpecialToken: { id: '[CLS]', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '[SEP]', type_id: 0 } },
        ],
        pair: [
          { SpecialToken: { id: '[CLS]', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '[SEP]', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 1 } },
          { SpecialToken: { id: '[SEP]', type_id: 1 } },
        ],
        special_tokens: {
          '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
          '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
        },
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    });
  });

  it('takes the normalizer options, and leaves [MASK] out when the vocabulary has none', () => {
    const json = buildBertTokenizerJson(TINY.filter((t) => t !== '[MASK]'), { lowercase: false, tokenizeChineseChars: false });
    expect(json.normalizer).to.deep.equal({
      type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: null, lowercase: false,
    });
    expect(json.added_tokens.map((t) => t.content)).to.deep.equal(['[PAD]', '[UNK]', '[CLS]', '[SEP]']);
    expect(buildBertTokenizerJson(TINY, { stripAccents: false }).normalizer.strip_accents).to.equal(false);
  });

  it('rejects a vocabulary without [CLS], naming the source', () => {
    expect(() => buildBertTokenizerJson(TINY.filter((t) => t !== '[CLS]'), { source: '/x/vocab.txt' }))
      .to.throw(TopoprobeError, /\/x\/vocab\.txt: the vocabulary lacks \[CLS\]/);
  });

  it('rejects duplicate entries, naming their line numbers', () => {
    expect(() => buildBertTokenizerJson([...TINY, 'cat'], { source: 'v.txt' }))
      .to.throw(TopoprobeError, /v\.txt: .*"cat" at lines 7 and 21/);
  });

  it('parses vocab.txt lines (final newline, CRLF)', () => {
    expect(parseVocab('a\nb\n')).to.deep.equal(['a', 'b']);
    expect(parseVocab('a\r\nb\r\n')).to.deep.equal(['a', 'b']);
    expect(parseVocab('a\nb')).to.deep.equal(['a', 'b']);
  });
});

describe('tokenize: small vocabulary', () => {
  const tok = BertTokenizer.fromVocab(TINY);

  it('encodes with [CLS]/[SEP], lowercasing and ## pieces', () => {
    expect(tok.encode('The cats sat on the mat.').ids).to.deep.equal([2, 5, 6, 10, 7, 8, 5, 9, 11, 3]);
    expect(tok.encode('Unbelievable, HELLO world!').tokens).to.deep.equal(
      ['[CLS]', 'un', '##believ', '##able', ',', 'hello', 'world', '!', '[SEP]'],
    );
    expect([tok.vocabSize, tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).to.deep.equal([20, 0, 1, 2, 3, 4]);
  });

  it('keeps case when lowercase is off', () => {
    const cased = BertTokenizer.fromVocab(TINY, { lowercase: false });
    expect(cased.encode('Hello the The').ids).to.deep.equal([2, 14, 5, 1, 3]);
  });

  it('converts between ids and tokens', () => {
    expect(tok.tokensToIds(['cat', '##s', 'dog'])).to.deep.equal([6, 10, 1]);
    expect(tok.idsToTokens([2, 6, 10, 3])).to.deep.equal(['[CLS]', 'cat', '##s', '[SEP]']);
    expect(() => tok.idsToTokens([20])).to.throw(TopoprobeError, /20/);
    expect(tok.decode([2, 6, 10, 7, 3], { skipSpecialTokens: true })).to.equal('cats sat');
  });

  it('toJSON() is the generated tokenizer.json', () => {
    expect(tok.toJSON()).to.deep.equal(buildBertTokenizerJson(TINY));
    expect(JSON.parse(JSON.stringify(tok))).to.deep.equal(buildBertTokenizerJson(TINY));
  });
});

describe('tokenize: truncation', () => {
  it('splits a pair budget as Hugging Face longest-first does', () => {
    const cases: Array<[number, number, number, [number, number]]> = [
      [3, 3, 10, [3, 3]], // fits
      [10, 4, 10, [6, 4]], // only the longer is cut
      [4, 10, 10, [4, 6]],
      [20, 1, 5, [4, 1]],
      [8, 7, 10, [5, 5]], // both cut, even budget
      [8, 7, 11, [6, 5]], // odd budget: the longer gets the extra piece
      [7, 8, 11, [5, 6]],
      [8, 8, 11, [5, 6]], // tie: the second
      [12, 12, 3, [1, 2]],
      [5, 5, 0, [0, 0]],
    ];
    for (const [a, b, budget, expected] of cases) {
      expect(longestFirstLengths(a, b, budget), `${a}+${b} into ${budget}`).to.deep.equal(expected);
    }
  });
});

describe('tokenize: bert-uncased vocabulary', function () {
  const vocabPath = bertUncasedVocabPath();
  let tok: BertTokenizer;
  let lines: string[];
  const idOf = (token: string): number => {
    const id = lines.indexOf(token);
    expect(id, `${token} in vocab.txt`).to.be.at.least(0);
    return id;
  };

  before(function () {
    if (!existsSync(vocabPath)) {
      console.log(`    (skipped: no bert-uncased vocabulary at ${vocabPath})`);
      this.skip();
    }
    lines = readFileSync(vocabPath, 'utf8').split('\n');
    tok = tokenizerFromVocabFile(vocabPath);
  });

  it('gives bert-large-uncased ids for reference sentences', () => {
    expect(tok.encode('Hello, world!').ids).to.deep.equal([101, 7592, 1010, 2088, 999, 102]);
    expect(tok.encode('The quick brown fox jumps over the lazy dog.').ids).to.deep.equal(
      [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102],
    );
    expect(tok.vocabSize).to.equal(30522);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).to.deep.equal([0, 100, 101, 102, 103]);
  });

  it('strips accents', () => {
    expect(tok.encode('Café naïve').ids).to.deep.equal([101, idOf('cafe'), idOf('naive'), 102]);
    expect(tok.encode('Café naïve').ids).to.deep.equal(tok.encode('cafe naive').ids);
  });

  it('splits CJK ideographs into words, also outside the BMP', () => {
    expect(tok.tokenize('我中国人')).to.deep.equal(['我', '中', '国', '人']);
    expect(tok.encode('the中the').ids).to.deep.equal([101, idOf('the'), idOf('中'), idOf('the'), 102]);
    // U+20000 (CJK extension B) is not in the vocabulary but must still be a word of its own.
    expect(tok.tokenize('a\u{20000}b')).to.deep.equal(['a', '[UNK]', 'b']);
    const noChinese = tokenizerFromVocabFile(vocabPath, { tokenizeChineseChars: false });
    const pieces = noChinese.tokenize('the中the');
    expect(pieces).to.deep.equal(['the', '##中', '##the']);
    for (const p of pieces) idOf(p);
  });

  it('makes [UNK] of over-long and unknown words', () => {
    expect(tok.encode('a' + 'b'.repeat(100)).ids).to.deep.equal([101, 100, 102]);
    expect(lines).to.not.include('\u{1F600}');
    expect(tok.tokenize('hello \u{1F600} world')).to.deep.equal(['hello', '[UNK]', 'world']);
  });

  it('splits rare words into ## pieces from the vocabulary', () => {
    expect(tok.tokenize('tokenization')).to.deep.equal(['token', '##ization']);
    for (const word of ['tokenization', 'electroencephalography', 'antidisestablishmentarianism']) {
      const pieces = tok.tokenize(word);
      expect(pieces.length, word).to.be.at.least(2);
      expect(pieces[0]!.startsWith('##')).to.equal(false);
      for (const p of pieces.slice(1)) expect(p.startsWith('##'), p).to.equal(true);
      for (const p of pieces) idOf(p);
      expect(pieces.map((p) => p.replace(/^##/, '')).join('')).to.equal(word);
    }
  });

  it('encodes pairs with token types 0 then 1', () => {
    const e = tok.encode('Hello, world!', 'The dog.');
    expect(e.ids).to.deep.equal([101, 7592, 1010, 2088, 999, 102, 1996, 3899, 1012, 102]);
    expect(e.tokenTypeIds).to.deep.equal([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(e.sequenceIds).to.deep.equal([null, 0, 0, 0, 0, null, 1, 1, 1, null]);
    // An empty second text is still a pair.
    expect(tok.encode('Hello', '').ids).to.deep.equal([101, 7592, 102, 102]);
  });

  it('truncates single texts and pairs (longest first)', () => {
    expect(tok.encode('The quick brown fox jumps over the lazy dog.', undefined, { maxLength: 6 }).ids)
      .to.deep.equal([101, 1996, 4248, 2829, 4419, 102]);
    const letters = (s: string) => s.split(' ').map(idOf);
    const a = 'a b c d e f g h i j'; // 10 pieces
    expect(tok.encode(a, 'k l m n', { maxLength: 13 }).ids).to.deep.equal(
      [101, ...letters('a b c d e f'), 102, ...letters('k l m n'), 102],
    );
    expect(tok.encode('a b c d e f g h', 'k l m n o p q', { maxLength: 14 }).ids).to.deep.equal(
      [101, ...letters('a b c d e f'), 102, ...letters('k l m n o'), 102],
    );
    expect(tok.encode('a b c d e f g', 'k l m n o p q r', { maxLength: 13 }).tokenTypeIds).to.deep.equal(
      [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
    );
    // Fits: unchanged.
    expect(tok.encode('Hello, world!', undefined, { maxLength: 6 }).ids).to.deep.equal([101, 7592, 1010, 2088, 999, 102]);
  });

  it('throws, saying length and limit, when too long and truncation is off', () => {
    expect(() => tok.encode('The quick brown fox jumps over the lazy dog.', undefined, { maxLength: 6, truncation: false }))
      .to.throw(TopoprobeError, /12 tokens long, over maxLength 6/);
    expect(() => tok.encode('a b', 'c d', { maxLength: 2 })).to.throw(TopoprobeError, /less than the 3 special tokens/);
  });

  it('cleans whitespace and control characters', () => {
    const hello = [101, 7592, 1010, 2088, 999, 102];
    expect(tok.encode('  Hello,\t\n world!\u0000\r\n').ids).to.deep.equal(hello);
    expect(tok.encode('Hel\u200blo, wor\u0007ld!').ids).to.deep.equal(hello); // ZWSP (Cf) and BEL (Cc) dropped
    expect(tok.encode('Hello,\u00a0world\u3000!').ids).to.deep.equal(hello); // no-break and ideographic spaces split
    expect(tok.encode('Hello\ufffd, world!').ids).to.deep.equal(hello);
  });

  it('lowercases character by character, as the Rust normalizer does (no final sigma)', () => {
    expect(tok.tokenize('ΟΔΟΣ')).to.deep.equal(tok.tokenize('οδοσ'));
    expect(tok.tokenize('ΟΔΟΣ')).to.not.deep.equal(tok.tokenize('οδος'));
  });

  it('keeps special tokens written in the text', () => {
    expect(tok.encode('Hello [MASK] world').ids).to.deep.equal([101, 7592, 103, 2088, 102]);
  });

  it('decodes', () => {
    expect(tok.decode(tok.encode('Hello, world! Tokenization.').ids, { skipSpecialTokens: true })).to.equal('hello, world! tokenization.');
  });

  describe('save and load', () => {
    let dir: string;
    before(() => {
      dir = tempDir();
      tok.save(dir);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('round-trips: the loaded tokenizer gives the same ids', () => {
      const loaded = loadTokenizer(dir);
      const sentences = [
        'Hello, world!',
        'The quick brown fox jumps over the lazy dog.',
        'Café naïve électroencéphalographie 我中国人 [MASK] \u{1F600}',
        "Mr. Smith's un-believable tokenization isn't ideal.",
      ];
      for (const s of sentences) expect(loaded.encode(s).ids, s).to.deep.equal(tok.encode(s).ids);
      expect(loaded.encode('Hello', 'world').tokenTypeIds).to.deep.equal([0, 0, 0, 1, 1]);
      expect(loaded.toJSON()).to.deep.equal(tok.toJSON());
    });

    it('writes vocab.txt as it was, tokenizer.json with the vocabulary in id order, and tokenizer_config.json', () => {
      expect(readFileSync(join(dir, 'vocab.txt'), 'utf8')).to.equal(readFileSync(vocabPath, 'utf8'));
      const text = readFileSync(join(dir, 'tokenizer.json'), 'utf8');
      expect(JSON.parse(text)).to.deep.equal(tok.toJSON());
      expect(text.indexOf('"[PAD]": 0')).to.be.greaterThan(0);
      expect(text.indexOf('"[PAD]": 0')).to.be.lessThan(text.indexOf('"0": 1014'));
      const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
      expect(config).to.include({ tokenizer_class: 'BertTokenizer', do_lower_case: true, cls_token: '[CLS]', mask_token: '[MASK]' });
    });
  });
});

describe('tokenize: loading folders', () => {
  const dirs: string[] = [];
  const folder = (files: Record<string, string>) => {
    const dir = writeFolder(files);
    dirs.push(dir);
    return dir;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const tinyText = TINY.join('\n') + '\n';

  it('generates the tokenizer from a folder with only vocab.txt', () => {
    const tok = loadTokenizer(folder({ 'vocab.txt': tinyText }));
    expect(tok.encode('The cats sat on the mat.').ids).to.deep.equal([2, 5, 6, 10, 7, 8, 5, 9, 11, 3]);
  });

  it('follows do_lower_case in tokenizer_config.json', () => {
    const cased = loadTokenizer(folder({ 'vocab.txt': tinyText, 'tokenizer_config.json': '{"do_lower_case": false}' }));
    expect(cased.encode('Hello The').ids).to.deep.equal([2, 14, 1, 3]);
    // The same override applies to a tokenizer.json (as BertTokenizerFast does).
    const uncasedJson = JSON.stringify(buildBertTokenizerJson(TINY));
    const overridden = loadTokenizer(folder({ 'tokenizer.json': uncasedJson, 'tokenizer_config.json': '{"do_lower_case": false}' }));
    expect(overridden.encode('Hello The').ids).to.deep.equal([2, 14, 1, 3]);
    expect((overridden.toJSON() as { normalizer: { lowercase: boolean } }).normalizer.lowercase).to.equal(false);
  });

  it('round-trips a saved cased tokenizer, with a tokenizer_config.json for transformers', () => {
    const src = BertTokenizer.fromVocab(TINY, { lowercase: false });
    const dir = folder({});
    src.save(dir);
    expect(readFileSync(join(dir, 'vocab.txt'), 'utf8')).to.equal(tinyText);
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).to.include({ tokenizer_class: 'BertTokenizer', do_lower_case: false, unk_token: '[UNK]', pad_token: '[PAD]' });
    const loaded = loadTokenizer(dir);
    for (const s of ['Hello the cats!', 'hello, The mat.', 'unbelievable']) {
      expect(loaded.encode(s, 'the cat').ids).to.deep.equal(src.encode(s, 'the cat').ids);
    }
  });

  it('prefers tokenizer.json to vocab.txt', () => {
    const cased = JSON.stringify(buildBertTokenizerJson(TINY, { lowercase: false }));
    const tok = loadTokenizer(folder({ 'tokenizer.json': cased, 'vocab.txt': tinyText }));
    expect(tok.encode('Hello').ids).to.deep.equal([2, 14, 3]);
  });

  it('names the folder when it is missing or holds neither file', () => {
    const missing = join(tmpdir(), 'topoprobe-no-such-folder-' + process.pid);
    expect(() => loadTokenizer(missing)).to.throw(TopoprobeError, missing);
    const empty = folder({ 'README.md': 'nothing here' });
    expect(() => loadTokenizer(empty)).to.throw(TopoprobeError, new RegExp(`${escape(empty)} has neither tokenizer\\.json nor vocab\\.txt`));
  });

  it('names the file holding malformed JSON', () => {
    const bad = folder({ 'tokenizer.json': '{"model": ' });
    expect(() => loadTokenizer(bad)).to.throw(TopoprobeError, new RegExp(`${escape(join(bad, 'tokenizer.json'))}: malformed JSON`));
    const badConfig = folder({ 'vocab.txt': tinyText, 'tokenizer_config.json': '{do_lower_case: false}' });
    expect(() => loadTokenizer(badConfig)).to.throw(TopoprobeError, new RegExp(`${escape(join(badConfig, 'tokenizer_config.json'))}: malformed JSON`));
  });

  it('names the file and field of an invalid tokenizer.json or config', () => {
    const json = buildBertTokenizerJson(TINY) as unknown as { model: Record<string, unknown> };
    json.model.type = 'BPE';
    const dir = folder({ 'tokenizer.json': JSON.stringify(json) });
    expect(() => loadTokenizer(dir)).to.throw(TopoprobeError, /tokenizer\.json: invalid tokenizer\.json\n\s+model\.type: only WordPiece/);
    const badConfig = folder({ 'vocab.txt': tinyText, 'tokenizer_config.json': '{"do_lower_case": "yes"}' });
    expect(() => loadTokenizer(badConfig)).to.throw(TopoprobeError, /tokenizer_config\.json: invalid tokenizer config\n\s+do_lower_case/);
  });

  it('names vocab.txt when it lacks [CLS] or repeats an entry', () => {
    const noCls = folder({ 'vocab.txt': TINY.filter((t) => t !== '[CLS]').join('\n') + '\n' });
    expect(() => loadTokenizer(noCls)).to.throw(TopoprobeError, new RegExp(`${escape(join(noCls, 'vocab.txt'))}: the vocabulary lacks \\[CLS\\]`));
    const dup = folder({ 'vocab.txt': tinyText + 'mat\n' });
    expect(() => loadTokenizer(dup)).to.throw(TopoprobeError, /vocab\.txt: .*"mat" at lines 10 and 21/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
