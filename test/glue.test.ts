import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GlueSplit,
  type GlueTask,
  GLUE_TASKS,
  glueTaskInfo,
  gluePath,
  isGlueTask,
  parseGlue,
  probeSentencePool,
  readGlue,
} from '../src/data/glue.js';
import { dataDir } from '../src/data/paths.js';
import { expectError } from './helpers.js';

/** A TSV line from its fields. */
const tsv = (...fields: string[]): string => fields.join('\t');

const COLA = [
  tsv('gj04', '1', '', 'The cat sat.'), // 1
  tsv('gj04', '0', '*', 'Cat the sat.'), // 2
  tsv('clc95', '1', '', 'He said "hi" to me.'), // 3
].join('\n') + '\n';

const MRPC_HEADER = tsv('Quality', '#1 ID', '#2 ID', '#1 String', '#2 String');
const MRPC_ROWS = [
  tsv('1', '702876', '702977', 'He called him "the witness", he said.', 'Referring to him as "the witness".'),
  tsv('0', '2108705', '2108831', '"Unbalanced quote opens here.', 'And the line ends normally.'),
];

const RTE = [
  tsv('index', 'sentence1', 'sentence2', 'label'), // 1
  tsv('0', 'A dog barks.', 'An animal makes a sound.', 'entailment'), // 2
  '', // 3 (blank: skipped)
  tsv('1', 'A dog barks.', 'A cat meows.', 'not_entailment'), // 4
].join('\n');

const RTE_TEST = [tsv('index', 'sentence1', 'sentence2'), tsv('0', 'It rains.', 'It is wet.')].join('\n') + '\n';

const STSB = [
  tsv('main-captions', 'MSRvid', '2012test', '0001', '5.000', 'A plane is taking off.', 'An air plane is taking off.'), // 1
  tsv('main-news', 'headlines', '2016', '0012', '4', 'Driver backs into stroller', 'Driver backs into mom', 'Europe Media Monitor', 'Europe Media Monitor'), // 2
  tsv('main-forums', 'answers-forums', '2015', '0007', '0.25', 'Say "what"?', "It's 'quoted'."), // 3
].join('\n') + '\n';

describe('glue: the task registry', () => {
  it('lists the tasks and recognizes their names', () => {
    expect(GLUE_TASKS).to.deep.equal(['cola', 'mrpc', 'rte', 'stsb']);
    expect(isGlueTask('rte')).to.equal(true);
    expect(isGlueTask('sst2')).to.equal(false);
    expect(isGlueTask('toString')).to.equal(false);
  });

  it("uses GLUE's label order", () => {
    expect(glueTaskInfo('rte').labels).to.deep.equal(['entailment', 'not_entailment']);
    expect(glueTaskInfo('cola').labels![1]).to.equal('acceptable');
    expect(glueTaskInfo('mrpc').labels![1]).to.equal('paraphrase');
    expect(glueTaskInfo('stsb').labels).to.equal(null);
  });

  it('maps each split to its file', () => {
    const d = '/data';
    expect(gluePath('cola', 'train', d)).to.equal(join(d, 'cola', 'in_domain_train.tsv'));
    expect(gluePath('cola', 'dev', d)).to.equal(join(d, 'cola', 'in_domain_dev.tsv'));
    expect(gluePath('mrpc', 'train', d)).to.equal(join(d, 'mrpc', 'msr_paraphrase_train.tsv'));
    expect(gluePath('mrpc', 'test', d)).to.equal(join(d, 'mrpc', 'msr_paraphrase_test.tsv'));
    expect(['train', 'dev', 'test'].map((s) => gluePath('rte', s as GlueSplit, d))).to.deep.equal(
      ['train', 'dev', 'test'].map((s) => join(d, 'rte', `${s}.tsv`)),
    );
    expect(['train', 'dev', 'test'].map((s) => gluePath('stsb', s as GlueSplit, d))).to.deep.equal(
      ['train', 'dev', 'test'].map((s) => join(d, 'stsb', `sts-${s}.tsv`)),
    );
  });

  it('says why MRPC has no dev split and CoLA no test split', () => {
    expectError(() => gluePath('mrpc', 'dev', '/data'), 'MRPC', 'no dev split', 'dev_ids', 'train, test');
    expectError(() => gluePath('cola', 'test', '/data'), 'CoLA', 'no test split', 'train, dev');
    expectError(() => gluePath('sst2' as GlueTask, 'train', '/data'), 'unknown GLUE task', 'sst2');
  });
});

