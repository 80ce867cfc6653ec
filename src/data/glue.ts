/**
 * GLUE task data: a registry of tasks (where each split lives in the data directory, its TSV layout,
 * its labels) and readers for it, plus the sentence pool the paper trained its X_ssp / X_essp probes on.
 *
 * The TSVs are read as tab-separated fields and nothing more: they are not CSV-quoted (MRPC and STS-B
 * sentences hold literal `"` characters), so a quote is part of the text. Lines end in LF or CRLF; blank
 * lines are skipped. Every problem with a file is a TopoprobeError naming the file and line
 * (`path:line: ...`), and the column at fault.
 *
 * Adding a task (SST-2, QNLI, QQP, MNLI, WNLI) is one more `GlueTask` member and one more entry in
 * `TASKS`: its folder, its files per split and a layout per split (header, column count, row parser).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TopoprobeError, check } from '../util/errors.js';
import { dataDir as resolveDataDir } from './paths.js';

export type GlueTask = 'cola' | 'mrpc' | 'rte' | 'stsb';
export type GlueSplit = 'train' | 'dev' | 'test';

export interface GlueExample {
  /** The example's id: the file's own (RTE index; MRPC `#1 ID-#2 ID`; STS-B `genre/file/year/id`), else its row number from 0 (CoLA). */
  id: string;
  sentence1: string;
  /** The second sentence of a pair task (MRPC, RTE, STS-B). */
  sentence2?: string;
  /**
   * Classification: the index in the task's `labels` (CoLA 1 acceptable / 0 not; MRPC 1 paraphrase /
   * 0 not; RTE 0 entailment / 1 not_entailment, GLUE's order). Regression (STS-B): the similarity score,
   * 0-5. Absent where the file has no labels (RTE test).
   */
  label?: number;
  /** The 1-based line of the file the example was read from. */
  line: number;
}

/** Where a row's problems are reported. */
interface RowContext {
  source: string;
  line: number;
  /** Data rows before this one (0 for the first). */
  row: number;
}

interface TsvLayout {
  /** Column names, for the header and for messages. */
  columns: readonly string[];
  /** Further trailing columns a row may have, ignored (STS-B's source attributions). */
  optionalColumns?: number;
  /** 'required': the first line must be exactly the column names; 'optional': skipped when it is. */
  header: 'none' | 'required' | 'optional';
  parse(fields: readonly string[], at: RowContext): Omit<GlueExample, 'line'>;
}

export interface GlueTaskInfo {
  task: GlueTask;
  /** The task's usual name (CoLA, MRPC, RTE, STS-B). */
  displayName: string;
  /** The task's folder in the data directory. */
  folder: string;
  /** The file of each split this layout has, in the task's folder. */
  files: Readonly<Partial<Record<GlueSplit, string>>>;
  /** Why a split is missing, for the error asking for it. */
  missing: Readonly<Partial<Record<GlueSplit, string>>>;
  /** Classification: the label names, a label being an index into them. Null for regression (STS-B). */
  labels: readonly string[] | null;
}

interface TaskSpec extends GlueTaskInfo {
  layout(split: GlueSplit): TsvLayout;
}

// ---------------------------------------------------------------------------------------------------
// Field helpers: each throws naming file, line and column.

function fail(at: RowContext, message: string): never {
  throw new TopoprobeError(`${at.source}:${at.line}: ${message}`);
}

function column(layout: readonly string[], i: number): string {
  return `column ${i + 1} (${layout[i]})`;
}

function textField(fields: readonly string[], i: number, names: readonly string[], at: RowContext): string {
  const value = fields[i]!;
  if (value.trim() === '') fail(at, `${column(names, i)} is empty`);
  return value;
}

function binaryField(fields: readonly string[], i: number, names: readonly string[], at: RowContext): number {
  const value = fields[i]!;
  if (value !== '0' && value !== '1') fail(at, `${column(names, i)} must be 0 or 1, got ${JSON.stringify(value)}`);
  return Number(value);
}

