/**
 * Plots of probe results, written as SVG (vector, byte-deterministic) and PNG (for quick viewing).
 *
 * Each plot is first a Vega-Lite spec (plain JSON with its data inline, so it can be saved next to the
 * results and re-rendered elsewhere), which `renderVegaLite` compiles to Vega, renders headlessly to SVG
 * and rasterises with resvg.
 */
import { readdirSync, type Dirent } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Resvg, renderAsync, type ResvgRenderOptions } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { getLogger } from '../util/log.js';

/** The PNG is the SVG rasterised at this zoom (resvg `fitTo: { mode: 'zoom' }`), i.e. 2x pixels per SVG unit. */
export const PNG_ZOOM = 2;

/**
 * One row of a measure run, for one submodule (0 = embeddings, i = layer i): the held-out MSEs of the
 * three probes and the held-out scores (depth Spearman, root accuracy, UUAS, distance Spearman).
 * Missing, null or non-finite values are not drawn.
 */
export interface MeasureRow {
  submodule: number;
  x_sp?: number | null;
  x_ssp?: number | null;
  x_essp?: number | null;
  spearman?: number | null;
  root_acc?: number | null;
  uuas?: number | null;
  distance_spearman?: number | null;
}

/** Another measure run drawn in the same chart (dashed), e.g. the same architecture with reinitialised weights. */
export interface MeasureControl {
  rows: readonly MeasureRow[];
  /** Its entry in the "weights" legend, e.g. "reinitialised". */
  label: string;
}

export interface PlotOptions {
  title?: string;
  /** The main run's entry in the "weights" legend (only shown with a control); default "this run". */
  label?: string;
  control?: MeasureControl;
}

export interface PlotFiles {
  svg: string;
  png: string;
}

type MetricKey = Exclude<keyof MeasureRow, 'submodule'>;

interface Metric {
  key: MetricKey;
  label: string;
  color: string;
  shape: string;
}

/** The MSE metrics in legend order, each with a fixed colour and point shape so every plot reads the same. */
const MSE_METRICS: readonly Metric[] = [
  { key: 'x_sp', label: 'X_sp', color: '#4c78a8', shape: 'circle' },
  { key: 'x_ssp', label: 'X_ssp', color: '#f58518', shape: 'square' },
  { key: 'x_essp', label: 'X_essp', color: '#54a24b', shape: 'triangle-up' },
];

/** The scores, likewise (colours and shapes distinct from the MSE metrics'). */
const SCORE_METRICS: readonly Metric[] = [
  { key: 'spearman', label: 'DSpr.', color: '#e45756', shape: 'diamond' },
  { key: 'root_acc', label: 'root acc.', color: '#b279a2', shape: 'triangle-down' },
  { key: 'uuas', label: 'UUAS', color: '#72b7b2', shape: 'cross' },
  { key: 'distance_spearman', label: 'distance Spr.', color: '#9d755d', shape: 'triangle-right' },
];

export const SUBMODULE_AXIS_TITLE = 'submodule (0 = embeddings, i = layer i)';
export const MSE_AXIS_TITLE = 'held-out MSE';
export const SCORE_AXIS_TITLE = 'held-out score';

interface Panel {
  /** The value field of the panel's long-form data. */
  field: 'mse' | 'score';
  title: string;
  axisTitle: string;
  height: number;
  metrics: readonly Metric[];
}

const PANELS: readonly Panel[] = [
  { field: 'mse', title: 'held-out MSE (lower is more tree-like)', axisTitle: MSE_AXIS_TITLE, height: 300, metrics: MSE_METRICS },
  { field: 'score', title: 'scores (higher is better)', axisTitle: SCORE_AXIS_TITLE, height: 220, metrics: SCORE_METRICS },
];

/** Solid for the main run, dashed for the control. */
const DASHES = [[1, 0], [6, 4]];

function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function checkRows(rows: readonly MeasureRow[], what: string): MeasureRow[] {
  if (rows.length === 0) throw new TopoprobeError(`measure plot: no ${what} to plot`);
  const seen = new Set<number>();
  for (const row of rows) {
    const s = row.submodule;
    if (!Number.isInteger(s) || s < 0) throw new TopoprobeError(`measure plot: ${what}: submodule must be an integer >= 0, got ${String(s)}`);
    if (seen.has(s)) throw new TopoprobeError(`measure plot: ${what}: submodule ${s} appears more than once`);
    seen.add(s);
  }
  return [...rows].sort((a, b) => a.submodule - b.submodule);
}

/**
 * The Vega-Lite spec of the measure plot: two panels stacked vertically over the same submodule axis, the
 * held-out MSEs of X_sp, X_ssp, X_essp on top and the scores (depth Spearman, root accuracy, UUAS,
 * distance Spearman, on [0, 1]) below, one line with points per metric.
 *
 * Each panel has its own data in long form, `{ submodule, metric, mse }` (top) or
 * `{ submodule, metric, score }` (bottom), sorted by submodule then metric. A metric with no value in any
 * row is left out (and so out of the legend), a panel with no metric at all likewise; a missing, null or
 * non-finite value of a present metric stays in as null, which breaks that metric's line there and draws
 * no point.
 *
 * With `opts.control`, the control's rows are drawn too, each metric in its own colour but dashed with open
 * points, and the data rows gain `weights` (`opts.label` or the control's label); a second legend,
 * "weights", tells the two apart. Submodules and metrics that only the control has are drawn as well.
 */
