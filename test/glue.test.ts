import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import {
  type GlueSplit,
  type GlueTask,
  GLUE_TASKS,
  glueTaskInfo,
  gluePath,
  isGlueTask,
  numLabels,
  parseGlue,
  parseGlueDetailed,
  probeSentencePool,
  readGlue,
  readGlueDetailed,
} from '../src/data/glue.js';
import { dataDir } from '../src/data/paths.js';
import { getLogger, setLogger } from '../src/util/log.js';
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

// GLUE's own layouts (the files as GLUE's zips hold them), header line included.

const SST2 = [
  tsv('sentence', 'label'), // 1
  tsv('hide new secretions from the parental units ', '0'), // 2
  tsv('it \'s a "charming" and often affecting journey . ', '1'), // 3
].join('\n') + '\n';

const SST2_TEST = [tsv('index', 'sentence'), tsv('0', 'uneasy mishmash of styles and genres .'), tsv('1', '" quotes " and \'more\' .')].join('\n') + '\n';

const QNLI = [
  tsv('index', 'question', 'sentence', 'label'), // 1
  tsv('0', 'What came into force after the new constitution was herald?', 'As of that day, the new constitution heralding the Second Republic came into force.', 'entailment'), // 2
  tsv('1', 'What is the first major city in the stream of the Rhine?', 'The most important tributaries in this area are the "Ill" and the Neckar.', 'not_entailment'), // 3
].join('\r\n') + '\r\n';

const QNLI_TEST = [tsv('index', 'question', 'sentence'), tsv('0', 'What organization is devoted to Jihad against Israel?', 'For some decades prior, the Muslim Brotherhood was active.')].join('\n');

const QQP_HEADER = tsv('id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate');
const QQP = [
  QQP_HEADER, // 1
  tsv('133273', '213221', '213222', 'How is the life of a math student? Could you describe your own experiences?', 'Which level of prepration is enough for the exam jlpt5?', '0'), // 2
  tsv('402555', '536040', '536041', 'How do I control my horny emotions?', 'How do you control your horniness?', '1'), // 3
  // A question with a line break inside it, as in the original: two lines, neither with 6 columns.
  tsv('201841', '303951', '174364', 'How can I create an Android app?'), // 4
  tsv('Step by step?', 'How do I make an Android app?', '1'), // 5
  tsv('363362', '493340', '493341', '', 'My Chinese name is Haichao Yu. What English name is most suitable for me?', '0'), // 6 (empty question)
  tsv('78401', '125545', '125546', 'Why is "Batman" dark?', 'Why is Batman so dark?', '1'), // 7
].join('\n') + '\n';

const QQP_TEST = [tsv('id', 'question1', 'question2'), tsv('0', 'Why are people so obsessed with having a girlfriend?', 'How can a single male have a child?'), tsv('1', 'only one column here')].join('\n') + '\n';