function namedLabelField(fields: readonly string[], i: number, names: readonly string[], labels: readonly string[], at: RowContext): number {
  const value = fields[i]!;
  const label = labels.indexOf(value);
  if (label < 0) fail(at, `${column(names, i)} must be one of ${labels.join(', ')}, got ${JSON.stringify(value)}`);
  return label;
}

function scoreField(fields: readonly string[], i: number, names: readonly string[], at: RowContext): number {
  const value = fields[i]!;
  const score = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || score > 5) {
    fail(at, `${column(names, i)} must be a similarity score from 0 to 5, got ${JSON.stringify(value)}`);
  }
  return score;
}

// ---------------------------------------------------------------------------------------------------
// The tasks.

const COLA_COLUMNS = ['source', 'label', 'original mark', 'sentence'] as const;
const MRPC_COLUMNS = ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'] as const;
const RTE_COLUMNS = ['index', 'sentence1', 'sentence2', 'label'] as const;
const RTE_TEST_COLUMNS = ['index', 'sentence1', 'sentence2'] as const;
const STSB_COLUMNS = ['genre', 'file', 'year', 'id', 'score', 'sentence1', 'sentence2'] as const;
const RTE_LABELS = ['entailment', 'not_entailment'] as const;

const TASKS: Readonly<Record<GlueTask, TaskSpec>> = {
  cola: {
    task: 'cola',
    displayName: 'CoLA',
    folder: 'cola',
    files: { train: 'in_domain_train.tsv', dev: 'in_domain_dev.tsv' },
    missing: {
      test: 'the public CoLA release has no labelled test set (its files are in_domain_train.tsv, in_domain_dev.tsv and out_of_domain_dev.tsv)',
    },
    labels: ['unacceptable', 'acceptable'],
    layout: () => ({
      columns: COLA_COLUMNS,
      header: 'none',
      parse: (f, at) => ({
        id: String(at.row),
        sentence1: textField(f, 3, COLA_COLUMNS, at),
        label: binaryField(f, 1, COLA_COLUMNS, at),
      }),
    }),
  },
  mrpc: {
    task: 'mrpc',
    displayName: 'MRPC',
    folder: 'mrpc',
    files: { train: 'msr_paraphrase_train.tsv', test: 'msr_paraphrase_test.tsv' },
    missing: {
      dev:
        "GLUE's MRPC dev set is a subset of msr_paraphrase_train.tsv chosen by GLUE's id list (dev_ids.tsv), " +
        "which topoprobe does not have; use 'train' or 'test'",
    },
    labels: ['not_paraphrase', 'paraphrase'],
    layout: () => ({
      columns: MRPC_COLUMNS,
      header: 'optional',
      parse: (f, at) => ({
        id: `${textField(f, 1, MRPC_COLUMNS, at)}-${textField(f, 2, MRPC_COLUMNS, at)}`,
        sentence1: textField(f, 3, MRPC_COLUMNS, at),
        sentence2: textField(f, 4, MRPC_COLUMNS, at),
        label: binaryField(f, 0, MRPC_COLUMNS, at),
      }),
    }),
  },
  rte: {
    task: 'rte',
    displayName: 'RTE',
    folder: 'rte',
    files: { train: 'train.tsv', dev: 'dev.tsv', test: 'test.tsv' },
    missing: {},
    labels: RTE_LABELS,
    layout: (split) =>
      split === 'test'
        ? {
            columns: RTE_TEST_COLUMNS,
            header: 'required',
            parse: (f, at) => ({
              id: textField(f, 0, RTE_TEST_COLUMNS, at),
              sentence1: textField(f, 1, RTE_TEST_COLUMNS, at),
              sentence2: textField(f, 2, RTE_TEST_COLUMNS, at),
            }),
          }
        : {
            columns: RTE_COLUMNS,
            header: 'required',
            parse: (f, at) => ({
              id: textField(f, 0, RTE_COLUMNS, at),
              sentence1: textField(f, 1, RTE_COLUMNS, at),
              sentence2: textField(f, 2, RTE_COLUMNS, at),
              label: namedLabelField(f, 3, RTE_COLUMNS, RTE_LABELS, at),
            }),
          },
  },
  stsb: {
    task: 'stsb',
    displayName: 'STS-B',
    folder: 'stsb',
    files: { train: 'sts-train.tsv', dev: 'sts-dev.tsv', test: 'sts-test.tsv' },
    missing: {},
    labels: null,
    layout: () => ({
      columns: STSB_COLUMNS,
      // Some lines (the 2016 headlines and answers-forums pairs) carry each sentence's source after the pair.
      optionalColumns: 2,
      header: 'none',
      parse: (f, at) => ({
        id: [0, 1, 2, 3].map((i) => textField(f, i, STSB_COLUMNS, at)).join('/'),
        sentence1: textField(f, 5, STSB_COLUMNS, at),
        sentence2: textField(f, 6, STSB_COLUMNS, at),
        label: scoreField(f, 4, STSB_COLUMNS, at),
      }),
    }),
  },
};

