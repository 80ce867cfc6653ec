/**
 * WordNet 3.0 glosses (definitions and usage examples) as plain text, from the `data.<pos>` files of
 * Princeton WordNet as Debian's `wordnet-base` package installs them (`/usr/share/wordnet/data.noun`,
 * `data.verb`, `data.adj`, `data.adv`).
 *
 * The format (WordNet's wndb(5WN) manual page): a data file starts with Princeton's license, each line of
 * it beginning with two spaces (`  1 This software and database ...`). Every other line is one synset:
 *
 *     synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] [frames...] | gloss
 *
 * e.g. `02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 ... | a member of
 * the genus Canis ...; occurs in many breeds; "the dog barked all night"  ` (lines end in two spaces).
 * The offset is 8 digits; ss_type is n, v, a, s (an adjective satellite, in data.adj) or r. Only the gloss,
 * everything after the first ` | `, is read here: its pieces are separated by `;`, and a piece is either a
 * definition or a usage example in double quotes (the examples follow the definitions).
 *
 * WordNet's glosses are hand-typed and a few hundred of 117,659 deviate from that; the parser handles, in
 * this order:
 *  - `;` inside an example (`"every right implies a responsibility; every opportunity, an obligation"`) does
 *    not split it: the gloss is split on `;` outside double quotes. Where the gloss's quotes do not pair up
 *    (20 glosses, e.g. `"he was in bondage to fear:; "he sought ...`) it is split on every `;` instead, so
 *    one stray quote cannot swallow the rest of the gloss.
 *  - An example piece (starting with `"`) yields each quoted stretch in it as one example: an attribution
 *    after the quote (`"..."- Henry Miller`, `"..."--Romans 12:19`) is dropped, and two quotes in one piece
 *    (`"the head of the nail", "a pinhead is the head of a pin"`) give two examples. An unclosed quote runs
 *    to the end of the piece.
 *  - A definition followed by `: "example"` in the same piece (`a complete extent or range: "a face that
 *    expressed a gamut of emotions"`) gives the definition and the example(s).
 *  - A piece after the first that ends in `"` with no other quote (`drop names"`) is an example whose
 *    opening quote is missing. (The first piece of a gloss is always a definition.)
 *  - Any other piece is a definition, quotes and all (`significant progress (especially in the phrase
 *    "make strides")`). WordNet's `` `inner quotes' `` are kept as they are.
 * Whitespace runs inside a piece become one space, and empty pieces (a gloss ending in `;`) are dropped.
 * No piece is dropped for being short here: the corpus builder decides that (see scripts/build-corpus.ts).
 */
import { existsSync } from 'node:fs';
import { readText } from '../util/fs.js';
import { join } from 'node:path';
import { TopoprobeError } from '../util/errors.js';

/** One synset's gloss, split into its definitions and its usage examples (quotes stripped), in gloss order. */
export interface WordnetGloss {
  definitions: string[];
  examples: string[];
}

/** The data files read, in this order. */
export const WORDNET_DATA_FILES = ['data.noun', 'data.verb', 'data.adj', 'data.adv'] as const;

/** Where Debian's `wordnet-base` package puts them. */
export const DEFAULT_WORDNET_DIR = '/usr/share/wordnet';

const SYNSET_LINE = /^[0-9]{8} /;

/** Whitespace runs to one space, trimmed. */
function squeeze(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** Splits on `;` outside double quotes; on every `;` when the quotes do not pair up. */
function splitGloss(gloss: string): string[] {
  const pieces: string[] = [];
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < gloss.length; i++) {
    const ch = gloss[i];
    if (ch === '"') inQuote = !inQuote;
    else if (ch === ';' && !inQuote) {
      pieces.push(gloss.slice(start, i));
      start = i + 1;
    }
  }
  if (inQuote) return gloss.split(';');
  pieces.push(gloss.slice(start));
  return pieces;
}

/** The quoted stretches of an example piece (`"a" - X, "b"` gives a, b; an unclosed quote runs to the end). */
function quotedStretches(piece: string): string[] {
  // Between the quotes: the odd-numbered parts of a split on `"`.
  return piece.split('"').filter((_, i) => i % 2 === 1);
}

