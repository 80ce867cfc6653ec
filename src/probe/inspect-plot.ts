/**
 * The pictures of `topoprobe inspect`: what the probes of each submodule make of one sentence.
 *
 * Per submodule (`inspectSubmoduleSpec`), stacked vertically, whichever parts have data:
 *   (a) depths per word piece: the X_ssp probe's predicted depths (line with points) against their tree
 *       labels (dashed steps), the picture Li, Yin & Lin (2023) draw per layer; and the X_sp probe's
 *       predicted depths against the gold depths when the sentence has a tree;
 *   (b) the trees as arcs over the words in a row: the gold tree above the words, the distance probe's
 *       minimum spanning tree below them (mirrored), its edges coloured by whether the gold tree has them;
 *   (c) heatmaps of the distance probe's predicted distances and of the gold tree distances, side by side.
 * For all submodules at once (`inspectPanelSpec`): one small depth chart per submodule in a grid.
 *
 * Like the measure plot (plot.ts), each picture is a Vega-Lite spec with its data inline, rendered to SVG
 * and PNG by `renderVegaLite`. Every number drawn is in the spec's data as given (non-finite ones as null).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { TopoprobeError } from '../util/errors.js';
import { renderVegaLite } from './plot.js';

export interface InspectSentence {
  /** Words of the sentence (as shown). */
  words: string[];
  /** Word pieces (real pieces only, no [CLS]/[SEP]) and each piece's word index. */
  pieces: string[];
  pieceWord: number[];
  /** Per word, whether it is punctuation (left out of the trees). */
  punct: boolean[];
  /** Present when the sentence came with a gold tree (CoNLL-U). */
  gold?: { depths: number[] /* per word */; distances: number[][] /* word x word */; edges: Array<[number, number]> /* undirected, smaller index first, punctuation left out */ };
}

export interface InspectSubmodule {
  submodule: number;
  /** The X_ssp depth probe on this sentence: predicted depth per piece, and the tree labels of those predictions. */
  ssp?: { pred: number[]; labels: number[] };
  /** The X_sp depth probe: predicted depth per piece (compare with gold.depths spread to pieces via pieceWord). */
  sp?: { pred: number[] };
  /** The distance probe: word x word predicted (squared) distances, and the MST edges over non-punctuation words. */
  distance?: { pred: number[][]; edges: Array<[number, number]> };
}

export interface InspectPlotOptions {
  title?: string;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

// ---- validation ----------------------------------------------------------------------------------------

function fail(message: string): never {
  throw new TopoprobeError(`inspect plot: ${message}`);
}

function checkMatrix(m: unknown, n: number, what: string): void {
  if (!Array.isArray(m) || m.length !== n) fail(`${what} must be ${n} x ${n} (words x words), it has ${Array.isArray(m) ? m.length : 'no'} rows`);
  m.forEach((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== n) {
      fail(`${what} must be ${n} x ${n} (words x words), its row ${i} has ${Array.isArray(row) ? row.length : 'no'} entries`);
    }
  });
}

function checkEdges(edges: ReadonlyArray<readonly [number, number]>, n: number, what: string): void {
  edges.forEach((e, k) => {
    if (!Array.isArray(e) || e.length !== 2) fail(`${what}[${k}] must be a pair of word indices`);
    for (const w of e) {
      if (!Number.isInteger(w) || w < 0 || w >= n) fail(`${what}[${k}] = [${e.join(', ')}]: word index ${String(w)} is out of range (the sentence has words 0..${n - 1})`);
    }
    if (e[0] === e[1]) fail(`${what}[${k}] joins word ${e[0]} to itself`);
  });
}

function checkSentence(s: InspectSentence): void {
  const n = s.words.length;
  if (n === 0) fail('the sentence has no words');
  if (s.pieces.length === 0) fail('the sentence has no word pieces');
  if (s.pieceWord.length !== s.pieces.length) fail(`pieceWord has ${s.pieceWord.length} entries but there are ${s.pieces.length} pieces`);
  s.pieceWord.forEach((w, k) => {
    if (!Number.isInteger(w) || w < 0 || w >= n) fail(`pieceWord[${k}] = ${String(w)} is out of range (the sentence has words 0..${n - 1})`);
  });
  if (s.punct.length !== n) fail(`punct has ${s.punct.length} entries but there are ${n} words`);
  if (s.gold) {
    if (s.gold.depths.length !== n) fail(`gold.depths has ${s.gold.depths.length} entries but there are ${n} words`);
    checkMatrix(s.gold.distances, n, 'gold.distances');
    checkEdges(s.gold.edges, n, 'gold.edges');
  }
}

