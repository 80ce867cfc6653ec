/**
 * BERT's WordPiece tokenizer, behaving as Hugging Face's `BertTokenizerFast` (the Rust `tokenizers`
 * crate) does, on top of `@huggingface/tokenizers` (pure JavaScript).
 *
 * What comes from the library: splitting out special tokens written in the text, the BERT
 * pre-tokenizer (whitespace and punctuation) and the WordPiece model. What is done here, because the
 * library lacks it or differs from Rust:
 *  - the BertNormalizer (see `normalizeBert`): the library scans UTF-16 code units, so CJK ideographs
 *    outside the BMP are not split off, and it lowercases with context (a final capital sigma becomes
 *    "ς", where Rust gives "σ");
 *  - the post-processing template (the library's TemplateProcessing ignores `special_tokens[...].ids`
 *    and treats an empty pair as no pair);
 *  - truncation (the library has none), longest-first on pairs as Rust does it.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { z } from 'zod';
import { TopoprobeError, check } from '../util/errors.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { getLogger } from '../util/log.js';
import {
  BERT_SPECIAL_TOKENS,
  CONTINUING_SUBWORD_PREFIX,
  buildBertTokenizerJson,
  readVocabFile,
  stringifyTokenizerJson,
  vocabInIdOrder,
  type BertTokenizerJsonOptions,
} from './vocab.js';

export { buildBertTokenizerJson } from './vocab.js';

// ---------------------------------------------------------------------------------------------------
// Normalization, as the Rust BertNormalizer does it.

/** The BertNormalizer settings (with `strip_accents: null` already resolved). */
export interface BertNormalizerSettings {
  cleanText: boolean;
  handleChineseChars: boolean;
  stripAccents: boolean;
  lowercase: boolean;
}

/** Rust's `char::is_whitespace` (the Unicode White_Space property). */
const WHITESPACE = /^\p{White_Space}$/u;
/** Rust tokenizers' `is_control`: general category Cc, Cf or Co (`unicode_categories::is_other`). */
const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}]$/u;
const NONSPACING_MARKS = /\p{Mn}/gu;

/**
 * CJK ideographs that BERT makes words of their own: the ranges of Rust tokenizers' `is_chinese_char`,
 * including its 0x2B920 lower bound for extension E (Google's BERT and the Python tokenizer say 0x2B820).
 */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * BERT's text normalization, step for step as in Rust tokenizers: clean (drop NUL, U+FFFD and control
 * characters; any whitespace becomes a space), spaces around CJK ideographs, strip accents (NFD, then
 * drop non-spacing marks), lowercase (character by character, without context).
 */
