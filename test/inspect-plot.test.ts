import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from 'vega-lite';
import * as vega from 'vega';
import {
  ARC_POINTS,
  inspectPanelSpec,
  inspectSubmoduleSpec,
  plotInspect,
  type InspectSentence,
  type InspectSubmodule,
} from '../src/probe/inspect-plot.js';
import { expectError, expectRejects } from './helpers.js';

/*
 * "Dogs chase unhappy cats ." in 7 pieces. Gold tree: chase is the root; Dogs and cats hang from chase,
 * unhappy from cats; the full stop (punctuation) from chase but left out of the tree's edges.
 */
const WORDS = ['Dogs', 'chase', 'unhappy', 'cats', '.'];
const PIECES = ['dog', '##s', 'chase', 'un', '##happy', 'cats', '.'];
const PIECE_WORD = [0, 0, 1, 2, 2, 3, 4];
const GOLD_DEPTHS = [1, 0, 2, 1, 1];
const GOLD_DISTANCES = [
  [0, 1, 3, 2, 2],
  [1, 0, 2, 1, 1],
  [3, 2, 0, 1, 3],
  [2, 1, 1, 0, 2],
  [2, 1, 3, 2, 0],
];
const GOLD_EDGES: Array<[number, number]> = [[0, 1], [1, 3], [2, 3]];
const SSP_PRED = [1.1, 0.9, 0.2, 1.8, 2.3, 1.2, 0.7];
const SSP_LABELS = [1, 1, 0, 2, 2, 1, 1];
const SP_PRED = [0.8, 1.2, -0.1, 2.2, 1.9, 0.95, 1.4];
const DIST_PRED = [
  [0, 1.5, 6.25, 3.1, 4.2],
  [1.5, 0, 2.75, 1.25, 2.5],
  [6.25, 2.75, 0, 0.5, 5.5],
  [3.1, 1.25, 0.5, 0, 3.3],
  [4.2, 2.5, 5.5, 3.3, 0],
];
/** The predicted tree: 0-1 and 1-3 are gold edges, 1-2 is not. */
const DIST_EDGES: Array<[number, number]> = [[0, 1], [1, 3], [1, 2]];

function sentence(withGold = true): InspectSentence {
  return {
    words: [...WORDS],
    pieces: [...PIECES],
    pieceWord: [...PIECE_WORD],
    punct: [false, false, false, false, true],
    ...(withGold ? { gold: { depths: [...GOLD_DEPTHS], distances: GOLD_DISTANCES.map((r) => [...r]), edges: GOLD_EDGES.map((e) => [...e] as [number, number]) } } : {}),
  };
}

function fullSub(submodule = 7): InspectSubmodule {
  return {
    submodule,
    ssp: { pred: [...SSP_PRED], labels: [...SSP_LABELS] },
    sp: { pred: [...SP_PRED] },
    distance: { pred: DIST_PRED.map((r) => [...r]), edges: DIST_EDGES.map((e) => [...e] as [number, number]) },
  };
}

type Part = Record<string, any>;
/** The parts of a submodule's picture by name (depths, arcs, heatmaps). */
function parts(spec: unknown): Map<string, Part> {
  return new Map(((spec as { vconcat: Part[] }).vconcat).map((p) => [p.name as string, p]));
}

function series(depths: Part, name: string): Array<number | null> {
  const values = (depths.data.values as Array<{ position: number; series: string; depth: number | null }>).filter((v) => v.series === name);
  expect(values.map((v) => v.position), name).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
  return values.map((v) => v.depth);
}

interface ArcPointValue {
  tree: string;
  edge: string;
  status: string;
  k: number;
  x: number;
  y: number;
}

