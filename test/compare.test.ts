import { expect } from 'chai';
import { writeMeasureJson } from '../src/util/run-folder.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, expectError } from './helpers.js';
import { trainConfigSchema } from '../src/train/config.js';
import { configToYaml } from '../src/util/config.js';
import { CSV_COLUMNS, formatNumber, type Comparison, type ConditionResult } from '../src/compare/compare.js';
import { parsePaperResults, paperConditionKeys, paperLayers, paperValue } from '../src/compare/paper.js';
import { holm, mannWhitneyU, welchTTest, wilcoxonSignedRank } from '../src/util/stats.js';

interface FakeRun {
  name: string;
  seed: number;
  best: number;
  final: number;
  guidance?: Array<Record<string, unknown>>;
  task?: string;
  metric?: string;
  set?: Record<string, unknown>;
  /** Extra results.json fields (collapsed, collapse, x_ssp). */
  extra?: Record<string, unknown>;
}

/** A run folder as `topoprobe train` leaves it: the resolved config.yaml and results.json (nothing trained). */
function writeRun(root: string, run: FakeRun): string {
  const dir = join(root, run.name);
  mkdirSync(dir, { recursive: true });
  const task = run.task ?? 'cola';
  const config = trainConfigSchema.parse({ name: run.name, task, seed: run.seed, out_dir: root, guidance: run.guidance ?? [], ...(run.set ?? {}) });
  writeFileSync(join(dir, 'config.yaml'), configToYaml(config));
  const metric = run.metric ?? 'mcc';
  writeFileSync(
    join(dir, 'results.json'),
    JSON.stringify({
      runDir: dir, task, metric, best: run.best, final: run.final, best_epoch: 2, best_step: 100,
      final_metrics: { [metric]: run.final }, seed: run.seed, wall_time_s: 1, backend: 'cpu', status: 'completed', steps: 200,
      guidance: config.guidance, ...(run.extra ?? {}),
    }),
  );
  return dir;
}

// Hand-made scores. The baseline and layer 16 ran seeds 1, 5, 9, 13; layer 12 ran seeds 2, 6, 10, and its
// seed-10 run collapsed (final MCC exactly 0).
const BASE = { seeds: [1, 5, 9, 13], best: [0.55, 0.58, 0.52, 0.57], final: [0.54, 0.57, 0.5, 0.56] };
const L16 = { seeds: [1, 5, 9, 13], best: [0.6, 0.59, 0.63, 0.58], final: [0.59, 0.58, 0.6, 0.57] };
const L12 = { seeds: [2, 6, 10], best: [0.5, 0.56, 0.1], final: [0.49, 0.55, 0] };
const KEY16 = 'layer=16 weight=10 labels=ssp examples=positive';
const KEY12 = 'layer=12 weight=10 labels=ssp examples=positive';

function fakeRuns(root: string): string[] {
  const dirs: string[] = [];
  BASE.seeds.forEach((seed, i) => dirs.push(writeRun(root, { name: `base-s${seed}`, seed, best: BASE.best[i]!, final: BASE.final[i]! })));
  L16.seeds.forEach((seed, i) => dirs.push(writeRun(root, { name: `l16-s${seed}`, seed, best: L16.best[i]!, final: L16.final[i]!, guidance: [{ layer: 16 }] })));
  L12.seeds.forEach((seed, i) => dirs.push(writeRun(root, { name: `l12-s${seed}`, seed, best: L12.best[i]!, final: L12.final[i]!, guidance: [{ layer: 12, weight: 10 }] })));
  return dirs;
}

// Statistics by hand, to check the table against.
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sampleStd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function readComparison(dir: string): Comparison {
  return JSON.parse(readFileSync(join(dir, 'comparison.json'), 'utf8')) as Comparison;
}

function byKey(c: Comparison, key: string): ConditionResult {
  const row = c.conditions.find((r) => r.key === key);
  expect(row, `condition ${key} in ${c.conditions.map((r) => r.key).join('; ')}`).to.not.equal(undefined);
  return row!;
}