export function normalizeBert(text: string, s: BertNormalizerSettings): string {
  let out = text;
  if (s.cleanText) {
    let cleaned = '';
    for (const ch of out) {
      const cp = ch.codePointAt(0)!;
      if (ch === '\t' || ch === '\n' || ch === '\r') cleaned += ' ';
      else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
      else cleaned += WHITESPACE.test(ch) ? ' ' : ch;
    }
    out = cleaned;
  }
  if (s.handleChineseChars) {
    let spaced = '';
    for (const ch of out) spaced += isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
    out = spaced;
  }
  if (s.stripAccents) out = out.normalize('NFD').replace(NONSPACING_MARKS, '');
  // JavaScript's toLowerCase is per character except for the final-sigma rule; Rust's per-character
  // lowercasing always maps U+03A3 to σ, so do that first.
  if (s.lowercase) out = out.replace(/\u03a3/g, '\u03c3').toLowerCase();
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The library, typed. Its declaration files use extensionless relative imports, which NodeNext
// resolution cannot follow, so TypeScript sees its exports as `any` (and `Normalizer` not at all);
// this names the part of its Tokenizer used here.

interface HfTokenizer {
  /** Called on each stretch of text between special tokens; any function of a string will do. */
  normalizer: ((text: string) => string) | null;
  tokenize(text: string): string[];
  token_to_id(token: string): number | undefined;
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
}
const HfTokenizer = HfTokenizerImpl as new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;

// ---------------------------------------------------------------------------------------------------
// tokenizer.json and tokenizer_config.json, as far as this module reads them.

const tokenizerJsonSchema = z.looseObject({
  added_tokens: z
    .array(
      z.looseObject({
        id: z.number().int().nonnegative(),
        content: z.string(),
        special: z.boolean().optional(),
      }),
    )
    .default([]),
  normalizer: z.looseObject({ type: z.string() }).nullable().default(null),
  pre_tokenizer: z.looseObject({ type: z.string() }).nullable().default(null),
  post_processor: z.looseObject({ type: z.string() }).nullable().default(null),
  decoder: z.looseObject({ type: z.string() }).nullable().default(null),
  model: z.looseObject({
    type: z.literal('WordPiece', { error: 'only WordPiece models are supported' }),
    unk_token: z.string(),
    continuing_subword_prefix: z.string().default(CONTINUING_SUBWORD_PREFIX),
    max_input_chars_per_word: z.number().int().positive().default(100),
    vocab: z.record(z.string(), z.number().int().nonnegative()),
  }),
});
type TokenizerJson = z.infer<typeof tokenizerJsonSchema>;

const bertNormalizerSchema = z.looseObject({
  type: z.literal('BertNormalizer'),
  clean_text: z.boolean().default(true),
  handle_chinese_chars: z.boolean().default(true),
  strip_accents: z.boolean().nullable().default(null),
  lowercase: z.boolean().default(true),
});

const templatePieceSchema = z.union([
  z.object({ SpecialToken: z.object({ id: z.string(), type_id: z.number().int().nonnegative().default(0) }) }),
  z.object({ Sequence: z.object({ id: z.enum(['A', 'B']), type_id: z.number().int().nonnegative().default(0) }) }),
]);
const postProcessorSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('TemplateProcessing'),
    single: z.array(templatePieceSchema),
    pair: z.array(templatePieceSchema),
    special_tokens: z
      .record(z.string(), z.object({ id: z.string(), ids: z.array(z.number().int().nonnegative()), tokens: z.array(z.string()) }))
      .default({}),
  }),
  z.looseObject({
    type: z.literal('BertProcessing'),
    cls: z.tuple([z.string(), z.number().int().nonnegative()]),
    sep: z.tuple([z.string(), z.number().int().nonnegative()]),
  }),
]);

/** The `tokenizer_config.json` fields read here; everything else is kept as it is. */
const tokenizerConfigSchema = z.looseObject({
  do_lower_case: z.boolean().optional(),
  strip_accents: z.boolean().nullable().optional(),
  tokenize_chinese_chars: z.boolean().optional(),
});
export type TokenizerConfigJson = z.infer<typeof tokenizerConfigSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}

function parseWith<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(raw);
  if (!result.success) throw new TopoprobeError(`${what}\n${describeIssues(result.error)}`);
  return result.data;
}

// ---------------------------------------------------------------------------------------------------
// The post-processing template.

type TemplateItem =
  | { kind: 'special'; tokens: string[]; ids: number[]; typeId: number }
  | { kind: 'sequence'; sequence: 0 | 1; typeId: number };

interface Template {
  single: TemplateItem[];
  pair: TemplateItem[];
}

