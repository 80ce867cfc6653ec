import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureChartSpec, plotMeasure, PNG_ZOOM, type MeasureRow } from '../src/probe/plot.js';
import { expectError } from './helpers.js';

/** 25 submodules (embeddings + 24 layers); x_essp all null; x_ssp missing at submodule 7 (a gap). */
function exampleRows(): MeasureRow[] {
  const rows: MeasureRow[] = [];
  for (let s = 0; s < 25; s++) {
    rows.push({
      submodule: s,
      x_sp: 0.9 - 0.02 * s + 0.001 * ((s * 7) % 5),
      x_ssp: s === 7 ? null : 0.6 + 0.01 * Math.abs(12 - s),
      x_essp: null,
    });
  }
  return rows;
}

/** The points Vega drew for one metric: symbol paths whose aria-label ends with that metric. */
function pointCount(svg: string, label: string): number {
  const re = new RegExp(`<path aria-label="[^"]*; metric: ${label}"[^>]*aria-roledescription="point"`, 'g');
  return svg.match(re)?.length ?? 0;
}

/** The points of one metric of one run in a chart with a control (the points then carry the run's label). */
function runPointCount(svg: string, metric: string, weights: string): number {
  const re = new RegExp(`<path aria-label="[^"]*; metric: ${metric.replace(/\./g, '\\.')}; weights: ${weights}"[^>]*aria-roledescription="point"`, 'g');
  return svg.match(re)?.length ?? 0;
}

/** The line paths drawn in one colour, and how many of them are dashed. */
function linePaths(svg: string, color: string): { solid: number; dashed: number } {
  const re = new RegExp(`aria-roledescription="line mark" d="[^"]*" stroke="${color}"[^>]*stroke-dasharray="([^"]*)"`, 'g');
  const dashes = [...svg.matchAll(re)].map((m) => m[1]);
  return { solid: dashes.filter((d) => d === '1,0').length, dashed: dashes.filter((d) => d !== '1,0').length };
}

type LongValue = { submodule: number; metric: string; mse?: number | null; score?: number | null; weights?: string };
interface PanelSpec {
  title: { text: string };
  data: { values: LongValue[] };
  encoding: { x: { title: string | null; scale: { domain: number[] } }; y: { field: string; scale: { domain?: number[] } }; color: { scale: { domain: string[]; range: string[] } } };
}
interface ChartSpec {
  vconcat: PanelSpec[];
}

/** Main run: submodules 0..12; control (reinitialised): 0..14, with values that differ from the main run's. */
function runAndControl(): { rows: MeasureRow[]; control: MeasureRow[] } {
  const rows: MeasureRow[] = [];
  const control: MeasureRow[] = [];
  for (let s = 0; s <= 12; s++) {
    rows.push({ submodule: s, x_sp: 0.5 - 0.01 * s, x_ssp: 0.4 + 0.01 * s, spearman: 0.6 + 0.02 * s, uuas: 0.3 + 0.03 * s });
  }
  for (let s = 0; s <= 14; s++) {
    control.push({ submodule: s, x_sp: 0.9 + 0.001 * s, x_ssp: 0.8, spearman: 0.2 + 0.001 * s, uuas: 0.1, root_acc: s === 3 ? 0.25 : null });
  }
  return { rows, control };
}

function svgSize(svg: string): { width: number; height: number } {
  const m = /^<svg[^>]*\swidth="([\d.]+)"\s+height="([\d.]+)"/.exec(svg);
  expect(m, 'svg width/height').to.not.equal(null);
  return { width: Number(m![1]), height: Number(m![2]) };
}