function checkSubmodule(s: InspectSentence, sub: InspectSubmodule): void {
  const at = `submodule ${String(sub.submodule)}`;
  if (!Number.isInteger(sub.submodule) || sub.submodule < 0) fail(`submodule must be an integer >= 0, got ${String(sub.submodule)}`);
  const pieces = s.pieces.length;
  if (sub.ssp) {
    if (sub.ssp.pred.length !== pieces) fail(`${at}: ssp.pred has ${sub.ssp.pred.length} entries but there are ${pieces} pieces`);
    if (sub.ssp.labels.length !== pieces) fail(`${at}: ssp.labels has ${sub.ssp.labels.length} entries but there are ${pieces} pieces`);
  }
  if (sub.sp && sub.sp.pred.length !== pieces) fail(`${at}: sp.pred has ${sub.sp.pred.length} entries but there are ${pieces} pieces`);
  if (sub.distance) {
    checkMatrix(sub.distance.pred, s.words.length, `${at}: distance.pred`);
    checkEdges(sub.distance.edges, s.words.length, `${at}: distance.edges`);
  }
}

function checkSubmodules(s: InspectSentence, subs: readonly InspectSubmodule[]): void {
  if (subs.length === 0) fail('no submodules to plot');
  const seen = new Set<number>();
  for (const sub of subs) {
    checkSubmodule(s, sub);
    if (seen.has(sub.submodule)) fail(`submodule ${sub.submodule} appears more than once`);
    seen.add(sub.submodule);
  }
}

// ---- shared pieces ---------------------------------------------------------------------------------------

const finite = (v: number | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** A Vega expression: the entry of a literal array at `datum.value` (axis labels of index fields). */
function lookupExpr(values: readonly unknown[]): string {
  return `${JSON.stringify(values)}[datum.value]`;
}

/** Axis label colour: grey for punctuation (per index, given as the list of flags). */
function punctLabelColor(flags: readonly boolean[]): { expr: string } {
  return { expr: `${JSON.stringify(flags.map((f) => (f ? 1 : 0)))}[datum.value] ? '${PUNCT_COLOR}' : '#000'` };
}

const PUNCT_COLOR = '#a0a0a0';

// ---- (a) depths per piece --------------------------------------------------------------------------------

/** The depth series, each with a fixed colour and dash; `pred` ones are drawn as lines with points, the others as steps. */
const DEPTH_SERIES = [
  { name: 'X_ssp predicted', color: '#f58518', dash: [1, 0], pred: true },
  { name: 'X_ssp tree label', color: '#a34700', dash: [5, 3], pred: false },
  { name: 'X_sp predicted', color: '#4c78a8', dash: [1, 0], pred: true },
  { name: 'gold depth', color: '#222222', dash: [2, 2], pred: false },
] as const;

type DepthSeriesName = (typeof DEPTH_SERIES)[number]['name'];

interface DepthValue {
  submodule?: number;
  position: number;
  piece: string;
  series: DepthSeriesName;
  depth: number | null;
}

/**
 * The depth series of one submodule, in long form per piece position. With `sspOnly`, the X_sp series
 * (and gold) only when there is no X_ssp probe (the panel's choice).
 */
function depthValues(s: InspectSentence, sub: InspectSubmodule, sspOnly: boolean): DepthValue[] {
  const series: Array<{ name: DepthSeriesName; values: Array<number | null> }> = [];
  if (sub.ssp) {
    series.push({ name: 'X_ssp predicted', values: sub.ssp.pred.map(finite) });
    series.push({ name: 'X_ssp tree label', values: sub.ssp.labels.map(finite) });
  }
  const withSp = sub.sp !== undefined && !(sspOnly && sub.ssp);
  if (withSp) series.push({ name: 'X_sp predicted', values: sub.sp!.pred.map(finite) });
  // Beside X_sp, the gold depths spread to the pieces (punctuation has no place in the tree: a gap there).
  if (s.gold && withSp) {
    const gold = s.gold;
    series.push({ name: 'gold depth', values: s.pieceWord.map((w) => (s.punct[w] ? null : finite(gold.depths[w]))) });
  }
  const values: DepthValue[] = [];
  s.pieces.forEach((piece, position) => {
    for (const one of series) {
      values.push({ ...(sspOnly ? { submodule: sub.submodule } : {}), position, piece, series: one.name, depth: one.values[position]! });
    }
  });
  return values;
}

/** The layers and encodings of a depth chart over the series present in `values`. */
function depthChart(s: InspectSentence, values: readonly DepthValue[], small: boolean): Record<string, unknown> {
  const present = DEPTH_SERIES.filter((d) => values.some((v) => v.series === d.name));
  const predNames = present.filter((d) => d.pred).map((d) => d.name);
  const labelNames = present.filter((d) => !d.pred).map((d) => d.name);
  const color = {
    field: 'series',
    type: 'nominal',
    title: 'depth',
    scale: { domain: present.map((d) => d.name), range: present.map((d) => d.color) },
    // Stroke symbols show the dashes of the steps (colour and dash share the field and title: one legend).
    legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300, labelLimit: 300 },
  };
  const strokeDash = { field: 'series', type: 'nominal', title: 'depth', scale: { domain: present.map((d) => d.name), range: present.map((d) => d.dash) } };
  const layer: unknown[] = [];
  if (predNames.length > 0) {
    const filter = { filter: { field: 'series', oneOf: predNames } };
    layer.push({ transform: [filter], mark: { type: 'line', strokeWidth: small ? 1.5 : 2, invalid: 'break-paths-filter-domains' }, encoding: { strokeDash } });
    layer.push({ transform: [filter], mark: { type: 'point', filled: true, size: small ? 12 : 30, invalid: 'break-paths-filter-domains' } });
  }
  if (labelNames.length > 0) {
    layer.push({
      transform: [{ filter: { field: 'series', oneOf: labelNames } }],
      mark: { type: 'line', interpolate: 'step', strokeWidth: small ? 1.5 : 2, invalid: 'break-paths-filter-domains' },
      encoding: { strokeDash },
    });
  }
  const pieceIsPunct = s.pieceWord.map((w) => s.punct[w]!);
  return {
    encoding: {
      x: {
        field: 'position',
        type: 'ordinal',
        title: small ? null : 'word piece',
        scale: { domain: s.pieces.map((_, k) => k) },
        axis: {
          labelExpr: lookupExpr(s.pieces),
          labelAngle: -50,
          labelColor: punctLabelColor(pieceIsPunct),
          ...(small ? { labelFontSize: 8 } : {}),
        },
      },
      y: { field: 'depth', type: 'quantitative', title: small ? null : 'depth', scale: { zero: true } },
      color,
    },
    layer,
  };
}

