/**
 * CoNLL-U reading (Universal Dependencies treebanks, e.g. the EWT subset the paper's authors released)
 * and the gold tree quantities the probes are scored against: each word's depth and the root word.
 *
 * Only the basic tree is read (columns ID, FORM, UPOS, XPOS, HEAD, DEPREL). Multiword-token lines
 * (`3-4`) and empty nodes (`8.1`, enhanced graphs only) are skipped: the syntactic words that follow a
 * multiword token are what the tree is over. Every problem with a file is a TopoprobeError naming the
 * file and the line (`path:line: ...`), and the column where one is at fault.
 */
import { readText } from '../util/fs.js';
import { TopoprobeError, check } from '../util/errors.js';

export interface ConlluWord {
  /** The word's ID (column 1): 1..n within its sentence. */
  index: number;
  form: string;
  upos: string;
  xpos: string;
  /** The ID of the word's head (column 7); 0 for the root. */
  head: number;
  deprel: string;
}

export interface ConlluSentence {
  /** The `# sent_id = ...` comment, when there is one. */
  id?: string;
  /** The `# text = ...` comment, when there is one. */
  text?: string;
  /** The syntactic words, in order (`words[i].index === i + 1`). */
  words: ConlluWord[];
  /** The 1-based line on which the sentence's block (its first comment or word line) starts. */
  line: number;
}

const COLUMNS = 10;
const WORD_ID = /^[0-9]+$/;
const MULTIWORD_ID = /^[0-9]+-[0-9]+$/;
const EMPTY_NODE_ID = /^[0-9]+\.[0-9]+$/;

interface PendingSentence {
  id?: string;
  text?: string;
  line: number;
  words: ConlluWord[];
  /** Per word, the line it was read from (for messages). */
  wordLines: number[];
  /** Whether the block had multiword-token or empty-node lines (a block of only those has no words). */
  hadTokenLines: boolean;
}

/**
 * Parses CoNLL-U text. `source` names the text in error messages (normally its file path).
 *
 * Sentences are separated by blank lines (a final sentence needs no trailing blank line; CRLF line
 * ends and a leading byte-order mark are accepted). Comment lines (`#`) may carry `sent_id = ...` and
 * `text = ...`; a block of comments alone (a file header, say) is ignored unless it names a sentence.
 * Each sentence must be a tree over its words: IDs 1..n in order, every HEAD an integer in 0..n, exactly
 * one root (HEAD 0) and no cycle. A text with no sentence at all is an error too.
 */
export function parseConllu(text: string, source: string): ConlluSentence[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const sentences: ConlluSentence[] = [];
  let pending: PendingSentence | null = null;

  const at = (line: number): string => `${source}:${line}`;
  const finish = (): void => {
    if (pending === null) return;
    const done = pending;
    pending = null;
    if (done.words.length === 0) {
      const named = done.id !== undefined || done.text !== undefined;
      if (!named && !done.hadTokenLines) return; // only comments: a header, not a sentence
      throw new TopoprobeError(`${at(done.line)}: sentence${describeId(done.id)} has no words`);
    }
    validateTree(done, source);
    const sentence: ConlluSentence = { words: done.words, line: done.line };
    if (done.id !== undefined) sentence.id = done.id;
    if (done.text !== undefined) sentence.text = done.text;
    sentences.push(sentence);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!;
    if (line.trim() === '') {
      finish();
      continue;
    }
    pending ??= { line: lineNo, words: [], wordLines: [], hadTokenLines: false };
    if (line.startsWith('#')) {
      const m = /^#\s*(sent_id|text)\s*=\s?(.*)$/.exec(line);
      if (m) {
        const value = m[2]!.trim();
        if (m[1] === 'sent_id') pending.id = value;
        else pending.text = value;
      }
      continue;
    }

    const fields = line.split('\t');
    if (fields.length !== COLUMNS) {
      throw new TopoprobeError(
        `${at(lineNo)}: expected ${COLUMNS} tab-separated columns, found ${fields.length}` +
          (fields.length === 1 && / /.test(line) ? ' (CoNLL-U columns are separated by tabs, not spaces)' : ''),
      );
    }
    const [idField, form, , upos, xpos, , headField, deprel] = fields as [string, string, string, string, string, string, string, string];
    if (MULTIWORD_ID.test(idField) || EMPTY_NODE_ID.test(idField)) {
      pending.hadTokenLines = true;
      continue;
    }
    if (!WORD_ID.test(idField)) {
      throw new TopoprobeError(
        `${at(lineNo)}: ID (column 1) must be an integer (or a range like 3-4, or an empty node like 8.1), got ${JSON.stringify(idField)}`,
      );
    }
    const index = Number(idField);
    const expected = pending.words.length + 1;
    if (index !== expected) {
      throw new TopoprobeError(
        `${at(lineNo)}: word IDs must run 1..n in order within a sentence${describeId(pending.id)}: expected ID ${expected}, got ${index}`,
      );
    }
    if (!WORD_ID.test(headField)) {
      throw new TopoprobeError(
        `${at(lineNo)}: HEAD (column 7) of word ${index} must be a non-negative integer, got ${JSON.stringify(headField)}`,
      );
    }
    pending.words.push({ index, form, upos, xpos, head: Number(headField), deprel });
    pending.wordLines.push(lineNo);
  }
  finish();

  if (sentences.length === 0) {
    throw new TopoprobeError(`${source}: no sentences found (${lines.length} line(s) read; is it empty?)`);
  }
  return sentences;
}