/** The tasks topoprobe reads, in registry order. */
export const GLUE_TASKS: readonly GlueTask[] = Object.keys(TASKS) as GlueTask[];

export function isGlueTask(name: string): name is GlueTask {
  return Object.prototype.hasOwnProperty.call(TASKS, name);
}

/** A task's folder, files per split and labels. */
export function glueTaskInfo(task: GlueTask): GlueTaskInfo {
  check(isGlueTask(task), () => `unknown GLUE task ${JSON.stringify(task)}; known: ${GLUE_TASKS.join(', ')}`);
  const { layout: _layout, ...info } = TASKS[task];
  return info;
}

// ---------------------------------------------------------------------------------------------------
// Reading.

/**
 * The path of a task's split in the data directory (see `dataDir`). Throws a TopoprobeError when this
 * layout has no such split (MRPC dev, CoLA test), saying why.
 */
export function gluePath(task: GlueTask, split: GlueSplit, dataDir?: string): string {
  const spec = TASKS[task];
  check(spec !== undefined, () => `unknown GLUE task ${JSON.stringify(task)}; known: ${GLUE_TASKS.join(', ')}`);
  const file = spec.files[split];
  if (file === undefined) {
    const why = spec.missing[split] ?? `${spec.displayName} has no ${split} split`;
    const have = Object.keys(spec.files).join(', ');
    throw new TopoprobeError(`this ${spec.displayName} layout has no ${split} split: ${why} (splits available: ${have})`);
  }
  return join(resolveDataDir(dataDir), spec.folder, file);
}

/**
 * Parses the text of a task's split file (see readGlue); `source` names it in error messages. Throws a
 * TopoprobeError naming the line of a wrong header, a row with the wrong number of columns, an empty
 * sentence or a bad label, and when there are no examples at all.
 */
export function parseGlue(task: GlueTask, split: GlueSplit, text: string, source: string): GlueExample[] {
  const spec = TASKS[task];
  check(spec !== undefined, () => `unknown GLUE task ${JSON.stringify(task)}; known: ${GLUE_TASKS.join(', ')}`);
  const layout = spec.layout(split);
  const min = layout.columns.length;
  const max = min + (layout.optionalColumns ?? 0);
  const expected = min === max ? `${min}` : `${min} to ${max}`;
  const headerLine = layout.columns.join('\t');

  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const examples: GlueExample[] = [];
  let sawFirst = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line.trim() === '') continue;
    const at: RowContext = { source, line: i + 1, row: examples.length };
    if (!sawFirst) {
      sawFirst = true;
      const isHeader = line === headerLine;
      if (layout.header === 'required' && !isHeader) {
        fail(at, `expected the header line ${JSON.stringify(headerLine)} (${spec.displayName} ${split}), found ${JSON.stringify(clip(line))}`);
      }
      if (isHeader && layout.header !== 'none') continue;
      if (layout.header === 'optional' && line.split('\t')[0] === layout.columns[0]) {
        fail(at, `malformed header line: expected ${JSON.stringify(headerLine)}, found ${JSON.stringify(clip(line))}`);
      }
    }
    const fields = line.split('\t');
    if (fields.length < min || fields.length > max) {
      fail(
        at,
        `expected ${expected} tab-separated columns (${layout.columns.join(', ')}${max > min ? ', then optional extras' : ''}), found ${fields.length}`,
      );
    }
    examples.push({ ...layout.parse(fields, at), line: at.line });
  }
  if (examples.length === 0) {
    throw new TopoprobeError(`${source}: no ${spec.displayName} examples found (${lines.length} line(s) read; is it empty?)`);
  }
  return examples;
}