describe('glue: reading hand-made files', () => {
  let dir = '';
  const put = (folder: string, file: string, text: string): string => {
    mkdirSync(join(dir, folder), { recursive: true });
    const path = join(dir, folder, file);
    writeFileSync(path, text);
    return path;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-glue-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('CoLA: sentence, label 1 acceptable / 0 not, row-number ids, quotes kept', () => {
    put('cola', 'in_domain_train.tsv', COLA);
    expect(readGlue('cola', 'train', dir)).to.deep.equal([
      { id: '0', sentence1: 'The cat sat.', label: 1, line: 1 },
      { id: '1', sentence1: 'Cat the sat.', label: 0, line: 2 },
      { id: '2', sentence1: 'He said "hi" to me.', label: 1, line: 3 },
    ]);
  });

  it('MRPC: with or without its header, CRLF or LF; a quote is just a character', () => {
    const expected = [
      {
        id: '702876-702977',
        sentence1: 'He called him "the witness", he said.',
        sentence2: 'Referring to him as "the witness".',
        label: 1,
        line: 2,
      },
      { id: '2108705-2108831', sentence1: '"Unbalanced quote opens here.', sentence2: 'And the line ends normally.', label: 0, line: 3 },
    ];
    put('mrpc', 'msr_paraphrase_train.tsv', '\uFEFF' + [MRPC_HEADER, ...MRPC_ROWS].join('\r\n') + '\r\n');
    expect(readGlue('mrpc', 'train', dir)).to.deep.equal(expected);
    put('mrpc', 'msr_paraphrase_test.tsv', MRPC_ROWS.join('\n'));
    expect(readGlue('mrpc', 'test', dir)).to.deep.equal(expected.map((e) => ({ ...e, line: e.line - 1 })));
  });

  it('RTE: entailment = 0, not_entailment = 1; the test file has no labels; blank lines skipped', () => {
    put('rte', 'train.tsv', RTE);
    expect(readGlue('rte', 'train', dir)).to.deep.equal([
      { id: '0', sentence1: 'A dog barks.', sentence2: 'An animal makes a sound.', label: 0, line: 2 },
      { id: '1', sentence1: 'A dog barks.', sentence2: 'A cat meows.', label: 1, line: 4 },
    ]);
    put('rte', 'test.tsv', RTE_TEST);
    const test = readGlue('rte', 'test', dir);
    expect(test).to.deep.equal([{ id: '0', sentence1: 'It rains.', sentence2: 'It is wet.', line: 2 }]);
    expect(test[0]).to.not.have.property('label');
  });

  it('STS-B: the score as a float; extra trailing source columns ignored', () => {
    put('stsb', 'sts-train.tsv', STSB);
    expect(readGlue('stsb', 'train', dir)).to.deep.equal([
      { id: 'main-captions/MSRvid/2012test/0001', sentence1: 'A plane is taking off.', sentence2: 'An air plane is taking off.', label: 5, line: 1 },
      { id: 'main-news/headlines/2016/0012', sentence1: 'Driver backs into stroller', sentence2: 'Driver backs into mom', label: 4, line: 2 },
      { id: 'main-forums/answers-forums/2015/0007', sentence1: 'Say "what"?', sentence2: "It's 'quoted'.", label: 0.25, line: 3 },
    ]);
  });

  it('a missing file: its path and how to get it', () => {
    const path = join(dir, 'stsb', 'sts-dev.tsv');
    expectError(() => readGlue('stsb', 'dev', dir), path, 'not found', '`topoprobe data download stsb`', '--data-dir', 'TOPOPROBE_DATA_DIR');
  });

  it('the probe sentence pool: acceptable CoLA, then both sentences of MRPC, RTE, STS-B train; duplicates removed', () => {
    put('cola', 'in_domain_train.tsv', COLA);
    put('mrpc', 'msr_paraphrase_train.tsv', MRPC_ROWS.join('\n'));
    put('rte', 'train.tsv', RTE);
    put('stsb', 'sts-train.tsv', STSB);
    const all = probeSentencePool(dir, { dedupe: false });
    expect(all.slice(0, 4)).to.deep.equal([
      { text: 'The cat sat.', source: 'cola/in_domain_train.tsv:1' },
      { text: 'He said "hi" to me.', source: 'cola/in_domain_train.tsv:3' },
      { text: 'He called him "the witness", he said.', source: 'mrpc/msr_paraphrase_train.tsv:1:sentence1' },
      { text: 'Referring to him as "the witness".', source: 'mrpc/msr_paraphrase_train.tsv:1:sentence2' },
    ]);
    expect(all).to.have.length(2 + 2 * (2 + 2 + 3));
    const pool = probeSentencePool(dir);
    // "A dog barks." appears twice in RTE: only its first occurrence is kept.
    expect(pool).to.have.length(all.length - 1);
    expect(pool.filter((s) => s.text === 'A dog barks.')).to.deep.equal([{ text: 'A dog barks.', source: 'rte/train.tsv:2:sentence1' }]);
    expect(pool.map((s) => s.source)).to.not.include('rte/train.tsv:4:sentence1');
    expect(probeSentencePool(dir)).to.deep.equal(pool);
  });
});

describe('glue: malformed files name the file and line', () => {
  const bad = (task: GlueTask, split: GlueSplit, lines: string[], line: number | null, ...fragments: string[]): string =>
    expectError(() => parseGlue(task, split, lines.join('\n'), 'bad.tsv'), line === null ? 'bad.tsv' : `bad.tsv:${line}:`, ...fragments);

  it('CoLA: column count, label, empty sentence', () => {
    bad('cola', 'train', [tsv('a', '1', '', 'Fine.'), tsv('a', '1', 'Three columns.')], 2, 'expected 4 tab-separated columns', 'found 3');
    bad('cola', 'train', [tsv('a', '1', '', 'Fine.', 'extra')], 1, 'found 5');
    bad('cola', 'dev', [tsv('a', '1', '', 'Fine.'), '', tsv('a', '2', '', 'Two?')], 3, 'column 2 (label)', '0 or 1', '"2"');
    bad('cola', 'train', [tsv('a', 'yes', '', 'Fine.')], 1, 'column 2 (label)', '"yes"');
    bad('cola', 'train', [tsv('a', '1', '', ' ')], 1, 'column 4 (sentence) is empty');
  });

  it('MRPC: column count, label, malformed header', () => {
    bad('mrpc', 'train', [MRPC_HEADER, MRPC_ROWS[0]!, tsv('1', '2', '3', 'only one sentence')], 3, 'expected 5', 'found 4');
    bad('mrpc', 'train', [MRPC_ROWS[0]!, tsv('x', '2', '3', 'a', 'b')], 2, 'column 1 (Quality)', '"x"');
    bad('mrpc', 'test', [tsv('Quality', '#1 ID', '#2 ID', 'String'), MRPC_ROWS[0]!], 1, 'header');
    bad('mrpc', 'test', [MRPC_ROWS[0]!, tsv('1', '2', '3', 'a', '')], 2, 'column 5 (#2 String) is empty');
  });

  it('RTE: missing header, column count, label', () => {
    bad('rte', 'train', [tsv('0', 'a', 'b', 'entailment')], 1, 'expected the header line', 'index\\tsentence1\\tsentence2\\tlabel');
    bad('rte', 'dev', [...RTE.split('\n'), tsv('2', 'a', 'b', 'contradiction')], 5, 'column 4 (label)', 'entailment, not_entailment', '"contradiction"');
    bad('rte', 'dev', [...RTE.split('\n'), tsv('2', 'a', 'b')], 5, 'expected 4', 'found 3');
    bad('rte', 'test', RTE.split('\n'), 1, 'expected the header line', 'index\\tsentence1\\tsentence2"');
    bad('rte', 'test', [RTE_TEST.trimEnd(), tsv('1', 'a', 'b', 'entailment')], 3, 'expected 3', 'found 4');
  });

  it('STS-B: column count, score', () => {
    const ok = STSB.trimEnd().split('\n');
    bad('stsb', 'train', [...ok, tsv('g', 'f', 'y', '1', '3.0', 'only one')], 4, 'expected 7 to 9', 'found 6');
    bad('stsb', 'train', [...ok, tsv('g', 'f', 'y', '1', '3.0', 'a', 'b', 's', 's', 'x')], 4, 'expected 7 to 9', 'found 10');
    for (const score of ['5.5', '-1', 'abc', '', '1e0', ' 3']) {
      bad('stsb', 'test', [tsv('g', 'f', 'y', '1', score, 'a', 'b')], 1, 'column 5 (score)', 'from 0 to 5', JSON.stringify(score));
    }
  });

  it('a file with no examples', () => {
    bad('cola', 'train', [''], null, 'no CoLA examples');
    bad('stsb', 'train', ['', '\r', ''], null, 'no STS-B examples');
    bad('rte', 'train', [RTE.split('\n')[0]!], null, 'no RTE examples');
  });

  it('names the real path when reading', () => {
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-glue-bad-'));
    try {
      mkdirSync(join(dir, 'rte'));
      const path = join(dir, 'rte', 'dev.tsv');
      writeFileSync(path, RTE + '\n' + tsv('9', 'a', 'b', 'maybe') + '\n');
      expectError(() => readGlue('rte', 'dev', dir), `${path}:5:`, '"maybe"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// The real data: every count here is computed from the raw lines, independently of the reader.

/** The file's non-empty lines (line ends stripped). */
function rawLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
}

/** The raw data rows: non-empty lines, less a header line (RTE always; MRPC when the first line starts with "Quality"). */
function rawRows(task: GlueTask, path: string): string[][] {
  const lines = rawLines(path);
  const hasHeader = task === 'rte' || (task === 'mrpc' && lines[0]!.replace(/^\uFEFF/, '').startsWith('Quality\t'));
  return (hasHeader ? lines.slice(1) : lines).map((l) => l.split('\t'));
}

describe('glue: the real data (skipped when absent)', () => {
  const dir = dataDir();
  const present = (task: GlueTask, split: GlueSplit): string | null => {
    const info = glueTaskInfo(task);
    const file = info.files[split];
    if (file === undefined) return null;
    const path = join(dir, info.folder, file);
    return existsSync(path) ? path : null;
  };

  for (const task of GLUE_TASKS) {
    for (const split of ['train', 'dev', 'test'] as const) {
      if (glueTaskInfo(task).files[split] === undefined) continue;
      it(`${task} ${split}: one example per data row, with unique ids`, function () {
        const path = present(task, split);
        if (path === null) this.skip();
        const examples = readGlue(task, split);
        const rows = rawRows(task, path);
        expect(examples).to.have.length(rows.length);
        expect(new Set(examples.map((e) => e.id)).size).to.equal(examples.length);
        const labelled = !(task === 'rte' && split === 'test');
        expect(examples.every((e) => (e.label !== undefined) === labelled)).to.equal(true);
      });
    }
  }

  it('the documented sizes: CoLA train 8551 (6023 acceptable), MRPC 4076 / 1725 pairs', function () {
    const cola = present('cola', 'train');
    const mrpcTrain = present('mrpc', 'train');
    const mrpcTest = present('mrpc', 'test');
    if (cola === null || mrpcTrain === null || mrpcTest === null) this.skip();
    const colaExamples = readGlue('cola', 'train');
    expect(colaExamples).to.have.length(8551);
    const acceptable = rawRows('cola', cola).filter((f) => f[1] === '1').length;
    expect(acceptable).to.equal(6023);
    expect(colaExamples.filter((e) => e.label === 1)).to.have.length(acceptable);
    expect(readGlue('mrpc', 'train')).to.have.length(4076);
    expect(readGlue('mrpc', 'test')).to.have.length(1725);
  });

  it('the probe sentence pool: its size before and after de-duplication, and the same on every call', function () {
    const paths = (['cola', 'mrpc', 'rte', 'stsb'] as const).map((t) => present(t, 'train'));
    if (paths.some((p) => p === null)) this.skip();
    const [cola, mrpc, rte, stsb] = paths as string[];
    const texts = [
      ...rawRows('cola', cola!).filter((f) => f[1] === '1').map((f) => f[3]!),
      ...rawRows('mrpc', mrpc!).flatMap((f) => [f[3]!, f[4]!]),
      ...rawRows('rte', rte!).flatMap((f) => [f[1]!, f[2]!]),
      ...rawRows('stsb', stsb!).flatMap((f) => [f[5]!, f[6]!]),
    ];
    const all = probeSentencePool(undefined, { dedupe: false });
    expect(all.map((s) => s.text)).to.deep.equal(texts);
    const pool = probeSentencePool();
    expect(pool.map((s) => s.text)).to.deep.equal([...new Set(texts)]);
    expect(pool.length).to.be.lessThan(all.length);
    expect(probeSentencePool()).to.deep.equal(pool);
  });
});