/** Arc points grouped by the line's detail key. */
function arcs(arcsPart: Part): Map<string, ArcPointValue[]> {
  const points = arcsPart.layer[0].data.values as ArcPointValue[];
  expect(arcsPart.layer[0].encoding.detail.field).to.equal('edge');
  const byEdge = new Map<string, ArcPointValue[]>();
  for (const p of points) byEdge.set(p.edge, [...(byEdge.get(p.edge) ?? []), p]);
  for (const list of byEdge.values()) list.sort((a, b) => a.k - b.k);
  return byEdge;
}

async function svgOf(spec: unknown): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec as never).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

describe('probe/inspect-plot', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-inspect-plot-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts the given depths per piece in the depth chart, labelled by the pieces', function () {
    const depths = parts(inspectSubmoduleSpec(sentence(), fullSub())).get('depths')!;
    expect(series(depths, 'X_ssp predicted')).to.deep.equal(SSP_PRED);
    expect(series(depths, 'X_ssp tree label')).to.deep.equal(SSP_LABELS);
    expect(series(depths, 'X_sp predicted')).to.deep.equal(SP_PRED);
    // Gold depths spread to the pieces; the full stop (punctuation) is a gap.
    expect(series(depths, 'gold depth')).to.deep.equal([1, 1, 0, 2, 2, 1, null]);
    expect((depths.data.values as Array<{ series: string }>).length).to.equal(4 * 7);
    // The x axis is the piece position; its labels are the pieces (repeats stay apart).
    const x = depths.encoding.x;
    expect(x.field).to.equal('position');
    const label = new Function('datum', `return ${x.axis.labelExpr as string};`) as (d: { value: number }) => string;
    expect(PIECES.map((_, k) => label({ value: k }))).to.deep.equal(PIECES);

    // Without gold: X_sp still drawn, no gold depths; without sp: neither.
    const noGold = parts(inspectSubmoduleSpec(sentence(false), fullSub())).get('depths')!;
    expect(new Set(noGold.data.values.map((v: { series: string }) => v.series))).to.deep.equal(new Set(['X_ssp predicted', 'X_ssp tree label', 'X_sp predicted']));
    const sspOnly = parts(inspectSubmoduleSpec(sentence(), { submodule: 1, ssp: { pred: [...SSP_PRED], labels: [...SSP_LABELS] } })).get('depths')!;
    expect(new Set(sspOnly.data.values.map((v: { series: string }) => v.series))).to.deep.equal(new Set(['X_ssp predicted', 'X_ssp tree label']));
  });

  it('draws one arc per edge, from word i to word j, gold above and predicted below', function () {
    const arcsPart = parts(inspectSubmoduleSpec(sentence(), fullSub())).get('arcs')!;
    const byEdge = arcs(arcsPart);
    expect([...byEdge.keys()].sort()).to.deep.equal(['gold 0-1', 'gold 1-3', 'gold 2-3', 'predicted 0-1', 'predicted 1-2', 'predicted 1-3']);
    for (const [key, points] of byEdge) {
      const [tree, span] = key.split(' ');
      const [i, j] = span!.split('-').map(Number);
      expect(points, key).to.have.length(ARC_POINTS);
      expect(points[0]!.x, `${key} start`).to.equal(i);
      expect(points[ARC_POINTS - 1]!.x, `${key} end`).to.equal(j);
      // Above the words for gold, below for predicted; x moves from i to j.
      for (const p of points) expect(tree === 'gold' ? p.y > 0 : p.y < 0, `${key} side`).to.equal(true);
      for (let k = 1; k < points.length; k++) expect(points[k]!.x).to.be.greaterThan(points[k - 1]!.x);
      // The top of the arc is halfway between the words.
      expect(points[(ARC_POINTS - 1) / 2 | 0]!.x).to.be.closeTo((i! + j!) / 2, (j! - i!) / 2);
    }
    const status = (key: string) => byEdge.get(key)![0]!.status;
    expect(status('predicted 0-1')).to.equal('predicted, in gold');
    expect(status('predicted 1-3')).to.equal('predicted, in gold');
    expect(status('predicted 1-2')).to.equal('predicted, not in gold');
    expect(status('gold 2-3')).to.equal('gold tree');
    // The words on the centre line, punctuation flagged.
    expect(arcsPart.layer[1].data.values).to.deep.equal(WORDS.map((word, i) => ({ i, word, punct: i === 4, x: i, y: 0 })));

    // A reversed pair is the same arc.
    const reversed = { ...fullSub(), distance: { pred: DIST_PRED, edges: [[3, 1]] as Array<[number, number]> } };
    const rev = arcs(parts(inspectSubmoduleSpec(sentence(), reversed)).get('arcs')!).get('predicted 1-3')!;
    expect([rev[0]!.x, rev[ARC_POINTS - 1]!.x]).to.deep.equal([1, 3]);
  });

  it('has a heatmap cell per word pair with the given distances', function () {
    const maps = parts(inspectSubmoduleSpec(sentence(), fullSub())).get('heatmaps')!;
    const [pred, gold] = maps.hconcat as Part[];
    for (const [part, matrix] of [
      [pred!, DIST_PRED],
      [gold!, GOLD_DISTANCES],
    ] as const) {
      const cells = part.data.values as Array<{ row: number; col: number; value: number; rowWord: string; colWord: string }>;
      expect(cells).to.have.length(WORDS.length ** 2);
      const got = WORDS.map((_, i) => WORDS.map((_, j) => cells.filter((c) => c.row === i && c.col === j).map((c) => c.value)));
      expect(got).to.deep.equal(matrix.map((r) => r.map((v) => [v])));
      expect(cells.find((c) => c.row === 2 && c.col === 3)).to.include({ rowWord: 'unhappy', colWord: 'cats' });
      expect(part.mark.type).to.equal('rect');
      expect(part.encoding.color.scale.scheme).to.equal('viridis');
    }
    expect(pred!.name).to.equal('predicted distances');
    expect(gold!.name).to.equal('gold distances');
    // Each matrix has its own colour scale.
    expect(maps.resolve.scale.color).to.equal('independent');
  });

  it('leaves out the parts that have no data', function () {
    // No gold: predicted arcs only (not coloured against gold), no gold heatmap.
    const noGold = parts(inspectSubmoduleSpec(sentence(false), fullSub()));
    expect([...noGold.keys()]).to.deep.equal(['depths', 'arcs', 'heatmaps']);
    const byEdge = arcs(noGold.get('arcs')!);
    expect([...byEdge.keys()].sort()).to.deep.equal(['predicted 0-1', 'predicted 1-2', 'predicted 1-3']);
    expect(new Set([...byEdge.values()].map((p) => p[0]!.status))).to.deep.equal(new Set(['predicted']));
    expect(noGold.get('heatmaps')!.hconcat.map((p: Part) => p.name)).to.deep.equal(['predicted distances']);

    // No distance probe, no gold: the depth chart alone.
    const depthOnly = parts(inspectSubmoduleSpec(sentence(false), { submodule: 0, ssp: { pred: SSP_PRED, labels: SSP_LABELS } }));
    expect([...depthOnly.keys()]).to.deep.equal(['depths']);
    // No distance probe, with gold: the gold tree drawn above the words, nothing below.
    const withGold = parts(inspectSubmoduleSpec(sentence(), { submodule: 0, ssp: { pred: SSP_PRED, labels: SSP_LABELS } }));
    expect([...withGold.keys()]).to.deep.equal(['depths', 'arcs']);
    expect([...arcs(withGold.get('arcs')!).keys()].sort()).to.deep.equal(['gold 0-1', 'gold 1-3', 'gold 2-3']);
    // Distance probe only: no depth chart.
    const distanceOnly = parts(inspectSubmoduleSpec(sentence(), { submodule: 0, distance: fullSub().distance! }));
    expect([...distanceOnly.keys()]).to.deep.equal(['arcs', 'heatmaps']);

    expect((inspectSubmoduleSpec(sentence(), fullSub(12)) as { title: string }).title).to.equal('submodule 12');
    expect((inspectSubmoduleSpec(sentence(), fullSub(12), { title: 'layer twelve' }) as { title: string }).title).to.equal('layer twelve');
  });

  it('lays the panel out in ceil(sqrt(k)) columns and renders 25 submodule titles', async function () {
    const subs = Array.from({ length: 25 }, (_, s) => ({ ...fullSub(s), ssp: { pred: SSP_PRED.map((v) => v + s / 100), labels: SSP_LABELS } }));
    const spec = inspectPanelSpec(sentence(), subs) as { columns: number; data: { values: Array<{ submodule: number; position: number; series: string; depth: number }> } };
    expect(spec.columns).to.equal(5);
    expect((inspectPanelSpec(sentence(), subs.slice(0, 10)) as { columns: number }).columns).to.equal(4);
    expect((inspectPanelSpec(sentence(), subs.slice(0, 1)) as { columns: number }).columns).to.equal(1);
    // X_ssp predicted vs tree labels per submodule (the X_sp probe is left to the per-submodule pictures).
    const values = spec.data.values;
    expect(values).to.have.length(25 * 2 * 7);
    expect(values.filter((v) => v.submodule === 13 && v.series === 'X_ssp predicted').map((v) => v.depth)).to.deep.equal(SSP_PRED.map((v) => v + 13 / 100));
    expect(values.filter((v) => v.submodule === 13 && v.series === 'X_ssp tree label').map((v) => v.depth)).to.deep.equal(SSP_LABELS);

    const svg = await svgOf(spec);
    const titles = svg.match(/>submodule \d+</g) ?? [];
    expect(titles).to.have.length(25);
    expect(new Set(titles)).to.deep.equal(new Set(subs.map((s) => `>submodule ${s.submodule}<`)));
    // Two lines per small chart: the predictions and the tree labels.
    expect(svg.match(/aria-roledescription="line mark"/g)).to.have.length(25 * 2);
  });

  it('writes a picture per submodule and the panel', async function () {
    const out = join(dir, 'inspect', 'sentence-1');
    const subs = [fullSub(3), { submodule: 0, ssp: { pred: SSP_PRED, labels: SSP_LABELS } }];
    const { files } = await plotInspect(sentence(), subs, out);
    expect(files).to.deep.equal(['sub-3.svg', 'sub-3.png', 'sub-0.svg', 'sub-0.png', 'panel.svg', 'panel.png'].map((f) => join(out, f)));
    expect(readdirSync(out).sort()).to.deep.equal(['panel.png', 'panel.svg', 'sub-0.png', 'sub-0.svg', 'sub-3.png', 'sub-3.svg']);
    for (const f of files) {
      const bytes = readFileSync(f);
      if (f.endsWith('.svg')) expect(bytes.toString('utf8').startsWith('<svg'), f).to.equal(true);
      else expect([...bytes.subarray(0, 8)], f).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    }

    // In the SVG of submodule 3: six arcs (3 gold, 3 predicted), each from a word's centre to another's.
    const svg = readFileSync(join(out, 'sub-3.svg'), 'utf8');
    const wordX = new Map<string, number>();
    for (const m of svg.matchAll(/aria-roledescription="text mark" text-anchor="middle" transform="translate\(([-\d.]+),[-\d.]+\)"[^>]*>([^<]*)</g)) {
      wordX.set(m[2]!, Number(m[1]));
    }
    expect([...wordX.keys()]).to.deep.equal(WORDS);
    const arcPaths = [...svg.matchAll(/<path aria-label="[^"]*; edge: ([^;"]*)[^"]*" role="graphics-symbol" aria-roledescription="line mark" d="([^"]*)"/g)];
    expect(arcPaths.map((m) => m[1]).filter((s) => s === 'gold tree')).to.have.length(3);
    expect(arcPaths.map((m) => m[1]).filter((s) => s!.startsWith('predicted'))).to.have.length(3);
    const ends = arcPaths.map((m) => {
      const xs = [...m[2]!.matchAll(/[ML]([-\d.]+),/g)].map((p) => Number(p[1]));
      expect(xs).to.have.length(ARC_POINTS);
      return [xs[0]!, xs[xs.length - 1]!];
    });
    const at = (i: number) => wordX.get(WORDS[i]!)!;
    const expected = [...GOLD_EDGES, ...DIST_EDGES].map(([i, j]) => [at(i), at(j)]);
    const close = (a: number[][]) => a.map(([p, q]) => `${p!.toFixed(1)}-${q!.toFixed(1)}`).sort();
    expect(close(ends)).to.deep.equal(close(expected));
    // The full stop is greyed.
    expect(svg).to.match(/fill="#a0a0a0">\.</);
  });

  it('rejects inconsistent input with clear messages', async function () {
    const s = sentence();
    expectError(() => inspectSubmoduleSpec({ ...s, pieceWord: PIECE_WORD.slice(1) }, fullSub()), 'pieceWord has 6 entries', '7 pieces');
    expectError(() => inspectSubmoduleSpec({ ...s, pieceWord: [0, 0, 1, 2, 2, 3, 5] }, fullSub()), 'pieceWord[6] = 5', 'out of range');
    expectError(() => inspectSubmoduleSpec({ ...s, punct: [false] }, fullSub()), 'punct has 1 entries', '5 words');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), ssp: { pred: SSP_PRED.slice(2), labels: SSP_LABELS } }), 'ssp.pred has 5 entries', '7 pieces');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), ssp: { pred: SSP_PRED, labels: [1] } }), 'ssp.labels has 1 entries');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), sp: { pred: [] } }), 'sp.pred has 0 entries');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), distance: { pred: DIST_PRED.slice(1), edges: DIST_EDGES } }), 'distance.pred must be 5 x 5', '4 rows');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), distance: { pred: DIST_PRED.map((r, i) => (i === 2 ? r.slice(0, 3) : r)), edges: DIST_EDGES } }), 'distance.pred must be 5 x 5', 'row 2 has 3');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), distance: { pred: DIST_PRED, edges: [[1, 5]] } }), 'distance.edges[0]', 'out of range');
    expectError(() => inspectSubmoduleSpec(s, { ...fullSub(), distance: { pred: DIST_PRED, edges: [[2, 2]] } }), 'distance.edges[0]', 'itself');
    expectError(() => inspectSubmoduleSpec({ ...s, gold: { ...s.gold!, edges: [[0, 1], [-1, 2]] } }, fullSub()), 'gold.edges[1]', 'out of range');
    expectError(() => inspectSubmoduleSpec({ ...s, gold: { ...s.gold!, depths: [0] } }, fullSub()), 'gold.depths has 1 entries');
    expectError(() => inspectSubmoduleSpec({ ...s, gold: { ...s.gold!, distances: [[0]] } }, fullSub()), 'gold.distances must be 5 x 5');
    expectError(() => inspectSubmoduleSpec(s, { submodule: -1, ...{ ssp: fullSub().ssp } }), 'submodule must be an integer');
    expectError(() => inspectSubmoduleSpec(s, { submodule: 2 }), 'submodule 2 has no probe output');
    expectError(() => inspectPanelSpec(s, []), 'no submodules');
    expectError(() => inspectPanelSpec(s, [{ submodule: 1, distance: fullSub().distance! }]), 'no submodule has a depth probe');
    // Bad input writes nothing.
    await expectRejects(plotInspect(s, [fullSub(1), fullSub(1)], join(dir, 'bad')), 'submodule 1 appears more than once');
    await expectRejects(plotInspect(s, [fullSub(1), { ...fullSub(2), sp: { pred: [1] } }], join(dir, 'bad')), 'submodule 2: sp.pred');
    expect(readdirSync(dir)).to.deep.equal([]);
  });
});