function parseTemplate(raw: unknown, source: string): Template {
  check(raw !== null, `${source}: post_processor is null; a BERT tokenizer needs [CLS] and [SEP] added (TemplateProcessing or BertProcessing)`);
  const pp = parseWith(postProcessorSchema, raw, `${source}: unsupported or invalid post_processor (need TemplateProcessing or BertProcessing)`);
  if (pp.type === 'BertProcessing') {
    const cls: TemplateItem = { kind: 'special', tokens: [pp.cls[0]], ids: [pp.cls[1]], typeId: 0 };
    const sep = (typeId: number): TemplateItem => ({ kind: 'special', tokens: [pp.sep[0]], ids: [pp.sep[1]], typeId });
    return {
      single: [cls, { kind: 'sequence', sequence: 0, typeId: 0 }, sep(0)],
      pair: [cls, { kind: 'sequence', sequence: 0, typeId: 0 }, sep(0), { kind: 'sequence', sequence: 1, typeId: 1 }, sep(1)],
    };
  }
  const convert = (pieces: z.infer<typeof templatePieceSchema>[], which: string): TemplateItem[] =>
    pieces.map((piece, i) => {
      if ('Sequence' in piece) return { kind: 'sequence', sequence: piece.Sequence.id === 'A' ? 0 : 1, typeId: piece.Sequence.type_id };
      const special = pp.special_tokens[piece.SpecialToken.id];
      check(special, `${source}: post_processor.${which}[${i}] names special token ${JSON.stringify(piece.SpecialToken.id)}, which post_processor.special_tokens lacks`);
      check(special.ids.length === special.tokens.length, `${source}: post_processor.special_tokens.${piece.SpecialToken.id} has ${special.ids.length} ids but ${special.tokens.length} tokens`);
      return { kind: 'special', tokens: special.tokens, ids: special.ids, typeId: piece.SpecialToken.type_id };
    });
  const template = { single: convert(pp.single, 'single'), pair: convert(pp.pair, 'pair') };
  check(!template.single.some((t) => t.kind === 'sequence' && t.sequence === 1), `${source}: post_processor.single uses $B`);
  return template;
}

// ---------------------------------------------------------------------------------------------------
// Truncation.

/**
 * How many pieces of a pair to keep so that together they fit `budget`, as Hugging Face's
 * longest-first strategy (Rust tokenizers) decides: when only the longer sequence needs cutting it
 * keeps `budget - shorter`; when both do, they get half each, the longer one the odd piece (the
 * second one if they are as long). Pieces are cut from the end.
 */
export function longestFirstLengths(lengthA: number, lengthB: number, budget: number): [number, number] {
  if (lengthA + lengthB <= budget) return [lengthA, lengthB];
  if (budget <= 0) return [0, 0];
  const swap = lengthA > lengthB;
  let n1 = Math.min(lengthA, lengthB);
  let n2 = Math.max(lengthA, lengthB);
  n2 = n1 > budget ? n1 : Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  return swap ? [n2, n1] : [n1, n2];
}

// ---------------------------------------------------------------------------------------------------
// The tokenizer.

export interface EncodeOptions {
  /** The most tokens the encoding may have, special tokens included (BERT models: 512). */
  maxLength?: number;
  /**
   * What to do when the encoding would be longer than `maxLength`: true (the default) cuts pieces
   * from the end (longest-first on pairs); false throws a TopoprobeError.
   */
  truncation?: boolean;
}

export interface Encoding {
  ids: number[];
  /** 0 for [CLS], the first text and its [SEP]; 1 for the pair and the last [SEP]. */
  tokenTypeIds: number[];
  tokens: string[];
  /** Per position, as Hugging Face's `sequence_ids()`: 0 or 1 for a piece of the first or second text, null for a special token. */
  sequenceIds: Array<0 | 1 | null>;
}

/** A WordPiece tokenizer for BERT models; see the module comment. */
export class BertTokenizer {
  /** The number of ids (one more than the largest id), added tokens included. */
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number | undefined;
  /** The token unknown words become (`[UNK]`). */
  readonly unkToken: string;
  /** What marks a piece that continues a word (`##`). */
  readonly continuingSubwordPrefix: string;
  /** The normalization in use, when the tokenizer has a BertNormalizer. */
  readonly normalizerSettings: BertNormalizerSettings | undefined;

  private readonly json: TokenizerJson;
  private readonly config: TokenizerConfigJson;
  private readonly hf: HfTokenizer;
  private readonly template: Template;
  private readonly idToToken: string[];
  /** Ids of the special tokens ([CLS], [SEP], [PAD], [MASK], [UNK], ...). */
  readonly specialIds: ReadonlySet<number>;