describe('compare', function () {
  this.timeout(60000);
  let root: string;
  let runs: string[];
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'topoprobe-compare-'));
    runs = fakeRuns(join(root, 'runs'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('tells guides apart by their targets (fixed labels are another condition)', async function () {
    const dir = join(root, 'targets');
    const dirs = [1, 2].flatMap((seed) => [
      writeRun(dir, { name: `cur-${seed}`, seed, best: 0.1 * seed, final: 0.1 * seed, guidance: [{ layer: 4, weight: 1 }] }),
      writeRun(dir, { name: `pre-${seed}`, seed, best: 0.2 * seed, final: 0.2 * seed, guidance: [{ layer: 4, weight: 1, targets: 'pretrained' }] }),
    ]);
    const out = join(root, 'cmp-targets');
    const res = await cli(['compare', ...dirs, '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    const keys = readComparison(out).conditions.map((r) => r.key);
    expect(keys).to.have.members(['layer=4 weight=1 labels=ssp examples=positive', 'layer=4 weight=1 labels=ssp examples=positive targets=pretrained']);
  });

  it('counts collapsed runs by the runs\' own flag, and averages their monitors and tracked X_ssp', async function () {
    const dir = join(root, 'flagged');
    const mon = (maxLabel: number, before: number, after: number) => ({
      collapse: { constant_predictor: false, star_tree: [], first_step: null, monitors: { layer_4: { max_label: maxLabel, sameness: 0.5 } } },
      x_ssp: { before: { layer_4: before }, after: { layer_4: after } },
    });
    const dirs = [
      // Flagged collapsed although its MCC is not 0 (star-tree labels), and not collapsed although it is.
      writeRun(dir, { name: 'g1', seed: 1, best: 0.3, final: 0.3, guidance: [{ layer: 4 }], extra: { collapsed: true, ...mon(2.0, 0.8, 0.1) } }),
      writeRun(dir, { name: 'g2', seed: 2, best: 0.2, final: 0, guidance: [{ layer: 4 }], extra: { collapsed: false, ...mon(5.0, 0.6, 0.5) } }),
      writeRun(dir, { name: 'b1', seed: 1, best: 0.25, final: 0.25, extra: { collapsed: false, x_ssp: { before: { layer_4: 0.7 }, after: { layer_4: 0.9 } } } }),
      // An older run without the flag: final MCC 0 counts.
      writeRun(dir, { name: 'b2', seed: 2, best: 0.1, final: 0 }),
    ];
    const out = join(root, 'cmp-flag');
    const res = await cli(['compare', ...dirs, '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    const c = readComparison(out);
    const guided = c.conditions.find((r) => r.layers.length === 1)!;
    expect(guided.collapsed).to.equal(1);
    expect(guided.mean_excl_collapsed).to.be.closeTo(0.2, 1e-12);
    expect(guided.max_label).to.be.closeTo(3.5, 1e-12);
    expect(guided.x_ssp_tracked).to.deep.equal({ layer_4: { before: 0.7, after: 0.3 } });
    const base = byKey(c, 'baseline');
    expect(base.collapsed).to.equal(1);
    expect(base.max_label).to.equal(null);
    // The baseline's tracked value comes from its one run that tracked.
    expect(base.x_ssp_tracked.layer_4!.before).to.be.closeTo(0.7, 1e-12);
    const csv = readFileSync(join(out, 'comparison.csv'), 'utf8').trimEnd().split('\n');
    const header = csv[0]!.split(',');
    const row = csv.find((l) => l.startsWith(guided.key))!.split(',');
    expect(Number(row[header.indexOf('max_label')])).to.be.closeTo(3.5, 1e-12);
    expect(Number(row[header.indexOf('x_ssp_after')])).to.be.closeTo(0.3, 1e-12);
    const md = readFileSync(join(out, 'comparison.md'), 'utf8');
    expect(md).to.include('## Collapse monitors and tracked X_ssp');
    expect(md).to.include('| 1 / 2 | 3.50 | 0.7000 → 0.3000 |');
  });

  it('groups run folders by condition and computes the statistics and tests', async function () {
    const out = join(root, 'cmp');
    const res = await cli(['compare', ...runs, '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.include('baseline: baseline');
    const c = readComparison(out);
    expect(c.task).to.equal('cola');
    expect(c.metric).to.equal('mcc');
    expect(c.which).to.equal('best');
    expect(c.baseline).to.equal('baseline');
    expect(c.conditions.map((r) => [r.key, r.n])).to.deep.equal([['baseline', 4], [KEY12, 3], [KEY16, 4]]);

    for (const [key, data] of [['baseline', BASE], [KEY16, L16], [KEY12, L12]] as const) {
      const row = byKey(c, key);
      expect(row.mean).to.be.closeTo(mean(data.best), 1e-12);
      expect(row.std).to.be.closeTo(sampleStd(data.best), 1e-12);
      expect(row.median).to.be.closeTo(median(data.best), 1e-12);
      expect(row.min).to.equal(Math.min(...data.best));
      expect(row.max).to.equal(Math.max(...data.best));
      expect(row.ci_low!).to.be.at.most(row.mean!);
      expect(row.ci_high!).to.be.at.least(row.mean!);
      expect([...row.seeds].sort((a, b) => a! - b!)).to.deep.equal(data.seeds);
    }
    const base = byKey(c, 'baseline');
    expect(base.reference).to.equal(null);
    expect(base.test).to.equal(null);
    expect(base.p_welch).to.equal(null);

    // Same seeds as the baseline: Wilcoxon signed-rank, paired by seed.
    const l16 = byKey(c, KEY16);
    expect(l16.test).to.equal('wilcoxon-paired');
    expect(l16.diff).to.be.closeTo(mean(L16.best) - mean(BASE.best), 1e-12);
    expect(l16.p_rank).to.equal(wilcoxonSignedRank(L16.best, BASE.best).p);
    expect(l16.p_welch).to.equal(welchTTest(L16.best, BASE.best).p);
    // Other seeds: Mann-Whitney U.
    const l12 = byKey(c, KEY12);
    expect(l12.test).to.equal('mann-whitney');
    expect(l12.p_rank).to.equal(mannWhitneyU(L12.best, BASE.best).p);
    expect(l12.p_welch).to.equal(welchTTest(L12.best, BASE.best).p);
    // Collapsed runs.
    expect(l12.collapsed).to.equal(1);
    expect(l12.mean_excl_collapsed).to.be.closeTo(mean([0.5, 0.56]), 1e-12);
    expect(l16.collapsed).to.equal(0);
    expect(l16.mean_excl_collapsed).to.be.closeTo(mean(L16.best), 1e-12);
    // Holm across the conditions compared with the baseline, in table order.
    const tested = c.conditions.filter((r) => r.reference !== null);
    expect(tested.map((r) => r.p_welch_holm)).to.deep.equal(holm(tested.map((r) => r.p_welch!)));
    expect(tested.map((r) => r.p_rank_holm)).to.deep.equal(holm(tested.map((r) => r.p_rank!)));
    expect(l12.p_rank_holm!).to.be.at.least(l12.p_rank!);

    // The files.
    for (const ext of ['csv', 'json', 'md', 'svg', 'png']) expect(existsSync(join(out, `comparison.${ext}`)), ext).to.equal(true);
    const csv = readFileSync(join(out, 'comparison.csv'), 'utf8').trimEnd().split('\n');
    expect(csv[0]).to.equal(CSV_COLUMNS.join(','));
    expect(csv).to.have.length(4);
    expect(csv[2]!.startsWith(`${KEY12},runs,12,baseline,3,2 6 10,`)).to.equal(true);
    const md = readFileSync(join(out, 'comparison.md'), 'utf8');
    expect(md).to.include('| **baseline** (baseline) | 4 |');
    expect(md).to.include(`| ${KEY16} | 4 | ${mean(L16.best).toFixed(4)} |`);
    expect(md).to.include(`| ${KEY12} | 3 |`);
    expect(md).to.include('Wilcoxon (paired)');
    expect(md).to.include('Mann-Whitney');
    expect(md).to.include('Holm');
    const svg = readFileSync(join(out, 'comparison.svg'), 'utf8');
    expect(svg.startsWith('<svg')).to.equal(true);
    expect(svg).to.include('mcc (best)');
    expect(readFileSync(join(out, 'comparison.png')).subarray(1, 4).toString()).to.equal('PNG');
  });

  it('writes into ./comparison by default for a list of run folders', async function () {
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const res = await cli(['compare', ...runs.slice(0, 8).map((d) => d.slice(root.length + 1))]);
      expect(res.code, res.stderr).to.equal(0);
    } finally {
      process.chdir(cwd);
    }
    expect(readComparison(join(root, 'comparison')).conditions.map((r) => r.key)).to.deep.equal(['baseline', KEY16]);
  });

  it('--metric final compares the final scores', async function () {
    const out = join(root, 'cmp');
    const res = await cli(['compare', ...runs, '--out', out, '--metric', 'final']);
    expect(res.code, res.stderr).to.equal(0);
    const c = readComparison(out);
    expect(c.which).to.equal('final');
    expect(byKey(c, 'baseline').mean).to.be.closeTo(mean(BASE.final), 1e-12);
    expect(byKey(c, KEY16).median).to.be.closeTo(median(L16.final), 1e-12);
    const l12 = byKey(c, KEY12);
    expect(l12.mean).to.be.closeTo(mean(L12.final), 1e-12);
    expect(l12.min).to.equal(0);
    expect(l12.collapsed).to.equal(1);
    expect(l12.mean_excl_collapsed).to.be.closeTo(mean([0.49, 0.55]), 1e-12);
    expect(byKey(c, KEY16).p_rank).to.equal(wilcoxonSignedRank(L16.final, BASE.final).p);
    expect(readFileSync(join(out, 'comparison.md'), 'utf8')).to.include('mcc (final)');
  });

  it('reads a sweep folder: completed runs, the others listed as missing; writes into the sweep', async function () {
    const sweep = join(root, 'sweep');
    mkdirSync(join(sweep, 'runs'), { recursive: true });
    const entries = [...BASE.seeds.map((s) => `base-s${s}`), ...L16.seeds.map((s) => `l16-s${s}`)].map((name) => {
      writeRun(join(sweep, 'runs'), { ...(name.startsWith('base') ? { best: 0.5, final: 0.5 } : { best: 0.6, final: 0.6, guidance: [{ layer: 16 }] }), name, seed: Number(name.split('-s')[1]) });
      // As src/sweep/manifest.ts writes it: dirs relative to the sweep, `key=value` overrides, a baseline flag per run.
      const baseline = name.startsWith('base');
      return { name, dir: `runs/${name}`, status: 'completed', attempts: 1, baseline, overrides: [`seed=${name.split('-s')[1]}`, ...(baseline ? ['guidance=[]'] : [])] } as Record<string, unknown>;
    });
    // An earlier version's absolute dir into the sweep's own runs/ is read too.
    entries.push({ name: 'l16-s17', dir: join(sweep, 'runs', 'l16-s17'), status: 'pending', attempts: 0, baseline: false, overrides: ['seed=17'] });
    entries.push({ name: 'l16-s21', dir: 'runs/l16-s21', status: 'failed', attempts: 2, baseline: false, overrides: ['seed=21'], error: 'non-finite loss at update 3' });
    writeFileSync(join(sweep, 'manifest.json'), JSON.stringify({ name: 'sweep', config: 'sweep.yaml', base: 'base.yaml', created: 'now', runs: entries }));
    const res = await cli(['compare', sweep]);
    expect(res.code, res.stderr).to.equal(0);
    expect(existsSync(join(sweep, 'comparison.csv'))).to.equal(true);
    const c = readComparison(sweep);
    expect(c.input.sweep).to.equal(sweep);
    expect(c.conditions.map((r) => [r.key, r.n])).to.deep.equal([['baseline', 4], [KEY16, 4]]);
    expect(c.missing.map((m) => [m.name, m.status])).to.deep.equal([['l16-s17', 'pending'], ['l16-s21', 'failed']]);
    expect(c.missing[1]!.reason).to.include('non-finite loss at update 3');
    expect(c.missing[1]!.overrides).to.deep.equal(['seed=21']);
    expect(res.stdout).to.include('missing: l16-s17');
    expect(readFileSync(join(sweep, 'comparison.md'), 'utf8')).to.include('## Missing runs');
    // Constant scores: the tests are undefined and stay empty rather than NaN.
    expect(byKey(c, KEY16).p_welch).to.equal(null);
    expect(byKey(c, KEY16).diff).to.be.closeTo(0.1, 1e-12);
  });

  it('--baseline picks a condition by key or by run name pattern', async function () {
    const out = join(root, 'cmp');
    let res = await cli(['compare', ...runs, '--out', out, '--baseline', KEY16]);
    expect(res.code, res.stderr).to.equal(0);
    let c = readComparison(out);
    expect(c.baseline).to.equal(KEY16);
    expect(c.conditions[0]!.key).to.equal(KEY16);
    expect(byKey(c, 'baseline').test).to.equal('wilcoxon-paired');
    expect(byKey(c, 'baseline').diff).to.be.closeTo(mean(BASE.best) - mean(L16.best), 1e-12);

    res = await cli(['compare', ...runs, '--out', out, '--baseline', 'l12-*']);
    expect(res.code, res.stderr).to.equal(0);
    c = readComparison(out);
    expect(c.baseline).to.equal(KEY12);
    expect(byKey(c, KEY16).test).to.equal('mann-whitney');
  });

  it('renders other config differences into the condition key', async function () {
    const extra = writeRun(join(root, 'runs'), { name: 'lr-s1', seed: 1, best: 0.5, final: 0.5, guidance: [{ layer: 16 }], set: { optimizer: { lr: 3e-5 } } });
    const out = join(root, 'cmp');
    const res = await cli(['compare', ...runs, extra, '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    const keys = readComparison(out).conditions.map((r) => r.key);
    expect(keys).to.include(`${KEY16} optimizer.lr=3e-5`);
    expect(keys).to.include(`${KEY16} optimizer.lr=2e-5`);
    expect(keys).to.include('baseline optimizer.lr=2e-5');
    expect(formatNumber(3e-5)).to.equal('3e-5');
    expect(formatNumber(0.5)).to.equal('0.5');
    expect(formatNumber(10)).to.equal('10');
  });

  it('compares each condition with the baseline of the same other settings when there are several', async function () {
    const lr = { optimizer: { lr: 3e-5 } };
    const extra = [1, 5, 9, 13].flatMap((seed, i) => [
      writeRun(join(root, 'runs'), { name: `lr-base-s${seed}`, seed, best: 0.5 + i / 100, final: 0.5, set: lr }),
      writeRun(join(root, 'runs'), { name: `lr-l16-s${seed}`, seed, best: 0.55 + i / 50, final: 0.5, guidance: [{ layer: 16 }], set: lr }),
    ]);
    const out = join(root, 'cmp');
    const res = await cli(['compare', ...runs, ...extra, '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    const c = readComparison(out);
    expect(c.baseline).to.equal(null);
    expect(c.baselines).to.deep.equal(['baseline optimizer.lr=2e-5', 'baseline optimizer.lr=3e-5']);
    expect(byKey(c, `${KEY16} optimizer.lr=3e-5`).reference).to.equal('baseline optimizer.lr=3e-5');
    expect(byKey(c, `${KEY16} optimizer.lr=3e-5`).diff).to.be.closeTo(0.55 + 0.03 - (0.5 + 0.015), 1e-12);
    expect(byKey(c, `${KEY16} optimizer.lr=2e-5`).reference).to.equal('baseline optimizer.lr=2e-5');
    expect(byKey(c, 'baseline optimizer.lr=3e-5').reference).to.equal(null);
    // One Holm family per baseline: lr=2e-5 has two guided conditions, lr=3e-5 one (adjusted = raw).
    const l16lr = byKey(c, `${KEY16} optimizer.lr=3e-5`);
    expect(l16lr.p_welch_holm).to.equal(l16lr.p_welch);
    const fam = c.conditions.filter((r) => r.reference === 'baseline optimizer.lr=2e-5');
    expect(fam).to.have.length(2);
    expect(fam.map((r) => r.p_welch_holm)).to.deep.equal(holm(fam.map((r) => r.p_welch!)));
  });

  it('plots X_ssp beside the scores with --measure', async function () {
    const measure = join(root, 'measure');
    mkdirSync(measure);
    const counts = { sp_train_sentences: 1, sp_test_sentences: 1, sp_test_tokens: 1, ssp_train_sentences: 1, ssp_test_sentences: 1, ssp_test_tokens: 1 };
    writeMeasureJson(measure, {
      model: 'm', reinitialized: false, mode: 'clean', labels: 'greedy', num_hidden_layers: 24, hidden_size: 1024, encoder_passes: 1, datasets: {},
      rows: [12, 14, 16].map((s) => ({ submodule: s, x_sp: 0.5, x_ssp: 0.3 + s / 100, x_essp: null, spearman: null, root_acc: null, ...counts })),
    });
    const out = join(root, 'cmp');
    const res = await cli(['compare', ...runs, '--out', out, '--measure', measure]);
    expect(res.code, res.stderr).to.equal(0);
    const c = readComparison(out);
    expect(byKey(c, KEY16).x_ssp).to.be.closeTo(0.46, 1e-12);
    expect(byKey(c, KEY12).x_ssp).to.be.closeTo(0.42, 1e-12);
    expect(byKey(c, 'baseline').x_ssp).to.equal(null);
    expect(readFileSync(join(out, 'comparison.svg'), 'utf8')).to.include('X_ssp');
  });

  describe('paper result files', function () {
    const TEXT = [
      '# CoLA, as published',
      'layer\t16',
      'seed\t1',
      'mcc\t0.6123',
      '',
      'Layer\t16\r',
      'seed\t2',
      'mcc\t0.6',
      '',
      '',
      'layer\tbaseline',
      'seed\t1',
      'mcc\t.58',
      '',
      'seed\t2',
      'mcc\t5.7e-1',
      'note\tplain fine-tuning',
      '',
      'submodule\t12',
      'task\tcola',
      'mcc\t0.55',
    ].join('\n');

    it('parses TAB-separated key/value blocks', function () {
      const blocks = parsePaperResults(TEXT, 'paper.tsv');
      expect(blocks).to.have.length(5);
      expect(blocks[0]).to.deep.equal({ file: 'paper.tsv', line: 2, fields: { layer: 16, seed: 1, mcc: 0.6123 } });
      expect(blocks[1]!.fields).to.deep.equal({ layer: 16, seed: 2, mcc: 0.6 });
      expect(blocks[2]!.line).to.equal(11);
      expect(blocks.map(paperLayers)).to.deep.equal([[16], [16], [], [], [12]]);
      expect(blocks[3]!.fields.note).to.equal('plain fine-tuning');
      expect(blocks.map((b) => paperValue(b, 'mcc', 'best')?.value)).to.deep.equal([0.6123, 0.6, 0.58, 0.57, 0.55]);
      expect(paperConditionKeys(blocks)).to.deep.equal(['paper: layer=16', 'paper: layer=16', 'paper: baseline', 'paper: baseline', 'paper: layer=12']);
      expect(paperValue({ file: 'f', line: 1, fields: { best_mcc: 0.7, mcc: 0.6 } }, 'mcc', 'best')!.value).to.equal(0.7);
    });

    it('names the file and line of a malformed line', function () {
      expectError(() => parsePaperResults('layer\t16\nseed 1\n', 'authors/cola.tsv'), 'authors/cola.tsv:2:', 'TAB');
      expectError(() => parsePaperResults('layer\t16\n\nmcc\t0.5\nmcc\t0.6\n', 'x.tsv'), 'x.tsv:4:', 'appears twice');
      expectError(() => parsePaperResults('layer\t\n', 'y.tsv'), 'y.tsv:1:', 'no value');
      expectError(() => parsePaperResults('\tvalue\n', 'z.tsv'), 'z.tsv:1:', 'empty key');
      expectError(() => parsePaperResults('layer\t16\tmcc\t0.5\n', 'w.tsv'), 'w.tsv:1:', 'more than one');
      expectError(() => paperLayers(parsePaperResults('layer\tsixteen\n', 'v.tsv')[0]!), 'v.tsv:1', 'sixteen');
    });

    it('adds the published scores as conditions', async function () {
      mkdirSync(join(root, 'paper'));
      const file = join(root, 'paper', 'cola.tsv');
      writeFileSync(file, TEXT);
      const out = join(root, 'cmp');
      // A folder stands for the files in it.
      const res = await cli(['compare', ...runs, '--out', out, '--paper', join(root, 'paper')]);
      expect(res.code, res.stderr).to.equal(0);
      const c = readComparison(out);
      expect(c.paper!.files).to.deep.equal([file]);
      const p16 = byKey(c, 'paper: layer=16');
      expect(p16.source).to.equal('paper');
      expect(p16.n).to.equal(2);
      expect(p16.mean).to.be.closeTo((0.6123 + 0.6) / 2, 1e-12);
      expect(p16.reference).to.equal('paper: baseline');
      expect(p16.test).to.equal('wilcoxon-paired');
      expect(byKey(c, 'paper: baseline').reference).to.equal('baseline');
      expect(byKey(c, 'paper: layer=12').test).to.equal('mann-whitney');
      // Our own conditions' Holm family is unchanged by the paper's.
      const ours = c.conditions.filter((r) => r.source === 'runs' && r.reference !== null);
      expect(ours.map((r) => r.p_rank_holm)).to.deep.equal(holm(ours.map((r) => r.p_rank!)));
      expect(readFileSync(join(out, 'comparison.md'), 'utf8')).to.include('| paper: layer=16 | 2 |');
    });

    it('reports a malformed paper file by file and line through the CLI', async function () {
      const file = join(root, 'bad.tsv');
      writeFileSync(file, 'layer\t16\nmcc: 0.5\n');
      const res = await cli(['compare', ...runs, '--out', join(root, 'cmp'), '--paper', file]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include(`${file}:2:`);
    });
  });

  describe('errors', function () {
    it('no runs found', async function () {
      const sweep = join(root, 'empty-sweep');
      mkdirSync(sweep);
      writeFileSync(join(sweep, 'manifest.json'), JSON.stringify({ runs: [{ name: 'a', dir: 'runs/a', status: 'pending', overrides: {} }] }));
      const res = await cli(['compare', sweep]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include('no runs found');
    });

    it('a manifest entry whose folder lies outside the sweep\'s runs/ (a run elsewhere is not read)', async function () {
      const sweep = join(root, 'hostile-sweep');
      mkdirSync(join(sweep, 'runs'), { recursive: true });
      for (const dir of [runs[0]!, '../../elsewhere', 'runs/../../x']) {
        writeFileSync(join(sweep, 'manifest.json'), JSON.stringify({ runs: [{ name: 'a', dir, status: 'completed', overrides: [] }] }));
        const res = await cli(['compare', sweep]);
        expect(res.code, dir).to.equal(2);
        expect(res.stderr, dir).to.include(`${join(sweep, 'manifest.json')}: runs[0] "a"`);
      }
    });

    it('a folder without results.json', async function () {
      const empty = join(root, 'not-a-run');
      mkdirSync(empty);
      const res = await cli(['compare', runs[0]!, empty, '--out', join(root, 'cmp')]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include(empty).and.to.include('no results.json');
    });

    it('runs of different tasks or metrics', async function () {
      const mrpc = writeRun(join(root, 'other'), { name: 'mrpc-s1', seed: 1, best: 0.8, final: 0.8, task: 'mrpc', metric: 'accuracy' });
      let res = await cli(['compare', runs[0]!, mrpc, '--out', join(root, 'cmp')]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include('different tasks').and.to.include('cola (base-s1)').and.to.include('mrpc (mrpc-s1)');
      const acc = writeRun(join(root, 'other'), { name: 'cola-acc', seed: 1, best: 0.8, final: 0.8, metric: 'accuracy' });
      res = await cli(['compare', runs[0]!, acc, '--out', join(root, 'cmp')]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include('different metrics').and.to.include('accuracy (cola-acc)');
    });

    it('an unknown --baseline', async function () {
      const res = await cli(['compare', ...runs, '--out', join(root, 'cmp'), '--baseline', 'layer=3']);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include('--baseline layer=3').and.to.include('no condition or run matches').and.to.include(KEY16);
    });
  });
});
