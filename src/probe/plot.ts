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

/** One row of a measure run: the three held-out MSEs of a submodule (0 = embeddings, i = layer i). */
export interface MeasureRow {
  submodule: number;
  x_sp?: number | null;
  x_ssp?: number | null;
  x_essp?: number | null;
}

export interface PlotOptions {
  title?: string;
}

export interface PlotFiles {
  svg: string;
  png: string;
}

/** The metrics in legend order, each with a fixed colour and point shape so every plot reads the same. */
const METRICS = [
  { key: 'x_sp', label: 'X_sp', color: '#4c78a8', shape: 'circle' },
  { key: 'x_ssp', label: 'X_ssp', color: '#f58518', shape: 'square' },
  { key: 'x_essp', label: 'X_essp', color: '#54a24b', shape: 'triangle-up' },
] as const;

export const SUBMODULE_AXIS_TITLE = 'submodule (0 = embeddings, i = layer i)';
export const MSE_AXIS_TITLE = 'held-out MSE';

/**
 * The Vega-Lite spec of the measure plot: one line (with points) per metric over the submodule index.
 * The data are in long form, `{ submodule, metric, mse }`, sorted by submodule then metric. A metric with
 * no value in any row is left out (and so out of the legend); a missing, null or non-finite value of a
 * present metric stays in as `mse: null`, which breaks that metric's line there and draws no point.
 */
export function measureChartSpec(rows: readonly MeasureRow[], opts: PlotOptions = {}): TopLevelSpec {
  if (rows.length === 0) throw new TopoprobeError('measure plot: no rows to plot');
  const seen = new Set<number>();
  for (const row of rows) {
    const s = row.submodule;
    if (!Number.isInteger(s) || s < 0) throw new TopoprobeError(`measure plot: submodule must be an integer >= 0, got ${String(s)}`);
    if (seen.has(s)) throw new TopoprobeError(`measure plot: submodule ${s} appears more than once`);
    seen.add(s);
  }
  const sorted = [...rows].sort((a, b) => a.submodule - b.submodule);
  const valueOf = (row: MeasureRow, key: (typeof METRICS)[number]['key']): number | null => {
    const v = row[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const present = METRICS.filter((m) => sorted.some((row) => valueOf(row, m.key) !== null));
  if (present.length === 0) throw new TopoprobeError('measure plot: none of x_sp, x_ssp, x_essp has a value in any row');

  const values: Array<{ submodule: number; metric: string; mse: number | null }> = [];
  for (const row of sorted) {
    for (const m of present) values.push({ submodule: row.submodule, metric: m.label, mse: valueOf(row, m.key) });
  }
  const first = sorted[0]!.submodule;
  const last = sorted[sorted.length - 1]!.submodule;
  // A single submodule would give an empty domain; widen it by one on each side.
  const domain = last > first ? [first, last] : [first - 1, last + 1];

  const color = {
    field: 'metric',
    type: 'nominal',
    title: 'metric',
    scale: { domain: present.map((m) => m.label), range: present.map((m) => m.color) },
  } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title !== undefined ? { title: opts.title } : {}),
    width: 480,
    height: 300,
    data: { values },
    encoding: {
      x: {
        field: 'submodule',
        type: 'quantitative',
        title: SUBMODULE_AXIS_TITLE,
        scale: { domain, nice: false, zero: false },
        axis: { tickMinStep: 1, format: 'd' },
      },
      y: { field: 'mse', type: 'quantitative', title: MSE_AXIS_TITLE, scale: { zero: false } },
      color,
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2, invalid: 'break-paths-filter-domains' } },
      {
        mark: { type: 'point', filled: true, size: 36, invalid: 'break-paths-filter-domains' },
        encoding: {
          // Same field and title as colour, so Vega-Lite merges the two into one legend.
          shape: { field: 'metric', type: 'nominal', title: 'metric', scale: { domain: color.scale.domain, range: present.map((m) => m.shape) } },
        },
      },
    ],
  };
  return spec;
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