export function measureChartSpec(rows: readonly MeasureRow[], opts: PlotOptions = {}): TopLevelSpec {
  const main = checkRows(rows, 'rows');
  const control = opts.control !== undefined ? checkRows(opts.control.rows, 'control rows') : undefined;
  const mainLabel = opts.label ?? 'this run';
  const controlLabel = opts.control?.label ?? '';
  if (control !== undefined && controlLabel === mainLabel) {
    throw new TopoprobeError(`measure plot: the control's label must differ from the run's, both are "${mainLabel}"`);
  }
  const allMetrics = PANELS.flatMap((p) => p.metrics);
  if (!allMetrics.some((m) => main.some((row) => finite(row[m.key]) !== null))) {
    throw new TopoprobeError(`measure plot: none of ${allMetrics.map((m) => m.key).join(', ')} has a value in any row`);
  }
  const series: Array<{ rows: MeasureRow[]; label: string }> = [{ rows: main, label: mainLabel }];
  if (control !== undefined) series.push({ rows: control, label: controlLabel });

  const submodules = [...new Set(series.flatMap((s) => s.rows.map((r) => r.submodule)))].sort((a, b) => a - b);
  const first = submodules[0]!;
  const last = submodules[submodules.length - 1]!;
  // A single submodule would give an empty domain; widen it by one on each side.
  const domain = last > first ? [first, last] : [first - 1, last + 1];

  const panels = PANELS.map((panel) => {
    const present = panel.metrics.filter((m) => series.some((s) => s.rows.some((row) => finite(row[m.key]) !== null)));
    return { panel, present };
  }).filter((p) => p.present.length > 0);

  const specs = panels.map(({ panel, present }, i) => {
    const values: Array<Record<string, string | number | null>> = [];
    for (const s of submodules) {
      for (const m of present) {
        for (const one of series) {
          const row = one.rows.find((r) => r.submodule === s);
          if (row === undefined) continue;
          const v: Record<string, string | number | null> = { submodule: s, metric: m.label, [panel.field]: finite(row[m.key]) };
          if (control !== undefined) v.weights = one.label;
          values.push(v);
        }
      }
    }
    const metricScale = { domain: present.map((m) => m.label), range: present.map((m) => m.color) };
    const color = { field: 'metric', type: 'nominal', title: 'metric', scale: metricScale } as const;
    // Same field and title as colour, so Vega-Lite merges the two into one legend.
    const shape = { field: 'metric', type: 'nominal', title: 'metric', scale: { domain: metricScale.domain, range: present.map((m) => m.shape) } } as const;
    let y: Record<string, unknown> = { field: panel.field, type: 'quantitative', title: panel.axisTitle, scale: { zero: false } };
    if (panel.field === 'score') {
      // Scores live on [0, 1]; a negative correlation (possible for a random encoder) widens the axis downwards.
      const lowest = Math.min(0, ...values.map((v) => v.score).filter((v): v is number => typeof v === 'number'));
      y = { ...y, scale: { domain: [lowest < 0 ? Math.floor(lowest * 10) / 10 : 0, 1], nice: false } };
    }
    const isLast = i === panels.length - 1;
    const point = (filled: boolean) => ({ type: 'point', filled, size: 36, ...(filled ? {} : { strokeWidth: 1.5 }), invalid: 'break-paths-filter-domains' }) as const;
    const layer: unknown[] =
      control === undefined
        ? [{ mark: { type: 'line', strokeWidth: 2, invalid: 'break-paths-filter-domains' } }, { mark: point(true), encoding: { shape } }]
        : [
            {
              mark: { type: 'line', strokeWidth: 2, invalid: 'break-paths-filter-domains' },
              encoding: {
                strokeDash: {
                  field: 'weights',
                  type: 'nominal',
                  title: 'weights',
                  scale: { domain: [mainLabel, controlLabel], range: DASHES },
                  legend: { symbolStrokeWidth: 2, symbolSize: 400, symbolStrokeColor: '#555' },
                },
              },
            },
            ...series.map((one, k) => ({
              transform: [{ filter: { field: 'weights', equal: one.label } }],
              mark: point(k === 0),
              encoding: { shape, detail: { field: 'weights', type: 'nominal' } },
            })),
          ];
    return {
      title: { text: panel.title, fontSize: 12, anchor: 'start' },
      width: 480,
      height: panel.height,
      data: { values },
      encoding: {
        x: {
          field: 'submodule',
          type: 'quantitative',
          // The panels share the x axis; only the lowest one names it.
          title: isLast ? SUBMODULE_AXIS_TITLE : null,
          scale: { domain, nice: false, zero: false },
          axis: { tickMinStep: 1, format: 'd' },
        },
        y,
        color,
      },
      layer,
    };
  });

  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title !== undefined ? { title: opts.title } : {}),
    vconcat: specs,
    spacing: 16,
    resolve: { scale: { x: 'shared', color: 'independent', shape: 'independent', strokeDash: 'shared' } },
  };
  return spec as TopLevelSpec;
}

