/**
 * GLUE tasks: the one registry of what topoprobe knows about each task (where each split lives in the data
 * directory, its TSV layout, its labels, whether it is a regression, the metrics GLUE reports for it and
 * the one used for model selection) and readers for it, plus the sentence pool the paper trained its X_ssp / X_essp probes on.
 *
 * The tasks: CoLA, MRPC, RTE and STS-B in their local layouts, and SST-2, QNLI, QQP, MNLI (as `mnli`,
 * matched dev/test, and `mnli-mm`, mismatched dev/test, sharing train) and WNLI as GLUE's zips hold them.
 *
 * The TSVs are read as tab-separated fields and nothing more: they are not CSV-quoted (MRPC, STS-B, SST-2,
 * QNLI and MNLI sentences hold literal `"` characters), so a quote is part of the text. Lines end in LF or
 * CRLF; blank lines are skipped. Every problem with a file is a TopoprobeError naming the file and line
 * (`path:line: ...`), and the column at fault. The one tolerance: QQP rows that are malformed in GLUE's
 * own file (the wrong number of columns, an empty question) are skipped, counted and logged (one warn line
 * per file; `parseGlueDetailed` / `readGlueDetailed` return the lines).
 *
 * Adding a task is one more `GlueTask` member and one more entry in `TASKS`: its folder, its files per
 * split and a layout per split (header, columns, row parser). A layout either has fixed columns (the header,
 * when it has one, must be exactly their names) or finds the columns it reads by name in the header (MNLI).
 */
import { existsSync } from 'node:fs';
import { readText } from '../util/fs.js';
import { join } from 'node:path';
import { TopoprobeError, check } from '../util/errors.js';
import { getLogger } from '../util/log.js';
import { dataDir as resolveDataDir } from './paths.js';

export type GlueTask = 'cola' | 'mrpc' | 'rte' | 'stsb' | 'sst2' | 'qnli' | 'qqp' | 'mnli' | 'mnli-mm' | 'wnli';
export type GlueSplit = 'train' | 'dev' | 'test';

export interface GlueExample {
  /**
   * The example's id: the file's own (RTE, QNLI, MNLI, WNLI and SST-2 test `index`; QQP `id`; MRPC
   * `#1 ID-#2 ID`; STS-B `genre/file/year/id`), else its row number from 0 (CoLA; SST-2 train and dev).
   */
  id: string;
  /** The sentence (single-sentence tasks), or the first of a pair (QNLI: the question). */
  sentence1: string;
  /** The second sentence of a pair task (MRPC, RTE, STS-B, QNLI, QQP, MNLI, WNLI). */
  sentence2?: string;
  /**
   * Classification: the index in the task's `labels`, GLUE's order (CoLA 1 acceptable / 0 not; MRPC 1
   * paraphrase / 0 not; SST-2 1 positive / 0 negative; QQP 1 duplicate / 0 not; WNLI 1 entailment / 0 not;
   * RTE and QNLI 0 entailment / 1 not_entailment; MNLI 0 contradiction / 1 entailment / 2 neutral).
   * Regression (STS-B): the similarity score, 0-5. Absent where the file has no labels (the test files of
   * RTE, SST-2, QNLI, QQP, MNLI, WNLI).
   */
  label?: number;
  /** The 1-based line of the file the example was read from. */
  line: number;
}

/** A split's examples and the lines skipped as malformed on the way (QQP only; empty for other tasks). */
export interface GlueReadResult {
  examples: GlueExample[];
  /** How many lines were skipped (`skippedLines.length`). */
  skipped: number;
  /** The 1-based lines skipped, in file order. */
  skippedLines: number[];
}

/** Where a row's problems are reported. */
interface RowContext {
  source: string;
  line: number;
  /** Data rows before this one (0 for the first). */
  row: number;
}

/** A file's columns as a row parser sees them: the names (for messages) and where a named one is. */
interface Columns {
  /** Every column of the file, in order: the layout's fixed columns, or the file's header (named layouts). */
  names: readonly string[];
  /** The 0-based position of a column by name (a named layout checked the header has it). */
  index(name: string): number;
}