// ---- (b) arcs ------------------------------------------------------------------------------------------

/** Points per arc polyline. */
export const ARC_POINTS = 16;

const ARC_STATUS = [
  { name: 'gold tree', color: '#555555' },
  { name: 'predicted, in gold', color: '#2ca02c' },
  { name: 'predicted, not in gold', color: '#d62728' },
  { name: 'predicted', color: '#4c78a8' },
] as const;

type ArcStatus = (typeof ARC_STATUS)[number]['name'];

interface ArcPoint {
  tree: 'gold' | 'predicted';
  edge: string;
  status: ArcStatus;
  k: number;
  x: number;
  y: number;
}

const edgeKey = (a: number, b: number): string => `${Math.min(a, b)}-${Math.max(a, b)}`;

function arcsChart(s: InspectSentence, sub: InspectSubmodule): Record<string, unknown> | undefined {
  const gold = s.gold?.edges;
  const pred = sub.distance?.edges;
  if (!gold && !pred) return undefined;
  const n = s.words.length;
  const goldSet = new Set((gold ?? []).map(([a, b]) => edgeKey(a, b)));
  // px per word: room for the longer neighbouring pairs of words (about 7 px per character at 12 px).
  const pairLen = Math.max(s.words[0]!.length, ...s.words.slice(1).map((w, i) => (w.length + s.words[i]!.length) / 2));
  const step = clamp(Math.ceil(7 * pairLen + 12), 36, 100);
  const spans = [...(gold ?? []), ...(pred ?? [])].map(([a, b]) => Math.abs(b - a) / 2);
  const H = Math.max(0.5, ...spans); // the largest arc radius, in word units
  const unit = Math.min(step * 0.6, 150 / H); // px per y unit
  const lift = 11 / unit; // arcs start this far (in y units) above or below the words' centre line

  const points: ArcPoint[] = [];
  const addArcs = (edges: ReadonlyArray<readonly [number, number]>, tree: 'gold' | 'predicted'): void => {
    const sign = tree === 'gold' ? 1 : -1;
    for (const [p, q] of edges) {
      const i = Math.min(p, q);
      const j = Math.max(p, q);
      const status: ArcStatus = tree === 'gold' ? 'gold tree' : !gold ? 'predicted' : goldSet.has(edgeKey(i, j)) ? 'predicted, in gold' : 'predicted, not in gold';
      const c = (i + j) / 2;
      const r = (j - i) / 2;
      for (let k = 0; k < ARC_POINTS; k++) {
        const theta = Math.PI * (1 - k / (ARC_POINTS - 1));
        // The ends exactly at the words (cos(pi) = -1 and cos(0) = 1 are exact; sin(pi) is not 0).
        const x = k === 0 ? i : k === ARC_POINTS - 1 ? j : c + r * Math.cos(theta);
        const rise = k === 0 || k === ARC_POINTS - 1 ? 0 : r * Math.sin(theta);
        points.push({ tree, edge: `${tree} ${i}-${j}`, status, k, x, y: sign * (lift + rise) });
      }
    }
  };
  if (gold) addArcs(gold, 'gold');
  if (pred) addArcs(pred, 'predicted');

  const top = gold ? H + lift : lift;
  const bottom = pred ? -(H + lift) : -lift;
  const present = ARC_STATUS.filter((a) => points.some((p) => p.status === a.name));
  // On the centre line; x and y as the arcs' (the layers share the parent's x and y encodings).
  const words = s.words.map((word, i) => ({ i, word, punct: s.punct[i]!, x: i, y: 0 }));
  const trees = gold && pred ? 'gold tree above, distance probe MST below' : gold ? 'gold tree' : 'distance probe MST';
  return {
    name: 'arcs',
    title: { text: `trees over the words (${trees})`, fontSize: 12, anchor: 'start' },
    width: step * n,
    height: Math.round((top - bottom) * unit),
    view: { stroke: null },
    encoding: {
      x: { field: 'x', type: 'quantitative', scale: { domain: [-0.5, n - 0.5], nice: false, zero: false }, axis: null },
      y: { field: 'y', type: 'quantitative', scale: { domain: [bottom, top], nice: false, zero: false }, axis: null },
    },
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', strokeWidth: 1.5, interpolate: 'linear' },
        encoding: {
          detail: { field: 'edge', type: 'nominal' },
          order: { field: 'k', type: 'quantitative' },
          color: {
            field: 'status',
            type: 'nominal',
            title: 'edge',
            scale: { domain: present.map((a) => a.name), range: present.map((a) => a.color) },
            legend: { labelLimit: 300, symbolStrokeWidth: 2 },
          },
        },
      },
      {
        data: { values: words },
        mark: { type: 'text', fontSize: 12, baseline: 'middle', align: 'center' },
        encoding: {
          text: { field: 'word', type: 'nominal' },
          color: { condition: { test: 'datum.punct', value: PUNCT_COLOR }, value: '#000000' },
        },
      },
    ],
  };
}