/** Writes `${outBase}.svg` and `${outBase}.png`: the measure plot of `rows` (see `measureChartSpec`). */
export async function plotMeasure(rows: readonly MeasureRow[], outBase: string, opts: PlotOptions = {}): Promise<PlotFiles> {
  return renderVegaLite(measureChartSpec(rows, opts), outBase);
}

/**
 * Vega-Lite spec -> Vega -> SVG (headless, no canvas) -> PNG at `PNG_ZOOM`; both files written atomically
 * once both renders succeeded. The SVG depends only on the spec (Vega estimates text widths itself, so
 * neither the machine's fonts nor a canvas package change it).
 */
export async function renderVegaLite(spec: TopLevelSpec, outBase: string): Promise<PlotFiles> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const png = (await renderAsync(svg, { fitTo: { mode: 'zoom', value: PNG_ZOOM }, font: fontOptions() })).asPng();
  const files = { svg: `${outBase}.svg`, png: `${outBase}.png` };
  writeFileAtomic(files.svg, svg);
  writeFileAtomic(files.png, png);
  return files;
}

// ---- fonts for the PNG -------------------------------------------------------------------------------
// The SVG asks for `sans-serif`. resvg does not read fontconfig, and its default sans-serif family (Arial)
// is often missing on Linux, so a known sans family is looked up in the usual font folders and loaded by
// file (faster than loading every system font, and the PNG then does not depend on what else is
// installed). If none is found, resvg loads the system fonts and falls back to any face it has. If there
// is no font at all (a bare container), resvg silently drops every <text>: the PNG then has lines,
// points and axes but no labels. That case is detected once, by rasterising a test glyph, and logged as a
// warning; the SVG is unaffected. No font is ever downloaded.

const FONT_DIRS = [
  '/usr/share/fonts',
  '/usr/local/share/fonts',
  join(homedir(), '.local', 'share', 'fonts'),
  join(homedir(), '.fonts'),
  '/System/Library/Fonts',
  '/Library/Fonts',
  'C:\\Windows\\Fonts',
];

/** Sans families by preference; `regular` and `bold` list alternative file names of the same face. */
const SANS_FAMILIES = [
  { family: 'DejaVu Sans', regular: ['DejaVuSans.ttf'], bold: ['DejaVuSans-Bold.ttf'] },
  { family: 'Liberation Sans', regular: ['LiberationSans-Regular.ttf'], bold: ['LiberationSans-Bold.ttf'] },
  { family: 'Noto Sans', regular: ['NotoSans-Regular.ttf'], bold: ['NotoSans-Bold.ttf'] },
  { family: 'Arial', regular: ['Arial.ttf', 'arial.ttf'], bold: ['Arial Bold.ttf', 'arialbd.ttf'] },
  { family: 'FreeSans', regular: ['FreeSans.ttf'], bold: ['FreeSansBold.ttf'] },
  { family: 'Helvetica', regular: ['Helvetica.ttc'], bold: [] },
];

/** File name -> first path (folders walked in order, entries sorted) under the font folders. */
function findFontFiles(): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < 4) walk(path, depth + 1);
      } else if (/\.(ttf|otf|ttc)$/i.test(e.name) && !found.has(e.name)) {
        found.set(e.name, path);
      }
    }
  };
  for (const dir of FONT_DIRS) walk(dir, 0);
  return found;
}

let cachedFontOptions: NonNullable<ResvgRenderOptions['font']> | undefined;

function fontOptions(): NonNullable<ResvgRenderOptions['font']> {
  if (cachedFontOptions) return cachedFontOptions;
  const files = findFontFiles();
  let opts: NonNullable<ResvgRenderOptions['font']> = { loadSystemFonts: true };
  for (const f of SANS_FAMILIES) {
    const regular = f.regular.map((n) => files.get(n)).find((p) => p !== undefined);
    if (regular === undefined) continue;
    const bold = f.bold.map((n) => files.get(n)).find((p) => p !== undefined);
    opts = {
      loadSystemFonts: false,
      fontFiles: bold === undefined ? [regular] : [regular, bold],
      defaultFontFamily: f.family,
      sansSerifFamily: f.family,
    };
    break;
  }
  if (!rendersText(opts)) {
    getLogger().warn('plot: no usable font found (looked in the usual font folders); PNG plots will have no text, the SVGs are complete');
  }
  cachedFontOptions = opts;
  return opts;
}

/** Whether resvg with these font options draws any ink for a line of sans-serif text. */
function rendersText(font: NonNullable<ResvgRenderOptions['font']>): boolean {
  const probe =
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20">' +
    '<text x="2" y="15" font-family="sans-serif" font-size="14">Hg 01</text></svg>';
  const pixels = new Resvg(probe, { font }).render().pixels;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) return true;
  return false;
}