  /**
   * Builds a tokenizer from a parsed `tokenizer.json` (and optionally `tokenizer_config.json`);
   * `source` names where they came from in error messages. As `BertTokenizerFast` does, a
   * `do_lower_case`, `strip_accents` or `tokenize_chinese_chars` in the config overrides the
   * BertNormalizer's setting.
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = 'tokenizer.json') {
    const config = parseWith(tokenizerConfigSchema, tokenizerConfig ?? {}, `${source}: invalid tokenizer_config`);
    const json = parseWith(tokenizerJsonSchema, tokenizerJson, `${source}: invalid tokenizer.json`);

    let normalizerSettings: BertNormalizerSettings | undefined;
    if (json.normalizer?.type === 'BertNormalizer') {
      const n = parseWith(bertNormalizerSchema, json.normalizer, `${source}: invalid normalizer`);
      if (config.do_lower_case !== undefined) n.lowercase = config.do_lower_case;
      if (config.strip_accents !== undefined) n.strip_accents = config.strip_accents;
      if (config.tokenize_chinese_chars !== undefined) n.handle_chinese_chars = config.tokenize_chinese_chars;
      json.normalizer = n;
      normalizerSettings = {
        cleanText: n.clean_text,
        handleChineseChars: n.handle_chinese_chars,
        stripAccents: n.strip_accents ?? n.lowercase,
        lowercase: n.lowercase,
      };
    }
    this.json = json;
    this.config = config;
    this.normalizerSettings = normalizerSettings;
    this.template = parseTemplate(json.post_processor, source);

    try {
      this.hf = new HfTokenizer(json, config);
    } catch (err) {
      throw new TopoprobeError(`${source}: @huggingface/tokenizers rejected it: ${(err as Error).message}`, { cause: err });
    }
    if (normalizerSettings) {
      const settings = normalizerSettings;
      this.hf.normalizer = (text: string) => normalizeBert(text, settings);
    }

    const idOf = (token: string, what: string): number => {
      const id = this.hf.token_to_id(token);
      check(id !== undefined, `${source}: the vocabulary lacks ${token} (${what})`);
      return id;
    };
    this.unkToken = json.model.unk_token;
    this.continuingSubwordPrefix = json.model.continuing_subword_prefix;
    this.unkId = idOf(this.unkToken, 'model.unk_token');
    this.padId = idOf(BERT_SPECIAL_TOKENS.pad, 'the padding token');
    this.clsId = idOf(BERT_SPECIAL_TOKENS.cls, 'the classification token');
    this.sepId = idOf(BERT_SPECIAL_TOKENS.sep, 'the separator token');
    this.maskId = this.hf.token_to_id(BERT_SPECIAL_TOKENS.mask);

    this.idToToken = [];
    for (const [token, id] of Object.entries(json.model.vocab)) this.idToToken[id] = token;
    for (const added of json.added_tokens) this.idToToken[added.id] = added.content;
    this.vocabSize = this.idToToken.length;
    for (const items of [this.template.single, this.template.pair]) {
      for (const item of items) {
        if (item.kind !== 'special') continue;
        item.ids.forEach((id, i) =>
          check(id < this.vocabSize, `${source}: post_processor gives special token ${item.tokens[i]} id ${id}, outside the vocabulary (${this.vocabSize} ids)`),
        );
      }
    }
    this.specialIds = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
  }

  /** A tokenizer for a WordPiece vocabulary (`vocab[i]` has id i); see `buildBertTokenizerJson`. */
  static fromVocab(vocab: readonly string[], opts: BertTokenizerJsonOptions = {}): BertTokenizer {
    const json = buildBertTokenizerJson(vocab, opts);
    const config = {
      tokenizer_class: 'BertTokenizer',
      do_lower_case: json.normalizer.lowercase,
      strip_accents: json.normalizer.strip_accents,
      tokenize_chinese_chars: json.normalizer.handle_chinese_chars,
    };
    return new BertTokenizer(json, config, opts.source ?? 'vocabulary');
  }

  /** The tokenizer for a `vocab.txt`; see `buildBertTokenizerJson` for the options. */
  static fromVocabFile(vocabPath: string, opts: Omit<BertTokenizerJsonOptions, 'source'> = {}): BertTokenizer {
    return BertTokenizer.fromVocab(readVocabFile(vocabPath), { ...opts, source: vocabPath });
  }