/** Reads and parses a CoNLL-U file (see parseConllu). */
export function readConllu(path: string): ConlluSentence[] {
  const text = readText(path, 'CoNLL-U file');
  return parseConllu(text, path);
}

function describeId(id: string | undefined): string {
  return id === undefined ? '' : ` (sent_id ${id})`;
}

/** HEADs in range, exactly one root, no cycle; each error names the line of a word at fault. */
function validateTree(s: PendingSentence, source: string): void {
  const n = s.words.length;
  const where = (w: number): string => `${source}:${s.wordLines[w]!}`;
  const roots: number[] = [];
  for (let w = 0; w < n; w++) {
    const head = s.words[w]!.head;
    if (head > n) {
      throw new TopoprobeError(
        `${where(w)}: HEAD (column 7) of word ${w + 1} is ${head}, out of range: the sentence${describeId(s.id)} has ${n} word${n === 1 ? '' : 's'} (HEAD must be 0..${n})`,
      );
    }
    if (head === 0) roots.push(w);
  }
  if (roots.length === 0) {
    throw new TopoprobeError(`${source}:${s.line}: sentence${describeId(s.id)} has no root (no word with HEAD 0)`);
  }
  if (roots.length > 1) {
    throw new TopoprobeError(
      `${where(roots[1]!)}: sentence${describeId(s.id)} has ${roots.length} roots (words ${roots.map((w) => w + 1).join(', ')} ` +
        `on lines ${roots.map((w) => s.wordLines[w]).join(', ')} have HEAD 0); a tree has exactly one`,
    );
  }
  const cycle = findCycle(s.words);
  if (cycle !== null) {
    throw new TopoprobeError(
      `${where(cycle[0]!)}: the HEADs of sentence${describeId(s.id)} form a cycle: ` +
        `${cycle.map((w) => w + 1).join(' -> ')} -> ${cycle[0]! + 1} (word IDs, each pointing to its head)`,
    );
  }
}

/**
 * A cycle among the words' heads, as 0-based word indices starting from the lowest, or null. Heads must
 * be in 0..n.
 */
function findCycle(words: readonly ConlluWord[]): number[] | null {
  const n = words.length;
  // 0 unvisited, 1 on the current path, 2 known to reach the root
  const state = new Uint8Array(n);
  for (let start = 0; start < n; start++) {
    if (state[start] !== 0) continue;
    const path: number[] = [];
    let w = start;
    while (w >= 0 && state[w] === 0) {
      state[w] = 1;
      path.push(w);
      w = words[w]!.head - 1;
    }
    if (w >= 0 && state[w] === 1) {
      const cycle = path.slice(path.indexOf(w));
      const lowest = cycle.indexOf(Math.min(...cycle));
      return [...cycle.slice(lowest), ...cycle.slice(0, lowest)];
    }
    for (const v of path) state[v] = 2;
  }
  return null;
}

/**
 * Each word's depth in the dependency tree: the root word has depth `root` and every other word its
 * head's depth + 1. The paper's authors (Li, Yin & Lin 2023) count the root as 1; Hewitt & Manning
 * (2019) count it as 0.
 */