// ---- (c) heatmaps --------------------------------------------------------------------------------------

interface Cell {
  row: number;
  col: number;
  rowWord: string;
  colWord: string;
  value: number | null;
}

function cells(s: InspectSentence, m: readonly (readonly number[])[]): Cell[] {
  const out: Cell[] = [];
  m.forEach((r, row) => r.forEach((v, col) => out.push({ row, col, rowWord: s.words[row]!, colWord: s.words[col]!, value: finite(v) })));
  return out;
}

function heatmap(s: InspectSentence, name: string, title: string, legend: string, values: Cell[]): Record<string, unknown> {
  const n = s.words.length;
  const cell = clamp(Math.round(320 / n), 12, 30);
  const axis = (orient: 'bottom' | 'left') => ({
    labelExpr: lookupExpr(s.words),
    labelColor: punctLabelColor(s.punct),
    ...(orient === 'bottom' ? { labelAngle: -50 } : {}),
    ticks: false,
    domain: false,
  });
  return {
    name,
    title: { text: title, fontSize: 12 },
    width: { step: cell },
    height: { step: cell },
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'col', type: 'ordinal', title: null, scale: { domain: s.words.map((_, i) => i) }, axis: axis('bottom') },
      y: { field: 'row', type: 'ordinal', title: null, scale: { domain: s.words.map((_, i) => i) }, axis: axis('left') },
      color: { field: 'value', type: 'quantitative', title: legend, scale: { scheme: 'viridis' } },
    },
  };
}

function heatmapsChart(s: InspectSentence, sub: InspectSubmodule): Record<string, unknown> | undefined {
  if (!sub.distance) return undefined;
  const maps = [heatmap(s, 'predicted distances', 'predicted distance (squared)', 'predicted', cells(s, sub.distance.pred))];
  if (s.gold) maps.push(heatmap(s, 'gold distances', 'gold tree distance', 'gold', cells(s, s.gold.distances)));
  return { name: 'heatmaps', hconcat: maps, spacing: 30, resolve: { scale: { color: 'independent' } } };
}

