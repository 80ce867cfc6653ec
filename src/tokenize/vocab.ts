/**
 * A WordPiece vocabulary (`vocab.txt`, one token a line, the line number less one being the id) and the
 * Hugging Face `tokenizer.json` that `BertTokenizerFast` builds from it.
 *
 * `buildBertTokenizerJson` produces the same object as Hugging Face's slow-to-fast conversion
 * (`transformers.convert_slow_tokenizer.BertConverter`) for bert-base/large-uncased: a BertNormalizer,
 * the BertPreTokenizer, a WordPiece model, the `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`
 * template and a WordPiece decoder, with the special tokens as added tokens.
 */
import { readText } from '../util/fs.js';
import { TopoprobeError } from '../util/errors.js';

/** The special tokens of BERT's vocabulary, by role. */
export const BERT_SPECIAL_TOKENS = {
  pad: '[PAD]',
  unk: '[UNK]',
  cls: '[CLS]',
  sep: '[SEP]',
  mask: '[MASK]',
} as const;

/** Special tokens a BERT vocabulary must hold ([MASK] is optional: it is only needed for MLM). */
const REQUIRED_SPECIALS = [BERT_SPECIAL_TOKENS.cls, BERT_SPECIAL_TOKENS.sep, BERT_SPECIAL_TOKENS.pad, BERT_SPECIAL_TOKENS.unk];

/** The prefix WordPiece puts on pieces that continue a word. */
export const CONTINUING_SUBWORD_PREFIX = '##';

/** Words longer than this many characters become a single `[UNK]` (BERT's and Hugging Face's limit). */
export const MAX_INPUT_CHARS_PER_WORD = 100;

// ---------------------------------------------------------------------------------------------------
// tokenizer.json, the parts a BERT tokenizer uses (field names are Hugging Face's own).

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BertNormalizerJson {
  type: 'BertNormalizer';
  clean_text: boolean;
  handle_chinese_chars: boolean;
  /** `null` means "the same as `lowercase`" (Hugging Face's default). */
  strip_accents: boolean | null;
  lowercase: boolean;
}

export type TemplatePieceJson =
  | { SpecialToken: { id: string; type_id: number } }
  | { Sequence: { id: 'A' | 'B'; type_id: number } };

export interface TemplateProcessingJson {
  type: 'TemplateProcessing';
  single: TemplatePieceJson[];
  pair: TemplatePieceJson[];
  special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
}

export interface WordPieceModelJson {
  type: 'WordPiece';
  unk_token: string;
  continuing_subword_prefix: string;
  max_input_chars_per_word: number;
  vocab: Record<string, number>;
}

/** A `tokenizer.json` as `buildBertTokenizerJson` writes it. */
export interface BertTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: BertNormalizerJson;
  pre_tokenizer: { type: 'BertPreTokenizer' };
  post_processor: TemplateProcessingJson;
  decoder: { type: 'WordPiece'; prefix: string; cleanup: boolean };
  model: WordPieceModelJson;
}

export interface BertTokenizerJsonOptions {
  /** Lowercase the input (uncased models). Default true. */
  lowercase?: boolean;
  /**
   * Strip accents (NFD, then drop non-spacing marks). Left out, the JSON says `null`, which Hugging Face
   * reads as "the same as `lowercase`".
   */
  stripAccents?: boolean | null;
  /** Put spaces around CJK ideographs so each is a word. Default true. */
  tokenizeChineseChars?: boolean;
  /** Names the vocabulary (usually its file) in error messages. */
  source?: string;
}

// ---------------------------------------------------------------------------------------------------

/**
 * Splits the text of a `vocab.txt` into its tokens, one a line. A final newline ends the last line
 * (it does not add an empty token); a carriage return before a newline is dropped, so a CRLF file
 * reads the same as an LF one.
 */