interface TsvLayout {
  /**
   * Fixed layouts: every column, in order, for the header and for messages. Named layouts: the columns
   * read, which the header line must name (anywhere, in any order, among others).
   */
  columns: readonly string[];
  /** Further trailing columns a row may have, ignored (STS-B's source attributions). Fixed layouts only. */
  optionalColumns?: number;
  /**
   * 'required': the first line must be exactly the column names; 'optional': skipped when it is; 'named':
   * the first line is a header naming (at least) `columns`, and every row has as many fields as it.
   */
  header: 'none' | 'required' | 'optional' | 'named';
  /**
   * Rows this returns true for are skipped and counted, not an error (QQP's malformed lines). It sees
   * every row, before the column count is checked.
   */
  malformed?(fields: readonly string[]): boolean;
  parse(fields: readonly string[], at: RowContext, cols: Columns): Omit<GlueExample, 'line'>;
}

/** The metrics GLUE reports (computed in src/train/metrics.ts). */
export type TaskMetricName = 'mcc' | 'accuracy' | 'f1' | 'pearson' | 'spearman';

export interface GlueTaskInfo {
  task: GlueTask;
  /** The task's usual name (CoLA, MRPC, RTE, STS-B, SST-2, QNLI, QQP, MNLI, MNLI-mm, WNLI). */
  displayName: string;
  /** The task's folder in the data directory. */
  folder: string;
  /** The `topoprobe data download` item that fetches its files (`mnli` for `mnli-mm`). */
  dataItem: string;
  /** The file of each split this layout has, in the task's folder. */
  files: Readonly<Partial<Record<GlueSplit, string>>>;
  /** Why a split is missing, for the error asking for it. */
  missing: Readonly<Partial<Record<GlueSplit, string>>>;
  /** Classification: the label names, a label being an index into them. Null for regression (STS-B). */
  labels: readonly string[] | null;
  /** True for a regression task (STS-B: the label is a score), false for classification. */
  regression: boolean;
  /** The metrics GLUE reports for the task, in the order `taskMetrics` returns them. */
  metrics: readonly TaskMetricName[];
  /**
   * The metric used for model selection (the best checkpoint, the best sweep run), one of `metrics`:
   * - CoLA: MCC, GLUE's only CoLA metric.
   * - MRPC, QQP: F1. GLUE's leaderboard score for these is the mean of accuracy and F1, but selection
   *   needs one number, and F1 (of the positive, paraphrase / duplicate, class) is the one that does
   *   not reward predicting the majority class; both are still reported.
   * - STS-B: Pearson. GLUE's score is the mean of Pearson and Spearman; we select on Pearson, the
   *   first of the pair, and both are still reported.
   * - Every other task: accuracy.
   */
  primary: TaskMetricName;
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
const SST2_COLUMNS = ['sentence', 'label'] as const;
const SST2_TEST_COLUMNS = ['index', 'sentence'] as const;
const QNLI_COLUMNS = ['index', 'question', 'sentence', 'label'] as const;
const QNLI_TEST_COLUMNS = ['index', 'question', 'sentence'] as const;
const QQP_COLUMNS = ['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'] as const;
const QQP_TEST_COLUMNS = ['id', 'question1', 'question2'] as const;
/** The MNLI columns read (by name: the files have more, and train, dev and test differ in their labels). */
const MNLI_COLUMNS = ['index', 'sentence1', 'sentence2', 'gold_label'] as const;
const MNLI_TEST_COLUMNS = ['index', 'sentence1', 'sentence2'] as const;
const WNLI_COLUMNS = RTE_COLUMNS;
const WNLI_TEST_COLUMNS = RTE_TEST_COLUMNS;
const RTE_LABELS = ['entailment', 'not_entailment'] as const;
const MNLI_LABELS = ['contradiction', 'entailment', 'neutral'] as const;

/** A fixed layout: exactly these columns, under a header line that names them. */
function headed(columns: readonly string[], parse: (f: readonly string[], at: RowContext) => Omit<GlueExample, 'line'>): TsvLayout {
  return { columns, header: 'required', parse };
}

/** A fixed-layout pair task: `index`-like id column, two sentences, and (unless test) a label column. */
function pairLayout(
  columns: readonly string[],
  [id, s1, s2]: readonly [number, number, number],
  label?: (f: readonly string[], at: RowContext) => number,
): TsvLayout {
  return headed(columns, (f, at) => ({
    id: textField(f, id, columns, at),
    sentence1: textField(f, s1, columns, at),
    sentence2: textField(f, s2, columns, at),
    ...(label === undefined ? {} : { label: label(f, at) }),
  }));
}

/** QQP: rows with the wrong number of columns or an empty question are skipped (see the module comment). */
function qqpLayout(columns: readonly string[], questions: readonly [number, number], label: number | null): TsvLayout {
  return {
    ...pairLayout(columns, [0, questions[0], questions[1]], label === null ? undefined : (f, at) => binaryField(f, label, columns, at)),
    malformed: (f) => f.length !== columns.length || f[questions[0]]!.trim() === '' || f[questions[1]]!.trim() === '',
  };
}

/** MNLI, matched or mismatched: columns found by name in the header. */
function mnliLayout(split: GlueSplit): TsvLayout {
  const labelled = split !== 'test';
  return {
    columns: labelled ? MNLI_COLUMNS : MNLI_TEST_COLUMNS,
    header: 'named',
    parse: (f, at, cols) => ({
      id: textField(f, cols.index('index'), cols.names, at),
      sentence1: textField(f, cols.index('sentence1'), cols.names, at),
      sentence2: textField(f, cols.index('sentence2'), cols.names, at),
      ...(labelled ? { label: namedLabelField(f, cols.index('gold_label'), cols.names, MNLI_LABELS, at) } : {}),
    }),
  };
}

/**
 * A registry entry with the usual defaults: folder and data item named as the task, train.tsv / dev.tsv /
 * test.tsv, no missing split, classification scored by accuracy.
 */
function entry(task: GlueTask, spec: Partial<TaskSpec> & Pick<TaskSpec, 'displayName' | 'labels' | 'layout'>): TaskSpec {
  return { task, folder: task, dataItem: task, files: { train: 'train.tsv', dev: 'dev.tsv', test: 'test.tsv' }, missing: {}, regression: false, metrics: ['accuracy'], primary: 'accuracy', ...spec };
}

const TASKS: Readonly<Record<GlueTask, TaskSpec>> = {
  cola: entry('cola', {
    displayName: 'CoLA',
    files: { train: 'in_domain_train.tsv', dev: 'in_domain_dev.tsv' },
    missing: {
      test: 'the public CoLA release has no labelled test set (its files are in_domain_train.tsv, in_domain_dev.tsv and out_of_domain_dev.tsv)',
    },
    labels: ['unacceptable', 'acceptable'],
    metrics: ['mcc'],
    primary: 'mcc',
    layout: () => ({
      columns: COLA_COLUMNS,
      header: 'none',
      parse: (f, at) => ({
        id: String(at.row),
        sentence1: textField(f, 3, COLA_COLUMNS, at),
        label: binaryField(f, 1, COLA_COLUMNS, at),
      }),
    }),
  }),
  mrpc: entry('mrpc', {
    displayName: 'MRPC',
    files: { train: 'msr_paraphrase_train.tsv', test: 'msr_paraphrase_test.tsv' },
    missing: {
      dev:
        "GLUE's MRPC dev set is a subset of msr_paraphrase_train.tsv chosen by GLUE's id list (dev_ids.tsv), " +
        "which topoprobe does not have; use 'train' or 'test'",
    },
    labels: ['not_paraphrase', 'paraphrase'],
    metrics: ['accuracy', 'f1'],
    primary: 'f1',
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
  }),
  rte: entry('rte', {
    displayName: 'RTE',
    labels: RTE_LABELS,
    layout: (split) =>
      split === 'test'
        ? pairLayout(RTE_TEST_COLUMNS, [0, 1, 2])
        : pairLayout(RTE_COLUMNS, [0, 1, 2], (f, at) => namedLabelField(f, 3, RTE_COLUMNS, RTE_LABELS, at)),
  }),
  stsb: entry('stsb', {
    displayName: 'STS-B',
    files: { train: 'sts-train.tsv', dev: 'sts-dev.tsv', test: 'sts-test.tsv' },
    labels: null,
    regression: true,
    metrics: ['pearson', 'spearman'],
    primary: 'pearson',
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
  }),
  sst2: entry('sst2', {
    displayName: 'SST-2',
    labels: ['negative', 'positive'],
    layout: (split) =>
      split === 'test'
        ? headed(SST2_TEST_COLUMNS, (f, at) => ({ id: textField(f, 0, SST2_TEST_COLUMNS, at), sentence1: textField(f, 1, SST2_TEST_COLUMNS, at) }))
        : headed(SST2_COLUMNS, (f, at) => ({
            id: String(at.row),
            sentence1: textField(f, 0, SST2_COLUMNS, at),
            label: binaryField(f, 1, SST2_COLUMNS, at),
          })),
  }),
  qnli: entry('qnli', {
    displayName: 'QNLI',
    labels: RTE_LABELS,
    layout: (split) =>
      split === 'test'
        ? pairLayout(QNLI_TEST_COLUMNS, [0, 1, 2])
        : pairLayout(QNLI_COLUMNS, [0, 1, 2], (f, at) => namedLabelField(f, 3, QNLI_COLUMNS, RTE_LABELS, at)),
  }),
  qqp: entry('qqp', {
    displayName: 'QQP',
    labels: ['not_duplicate', 'duplicate'],
    metrics: ['accuracy', 'f1'],
    primary: 'f1',
    layout: (split) => (split === 'test' ? qqpLayout(QQP_TEST_COLUMNS, [1, 2], null) : qqpLayout(QQP_COLUMNS, [3, 4], 5)),
  }),
  mnli: entry('mnli', {
    displayName: 'MNLI',
    files: { train: 'train.tsv', dev: 'dev_matched.tsv', test: 'test_matched.tsv' },
    labels: MNLI_LABELS,
    layout: mnliLayout,
  }),
  'mnli-mm': entry('mnli-mm', {
    displayName: 'MNLI-mm',
    folder: 'mnli',
    dataItem: 'mnli',
    files: { train: 'train.tsv', dev: 'dev_mismatched.tsv', test: 'test_mismatched.tsv' },
    labels: MNLI_LABELS,
    layout: mnliLayout,
  }),
  wnli: entry('wnli', {
    displayName: 'WNLI',
    labels: ['not_entailment', 'entailment'],
    layout: (split) =>
      split === 'test'
        ? pairLayout(WNLI_TEST_COLUMNS, [0, 1, 2])
        : pairLayout(WNLI_COLUMNS, [0, 1, 2], (f, at) => binaryField(f, 3, WNLI_COLUMNS, at)),
  }),
};

/** The tasks topoprobe reads, in registry order. */
export const GLUE_TASKS: readonly GlueTask[] = Object.keys(TASKS) as GlueTask[];

export function isGlueTask(name: string): name is GlueTask {
  return Object.prototype.hasOwnProperty.call(TASKS, name);
}

function spec(task: GlueTask): TaskSpec {
  check(isGlueTask(task), () => `unknown GLUE task ${JSON.stringify(task)}; known: ${GLUE_TASKS.join(', ')}`);
  return TASKS[task];
}

/** A task's folder, files per split and labels. */
export function glueTaskInfo(task: GlueTask): GlueTaskInfo {
  const { layout: _layout, ...info } = spec(task);
  return info;
}

/** The width of a classifier's output for a task: 1 for regression (STS-B), else its number of labels (MNLI 3, the others 2). */
export function numLabels(task: GlueTask): number {
  const { labels } = spec(task);
  return labels === null ? 1 : labels.length;
}

// ---------------------------------------------------------------------------------------------------
// Reading.

/**
 * The path of a task's split in the data directory (see `dataDir`). Throws a TopoprobeError when this
 * layout has no such split (MRPC dev, CoLA test), saying why.
 */
export function gluePath(task: GlueTask, split: GlueSplit, dataDir?: string): string {
  const s = spec(task);
  const file = s.files[split];
  if (file === undefined) {
    const why = s.missing[split] ?? `${s.displayName} has no ${split} split`;
    const have = Object.keys(s.files).join(', ');
    throw new TopoprobeError(`this ${s.displayName} layout has no ${split} split: ${why} (splits available: ${have})`);
  }
  return join(resolveDataDir(dataDir), s.folder, file);
}

/**
 * Parses the text of a task's split file (see readGlue); `source` names it in error messages. Throws a
 * TopoprobeError naming the line of a wrong header (or, for MNLI, a header missing a column it needs), a row
 * with the wrong number of columns, an empty sentence or a bad label, and when there are no examples at
 * all. QQP's malformed rows are skipped instead, and logged (see parseGlueDetailed for their count).
 */
export function parseGlue(task: GlueTask, split: GlueSplit, text: string, source: string): GlueExample[] {
  return parseGlueDetailed(task, split, text, source).examples;
}

/**
 * parseGlue, also returning the lines skipped as malformed (QQP only). When any are, one warn line on the
 * logger names `source` and the count.
 */
export function parseGlueDetailed(task: GlueTask, split: GlueSplit, text: string, source: string): GlueReadResult {
  const s = spec(task);
  const layout = s.layout(split);
  const named = layout.header === 'named';
  let names: readonly string[] = layout.columns;
  let positions = new Map(names.map((n, i) => [n, i] as const));
  const cols: Columns = {
    get names() {
      return names;
    },
    index: (name) => positions.get(name)!,
  };
  let min = layout.columns.length;
  let max = min + (layout.optionalColumns ?? 0);
  const headerLine = layout.columns.join('\t');

  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const examples: GlueExample[] = [];
  const skippedLines: number[] = [];
  let sawFirst = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line.trim() === '') continue;
    const at: RowContext = { source, line: i + 1, row: examples.length };
    if (!sawFirst) {
      sawFirst = true;
      if (named) {
        names = line.split('\t');
        positions = new Map();
        for (const want of layout.columns) {
          const j = names.indexOf(want);
          if (j < 0) {
            fail(
              at,
              `the header has no ${JSON.stringify(want)} column (${s.displayName} ${split} reads ${layout.columns.join(', ')}; ` +
                `found ${JSON.stringify(clip(names.join(', '), 200))})`,
            );
          }
          const again = names.indexOf(want, j + 1);
          if (again >= 0) fail(at, `the header names column ${JSON.stringify(want)} twice (columns ${j + 1} and ${again + 1})`);
          positions.set(want, j);
        }
        min = max = names.length;
        continue;
      }
      const isHeader = line === headerLine;
      if (layout.header === 'required' && !isHeader) {
        fail(at, `expected the header line ${JSON.stringify(headerLine)} (${s.displayName} ${split}), found ${JSON.stringify(clip(line))}`);
      }
      if (isHeader && layout.header !== 'none') continue;
      if (layout.header === 'optional' && line.split('\t')[0] === layout.columns[0]) {
        fail(at, `malformed header line: expected ${JSON.stringify(headerLine)}, found ${JSON.stringify(clip(line))}`);
      }
    }
    const fields = line.split('\t');
    if (layout.malformed?.(fields)) {
      skippedLines.push(at.line);
      continue;
    }
    if (fields.length < min || fields.length > max) {
      const expected = min === max ? `${min}` : `${min} to ${max}`;
      fail(
        at,
        `expected ${expected} tab-separated columns (${names.join(', ')}${max > min ? ', then optional extras' : ''}), found ${fields.length}`,
      );
    }
    examples.push({ ...layout.parse(fields, at, cols), line: at.line });
  }
  if (skippedLines.length > 0) {
    getLogger().warn(
      `${source}: skipped ${skippedLines.length} malformed ${s.displayName} line(s) (wrong number of columns or an empty question; ` +
        `first at line ${skippedLines[0]})`,
    );
  }
  if (examples.length === 0) {
    const skipped = skippedLines.length > 0 ? `, ${skippedLines.length} of them skipped as malformed` : '';
    throw new TopoprobeError(`${source}: no ${s.displayName} examples found (${lines.length} line(s) read${skipped}; is it empty?)`);
  }
  return { examples, skipped: skippedLines.length, skippedLines };
}