describe('probe/plot', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-plot-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders the measure plot to SVG and PNG', async function () {
    const rows = exampleRows();
    const t0 = performance.now();
    const files = await plotMeasure(rows, join(dir, 'measure'), { title: 'bert-base, PTB' });
    const ms = performance.now() - t0;
    if (process.env.TOPOPROBE_PLOT_TIMING) console.log(`      render: ${ms.toFixed(0)} ms`);
    expect(files).to.deep.equal({ svg: join(dir, 'measure.svg'), png: join(dir, 'measure.png') });
    expect(existsSync(files.svg) && existsSync(files.png)).to.equal(true);

    const svg = readFileSync(files.svg, 'utf8');
    expect(svg.startsWith('<svg')).to.equal(true);
    expect(svg.trimEnd().endsWith('</svg>')).to.equal(true);
    for (const text of ['submodule (0 = embeddings, i = layer i)', 'held-out MSE', 'bert-base, PTB', '>X_sp<', '>X_ssp<']) {
      expect(svg, text).to.include(text);
    }
    expect(svg).to.not.include('X_essp');
    expect(pointCount(svg, 'X_sp')).to.equal(25);
    expect(pointCount(svg, 'X_ssp')).to.equal(24);
    // The X_ssp line is broken at the gap: its path has two subpaths (two "M" commands).
    const line = /aria-roledescription="line mark" d="([^"]*)" stroke="#f58518"/.exec(svg);
    expect(line, 'X_ssp line').to.not.equal(null);
    expect(line![1]!.match(/M/g)).to.have.length(2);

    const png = readFileSync(files.png);
    expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.subarray(12, 16).toString('latin1')).to.equal('IHDR');
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    expect(width).to.be.greaterThan(0);
    expect(height).to.be.greaterThan(0);
    const size = svgSize(svg);
    expect(width).to.equal(Math.ceil(size.width * PNG_ZOOM));
    expect(height).to.equal(Math.ceil(size.height * PNG_ZOOM));

    // Same input, same bytes (rows given in another order too).
    const again = await plotMeasure([...rows].reverse(), join(dir, 'again'), { title: 'bert-base, PTB' });
    expect(readFileSync(again.svg, 'utf8')).to.equal(svg);

    expect(readdirSync(dir).sort()).to.deep.equal(['again.png', 'again.svg', 'measure.png', 'measure.svg']);
  });

  it('puts the data in the spec in long form, leaving out absent metrics', function () {
    const spec = measureChartSpec(exampleRows()) as unknown as ChartSpec;
    // No score has a value: the MSE panel alone.
    expect(spec.vconcat).to.have.length(1);
    const values = spec.vconcat[0]!.data.values;
    expect(values).to.have.length(50);
    expect(new Set(values.map((v) => v.metric))).to.deep.equal(new Set(['X_sp', 'X_ssp']));
    expect(values.filter((v) => v.metric === 'X_sp' && v.mse !== null)).to.have.length(25);
    expect(values.filter((v) => v.metric === 'X_ssp' && v.mse !== null)).to.have.length(24);
    expect(values.find((v) => v.metric === 'X_ssp' && v.submodule === 7)!.mse).to.equal(null);
    // Plain data: survives a JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(spec))).to.deep.equal(spec);
  });

  it('adds the scores panel only when a score has a value', function () {
    const mseOnly = measureChartSpec([
      { submodule: 0, x_ssp: 0.7, spearman: null, uuas: Number.NaN },
      { submodule: 1, x_ssp: 0.6, root_acc: null },
    ]) as unknown as ChartSpec;
    expect(mseOnly.vconcat.map((p) => p.title.text)).to.deep.equal(['held-out MSE (lower is more tree-like)']);
    expect(mseOnly.vconcat[0]!.encoding.x.title).to.equal('submodule (0 = embeddings, i = layer i)');

    const both = measureChartSpec([
      { submodule: 0, x_ssp: 0.7 },
      { submodule: 1, x_ssp: 0.6, uuas: 0.42 },
    ]) as unknown as ChartSpec;
    expect(both.vconcat.map((p) => p.title.text)).to.deep.equal(['held-out MSE (lower is more tree-like)', 'scores (higher is better)']);
    const scores = both.vconcat[1]!;
    expect(scores.encoding.color.scale.domain).to.deep.equal(['UUAS']);
    expect(scores.encoding.y.field).to.equal('score');
    expect(scores.encoding.y.scale.domain).to.deep.equal([0, 1]);
    expect(scores.data.values).to.deep.equal([
      { submodule: 0, metric: 'UUAS', score: null },
      { submodule: 1, metric: 'UUAS', score: 0.42 },
    ]);
    // Both panels on the same submodule axis; only the lower one names it.
    expect(both.vconcat[0]!.encoding.x.scale.domain).to.deep.equal([0, 1]);
    expect(scores.encoding.x.scale.domain).to.deep.equal([0, 1]);
    expect(both.vconcat.map((p) => p.encoding.x.title)).to.deep.equal([null, 'submodule (0 = embeddings, i = layer i)']);

    const scoresOnly = measureChartSpec([{ submodule: 4, spearman: 0.8, root_acc: 0.9, distance_spearman: 0.7 }]) as unknown as ChartSpec;
    expect(scoresOnly.vconcat.map((p) => p.title.text)).to.deep.equal(['scores (higher is better)']);
    expect(scoresOnly.vconcat[0]!.encoding.color.scale.domain).to.deep.equal(['DSpr.', 'root acc.', 'distance Spr.']);
    // A single submodule: the axis is widened by one on each side.
    expect(scoresOnly.vconcat[0]!.encoding.x.scale.domain).to.deep.equal([3, 5]);

    // The same metric keeps its colour whatever else is plotted.
    const uuasColour = (spec: ChartSpec): string => {
      const c = spec.vconcat.at(-1)!.encoding.color.scale;
      return c.range[c.domain.indexOf('UUAS')]!;
    };
    const all = measureChartSpec([{ submodule: 0, spearman: 0.1, root_acc: 0.2, uuas: 0.3, distance_spearman: 0.4 }]) as unknown as ChartSpec;
    expect(uuasColour(all)).to.equal(uuasColour(both));
  });

  it('widens the score axis below 0 for a negative correlation', function () {
    const spec = measureChartSpec([{ submodule: 0, spearman: -0.13 }, { submodule: 1, spearman: 0.5 }]) as unknown as ChartSpec;
    expect(spec.vconcat[0]!.encoding.y.scale.domain).to.deep.equal([-0.2, 1]);
  });

  it('draws a control run dashed, in the same colours, with a weights legend', async function () {
    const { rows, control } = runAndControl();
    const files = await plotMeasure(rows, join(dir, 'control'), { title: 'with control', label: 'trained', control: { rows: control, label: 'reinitialised' } });
    const svg = readFileSync(files.svg, 'utf8');
    for (const text of ['>weights<', '>trained<', '>reinitialised<', 'scores (higher is better)', '>DSpr.<', '>UUAS<', '>root acc.<']) {
      expect(svg, text).to.include(text);
    }
    expect(svg).to.not.include('distance Spr.');
    expect(svg).to.not.include('X_essp');
    // Main run 0..12, control 0..14 (its two extra submodules drawn too); root acc. only at control's 3.
    for (const metric of ['X_sp', 'X_ssp', 'DSpr.', 'UUAS']) {
      expect(runPointCount(svg, metric, 'trained'), `${metric} trained`).to.equal(13);
      expect(runPointCount(svg, metric, 'reinitialised'), `${metric} reinitialised`).to.equal(15);
    }
    expect(runPointCount(svg, 'root acc.', 'trained')).to.equal(0);
    expect(runPointCount(svg, 'root acc.', 'reinitialised')).to.equal(1);
    // One solid and one dashed line per metric, in the metric's colour.
    for (const color of ['#4c78a8', '#f58518', '#e45756', '#72b7b2']) {
      expect(linePaths(svg, color), color).to.deep.equal({ solid: 1, dashed: 1 });
    }
    // The x axis reaches the control's last submodule.
    expect(svg).to.include('X-axis titled \'submodule (0 = embeddings, i = layer i)\' for a linear scale with values from 0 to 14');
  });

  it('puts exactly the rows of both runs in the spec', function () {
    const { rows, control } = runAndControl();
    const spec = measureChartSpec(rows, { label: 'trained', control: { rows: control, label: 'reinitialised' } }) as unknown as ChartSpec;
    const [mse, scores] = spec.vconcat;
    const at = (panel: PanelSpec, submodule: number, weights: string) => panel.data.values.filter((v) => v.submodule === submodule && v.weights === weights);
    // Control, submodule 3: x_sp 0.903, x_ssp 0.8, spearman 0.203, uuas 0.1, root_acc 0.25.
    expect(at(mse!, 3, 'reinitialised')).to.deep.equal([
      { submodule: 3, metric: 'X_sp', mse: 0.9 + 0.001 * 3, weights: 'reinitialised' },
      { submodule: 3, metric: 'X_ssp', mse: 0.8, weights: 'reinitialised' },
    ]);
    expect(at(scores!, 3, 'reinitialised')).to.deep.equal([
      { submodule: 3, metric: 'DSpr.', score: 0.2 + 0.001 * 3, weights: 'reinitialised' },
      { submodule: 3, metric: 'root acc.', score: 0.25, weights: 'reinitialised' },
      { submodule: 3, metric: 'UUAS', score: 0.1, weights: 'reinitialised' },
    ]);
    expect(at(mse!, 3, 'trained').map((v) => v.mse)).to.deep.equal([0.5 - 0.03, 0.4 + 0.03]);
    expect(at(scores!, 3, 'trained').map((v) => v.score)).to.deep.equal([0.6 + 0.06, null, 0.3 + 0.09]);
    // Submodule 13 only in the control.
    expect(at(mse!, 13, 'trained')).to.deep.equal([]);
    expect(at(mse!, 13, 'reinitialised').map((v) => v.mse)).to.deep.equal([0.9 + 0.013, 0.8]);
    // Every number given appears once; nothing else does.
    const given = [...rows, ...control].flatMap((r) => [r.x_sp, r.x_ssp, r.spearman, r.uuas, r.root_acc].filter((v) => typeof v === 'number'));
    const drawn = [...mse!.data.values.map((v) => v.mse), ...scores!.data.values.map((v) => v.score)].filter((v) => typeof v === 'number');
    expect([...drawn].sort()).to.deep.equal([...given].sort());
    expect(mse!.data.values).to.have.length(2 * (13 + 15));
    expect(JSON.parse(JSON.stringify(spec))).to.deep.equal(spec);
  });

  it('rejects unusable rows', function () {
    expectError(() => measureChartSpec([]), 'no rows');
    expectError(() => measureChartSpec([{ submodule: 0 }, { submodule: 1, x_sp: null }]), 'none of');
    expectError(() => measureChartSpec([{ submodule: 0 }, { submodule: 1, x_sp: null, uuas: Number.POSITIVE_INFINITY }]), 'none of');
    expectError(() => measureChartSpec([{ submodule: 1.5, x_sp: 1 }]), 'integer');
    expectError(() => measureChartSpec([{ submodule: 2, x_sp: 1 }, { submodule: 2, x_sp: 2 }]), 'more than once');
    expectError(() => measureChartSpec([{ submodule: 0, x_sp: 1 }], { control: { rows: [], label: 'reinitialised' } }), 'control', 'no');
    expectError(() => measureChartSpec([{ submodule: 0, x_sp: 1 }], { control: { rows: [{ submodule: -1, x_sp: 1 }], label: 'r' } }), 'control', 'integer');
    expectError(() => measureChartSpec([{ submodule: 0, x_sp: 1 }], { label: 'same', control: { rows: [{ submodule: 0, x_sp: 1 }], label: 'same' } }), 'label', 'differ');
  });
});