export function goldDepths(sentence: ConlluSentence, root: 0 | 1 = 1): number[] {
  check(root === 0 || root === 1, `the root's depth must be 0 or 1, got ${String(root)}`);
  const { words } = sentence;
  const n = words.length;
  const depths = new Array<number>(n).fill(-1);
  for (let start = 0; start < n; start++) {
    const path: number[] = [];
    let w = start;
    while (depths[w] === -1) {
      const head = words[w]!.head;
      check(
        Number.isInteger(head) && head >= 0 && head <= n && path.length <= n,
        () => `sentence at line ${sentence.line}${describeId(sentence.id)} is not a tree (word ${w + 1}, HEAD ${head})`,
      );
      path.push(w);
      if (head === 0) {
        depths[w] = root;
        path.pop();
        break;
      }
      w = head - 1;
    }
    // unwind: each word on the path is one deeper than the word after it
    for (let k = path.length - 1; k >= 0; k--) depths[path[k]!] = depths[words[path[k]!]!.head - 1]! + 1;
  }
  return depths;
}

/**
 * The gold tree distances of Hewitt & Manning's distance probe: an n x n matrix whose [i][j] entry is the
 * number of edges on the path between words i and j in the dependency tree, the tree taken as undirected
 * (word i is joined to its head, word `words[i].head - 1`; the root's HEAD 0 joins it to nothing). The
 * matrix is symmetric with a zero diagonal. Computed by a breadth-first search from every word, O(n^2).
 * Throws when the HEADs do not form a tree (a HEAD out of range, no root or several, a cycle).
 */
export function goldDistances(sentence: ConlluSentence): number[][] {
  const { words } = sentence;
  const n = words.length;
  const notTree = (why: string): string => `sentence at line ${sentence.line}${describeId(sentence.id)} is not a tree: ${why}`;
  const neighbours: number[][] = Array.from({ length: n }, () => []);
  let roots = 0;
  for (let w = 0; w < n; w++) {
    const head = words[w]!.head;
    check(Number.isInteger(head) && head >= 0 && head <= n, () => notTree(`word ${w + 1} has HEAD ${head}, not in 0..${n}`));
    if (head === 0) {
      roots++;
      continue;
    }
    check(head !== w + 1, () => notTree(`word ${w + 1} is its own head`));
    neighbours[w]!.push(head - 1);
    neighbours[head - 1]!.push(w);
  }
  check(n === 0 || roots === 1, () => notTree(`${roots} words have HEAD 0; a tree has exactly one root`));

  // With one root there are n - 1 head links, so the words form a tree exactly when they are connected.
  const dist: number[][] = [];
  const queue = new Int32Array(n);
  for (let start = 0; start < n; start++) {
    const row = new Array<number>(n).fill(-1);
    row[start] = 0;
    queue[0] = start;
    let head = 0;
    let tail = 1;
    while (head < tail) {
      const v = queue[head++]!;
      for (const u of neighbours[v]!) {
        if (row[u] !== -1) continue;
        row[u] = row[v]! + 1;
        queue[tail++] = u;
      }
    }
    check(tail === n, () => notTree(`word ${row.indexOf(-1) + 1} is not connected to word ${start + 1} (the HEADs form a cycle)`));
    dist.push(row);
  }
  return dist;
}

/** The 0-based index of the sentence's root word (the one with HEAD 0). */
export function goldRootIndex(sentence: ConlluSentence): number {
  const roots = sentence.words.flatMap((w, i) => (w.head === 0 ? [i] : []));
  check(
    roots.length === 1,
    () => `sentence at line ${sentence.line}${describeId(sentence.id)} has ${roots.length} roots; a tree has exactly one`,
  );
  return roots[0]!;
}

/** Hewitt & Manning's punctuation XPOS tags (PTB), excluded from their root accuracy. */
export const PUNCTUATION_XPOS: ReadonlySet<string> = new Set(["''", ',', '.', ':', '``', '-LRB-', '-RRB-']);

/**
 * Whether a word is punctuation, to be left out of root accuracy: UPOS `PUNCT`, or an XPOS in Hewitt &
 * Manning's set (`'' , . : `` -LRB- -RRB-`).
 */
export function isPunctuation(word: Pick<ConlluWord, 'upos' | 'xpos'>): boolean {
  return word.upos === 'PUNCT' || PUNCTUATION_XPOS.has(word.xpos);
}
