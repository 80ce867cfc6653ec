/**
 * Result files published by the paper's authors, read by `topoprobe compare --paper`.
 *
 * The authors' exact files are not available here, so this is a tolerant parser for the format they are
 * assumed to have: plain text, one record ("block") per fine-tuning run, each line of a block a key and a
 * value separated by a TAB, blocks separated by one or more blank lines:
 *
 *     # CoLA, bert-large, guidance at layer 16     <- a line starting with '#' is a comment (ignored)
 *     layer<TAB>16
 *     seed<TAB>1
 *     mcc<TAB>0.6123
 *
 *     layer<TAB>baseline
 *     seed<TAB>1
 *     mcc<TAB>0.5934
 *
 * Assumptions, all checked:
 * - Keys are case-insensitive (stored lower-case) and trimmed; values are trimmed. A value that reads as
 *   a number (`16`, `-0.5`, `6.1e-1`) is stored as a number, anything else as a string. `\r\n` line ends
 *   and a missing final newline are fine; whitespace-only lines count as blank.
 * - A line without a TAB, with an empty key or value, with more than one TAB-separated value, or repeating
 *   a key already in its block is malformed: the error names the file and line (`file:line: ...`).
 * - The guided submodule is the `layer` key (or `submodule`; 0 = embeddings, i = output of layer i).
 *   Several guided submodules may be listed in one value, separated by commas or `+` (`12,16`). A block
 *   without either key, with a `baseline` key (any value), or whose layer is `baseline`, `none`, `-` or
 *   empty-like is plain fine-tuning (the baseline).
 * - The metric value is looked up, for `compare --metric best|final` and the runs' metric (e.g. mcc), as
 *   the first present of `<best|final>_<metric>`, `<metric>_<best|final>`, `<metric>`, `<best|final>`.
 *   Values are taken as they are written (a file reporting MCC in percent is not rescaled).
 * - `seed` (optional) identifies the run; `task` (optional) lets one file hold several tasks: blocks of
 *   another task are skipped. `weight` (or `lambda`), `labels` and `examples`, when present, are part of
 *   the condition; every other key is carried along but ignored.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TopoprobeError } from '../util/errors.js';

export type PaperValue = number | string;

/** One block of an authors' result file. */
export interface PaperBlock {
  file: string;
  /** 1-based line of the block's first key line. */
  line: number;
  fields: Record<string, PaperValue>;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseValue(raw: string): PaperValue {
  return NUMBER.test(raw) ? Number(raw) : raw;
}

/** Parses the text of one result file (see the format above); `file` names it in errors. */
export function parsePaperResults(text: string, file: string): PaperBlock[] {
  const blocks: PaperBlock[] = [];
  let current: PaperBlock | null = null;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const at = `${file}:${i + 1}`;
    if (line.trim() === '') {
      current = null;
      return;
    }
    if (line.trimStart().startsWith('#')) return;
    const tab = line.indexOf('\t');
    if (tab < 0) throw new TopoprobeError(`${at}: expected "key<TAB>value", found no TAB in ${JSON.stringify(line)}`);
    const key = line.slice(0, tab).trim().toLowerCase();
    const rest = line.slice(tab + 1).replace(/^\t+/, '').trim();
    if (key === '') throw new TopoprobeError(`${at}: empty key before the TAB in ${JSON.stringify(line)}`);
    if (rest === '') throw new TopoprobeError(`${at}: key "${key}" has no value`);
    if (rest.includes('\t')) throw new TopoprobeError(`${at}: key "${key}" has more than one TAB-separated value (${JSON.stringify(rest)})`);
    if (current === null) {
      current = { file, line: i + 1, fields: {} };
      blocks.push(current);
    }
    const block: PaperBlock = current;
    if (key in block.fields) throw new TopoprobeError(`${at}: key "${key}" appears twice in the block that starts at line ${block.line}`);
    block.fields[key] = parseValue(rest);
  });
  return blocks;
}

/** The files a `--paper` path stands for: the file itself, or every non-hidden file of a folder (sorted). */
function expandPath(path: string): string[] {
  if (!existsSync(path)) throw new TopoprobeError(`--paper ${path}: not found`);
  if (!statSync(path).isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((n) => !n.startsWith('.'))
    .sort()
    .map((n) => join(path, n))
    .filter((p) => statSync(p).isFile());
  if (files.length === 0) throw new TopoprobeError(`--paper ${path}: the folder holds no files`);
  return files;
}

/** Reads and parses every file named by `paths` (files, or folders of files). */
export function readPaperResults(paths: readonly string[]): { files: string[]; blocks: PaperBlock[] } {
  const files = paths.flatMap(expandPath);
  const blocks = files.flatMap((f) => parsePaperResults(readFileSync(f, 'utf8'), f));
  return { files, blocks };
}

const BASELINE_WORDS = new Set(['baseline', 'none', '-', 'no', 'false', 'null', 'vanilla']);

/** The guided submodules of a block, sorted ([] for plain fine-tuning). */
export function paperLayers(block: PaperBlock): number[] {
  if ('baseline' in block.fields) return [];
  const raw = block.fields.layer ?? block.fields.submodule;
  if (raw === undefined) return [];
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw) || raw < 0) throw new TopoprobeError(`${block.file}:${block.line}: layer ${raw} is not a submodule index (an integer >= 0)`);
    return [raw];
  }
  if (BASELINE_WORDS.has(raw.toLowerCase())) return [];
  const parts = raw.split(/[,+\s]+/).filter((p) => p !== '');
  const layers = parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new TopoprobeError(`${block.file}:${block.line}: layer "${raw}" is not a submodule index, a list of them, or "baseline"`);
    return Number(p);
  });
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** The metric value of a block (see the lookup order above), or undefined when none of the keys is present. */
export function paperValue(block: PaperBlock, metric: string, which: 'best' | 'final'): { key: string; value: PaperValue } | undefined {
  const m = metric.toLowerCase();
  for (const key of [`${which}_${m}`, `${m}_${which}`, m, which]) {
    if (key in block.fields) return { key, value: block.fields[key]! };
  }
  return undefined;
}

/** The keys besides the layer that make up a paper condition, in label order. */
const CONDITION_KEYS: ReadonlyArray<{ label: string; keys: string[] }> = [
  { label: 'weight', keys: ['weight', 'lambda'] },
  { label: 'labels', keys: ['labels'] },
  { label: 'examples', keys: ['examples'] },
];

/**
 * Condition labels for the blocks: `paper: baseline` or `paper: layer=16` (`layer=12+16` for several),
 * followed by `weight=`, `labels=` and `examples=` where those keys are present and differ between blocks.
 */
export function paperConditionKeys(blocks: readonly PaperBlock[]): string[] {
  const extra = CONDITION_KEYS.filter(({ keys }) => {
    const values = new Set(blocks.map((b) => String(keys.map((k) => b.fields[k]).find((v) => v !== undefined) ?? '-')));
    return values.size > 1;
  });
  return blocks.map((b) => {
    const layers = paperLayers(b);
    const parts = [layers.length === 0 ? 'baseline' : `layer=${layers.join('+')}`];
    for (const { label, keys } of extra) {
      const v = keys.map((k) => b.fields[k]).find((x) => x !== undefined);
      parts.push(`${label}=${v === undefined ? '-' : String(v)}`);
    }
    return `paper: ${parts.join(' ')}`;
  });
}