// ---- the figures ---------------------------------------------------------------------------------------

/** One submodule's picture: (a) depths per piece, (b) trees as arcs, (c) distance heatmaps, whichever have data. */
export function inspectSubmoduleSpec(sentence: InspectSentence, sub: InspectSubmodule, opts: InspectPlotOptions = {}): TopLevelSpec {
  checkSentence(sentence);
  checkSubmodule(sentence, sub);
  const parts: Array<Record<string, unknown>> = [];
  const depths = depthValues(sentence, sub, false);
  if (depths.length > 0) {
    parts.push({
      name: 'depths',
      title: { text: 'depth per word piece', fontSize: 12, anchor: 'start' },
      width: Math.max(360, 26 * sentence.pieces.length),
      height: 220,
      data: { values: depths },
      ...depthChart(sentence, depths, false),
    });
  }
  if (sub.ssp || sub.sp || sub.distance) {
    const arcs = arcsChart(sentence, sub);
    if (arcs) parts.push(arcs);
  }
  const maps = heatmapsChart(sentence, sub);
  if (maps) parts.push(maps);
  if (parts.length === 0) fail(`submodule ${sub.submodule} has no probe output to draw (none of ssp, sp, distance)`);
  const spec = {
    $schema: SCHEMA,
    title: opts.title ?? `submodule ${sub.submodule}`,
    vconcat: parts,
    spacing: 24,
    resolve: { scale: { color: 'independent', strokeDash: 'independent', x: 'independent', y: 'independent' } },
  };
  return spec as unknown as TopLevelSpec;
}

/**
 * All submodules at a glance: per submodule, the X_ssp probe's predicted depths against their tree labels
 * (or, for a submodule without an X_ssp probe, the X_sp probe's against the gold depths), in a grid of
 * ceil(sqrt(k)) columns sharing the depth axis. Throws when no submodule has a depth probe.
 */
export function inspectPanelSpec(sentence: InspectSentence, subs: readonly InspectSubmodule[], opts: InspectPlotOptions = {}): TopLevelSpec {
  checkSentence(sentence);
  checkSubmodules(sentence, subs);
  const sorted = [...subs].sort((a, b) => a.submodule - b.submodule);
  const values = sorted.flatMap((sub) => depthValues(sentence, sub, true));
  const shown = sorted.filter((sub) => sub.ssp || sub.sp);
  if (shown.length === 0) fail('no submodule has a depth probe (ssp or sp) to draw in the panel');
  const columns = Math.ceil(Math.sqrt(shown.length));
  const spec = {
    $schema: SCHEMA,
    title: opts.title ?? 'depth per word piece, per submodule',
    data: { values },
    columns,
    facet: {
      field: 'submodule',
      type: 'ordinal',
      sort: shown.map((sub) => sub.submodule),
      header: { title: null, labelExpr: "'submodule ' + datum.value", labelFontSize: 11, labelFontWeight: 'bold' },
    },
    spec: {
      width: clamp(10 * sentence.pieces.length, 150, 260),
      height: 110,
      ...depthChart(sentence, values, true),
    },
    spacing: { row: 12, column: 12 },
  };
  return spec as unknown as TopLevelSpec;
}

/** Whether `inspectPanelSpec` has anything to draw for these submodules. */
function hasDepths(subs: readonly InspectSubmodule[]): boolean {
  return subs.some((sub) => sub.ssp || sub.sp);
}

/**
 * Writes `sub-<i>.svg/png` per submodule and `panel.svg/png` (when a submodule has a depth probe) into
 * `outDir` (created if missing); returns the files written, SVG then PNG, submodules in the order given.
 */
export async function plotInspect(sentence: InspectSentence, subs: readonly InspectSubmodule[], outDir: string): Promise<{ files: string[] }> {
  checkSentence(sentence);
  checkSubmodules(sentence, subs);
  // Every spec first, so that bad input writes nothing.
  const specs: Array<{ base: string; spec: TopLevelSpec }> = subs.map((sub) => ({ base: `sub-${sub.submodule}`, spec: inspectSubmoduleSpec(sentence, sub) }));
  if (hasDepths(subs)) specs.push({ base: 'panel', spec: inspectPanelSpec(sentence, subs) });
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  for (const { base, spec } of specs) {
    const written = await renderVegaLite(spec, join(outDir, base));
    files.push(written.svg, written.png);
  }
  return { files };
}
