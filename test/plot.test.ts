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
    const spec = measureChartSpec(exampleRows()) as { data: { values: Array<{ submodule: number; metric: string; mse: number | null }> } };
    const values = spec.data.values;
    expect(values).to.have.length(50);
    expect(new Set(values.map((v) => v.metric))).to.deep.equal(new Set(['X_sp', 'X_ssp']));
    expect(values.filter((v) => v.metric === 'X_sp' && v.mse !== null)).to.have.length(25);
    expect(values.filter((v) => v.metric === 'X_ssp' && v.mse !== null)).to.have.length(24);
    expect(values.find((v) => v.metric === 'X_ssp' && v.submodule === 7)!.mse).to.equal(null);
    // Plain data: survives a JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(spec))).to.deep.equal(spec);
  });

  it('rejects unusable rows', function () {
    expectError(() => measureChartSpec([]), 'no rows');
    expectError(() => measureChartSpec([{ submodule: 0 }, { submodule: 1, x_sp: null }]), 'none of');
    expectError(() => measureChartSpec([{ submodule: 1.5, x_sp: 1 }]), 'integer');
    expectError(() => measureChartSpec([{ submodule: 2, x_sp: 1 }, { submodule: 2, x_sp: 2 }]), 'more than once');
  });
});