function clip(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/**
 * Reads a task's split from the data directory (`dataDir` resolved as by the `--data-dir` flag). Files:
 * CoLA train `cola/in_domain_train.tsv`, dev `cola/in_domain_dev.tsv` (no test); MRPC train
 * `mrpc/msr_paraphrase_train.tsv`, test `mrpc/msr_paraphrase_test.tsv` (no dev: GLUE's is a subset of
 * train by an id list we do not have); RTE, SST-2, QNLI, QQP, WNLI `<task>/{train,dev,test}.tsv`; STS-B
 * `stsb/sts-{train,dev,test}.tsv`; MNLI `mnli/train.tsv`, `mnli/dev_matched.tsv`, `mnli/test_matched.tsv`
 * and MNLI-mm the same train with `mnli/dev_mismatched.tsv`, `mnli/test_mismatched.tsv`. Test files are
 * unlabelled except MRPC's and STS-B's. A missing file is a TopoprobeError with its path and how to get it.
 */
export function readGlue(task: GlueTask, split: GlueSplit, dataDir?: string): GlueExample[] {
  return readGlueDetailed(task, split, dataDir).examples;
}

/** readGlue, also returning the lines skipped as malformed (QQP only; see parseGlueDetailed). */
export function readGlueDetailed(task: GlueTask, split: GlueSplit, dataDir?: string): GlueReadResult {
  const path = gluePath(task, split, dataDir);
  const s = TASKS[task];
  if (!existsSync(path)) {
    throw new TopoprobeError(
      `${s.displayName} ${split} file not found: ${path}. \`topoprobe data download ${s.dataItem}\` fetches it; ` +
        'or point --data-dir or TOPOPROBE_DATA_DIR at a data directory that has it',
    );
  }
  const text = readText(path);
  return parseGlueDetailed(task, split, text, path);
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