export function parseVocab(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** Reads and parses a `vocab.txt`; errors name the file. */
export function readVocabFile(path: string): string[] {
  const text = readText(path, 'vocabulary');
  return parseVocab(text);
}

/**
 * Checks a vocabulary: no empty entries, no duplicates (both named by line number) and the
 * special tokens BERT needs. Returns the token-to-id map.
 */
export function validateVocab(vocab: readonly string[], source = 'vocabulary'): Map<string, number> {
  if (vocab.length === 0) throw new TopoprobeError(`${source}: the vocabulary is empty`);
  const ids = new Map<string, number>();
  const problems: string[] = [];
  vocab.forEach((token, id) => {
    if (token === '') {
      problems.push(`line ${id + 1} is empty`);
      return;
    }
    const first = ids.get(token);
    if (first !== undefined) {
      problems.push(`${JSON.stringify(token)} at lines ${first + 1} and ${id + 1}`);
    } else {
      ids.set(token, id);
    }
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('; ');
    const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
    throw new TopoprobeError(`${source}: duplicate or empty vocabulary entries: ${shown}${more}`);
  }
  const missing = REQUIRED_SPECIALS.filter((t) => !ids.has(t));
  if (missing.length > 0) {
    throw new TopoprobeError(
      `${source}: the vocabulary lacks ${missing.join(', ')} (a BERT vocabulary needs ${REQUIRED_SPECIALS.join(', ')})`,
    );
  }
  return ids;
}

/**
 * The `tokenizer.json` object Hugging Face builds for a BERT WordPiece vocabulary (`vocab[i]` has id
 * `i`). Throws a TopoprobeError naming `opts.source` when the vocabulary has duplicate or empty entries
 * (with their line numbers) or lacks [CLS], [SEP], [PAD] or [UNK].
 */
export function buildBertTokenizerJson(vocab: readonly string[], opts: BertTokenizerJsonOptions = {}): BertTokenizerJson {
  const ids = validateVocab(vocab, opts.source);
  const lowercase = opts.lowercase ?? true;
  const idOf = (token: string): number => ids.get(token)!;

  const added_tokens: AddedTokenJson[] = Object.values(BERT_SPECIAL_TOKENS)
    .filter((token) => ids.has(token))
    .map((content) => ({
      id: idOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }))
    .sort((a, b) => a.id - b.id);

  const { cls, sep, unk } = BERT_SPECIAL_TOKENS;
  const special = (id: string, type_id: number): TemplatePieceJson => ({ SpecialToken: { id, type_id } });
  const sequence = (id: 'A' | 'B', type_id: number): TemplatePieceJson => ({ Sequence: { id, type_id } });

  const modelVocab: Record<string, number> = {};
  vocab.forEach((token, id) => {
    modelVocab[token] = id;
  });

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: opts.tokenizeChineseChars ?? true,
      strip_accents: opts.stripAccents ?? null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(cls, 0), sequence('A', 0), special(sep, 0)],
      pair: [special(cls, 0), sequence('A', 0), special(sep, 0), sequence('B', 1), special(sep, 1)],
      special_tokens: {
        [cls]: { id: cls, ids: [idOf(cls)], tokens: [cls] },
        [sep]: { id: sep, ids: [idOf(sep)], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: CONTINUING_SUBWORD_PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: unk,
      continuing_subword_prefix: CONTINUING_SUBWORD_PREFIX,
      max_input_chars_per_word: MAX_INPUT_CHARS_PER_WORD,
      vocab: modelVocab,
    },
  };
}

/**
 * The tokens of a WordPiece model's vocab, ordered by id (what `vocab.txt` holds). Throws when the ids
 * are not exactly 0..n-1.
 */
export function vocabInIdOrder(vocab: Readonly<Record<string, number>>, source = 'tokenizer.json'): string[] {
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0) throw new TopoprobeError(`${source}: model.vocab[${JSON.stringify(token)}] is not a valid id (${id})`);
    if (tokens[id] !== undefined) {
      throw new TopoprobeError(`${source}: model.vocab gives id ${id} to both ${JSON.stringify(tokens[id])} and ${JSON.stringify(token)}`);
    }
    tokens[id] = token;
  }
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw new TopoprobeError(`${source}: model.vocab has no token with id ${id}`);
  }
  return tokens;
}

/**
 * `JSON.stringify` for a tokenizer.json, except that `model.vocab` is written in id order, as Hugging
 * Face writes it (a JavaScript object would put integer-like keys such as "0" or "100" first).
 */
export function stringifyTokenizerJson(json: { model: { vocab?: unknown } }, indent = 2): string {
  const vocab = json.model.vocab;
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) {
    return JSON.stringify(json, null, indent) + '\n';
  }
  const marker = `__topoprobe_vocab_${Date.now()}__`;
  const text = JSON.stringify({ ...json, model: { ...json.model, vocab: marker } }, null, indent);
  const entries = Object.entries(vocab as Record<string, number>).sort((a, b) => a[1] - b[1]);
  // The marker sits at `model.vocab`, three levels deep in the pretty-printed text.
  const pad = ' '.repeat(indent * 3);
  const closing = ' '.repeat(indent * 2);
  const body = indent > 0
    ? `{\n${entries.map(([t, id]) => `${pad}${JSON.stringify(t)}: ${id}`).join(',\n')}\n${closing}}`
    : `{${entries.map(([t, id]) => `${JSON.stringify(t)}:${id}`).join(',')}}`;
  return text.replace(JSON.stringify(marker), () => body) + '\n';
}