  /**
   * Loads the tokenizer in folder `dir`: its `tokenizer.json` when there is one (with
   * `tokenizer_config.json` if present), else one generated from its `vocab.txt`, lowercasing unless
   * `tokenizer_config.json` says `"do_lower_case": false`.
   */
  static load(dir: string): BertTokenizer {
    check(existsSync(dir), `tokenizer folder ${dir} does not exist`);
    check(statSync(dir).isDirectory(), `${dir} is not a folder (expected a folder with tokenizer.json or vocab.txt)`);
    const jsonPath = join(dir, 'tokenizer.json');
    const configPath = join(dir, 'tokenizer_config.json');
    const vocabPath = join(dir, 'vocab.txt');
    const rawConfig = existsSync(configPath) ? readJson(configPath) : {};
    const log = getLogger();
    if (existsSync(jsonPath)) {
      log.debug({ path: jsonPath }, 'loading tokenizer.json');
      const config = parseWith(tokenizerConfigSchema, rawConfig, `${configPath}: invalid tokenizer config`);
      return new BertTokenizer(readJson(jsonPath), config, jsonPath);
    }
    if (existsSync(vocabPath)) {
      log.debug({ path: vocabPath }, 'no tokenizer.json: generating one from vocab.txt');
      const config = parseWith(tokenizerConfigSchema, rawConfig, `${configPath}: invalid tokenizer config`);
      const json = buildBertTokenizerJson(readVocabFile(vocabPath), {
        lowercase: config.do_lower_case ?? true,
        stripAccents: config.strip_accents ?? null,
        tokenizeChineseChars: config.tokenize_chinese_chars ?? true,
        source: vocabPath,
      });
      return new BertTokenizer(json, { tokenizer_class: 'BertTokenizer', ...config }, vocabPath);
    }
    throw new TopoprobeError(`tokenizer folder ${dir} has neither tokenizer.json nor vocab.txt`);
  }

  /** The word pieces of `text`, without special tokens. */
  tokenize(text: string): string[] {
    return this.hf.tokenize(text);
  }

  /** How many special tokens the template adds to one text (`pair` false) or a pair. */
  numSpecialTokens(pair: boolean): number {
    let n = 0;
    for (const item of pair ? this.template.pair : this.template.single) if (item.kind === 'special') n += item.ids.length;
    return n;
  }

  /**
   * Encodes `text` (and `pair`, if given) with [CLS] and [SEP] as BERT expects. With `maxLength`, an
   * encoding that would be longer is truncated (or, with `truncation: false`, rejected).
   */
  encode(text: string, pair?: string, opts: EncodeOptions = {}): Encoding {
    const a = this.tokenize(text);
    const b = pair === undefined ? undefined : this.tokenize(pair);
    const { maxLength, truncation = true } = opts;
    if (maxLength === undefined) return this.assemble(a, b);

    check(Number.isInteger(maxLength) && maxLength > 0, `maxLength must be a positive integer, got ${maxLength}`);
    const specials = this.numSpecialTokens(b !== undefined);
    const length = a.length + (b?.length ?? 0) + specials;
    if (length <= maxLength) return this.assemble(a, b);
    if (!truncation) {
      const preview = text.length > 60 ? `${text.slice(0, 60)}…` : text;
      throw new TopoprobeError(
        `encoding of ${JSON.stringify(preview)}${b ? ' (with its pair)' : ''} is ${length} tokens long, over maxLength ${maxLength} (truncation is off)`,
      );
    }
    check(maxLength >= specials, `maxLength ${maxLength} is less than the ${specials} special tokens the encoding needs`);
    const budget = maxLength - specials;
    if (b === undefined) return this.assemble(a.slice(0, budget));
    const [na, nb] = longestFirstLengths(a.length, b.length, budget);
    return this.assemble(a.slice(0, na), b.slice(0, nb));
  }

  /**
   * Adds the special tokens around word pieces already computed (`tokenize`'s output), as `encode`
   * does, without truncating. Pieces not in the vocabulary become [UNK].
   */
  assemble(piecesA: readonly string[], piecesB?: readonly string[]): Encoding {
    const out: Encoding = { ids: [], tokenTypeIds: [], tokens: [], sequenceIds: [] };
    for (const item of piecesB === undefined ? this.template.single : this.template.pair) {
      if (item.kind === 'special') {
        item.ids.forEach((id, i) => {
          out.ids.push(id);
          out.tokens.push(item.tokens[i]!);
          out.tokenTypeIds.push(item.typeId);
          out.sequenceIds.push(null);
        });
      } else {
        const pieces = item.sequence === 0 ? piecesA : piecesB!;
        for (const piece of pieces) {
          out.ids.push(this.hf.token_to_id(piece) ?? this.unkId);
          out.tokens.push(piece);
          out.tokenTypeIds.push(item.typeId);
          out.sequenceIds.push(item.sequence);
        }
      }
    }
    return out;
  }