function clip(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/**
 * Reads a task's split from the data directory (`dataDir` resolved as by the `--data-dir` flag). Files:
 * CoLA train `cola/in_domain_train.tsv`, dev `cola/in_domain_dev.tsv` (no test); MRPC train
 * `mrpc/msr_paraphrase_train.tsv`, test `mrpc/msr_paraphrase_test.tsv` (no dev: GLUE's is a subset of
 * train by an id list we do not have); RTE `rte/{train,dev,test}.tsv` (test unlabelled); STS-B
 * `stsb/sts-{train,dev,test}.tsv`. A missing file is a TopoprobeError with its path and how to get it.
 */
export function readGlue(task: GlueTask, split: GlueSplit, dataDir?: string): GlueExample[] {
  const path = gluePath(task, split, dataDir);
  if (!existsSync(path)) {
    throw new TopoprobeError(
      `${TASKS[task].displayName} ${split} file not found: ${path}. \`topoprobe data download ${task}\` fetches it; ` +
        'or point --data-dir or TOPOPROBE_DATA_DIR at a data directory that has it',
    );
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TopoprobeError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseGlue(task, split, text, path);
}

// ---------------------------------------------------------------------------------------------------
// The probe sentence pool.

export interface PoolSentence {
  text: string;
  /** Where it came from: `<task folder>/<file>:<line>`, then `:sentence1` or `:sentence2` for a pair. */
  source: string;
}

export interface ProbeSentencePoolOptions {
  /** Remove exact duplicates, keeping the first occurrence (default true). */
  dedupe?: boolean;
}

/**
 * The sentence pool the paper (Li, Yin & Lin 2023) measured X_ssp / X_essp on: CoLA's acceptable
 * sentences plus the sentences of MRPC, RTE and STS-B. Concretely, in this order, each file in its line
 * order: the label-1 sentences of `cola/in_domain_train.tsv`; then `mrpc/msr_paraphrase_train.tsv`,
 * `rte/train.tsv` and `stsb/sts-train.tsv`, each pair giving its first sentence and then its second.
 * Training splits only (no dev or test file is read). Exact duplicates (the same string, no normalization
 * of case or spaces) are removed, keeping the first occurrence, unless `opts.dedupe` is false.
 */
export function probeSentencePool(dataDir?: string, opts: ProbeSentencePoolOptions = {}): PoolSentence[] {
  const { dedupe = true } = opts;
  const pool: PoolSentence[] = [];
  const seen = new Set<string>();
  const add = (text: string, source: string): void => {
    if (dedupe) {
      if (seen.has(text)) return;
      seen.add(text);
    }
    pool.push({ text, source });
  };
  for (const task of ['cola', 'mrpc', 'rte', 'stsb'] as const) {
    const { folder, files } = TASKS[task];
    const where = `${folder}/${files.train!}`;
    for (const ex of readGlue(task, 'train', dataDir)) {
      if (task === 'cola') {
        if (ex.label === 1) add(ex.sentence1, `${where}:${ex.line}`);
      } else {
        add(ex.sentence1, `${where}:${ex.line}:sentence1`);
        add(ex.sentence2!, `${where}:${ex.line}:sentence2`);
      }
    }
  }
  return pool;
}