/**
 * Parses one line of a WordNet `data.<pos>` file (see the module comment). Returns null for the license
 * header (lines starting with two spaces) and for blank lines; a synset line gives its gloss's definitions
 * and examples (both empty if it has no ` | gloss`). Throws a TopoprobeError, naming `source` when given,
 * for any other line.
 */
export function parseWordnetDataLine(line: string, source?: string): WordnetGloss | null {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text.startsWith('  ') || text.trim() === '') return null;
  if (!SYNSET_LINE.test(text)) {
    const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
    throw new TopoprobeError(
      `${source === undefined ? '' : `${source}: `}not a WordNet data line (expected an 8-digit synset offset, or a license line ` +
        `starting with two spaces): ${JSON.stringify(shown)}`,
    );
  }
  const definitions: string[] = [];
  const examples: string[] = [];
  const bar = text.indexOf(' | ');
  if (bar < 0) return { definitions, examples };
  const addExamples = (stretches: string[]): void => {
    for (const s of stretches.map(squeeze)) if (s !== '') examples.push(s);
  };
  splitGloss(text.slice(bar + 3)).forEach((raw, index) => {
    const piece = squeeze(raw);
    if (piece === '') return;
    if (piece.startsWith('"')) {
      addExamples(quotedStretches(piece));
      return;
    }
    const inline = /^([^"]*?)\s*:\s*(".*)$/.exec(piece);
    if (inline && inline[1] !== '') {
      definitions.push(inline[1]!);
      addExamples(quotedStretches(inline[2]!));
      return;
    }
    if (index > 0 && piece.endsWith('"') && piece.indexOf('"') === piece.length - 1) {
      addExamples([piece.slice(0, -1)]);
      return;
    }
    definitions.push(piece);
  });
  return { definitions, examples };
}

/** One piece of WordNet text, with where it came from. */
export interface WordnetText {
  text: string;
  kind: 'definition' | 'example';
  /** The data file's name (`data.noun`, ...). */
  file: string;
  /** The 1-based line of the synset in that file. */
  line: number;
}

export interface WordnetGlossesResult {
  /** Every definition and example, file by file (noun, verb, adj, adv), line by line, each synset's definitions before its examples. */
  texts: WordnetText[];
  /** The files read (full paths), in order. */
  files: string[];
  /** Synset lines read, per file name. */
  synsets: Record<string, number>;
}

/**
 * Reads the glosses of every synset in WordNet's four data files under `dir` (see parseWordnetDataLine).
 * Missing files are a TopoprobeError naming them and saying how to install them; so is a file with no synset
 * line, or a line that is neither a synset nor license text (naming the file and line).
 */
export function readWordnetGlosses(dir: string = DEFAULT_WORDNET_DIR): WordnetGlossesResult {
  const texts: WordnetText[] = [];
  const files: string[] = [];
  const synsets: Record<string, number> = {};
  const missing = WORDNET_DATA_FILES.map((file) => join(dir, file)).filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new TopoprobeError(
      `WordNet data file${missing.length === 1 ? '' : 's'} not found: ${missing.join(', ')}. Install Debian's WordNet database with ` +
        `\`apt-get install -y wordnet-base\` (it puts ${WORDNET_DATA_FILES.join(', ')} in ${DEFAULT_WORDNET_DIR}), ` +
        'or point the corpus builder at a folder that has them (`npm run corpus -- --wordnet-dir <folder>`)',
    );
  }
  for (const file of WORDNET_DATA_FILES) {
    const path = join(dir, file);
    const content = readText(path);
    files.push(path);
    let count = 0;
    content.split('\n').forEach((raw, i) => {
      const gloss = parseWordnetDataLine(raw, `${path}:${i + 1}`);
      if (gloss === null) return;
      count++;
      for (const text of gloss.definitions) texts.push({ text, kind: 'definition', file, line: i + 1 });
      for (const text of gloss.examples) texts.push({ text, kind: 'example', file, line: i + 1 });
    });
    if (count === 0) throw new TopoprobeError(`${path}: no synset lines found (is it empty?)`);
    synsets[file] = count;
  }
  return { texts, files, synsets };
}