  /** The tokens of `ids`; throws on an id outside the vocabulary. */
  idsToTokens(ids: readonly number[]): string[] {
    return ids.map((id) => {
      const token = this.idToToken[id];
      check(token !== undefined, `token id ${id} is outside the vocabulary (${this.vocabSize} ids)`);
      return token;
    });
  }

  /** The ids of `tokens` (whole vocabulary entries, not text); unknown ones give the [UNK] id. */
  tokensToIds(tokens: readonly string[]): number[] {
    return tokens.map((t) => this.hf.token_to_id(t) ?? this.unkId);
  }

  /** Text from ids: pieces joined, "##" continuations glued on (Hugging Face's WordPiece decoder). */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const kept = opts.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return '';
    this.idsToTokens(kept);
    return this.hf.decode(kept);
  }

  /** The `tokenizer.json` object (a copy); `JSON.stringify(tokenizer)` gives its text. */
  toJSON(): object {
    return structuredClone(this.json);
  }

  /** The `tokenizer_config.json` object `save` writes (a copy). */
  tokenizerConfig(): Record<string, unknown> {
    const config: Record<string, unknown> = { ...structuredClone(this.config), tokenizer_class: 'BertTokenizer' };
    const n = this.json.normalizer;
    if (n?.type === 'BertNormalizer') {
      const bert = n as z.infer<typeof bertNormalizerSchema>;
      config.do_lower_case = bert.lowercase;
      config.strip_accents = bert.strip_accents;
      config.tokenize_chinese_chars = bert.handle_chinese_chars;
    }
    const names: Array<[string, string]> = [
      ['unk_token', this.unkToken],
      ['sep_token', BERT_SPECIAL_TOKENS.sep],
      ['pad_token', BERT_SPECIAL_TOKENS.pad],
      ['cls_token', BERT_SPECIAL_TOKENS.cls],
    ];
    if (this.maskId !== undefined) names.push(['mask_token', BERT_SPECIAL_TOKENS.mask]);
    for (const [key, token] of names) config[key] = token;
    config.clean_up_tokenization_spaces ??= true;
    return config;
  }

  /**
   * Writes `tokenizer.json`, `vocab.txt` and `tokenizer_config.json` into `dir` (each atomically), so
   * that `loadTokenizer` and Hugging Face transformers (`AutoTokenizer`, `BertTokenizer(Fast)`) load it.
   */
  save(dir: string): void {
    const source = join(dir, 'vocab.txt');
    const tokens = vocabInIdOrder(this.json.model.vocab, 'model.vocab');
    const bad = tokens.findIndex((t) => /[\r\n]/.test(t));
    check(bad < 0, () => `cannot write ${source}: token ${JSON.stringify(tokens[bad])} (id ${bad}) holds a line break`);
    writeFileAtomic(join(dir, 'tokenizer.json'), stringifyTokenizerJson(this.json));
    writeFileAtomic(source, tokens.join('\n') + '\n');
    writeJsonAtomic(join(dir, 'tokenizer_config.json'), this.tokenizerConfig());
    getLogger().debug({ dir }, 'saved tokenizer');
  }
}

/** `BertTokenizer.load`: the tokenizer in folder `dir` (tokenizer.json, else vocab.txt). */
export function loadTokenizer(dir: string): BertTokenizer {
  return BertTokenizer.load(dir);
}

/** `BertTokenizer.fromVocabFile`: the tokenizer for a `vocab.txt` (uncased unless told otherwise). */
export function tokenizerFromVocabFile(vocabPath: string, opts: Omit<BertTokenizerJsonOptions, 'source'> = {}): BertTokenizer {
  return BertTokenizer.fromVocabFile(vocabPath, opts);
}