/** MNLI's columns in GLUE's real order: train has label1 and gold_label, dev label1-5 and gold_label, test neither. */
const MNLI_TEXT_COLUMNS = [
  'index', 'promptID', 'pairID', 'genre',
  'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse',
  'sentence1', 'sentence2',
];
const MNLI_TRAIN_HEADER = tsv(...MNLI_TEXT_COLUMNS, 'label1', 'gold_label');
const MNLI_DEV_HEADER = tsv(...MNLI_TEXT_COLUMNS, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label');
const MNLI_TEST_HEADER = tsv(...MNLI_TEXT_COLUMNS);
/** The text columns of an MNLI row: ids, genre, the parses, then the two sentences. */
const mnliText = (index: string, genre: string, s1: string, s2: string): string[] => [
  index, `${index}1`, `${index}1e`, genre,
  `( ${s1} )`, `( ${s2} )`, `(ROOT (S ${s1}))`, `(ROOT (S ${s2}))`,
  s1, s2,
];
const MNLI_TRAIN = [
  MNLI_TRAIN_HEADER, // 1
  tsv(...mnliText('0', 'government', 'Conceptually cream skimming has two basic dimensions.', 'Product and geography are what make cream skimming work. '), 'neutral', 'neutral'), // 2
  tsv(...mnliText('1', 'telephone', 'you know during the season and i guess at at your level uh you lose them', 'You lose the things to the following level if the people recall.'), 'entailment', 'entailment'), // 3
  tsv(...mnliText('2', 'fiction', 'He said, "Not in the least."', 'He said "yes".'), 'contradiction', 'contradiction'), // 4
].join('\n') + '\n';
const MNLI_DEV_MATCHED = [
  MNLI_DEV_HEADER,
  tsv(...mnliText('0', 'telephone', 'The new rights are nice enough', 'Everyone really likes the newest benefits '), 'neutral', 'entailment', 'neutral', 'neutral', 'neutral', 'neutral'),
].join('\n') + '\n';
const MNLI_DEV_MISMATCHED = [
  MNLI_DEV_HEADER,
  tsv(...mnliText('0', 'letters', 'Your contribution helped make it possible.', 'Your contributions were of no help.'), 'contradiction', 'contradiction', 'contradiction', 'contradiction', 'contradiction', 'contradiction'),
].join('\n') + '\n';
const MNLI_TEST_MATCHED = [MNLI_TEST_HEADER, tsv(...mnliText('0', 'government', 'Hierbas, ans seco, ans dulce.', 'Hierbas is a name.'))].join('\n') + '\n';
const MNLI_TEST_MISMATCHED = [MNLI_TEST_HEADER, tsv(...mnliText('0', 'nineeleven', 'What have you decided?', 'What are you going to do?'))].join('\n') + '\n';

const WNLI = [
  tsv('index', 'sentence1', 'sentence2', 'label'),
  tsv('0', 'I stuck a pin through a carrot. When I pulled the pin out, it had a hole.', 'The carrot had a hole.', '1'),
  tsv('1', 'John couldn\'t see the stage with Billy in front of him because he is so short.', 'John is so short.', '1'),
  tsv('2', 'The "police" arrested all of the gang members.', 'The police were trying to stop the gang.', '0'),
].join('\n') + '\n';
const WNLI_TEST = [tsv('index', 'sentence1', 'sentence2'), tsv('0', 'Maude and Dora had seen the trains.', 'Horses ran away when Maude and Dora came.')].join('\n') + '\n';

/** Runs `fn` with a logger capturing its records (warn and above), restoring the previous one after. */
function withLogCapture<T>(fn: () => T): { result: T; records: Array<{ level: number; msg: string }> } {
  const records: Array<{ level: number; msg: string }> = [];
  const previous = getLogger();
  setLogger(pino({ level: 'warn' }, { write: (s: string) => void records.push(JSON.parse(s) as { level: number; msg: string }) }));
  try {
    return { result: fn(), records };
  } finally {
    setLogger(previous);
  }
}

describe('glue: the task registry', () => {
  it('lists the tasks and recognizes their names', () => {
    expect(GLUE_TASKS).to.deep.equal(['cola', 'mrpc', 'rte', 'stsb', 'sst2', 'qnli', 'qqp', 'mnli', 'mnli-mm', 'wnli']);
    expect(isGlueTask('rte')).to.equal(true);
    expect(isGlueTask('sst2')).to.equal(true);
    expect(isGlueTask('mnli-mm')).to.equal(true);
    expect(isGlueTask('sst-2')).to.equal(false);
    expect(isGlueTask('ax')).to.equal(false);
    expect(isGlueTask('toString')).to.equal(false);
  });

  it('numLabels: STS-B 1, MNLI 3, the others 2; only STS-B is regression', () => {
    expect(Object.fromEntries(GLUE_TASKS.map((t) => [t, numLabels(t)]))).to.deep.equal({
      cola: 2, mrpc: 2, rte: 2, stsb: 1, sst2: 2, qnli: 2, qqp: 2, mnli: 3, 'mnli-mm': 3, wnli: 2,
    });
    expect(GLUE_TASKS.filter((t) => glueTaskInfo(t).regression)).to.deep.equal(['stsb']);
    expect(() => numLabels('ax' as GlueTask)).to.throw('unknown GLUE task');
  });

  it("uses GLUE's label order", () => {
    expect(glueTaskInfo('rte').labels).to.deep.equal(['entailment', 'not_entailment']);
    expect(glueTaskInfo('cola').labels![1]).to.equal('acceptable');
    expect(glueTaskInfo('mrpc').labels![1]).to.equal('paraphrase');
    expect(glueTaskInfo('stsb').labels).to.equal(null);
    expect(glueTaskInfo('sst2').labels).to.deep.equal(['negative', 'positive']);
    expect(glueTaskInfo('qnli').labels).to.deep.equal(['entailment', 'not_entailment']);
    expect(glueTaskInfo('qqp').labels).to.deep.equal(['not_duplicate', 'duplicate']);
    expect(glueTaskInfo('mnli').labels).to.deep.equal(['contradiction', 'entailment', 'neutral']);
    expect(glueTaskInfo('mnli-mm').labels).to.deep.equal(['contradiction', 'entailment', 'neutral']);
    expect(glueTaskInfo('wnli').labels).to.deep.equal(['not_entailment', 'entailment']);
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
    for (const task of ['sst2', 'qnli', 'qqp', 'wnli'] as const) {
      expect(['train', 'dev', 'test'].map((s) => gluePath(task, s as GlueSplit, d))).to.deep.equal(
        ['train', 'dev', 'test'].map((s) => join(d, task, `${s}.tsv`)),
      );
    }
    expect(['train', 'dev', 'test'].map((s) => gluePath('mnli', s as GlueSplit, d))).to.deep.equal(
      ['train.tsv', 'dev_matched.tsv', 'test_matched.tsv'].map((f) => join(d, 'mnli', f)),
    );
    expect(['train', 'dev', 'test'].map((s) => gluePath('mnli-mm', s as GlueSplit, d))).to.deep.equal(
      ['train.tsv', 'dev_mismatched.tsv', 'test_mismatched.tsv'].map((f) => join(d, 'mnli', f)),
    );
    expect(glueTaskInfo('mnli-mm')).to.include({ folder: 'mnli', dataItem: 'mnli', displayName: 'MNLI-mm' });
  });

  it('says why MRPC has no dev split and CoLA no test split', () => {
    expectError(() => gluePath('mrpc', 'dev', '/data'), 'MRPC', 'no dev split', 'dev_ids', 'train, test');
    expectError(() => gluePath('cola', 'test', '/data'), 'CoLA', 'no test split', 'train, dev');
    expectError(() => gluePath('ax' as GlueTask, 'train', '/data'), 'unknown GLUE task', '"ax"', 'mnli-mm');
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

  it('SST-2: a sentence, label 1 positive / 0 negative, row-number ids; test: its index, no label', () => {
    put('sst2', 'train.tsv', SST2);
    expect(readGlue('sst2', 'train', dir)).to.deep.equal([
      { id: '0', sentence1: 'hide new secretions from the parental units ', label: 0, line: 2 },
      { id: '1', sentence1: 'it \'s a "charming" and often affecting journey . ', label: 1, line: 3 },
    ]);
    put('sst2', 'test.tsv', SST2_TEST);
    const test = readGlue('sst2', 'test', dir);
    expect(test).to.deep.equal([
      { id: '0', sentence1: 'uneasy mishmash of styles and genres .', line: 2 },
      { id: '1', sentence1: '" quotes " and \'more\' .', line: 3 },
    ]);
    expect(test.every((e) => !('label' in e) && !('sentence2' in e))).to.equal(true);
  });

  it('QNLI: question then sentence; entailment = 0, not_entailment = 1; test unlabelled', () => {
    put('qnli', 'dev.tsv', QNLI);
    expect(readGlue('qnli', 'dev', dir)).to.deep.equal([
      {
        id: '0',
        sentence1: 'What came into force after the new constitution was herald?',
        sentence2: 'As of that day, the new constitution heralding the Second Republic came into force.',
        label: 0,
        line: 2,
      },
      {
        id: '1',
        sentence1: 'What is the first major city in the stream of the Rhine?',
        sentence2: 'The most important tributaries in this area are the "Ill" and the Neckar.',
        label: 1,
        line: 3,
      },
    ]);
    put('qnli', 'test.tsv', QNLI_TEST);
    const test = readGlue('qnli', 'test', dir);
    expect(test).to.deep.equal([
      { id: '0', sentence1: 'What organization is devoted to Jihad against Israel?', sentence2: 'For some decades prior, the Muslim Brotherhood was active.', line: 2 },
    ]);
    expect(test[0]).to.not.have.property('label');
  });

  it('QQP: question1/question2, is_duplicate 0/1; malformed lines skipped, counted and logged once', () => {
    const path = put('qqp', 'train.tsv', QQP);
    const { result, records } = withLogCapture(() => readGlueDetailed('qqp', 'train', dir));
    expect(result.examples).to.deep.equal([
      {
        id: '133273',
        sentence1: 'How is the life of a math student? Could you describe your own experiences?',
        sentence2: 'Which level of prepration is enough for the exam jlpt5?',
        label: 0,
        line: 2,
      },
      { id: '402555', sentence1: 'How do I control my horny emotions?', sentence2: 'How do you control your horniness?', label: 1, line: 3 },
      { id: '78401', sentence1: 'Why is "Batman" dark?', sentence2: 'Why is Batman so dark?', label: 1, line: 7 },
    ]);
    expect(result.skipped).to.equal(3);
    expect(result.skippedLines).to.deep.equal([4, 5, 6]);
    expect(records).to.have.length(1);
    expect(records[0]!.level).to.equal(40); // warn
    expect(records[0]!.msg).to.include(path).and.include('skipped 3 malformed');
    // readGlue gives the same examples (and logs the same line).
    const again = withLogCapture(() => readGlue('qqp', 'train', dir));
    expect(again.result).to.deep.equal(result.examples);
    expect(again.records.map((r) => r.msg)).to.deep.equal([records[0]!.msg]);
  });

  it('QQP: the test file has id, question1, question2 and no label; a well-formed file logs nothing', () => {
    put('qqp', 'test.tsv', QQP_TEST);
    const { result, records } = withLogCapture(() => readGlueDetailed('qqp', 'test', dir));
    expect(result.examples).to.deep.equal([
      { id: '0', sentence1: 'Why are people so obsessed with having a girlfriend?', sentence2: 'How can a single male have a child?', line: 2 },
    ]);
    expect(result.skippedLines).to.deep.equal([3]);
    expect(records).to.have.length(1);
    put('qqp', 'dev.tsv', QQP.split('\n').slice(0, 3).join('\n'));
    const clean = withLogCapture(() => readGlueDetailed('qqp', 'dev', dir));
    expect(clean.result.examples).to.have.length(2);
    expect(clean.result.skipped).to.equal(0);
    expect(clean.records).to.deep.equal([]);
  });

  it("MNLI: columns found by header name in GLUE's real order; contradiction 0, entailment 1, neutral 2", () => {
    put('mnli', 'train.tsv', MNLI_TRAIN);
    const train = readGlue('mnli', 'train', dir);
    expect(train).to.deep.equal([
      {
        id: '0',
        sentence1: 'Conceptually cream skimming has two basic dimensions.',
        sentence2: 'Product and geography are what make cream skimming work. ',
        label: 2,
        line: 2,
      },
      {
        id: '1',
        sentence1: 'you know during the season and i guess at at your level uh you lose them',
        sentence2: 'You lose the things to the following level if the people recall.',
        label: 1,
        line: 3,
      },
      { id: '2', sentence1: 'He said, "Not in the least."', sentence2: 'He said "yes".', label: 0, line: 4 },
    ]);
    // mnli-mm shares the training file.
    expect(readGlue('mnli-mm', 'train', dir)).to.deep.equal(train);
  });

  it('MNLI: dev (label1-5, gold_label) and test (no labels), matched for mnli, mismatched for mnli-mm', () => {
    put('mnli', 'dev_matched.tsv', MNLI_DEV_MATCHED);
    put('mnli', 'dev_mismatched.tsv', MNLI_DEV_MISMATCHED);
    put('mnli', 'test_matched.tsv', MNLI_TEST_MATCHED);
    put('mnli', 'test_mismatched.tsv', MNLI_TEST_MISMATCHED);
    // gold_label (entailment), not label1 (neutral).
    expect(readGlue('mnli', 'dev', dir)).to.deep.equal([
      { id: '0', sentence1: 'The new rights are nice enough', sentence2: 'Everyone really likes the newest benefits ', label: 2, line: 2 },
    ]);
    expect(readGlue('mnli-mm', 'dev', dir)).to.deep.equal([
      { id: '0', sentence1: 'Your contribution helped make it possible.', sentence2: 'Your contributions were of no help.', label: 0, line: 2 },
    ]);
    expect(readGlue('mnli', 'test', dir)).to.deep.equal([{ id: '0', sentence1: 'Hierbas, ans seco, ans dulce.', sentence2: 'Hierbas is a name.', line: 2 }]);
    expect(readGlue('mnli-mm', 'test', dir)).to.deep.equal([{ id: '0', sentence1: 'What have you decided?', sentence2: 'What are you going to do?', line: 2 }]);
  });

  it('MNLI: the lookup is by name, so the columns may come in any order', () => {
    const names = MNLI_TRAIN_HEADER.split('\t');
    const order = names.map((_, i) => i).reverse();
    const permuted = MNLI_TRAIN.trimEnd()
      .split('\n')
      .map((l) => tsv(...order.map((i) => l.split('\t')[i]!)))
      .join('\n');
    expect(parseGlue('mnli', 'train', permuted, 'p.tsv')).to.deep.equal(readGlue('mnli', 'train', dir));
  });

  it('WNLI: two sentences, label 1 entailment / 0 not; test unlabelled', () => {
    put('wnli', 'train.tsv', WNLI);
    expect(readGlue('wnli', 'train', dir)).to.deep.equal([
      {
        id: '0',
        sentence1: 'I stuck a pin through a carrot. When I pulled the pin out, it had a hole.',
        sentence2: 'The carrot had a hole.',
        label: 1,
        line: 2,
      },
      { id: '1', sentence1: "John couldn't see the stage with Billy in front of him because he is so short.", sentence2: 'John is so short.', label: 1, line: 3 },
      { id: '2', sentence1: 'The "police" arrested all of the gang members.', sentence2: 'The police were trying to stop the gang.', label: 0, line: 4 },
    ]);
    put('wnli', 'test.tsv', WNLI_TEST);
    const test = readGlue('wnli', 'test', dir);
    expect(test).to.deep.equal([{ id: '0', sentence1: 'Maude and Dora had seen the trains.', sentence2: 'Horses ran away when Maude and Dora came.', line: 2 }]);
    expect(test[0]).to.not.have.property('label');
  });

  it('a missing file: its path and how to get it', () => {
    const path = join(dir, 'stsb', 'sts-dev.tsv');
    expectError(() => readGlue('stsb', 'dev', dir), path, 'not found', '`topoprobe data download stsb`', '--data-dir', 'TOPOPROBE_DATA_DIR');
    expectError(() => readGlue('qnli', 'train', dir), join(dir, 'qnli', 'train.tsv'), 'QNLI train file not found', '`topoprobe data download qnli`');
    // MNLI-mm's files come with the mnli download item.
    const empty = join(dir, 'empty');
    expectError(() => readGlue('mnli-mm', 'dev', empty), join(empty, 'mnli', 'dev_mismatched.tsv'), 'MNLI-mm dev', '`topoprobe data download mnli`');
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

  it('SST-2: header, label, column count', () => {
    bad('sst2', 'train', [tsv('hide new secretions', '0')], 1, 'expected the header line', 'sentence\\tlabel', 'SST-2 train');
    bad('sst2', 'dev', [...SST2.trimEnd().split('\n'), tsv('a fine film', 'positive')], 4, 'column 2 (label)', '0 or 1', '"positive"');
    bad('sst2', 'train', [...SST2.trimEnd().split('\n'), 'no label column'], 4, 'expected 2 tab-separated columns', 'sentence, label', 'found 1');
    bad('sst2', 'test', [...SST2_TEST.trimEnd().split('\n'), tsv('2', 'a', '1')], 4, 'expected 2', 'index, sentence', 'found 3');
    bad('sst2', 'test', [SST2.split('\n')[0]!, tsv('a', '1')], 1, 'expected the header line', 'index\\tsentence');
  });

  it('QNLI: label strings, missing column, header', () => {
    const ok = QNLI.trimEnd().split('\r\n');
    bad('qnli', 'train', [...ok, tsv('2', 'Why?', 'Because.', '0')], 4, 'column 4 (label)', 'entailment, not_entailment', '"0"');
    bad('qnli', 'train', [...ok, tsv('2', 'Why?', 'entailment')], 4, 'expected 4 tab-separated columns', 'index, question, sentence, label', 'found 3');
    bad('qnli', 'dev', [ok[0]!, tsv('0', '', 'Because.', 'entailment')], 2, 'column 2 (question) is empty');
    bad('qnli', 'test', ok, 1, 'expected the header line', 'index\\tquestion\\tsentence"');
  });

  it('QQP: a well-formed row with a bad label is an error, not skipped; a file of only malformed rows has no examples', () => {
    bad('qqp', 'train', [QQP_HEADER, tsv('1', '2', '3', 'Why?', 'Why not?', 'yes')], 2, 'column 6 (is_duplicate)', '0 or 1', '"yes"');
    bad('qqp', 'dev', [tsv('1', '2', '3', 'Why?', 'Why not?', '1')], 1, 'expected the header line', 'is_duplicate');
    const { records } = withLogCapture(() =>
      bad('qqp', 'train', [QQP_HEADER, tsv('1', '2', '3', 'Why?'), tsv('Why not?', '0')], null, 'no QQP examples', '2 of them skipped as malformed'),
    );
    expect(records.map((r) => r.msg)).to.deep.equal(['bad.tsv: skipped 2 malformed QQP line(s) (wrong number of columns or an empty question; first at line 2)']);
    expect(parseGlueDetailed('qqp', 'train', QQP, 'q.tsv').skippedLines).to.deep.equal([4, 5, 6]);
  });

  it('MNLI: a header missing a column it reads names that column; bad gold_label; column count', () => {
    const train = MNLI_TRAIN.trimEnd().split('\n');
    const dropColumn = (lines: string[], i: number) => lines.map((l) => tsv(...l.split('\t').filter((_, j) => j !== i)));
    bad('mnli', 'train', dropColumn(train, 11), 1, 'no "gold_label" column', 'MNLI train', 'label1');
    bad('mnli-mm', 'test', dropColumn(MNLI_TEST_MISMATCHED.trimEnd().split('\n'), 9), 1, 'no "sentence2" column', 'MNLI-mm test');
    // A data line where the header should be.
    bad('mnli', 'dev', train.slice(1), 1, 'no "index" column');
    bad('mnli', 'train', [...train, tsv(...mnliText('3', 'slate', 'a', 'b'), '-', '-')], 5, 'column 12 (gold_label)', 'contradiction, entailment, neutral', '"-"');
    bad('mnli', 'dev', [MNLI_DEV_HEADER, tsv(...mnliText('0', 'slate', 'a', 'b'), 'neutral', 'neutral')], 2, 'expected 16 tab-separated columns', 'gold_label', 'found 12');
    bad('mnli', 'train', [...train, tsv(...mnliText('3', 'slate', ' ', 'b'), 'neutral', 'neutral')], 5, 'column 9 (sentence1) is empty');
    bad('mnli', 'train', [train[0]!.replace('label1', 'index'), ...train.slice(1)], 1, 'names column "index" twice', 'columns 1 and 11');
  });

  it('WNLI: label must be 0 or 1 (not a name), column count', () => {
    const ok = WNLI.trimEnd().split('\n');
    bad('wnli', 'train', [...ok, tsv('3', 'a', 'b', 'entailment')], 5, 'column 4 (label)', '0 or 1', '"entailment"');
    bad('wnli', 'test', [...WNLI_TEST.trimEnd().split('\n'), tsv('1', 'a', 'b', '0')], 3, 'expected 3', 'found 4');
  });

  it('a file with no examples', () => {
    bad('cola', 'train', [''], null, 'no CoLA examples');
    bad('stsb', 'train', ['', '\r', ''], null, 'no STS-B examples');
    bad('rte', 'train', [RTE.split('\n')[0]!], null, 'no RTE examples');
  });

  it('refuses a TSV that is not valid UTF-8, naming the file and line; a byte-order mark is fine', () => {
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-glue-utf8-'));
    try {
      mkdirSync(join(dir, 'rte'));
      const path = join(dir, 'rte', 'train.tsv');
      writeFileSync(path, '\uFEFF' + RTE);
      expect(readGlue('rte', 'train', dir)).to.have.length(2);
      const lines = RTE.trimEnd().split('\n');
      const bytes = Buffer.from(lines.join('\n') + '\n' + tsv('9', 'na', 'b', 'entailment') + '\n');
      bytes[bytes.lastIndexOf('na') + 1] = 0xc3; // a lead byte followed by a tab: a truncated sequence
      writeFileSync(path, bytes);
      expectError(() => readGlue('rte', 'train', dir), `${path}: invalid UTF-8 at line ${lines.length + 1}, byte 4 of the line (bytes 0xc3 0x09`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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

/**
 * The raw data rows: non-empty lines, less a header line (every task but CoLA and STS-B; MRPC only when the
 * first line starts with "Quality"), and for QQP less the rows without as many columns as the header or
 * with an empty question.
 */
function rawRows(task: GlueTask, path: string): string[][] {
  const lines = rawLines(path);
  const hasHeader = !['cola', 'stsb', 'mrpc'].includes(task) || lines[0]!.replace(/^\uFEFF/, '').startsWith('Quality\t');
  const rows = (hasHeader ? lines.slice(1) : lines).map((l) => l.split('\t'));
  if (task !== 'qqp') return rows;
  const header = lines[0]!.split('\t');
  const [q1, q2] = [header.indexOf('question1'), header.indexOf('question2')];
  return rows.filter((f) => f.length === header.length && f[q1]!.trim() !== '' && f[q2]!.trim() !== '');
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
        // Test files are unlabelled, except MRPC's and STS-B's.
        const labelled = split !== 'test' || task === 'mrpc' || task === 'stsb';
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
