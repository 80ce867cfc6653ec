/**
 * `topoprobe compare`: fine-tuning runs grouped by condition, with seed statistics and tests against a
 * baseline.
 *
 *   read the runs (a sweep's manifest.json, or run folders) -> group them by condition (the resolved config
 *   less the seed and bookkeeping keys) -> per condition: summary, bootstrap CI, difference to the baseline,
 *   Welch's t test and a rank test (Wilcoxon signed-rank, paired by seed, when both conditions ran exactly
 *   the same seeds; Mann-Whitney U otherwise), collapsed runs -> Holm's correction per family of tests ->
 *   comparison.csv / .json / .md and a plot (comparison.svg / .png).
 *
 * Optionally the paper authors' published scores (--paper, see ./paper.ts) become extra conditions, and
 * the X_ssp of the guided submodules (from a measure run) is plotted beside the scores.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { summarize, bootstrapCI, welchTTest, mannWhitneyU, wilcoxonSignedRank, holm } from '../util/stats.js';
import { readPaperResults, paperConditionKeys, paperLayers, paperValue } from './paper.js';
import { readYaml } from '../util/config.js';
import { CONFIG_FILE, MEASURE_FILE, RESULTS_FILE, readMeasureJson, readTrainResult } from '../util/run-folder.js';
import { guideSchema, type GuideConfig } from '../train/config.js';
import { TopoprobeError } from '../util/errors.js';
import { checkEntry } from '../sweep/manifest.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { renderVegaLite, SUBMODULE_AXIS_TITLE } from '../probe/plot.js';
import { STAR_TREE_MAX_LABEL } from '../train/monitor.js';

export type Which = 'best' | 'final';

export interface CompareOptions {
  /** One sweep folder (holding manifest.json), or one or more run folders. */
  paths: readonly string[];
  metric?: Which;
  /** A condition key, or a run name / folder (a glob with * and ? allowed) whose condition is the baseline. */
  baseline?: string;
  /** Files (or folders of files) of the authors' published results. */
  paper?: readonly string[];
  /** A `topoprobe measure` run folder whose X_ssp is plotted beside the scores. */
  measure?: string;
}

/** A guide of a run's config, with every field filled in (by the train config's own schema and defaults). */
export type GuideSpec = GuideConfig;

/** One finished run with a score. */
export interface RunEntry {
  name: string;
  dir: string;
  seed: number | null;
  task: string;
  metric: string;
  best: number | null;
  final: number | null;
  /** The score compared (`best` or `final`). */
  value: number;
  collapsed: boolean;
  config: Record<string, unknown>;
  guidance: GuideSpec[];
  /** The final evaluation's collapse monitors and the tracked X_ssp (results.json), where the run has them. */
  monitors: Monitors;
}

/** A run's collapse monitors (mean largest tree label per guided submodule) and tracked X_ssp, by `layer_<i>`. */
export interface Monitors {
  max_label: Record<string, number | null> | null;
  x_ssp_before: Record<string, number> | null;
  x_ssp_after: Record<string, number> | null;
}

export interface MissingRun {
  name: string;
  dir: string | null;
  status: string;
  reason: string;
  /** The sweep's overrides of the run (`key=value` strings, or an object), as the manifest has them. */
  overrides?: Record<string, unknown> | string[];
}

export interface Sample {
  run: string;
  dir: string | null;
  seed: number | null;
  value: number;
  collapsed: boolean;
  monitors?: Monitors;
}

export type RankTest = 'wilcoxon-paired' | 'mann-whitney';

export interface ConditionResult {
  key: string;
  source: 'runs' | 'paper';
  /** The guided submodules ([] for no guidance). */
  layers: number[];
  /** The condition this one is tested against (null for the baseline itself, or when there is none). */
  reference: string | null;
  n: number;
  seeds: Array<number | null>;
  samples: Sample[];
  mean: number | null;
  std: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
  ci_low: number | null;
  ci_high: number | null;
  diff: number | null;
  test: RankTest | null;
  t_welch: number | null;
  df_welch: number | null;
  p_welch: number | null;
  p_welch_holm: number | null;
  /** U (Mann-Whitney) or W (Wilcoxon) of the rank test. */
  stat_rank: number | null;
  exact_rank: boolean | null;
  p_rank: number | null;
  p_rank_holm: number | null;
  collapsed: number;
  mean_excl_collapsed: number | null;
  /** X_ssp of the guided submodule (single-submodule conditions, when a measure run is known). */
  x_ssp: number | null;
  /** Mean over the runs of the guided submodule's largest tree label at the final evaluation (single-submodule conditions). */
  max_label: number | null;
  /** Mean tracked X_ssp (`track:`) per submodule before fine-tuning and after the last epoch, over the runs that tracked it. */
  x_ssp_tracked: Record<string, { before: number | null; after: number | null }>;
}

export interface Comparison {
  task: string;
  metric: string;
  which: Which;
  /** The baseline condition; null when there is none, or when each setting has its own (see `baselines`). */
  baseline: string | null;
  /** Every condition that serves as a baseline of this study's runs (one per setting of the non-guidance keys when there are several). */
  baselines: string[];
  input: { sweep: string | null; runs: string[] };
  conditions: ConditionResult[];
  missing: MissingRun[];
  paper: { files: string[]; blocks: number; skipped: number } | null;
  measure: { dir: string; rows: Array<{ submodule: number; x_ssp: number | null }> } | null;
  notes: string[];
}

export const CI_LEVEL = 0.95;
export const CI_SEED = 1;

/** Config keys that say where or how a run was written, not what was trained. */
const BOOKKEEPING = new Set(['seed', 'name', 'out_dir', 'data.dir', 'log_every', 'save_best', 'selected', 'select']);

// ---- reading runs ----------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function normalizeGuides(raw: unknown, where: string): GuideSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new TopoprobeError(`${where}: guidance must be a list`);
  return raw.map((g, i) => {
    const parsed = guideSchema.safeParse(g);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new TopoprobeError(`${where}: guidance[${i}]${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
    }
    return parsed.data;
  });
}

/** Reads one run folder; a run without a score for `which` comes back as missing. */
function readRun(dir: string, name: string, which: Which): { run?: RunEntry; missing?: MissingRun } {
  const results = readTrainResult(dir);
  const resultsPath = join(dir, RESULTS_FILE);
  const configPath = join(dir, CONFIG_FILE);
  // Without the resolved config (an older or copied run), the condition is what results.json records.
  const config = existsSync(configPath) ? readYaml(configPath) : { task: results.task, guidance: results.guidance };
  const { task, metric, seed, best, final } = results;
  const value = which === 'best' ? best : final;
  const guidance = normalizeGuides(config.guidance ?? results.guidance, existsSync(configPath) ? configPath : resultsPath);
  // The run's own verdict (src/train/monitor.ts); runs written before it existed: a final MCC of exactly 0.
  const collapsed = results.collapsed ?? (metric === 'mcc' && results.final === 0);
  const maxLabel = results.collapse ? Object.fromEntries(Object.entries(results.collapse.monitors).map(([k, m]) => [k, m.max_label])) : null;
  const monitors: Monitors = { max_label: maxLabel, x_ssp_before: results.x_ssp?.before ?? null, x_ssp_after: results.x_ssp?.after ?? null };
  if (value === null) return { missing: { name, dir, status: results.status, reason: `no ${which} ${metric} in ${RESULTS_FILE}` } };
  return { run: { name, dir, seed, task, metric, best, final, value, collapsed, config: { ...config, task }, guidance, monitors } };
}

interface ManifestRun {
  name: string;
  dir?: string;
  status?: string;
  error?: string;
  overrides?: Record<string, unknown> | string[];
}

/** Where a manifest's run folder is: its `dir` (absolute, or relative to the sweep or the cwd), else runs/<name>. */
export interface LoadedRuns {
  runs: RunEntry[];
  missing: MissingRun[];
  sweep: string | null;
  manifestBaseline?: string;
}

/** Reads a sweep folder's completed runs, or the given run folders; checks that they share task and metric. */
export function loadRuns(paths: readonly string[], which: Which): LoadedRuns {
  if (paths.length === 0) throw new TopoprobeError('no runs found: give a sweep folder or one or more run folders');
  for (const p of paths) if (!existsSync(p)) throw new TopoprobeError(`${p}: not found`);
  const sweepPaths = paths.filter((p) => statSync(p).isDirectory() && existsSync(join(p, 'manifest.json')));
  const runs: RunEntry[] = [];
  const missing: MissingRun[] = [];
  let sweep: string | null = null;
  let manifestBaseline: string | undefined;
  if (sweepPaths.length > 0) {
    if (paths.length > 1) throw new TopoprobeError(`${sweepPaths[0]} is a sweep folder: give one sweep folder, or run folders only`);
    sweep = resolve(paths[0]!);
    const manifestPath = join(sweep, 'manifest.json');
    const manifest = readJson(manifestPath);
    if (!isObject(manifest) || !Array.isArray(manifest.runs)) throw new TopoprobeError(`${manifestPath}: expected { runs: [...] }`);
    if (typeof manifest.baseline === 'string') manifestBaseline = manifest.baseline;
    manifest.runs.forEach((r: unknown, i: number) => {
      if (!isObject(r) || typeof r.name !== 'string') throw new TopoprobeError(`${manifestPath}: runs[${i}] has no name`);
      const entry = r as unknown as ManifestRun;
      // The manifest's own checks: a run folder lies in <sweep>/runs/ (a copied sweep reads its copy).
      const dir = resolve(sweep!, checkEntry(sweep!, entry, `runs[${i}]`, manifestPath));
      const overrides = isObject(entry.overrides) || Array.isArray(entry.overrides) ? entry.overrides : undefined;
      if (entry.status !== 'completed') {
        const error = typeof entry.error === 'string' && entry.error !== '' ? `: ${entry.error.split('\n')[0]!.slice(0, 200)}` : '';
        missing.push({ name: entry.name, dir, status: String(entry.status ?? 'unknown'), reason: `not completed (${String(entry.status ?? 'no status')}${error})`, ...(overrides ? { overrides } : {}) });
        return;
      }
      const got = readRun(dir, entry.name, which);
      if (got.run) runs.push(got.run);
      if (got.missing) missing.push({ ...got.missing, ...(overrides ? { overrides } : {}) });
    });
    if (runs.length === 0) {
      throw new TopoprobeError(`no runs found: ${manifestPath} lists ${manifest.runs.length} run(s), none completed with a ${which} score${missing.length ? ` (${missing.map((m) => `${m.name}: ${m.reason}`).join('; ')})` : ''}`);
    }
  } else {
    for (const p of paths) {
      const dir = resolve(p);
      const got = readRun(dir, basename(dir), which);
      if (got.run) runs.push(got.run);
      if (got.missing) missing.push(got.missing);
    }
    if (runs.length === 0) throw new TopoprobeError(`no runs found: none of ${paths.join(', ')} has a ${which} score`);
  }
  checkSame(runs, 'task', (r) => r.task);
  checkSame(runs, 'metric', (r) => r.metric);
  return { runs, missing, sweep, ...(manifestBaseline !== undefined ? { manifestBaseline } : {}) };
}

function checkSame(runs: readonly RunEntry[], what: string, get: (r: RunEntry) => string): void {
  const groups = new Map<string, string[]>();
  for (const r of runs) groups.set(get(r), [...(groups.get(get(r)) ?? []), r.name]);
  if (groups.size > 1) {
    const list = [...groups].map(([v, names]) => `${v} (${names.join(', ')})`).join('; ');
    throw new TopoprobeError(`runs of different ${what === 'task' ? 'tasks' : 'metrics'}: ${list}; compare runs of one ${what}`);
  }
}

// ---- conditions --------------------------------------------------------------------------------------

/** Flattens the config's objects into `a.b.c` -> JSON of the value (lists stay whole), less guidance and bookkeeping. */
function flattenConfig(config: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (v: unknown, path: string) => {
    if (BOOKKEEPING.has(path) || v === undefined) return;
    if (isObject(v)) {
      for (const k of Object.keys(v).sort()) walk(v[k], path ? `${path}.${k}` : k);
      return;
    }
    out.set(path, JSON.stringify(v));
  };
  for (const k of Object.keys(config).sort()) if (k !== 'guidance') walk(config[k], k);
  return out;
}

function sortGuides(guides: readonly GuideSpec[]): GuideSpec[] {
  return [...guides].sort((a, b) => a.layer - b.layer || JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** A number in its shorter form: 3e-5 rather than 0.00003, 10 rather than 1e+1. */
export function formatNumber(x: number): string {
  const plain = String(x);
  const exp = x.toExponential().replace('e+', 'e');
  return exp.length < plain.length ? exp : plain;
}

function formatValue(json: string | undefined): string {
  if (json === undefined) return '-';
  const v = JSON.parse(json) as unknown;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string') return v;
  return json;
}

interface RunCondition {
  identity: string;
  /** The non-guidance part of the identity: conditions with the same setting differ only in guidance. */
  setting: string;
  key: string;
  layers: number[];
  runs: RunEntry[];
}

/**
 * Groups runs by condition: the guidance list (order-free) plus every other config key except the seed
 * and the bookkeeping keys. The readable key is the guidance (`layer=16 weight=10 labels=ssp
 * examples=positive`, with `trainable`, `schedule`, `targets` and `probe` only when not the defaults; guides joined by
 * ` + `), or `baseline` without guidance, followed by each other config key whose value differs between
 * the runs (`optimizer.lr=3e-5`).
 */
export function groupRuns(runs: readonly RunEntry[]): RunCondition[] {
  const flats = runs.map((r) => flattenConfig(r.config));
  const paths = [...new Set(flats.flatMap((f) => [...f.keys()]))].sort();
  const varying = paths.filter((p) => new Set(flats.map((f) => f.get(p) ?? '∅')).size > 1);
  // Probes are named by file name, unless two different files share one.
  const probePaths = new Map<string, Set<string>>();
  for (const r of runs) for (const g of r.guidance) if (g.probe !== 'fresh') probePaths.set(basename(g.probe), (probePaths.get(basename(g.probe)) ?? new Set()).add(g.probe));
  const probeLabel = (p: string) => (probePaths.get(basename(p))!.size > 1 ? p : basename(p).replace(/\.safetensors$/, ''));
  const guideText = (g: GuideSpec) =>
    [
      `layer=${g.layer}`, `weight=${formatNumber(g.weight)}`, `labels=${g.labels}`, `examples=${g.examples}`,
      ...(g.trainable ? [] : ['trainable=false']),
      ...(g.schedule !== 'constant' ? [`schedule=${g.schedule}`] : []),
      ...(g.targets !== 'current' ? [`targets=${g.targets}`] : []),
      ...(g.probe !== 'fresh' ? [`probe=${probeLabel(g.probe)}`] : []),
    ].join(' ');

  const byIdentity = new Map<string, RunCondition>();
  runs.forEach((r, i) => {
    const guides = sortGuides(r.guidance);
    const flat = flats[i]!;
    const setting = JSON.stringify([...flat.entries()]);
    const identity = JSON.stringify({ guidance: guides, config: setting });
    let cond = byIdentity.get(identity);
    if (!cond) {
      const parts = [guides.length === 0 ? 'baseline' : guides.map(guideText).join(' + '), ...varying.map((p) => `${p}=${formatValue(flat.get(p))}`)];
      cond = { identity, setting, key: parts.join(' '), layers: [...new Set(guides.map((g) => g.layer))], runs: [] };
      byIdentity.set(identity, cond);
    }
    cond.runs.push(r);
  });
  return [...byIdentity.values()];
}

// ---- statistics ----------------------------------------------------------------------------------------

const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
const nan = (x: number | null): number => (x === null ? NaN : x);

interface Group {
  key: string;
  source: 'runs' | 'paper';
  layers: number[];
  samples: Sample[];
  /** See RunCondition.setting (runs only). */
  setting?: string;
}

/** Whether two groups can be paired by seed: same source, every seed known, no seed twice, the same seeds. */
function sameSeeds(a: Group, b: Group): boolean {
  if (a.source !== b.source || a.samples.length !== b.samples.length || a.samples.length === 0) return false;
  const sa = a.samples.map((s) => s.seed);
  const sb = b.samples.map((s) => s.seed);
  if (sa.some((s) => s === null) || sb.some((s) => s === null)) return false;
  const setA = new Set(sa);
  const setB = new Set(sb);
  return setA.size === sa.length && setB.size === sb.length && [...setA].every((s) => setB.has(s));
}

function bySeed(samples: readonly Sample[]): number[] {
  return [...samples].sort((x, y) => x.seed! - y.seed!).map((s) => s.value);
}

function orderGroups<T extends { key: string; layers: number[] }>(groups: T[], baselines: readonly string[]): T[] {
  const rank = (g: T) => (baselines.includes(g.key) ? -2 : g.layers.length === 0 ? -1 : g.layers[0]!);
  return [...groups].sort((a, b) => rank(a) - rank(b) || a.layers.length - b.layers.length || a.key.localeCompare(b.key));
}

function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** The condition a `--baseline` value names: a condition key, or runs (name or folder, globs allowed) of one condition. */
function matchBaseline(spec: string, groups: readonly Group[], what: string): string | { error: string } {
  const s = spec.trim();
  const exact = groups.find((g) => g.key === s);
  if (exact) return exact.key;
  const re = /[*?]/.test(s) ? globRegExp(s) : null;
  const target = resolve(s);
  const hits = new Set<string>();
  for (const g of groups) {
    for (const smp of g.samples) {
      if (g.source !== 'runs') continue;
      const matches = re ? re.test(smp.run) || (smp.dir !== null && re.test(smp.dir)) : smp.run === s || smp.dir === target;
      if (matches) hits.add(g.key);
    }
  }
  if (hits.size === 1) return [...hits][0]!;
  if (hits.size > 1) return { error: `${what} ${spec}: matches runs of several conditions (${[...hits].join('; ')}); name one condition` };
  return { error: `${what} ${spec}: no condition or run matches; the conditions are: ${groups.map((g) => g.key).join('; ')}` };
}

function readMeasure(dir: string): Array<{ submodule: number; x_ssp: number | null }> {
  return readMeasureJson(dir, '--measure')
    .rows.map((r) => ({ submodule: r.submodule, x_ssp: r.x_ssp }))
    .sort((a, b) => a.submodule - b.submodule);
}

/** The measure run the guides' probes came from (config `selected.from`, or a probe file under <measure>/probes/). */
function measureFromRuns(runs: readonly RunEntry[]): string | null {
  for (const r of runs) {
    const sel = r.config.selected;
    if (isObject(sel) && typeof sel.from === 'string' && existsSync(join(sel.from, MEASURE_FILE))) return sel.from;
    for (const g of r.guidance) {
      if (g.probe === 'fresh') continue;
      const dir = dirname(dirname(resolve(g.probe)));
      if (basename(dirname(resolve(g.probe))) === 'probes' && existsSync(join(dir, MEASURE_FILE))) return dir;
    }
  }
  return null;
}

/** The mean of the numbers among `values` (null when there are none). */
function meanOf(values: ReadonlyArray<number | null | undefined>): number | null {
  const kept = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return kept.length > 0 ? kept.reduce((a, b) => a + b, 0) / kept.length : null;
}

/** Per tracked submodule, the mean X_ssp before and after fine-tuning over the samples that tracked it. */
function trackedMeans(samples: readonly Sample[]): Record<string, { before: number | null; after: number | null }> {
  const keys = new Set(samples.flatMap((s) => [...Object.keys(s.monitors?.x_ssp_before ?? {}), ...Object.keys(s.monitors?.x_ssp_after ?? {})]));
  const out: Record<string, { before: number | null; after: number | null }> = {};
  for (const k of [...keys].sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')))) {
    out[k] = { before: meanOf(samples.map((s) => s.monitors?.x_ssp_before?.[k])), after: meanOf(samples.map((s) => s.monitors?.x_ssp_after?.[k])) };
  }
  return out;
}

/** Reads, groups and tests; writes nothing. */
export function compareRuns(opts: CompareOptions): Comparison {
  const which = opts.metric ?? 'best';
  const loaded = loadRuns(opts.paths, which);
  const { runs } = loaded;
  const task = runs[0]!.task;
  const metric = runs[0]!.metric;
  const notes: string[] = [];

  const groups: Group[] = groupRuns(runs).map((c) => ({
    key: c.key,
    source: 'runs',
    setting: c.setting,
    layers: c.layers,
    samples: c.runs.map((r) => ({ run: r.name, dir: r.dir, seed: r.seed, value: r.value, collapsed: r.collapsed, monitors: r.monitors })),
  }));

  let paper: Comparison['paper'] = null;
  if (opts.paper && opts.paper.length > 0) {
    const { files, blocks } = readPaperResults(opts.paper);
    const kept = blocks.filter((b) => b.fields.task === undefined || String(b.fields.task).toLowerCase() === task);
    if (kept.length === 0) throw new TopoprobeError(`--paper: no result blocks for task ${task} in ${files.join(', ')}`);
    const keys = paperConditionKeys(kept);
    const paperGroups = new Map<string, Group>();
    kept.forEach((b, i) => {
      const found = paperValue(b, metric, which);
      if (!found) throw new TopoprobeError(`${b.file}:${b.line}: the block has no ${metric} value (looked for ${which}_${metric}, ${metric}_${which}, ${metric}, ${which})`);
      if (typeof found.value !== 'number' || !Number.isFinite(found.value)) throw new TopoprobeError(`${b.file}:${b.line}: ${found.key} "${found.value}" is not a number`);
      const seed = b.fields.seed;
      const key = keys[i]!;
      let g = paperGroups.get(key);
      if (!g) {
        g = { key, source: 'paper', layers: paperLayers(b), samples: [] };
        paperGroups.set(key, g);
      }
      const finalValue = paperValue(b, metric, 'final')?.value;
      const collapsed = b.fields.collapsed !== undefined ? ['1', 'true', 'yes'].includes(String(b.fields.collapsed).toLowerCase()) : metric === 'mcc' && finalValue === 0;
      g.samples.push({ run: `${basename(b.file)}:${b.line}`, dir: null, seed: typeof seed === 'number' ? seed : null, value: found.value, collapsed });
    });
    groups.push(...paperGroups.values());
    paper = { files, blocks: blocks.length, skipped: blocks.length - kept.length };
    if (paper.skipped > 0) notes.push(`${paper.skipped} paper result block(s) of other tasks were skipped.`);
  }

  // The baseline: --baseline, else the sweep's, else the condition of these runs without guidance; when
  // several settings of the other config keys each have one, every condition is tested against its own.
  let baseline: string | null = null;
  let perSetting: Group[] = [];
  const explicit = opts.baseline !== undefined;
  if (explicit) {
    const m = matchBaseline(opts.baseline!, groups, '--baseline');
    if (typeof m !== 'string') throw new TopoprobeError(m.error);
    baseline = m;
  } else {
    if (loaded.manifestBaseline !== undefined) {
      const m = matchBaseline(loaded.manifestBaseline, groups, 'manifest baseline');
      if (typeof m === 'string') baseline = m;
      else notes.push(`The sweep manifest's baseline "${loaded.manifestBaseline}" matches no single condition; it was ignored.`);
    }
    if (baseline === null) {
      const unguided = groups.filter((g) => g.source === 'runs' && g.layers.length === 0);
      if (unguided.length === 1) baseline = unguided[0]!.key;
      else if (unguided.length > 1) {
        perSetting = unguided;
        const orphans = groups.filter((g) => g.source === 'runs' && g.layers.length > 0 && !unguided.some((u) => u.setting === g.setting));
        if (orphans.length > 0) {
          throw new TopoprobeError(
            `several conditions have no guidance (${unguided.map((g) => g.key).join('; ')}) and none has the other settings of ${orphans.map((g) => g.key).join('; ')}; choose the baseline with --baseline`,
          );
        }
        notes.push('Each condition is compared with the baseline (no guidance) of the same other settings.');
      } else notes.push('No condition without guidance and no --baseline: differences and tests are left out.');
    }
  }
  // Paper conditions are tested against the paper's own baseline when it has one (unless --baseline says otherwise).
  const paperUnguided = groups.filter((g) => g.source === 'paper' && g.layers.length === 0);
  const paperBaseline = !explicit && paperUnguided.length === 1 ? paperUnguided[0]!.key : null;
  const referenceOf = (g: Group): string | null => {
    if (g.source === 'paper' && paperBaseline !== null && g.key !== paperBaseline) return paperBaseline;
    if (perSetting.length > 0) {
      if (g.source === 'paper' || perSetting.includes(g)) return null;
      return perSetting.find((u) => u.setting === g.setting)!.key;
    }
    return g.key === baseline ? null : baseline;
  };
  const baselines = perSetting.length > 0 ? perSetting.map((g) => g.key) : baseline !== null ? [baseline] : [];

  // Measured X_ssp per submodule.
  const measureDir = opts.measure !== undefined ? resolve(opts.measure) : measureFromRuns(runs);
  const measure = measureDir !== null ? { dir: measureDir, rows: readMeasure(measureDir) } : null;
  const xssp = new Map(measure?.rows.map((r) => [r.submodule, r.x_ssp]) ?? []);

  const byKey = new Map(groups.map((g) => [g.key, g]));
  const ordered = [...orderGroups(groups.filter((g) => g.source === 'runs'), baselines), ...orderGroups(groups.filter((g) => g.source === 'paper'), paperBaseline !== null ? [paperBaseline] : [])];
  const conditions: ConditionResult[] = ordered.map((g) => {
    const values = g.samples.map((s) => s.value);
    const sum = summarize(values);
    const [lo, hi] = bootstrapCI(values, { level: CI_LEVEL, seed: CI_SEED });
    const kept = g.samples.filter((s) => !s.collapsed).map((s) => s.value);
    const reference = referenceOf(g);
    const row: ConditionResult = {
      key: g.key, source: g.source, layers: g.layers, reference, n: sum.n,
      seeds: g.samples.map((s) => s.seed), samples: g.samples,
      mean: fin(sum.mean), std: fin(sum.std), median: fin(sum.median), min: fin(sum.min), max: fin(sum.max),
      ci_low: fin(lo), ci_high: fin(hi),
      diff: null, test: null, t_welch: null, df_welch: null, p_welch: null, p_welch_holm: null,
      stat_rank: null, exact_rank: null, p_rank: null, p_rank_holm: null,
      collapsed: g.samples.length - kept.length,
      mean_excl_collapsed: kept.length > 0 ? fin(summarize(kept).mean) : null,
      x_ssp: g.layers.length === 1 ? (xssp.get(g.layers[0]!) ?? null) : null,
      max_label: g.layers.length === 1 ? meanOf(g.samples.map((s) => s.monitors?.max_label?.[`layer_${g.layers[0]}`])) : null,
      x_ssp_tracked: trackedMeans(g.samples),
    };
    if (reference !== null) {
      const ref = byKey.get(reference)!;
      const refValues = ref.samples.map((s) => s.value);
      row.diff = fin(sum.mean - summarize(refValues).mean);
      const w = welchTTest(values, refValues);
      row.t_welch = fin(w.t);
      row.df_welch = fin(w.df);
      row.p_welch = fin(w.p);
      if (sameSeeds(g, ref)) {
        const r = wilcoxonSignedRank(bySeed(g.samples), bySeed(ref.samples));
        row.test = 'wilcoxon-paired';
        row.stat_rank = fin(r.w);
        row.exact_rank = r.exact;
        row.p_rank = fin(r.p);
      } else {
        const r = mannWhitneyU(values, refValues);
        row.test = 'mann-whitney';
        row.stat_rank = fin(r.u);
        row.exact_rank = r.exact;
        row.p_rank = fin(r.p);
      }
    }
    return row;
  });

  // Holm's correction within each family: one test kind, one source, one reference condition.
  const families = new Map<string, ConditionResult[]>();
  for (const c of conditions) {
    if (c.reference === null) continue;
    const fam = `${c.source}\u0000${c.reference}`;
    families.set(fam, [...(families.get(fam) ?? []), c]);
  }
  for (const members of families.values()) {
    const welch = holm(members.map((c) => nan(c.p_welch)));
    const rank = holm(members.map((c) => nan(c.p_rank)));
    members.forEach((c, i) => {
      c.p_welch_holm = fin(welch[i]!);
      c.p_rank_holm = fin(rank[i]!);
    });
  }
  if (conditions.some((c) => c.reference !== null && c.p_rank === null)) {
    notes.push('A p-value is left empty where the test is undefined (fewer than two runs in a group for Welch, identical scores, or all paired differences zero).');
  }

  return {
    task, metric, which, baseline, baselines,
    input: { sweep: loaded.sweep, runs: runs.map((r) => r.dir) },
    conditions, missing: loaded.missing, paper, measure, notes,
  };
}

// ---- outputs -------------------------------------------------------------------------------------------

export const CSV_COLUMNS = [
  'condition', 'source', 'layers', 'reference', 'n', 'seeds', 'mean', 'std', 'median', 'min', 'max', 'ci_low', 'ci_high', 'diff',
  'test', 'p_welch', 'p_welch_holm', 'p_rank', 'p_rank_holm', 'collapsed', 'mean_excl_collapsed', 'x_ssp',
  'max_label', 'x_ssp_before', 'x_ssp_after',
] as const;

function csvField(v: string): string {
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The tracked X_ssp of a single-submodule condition's guided submodule. */
const guidedTracked = (r: ConditionResult) => (r.layers.length === 1 ? r.x_ssp_tracked[`layer_${r.layers[0]}`] : undefined);

export function comparisonCsv(c: Comparison): string {
  const num = (x: number | null) => (x === null ? '' : String(x));
  const rows = c.conditions.map((r) =>
    [
      r.key, r.source, r.layers.join('+'), r.reference ?? '', String(r.n), r.seeds.map((s) => (s === null ? '?' : String(s))).join(' '),
      num(r.mean), num(r.std), num(r.median), num(r.min), num(r.max), num(r.ci_low), num(r.ci_high), num(r.diff),
      r.test ?? '', num(r.p_welch), num(r.p_welch_holm), num(r.p_rank), num(r.p_rank_holm), String(r.collapsed), num(r.mean_excl_collapsed), num(r.x_ssp),
      num(r.max_label), num(guidedTracked(r)?.before ?? null), num(guidedTracked(r)?.after ?? null),
    ].map(csvField).join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

const f4 = (x: number | null) => (x === null ? '–' : x.toFixed(4));
const fp = (x: number | null) => (x === null ? '–' : x < 1e-4 ? x.toExponential(1) : x.toPrecision(3));
const signed = (x: number | null) => (x === null ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(4)}`);
const TEST_NAMES: Record<RankTest, string> = { 'wilcoxon-paired': 'Wilcoxon (paired)', 'mann-whitney': 'Mann-Whitney' };

/** A path as the report shows it: relative to the working directory when inside it (a report that can be committed). */
function shownPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

export function comparisonMarkdown(c: Comparison): string {
  const lines: string[] = [];
  lines.push(`# Comparison: ${c.task}, ${c.metric} (${c.which})`, '');
  lines.push(c.input.sweep ? `Sweep: \`${shownPath(c.input.sweep)}\`` : `Runs: ${c.input.runs.length} run folders`);
  lines.push(`Baseline: ${c.baselines.length === 0 ? 'none' : c.baselines.length === 1 ? `\`${c.baselines[0]}\`` : `per setting: ${c.baselines.map((b) => `\`${b}\``).join(', ')}`}`, '');
  lines.push(`| condition | n | mean | std | median | min | max | 95% CI | Δ vs baseline | test | p (Welch) | p Holm | p (rank) | p Holm | collapsed | mean excl. collapsed |`);
  lines.push(`|---|--:|--:|--:|--:|--:|--:|---|--:|---|--:|--:|--:|--:|--:|--:|`);
  for (const r of c.conditions) {
    const name = c.baselines.includes(r.key) ? `**${r.key}** (baseline)` : r.key;
    const ci = r.ci_low === null ? '–' : `[${f4(r.ci_low)}, ${f4(r.ci_high)}]`;
    const diff = r.reference === null ? '–' : r.reference === c.baseline ? signed(r.diff) : `${signed(r.diff)} (vs ${r.reference})`;
    lines.push(
      `| ${name.replace(/\|/g, '\\|')} | ${r.n} | ${f4(r.mean)} | ${f4(r.std)} | ${f4(r.median)} | ${f4(r.min)} | ${f4(r.max)} | ${ci} | ${diff} | ${r.test ? TEST_NAMES[r.test] : '–'} | ${fp(r.p_welch)} | ${fp(r.p_welch_holm)} | ${fp(r.p_rank)} | ${fp(r.p_rank_holm)} | ${r.collapsed} | ${f4(r.mean_excl_collapsed)} |`,
    );
  }
  const tracked = [...new Set(c.conditions.flatMap((r) => Object.keys(r.x_ssp_tracked)))];
  if (tracked.length > 0 || c.conditions.some((r) => r.max_label !== null)) {
    lines.push('', '## Collapse monitors and tracked X_ssp', '');
    const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
    lines.push(row(['condition', 'collapsed / n', 'largest tree label (guided submodule, final eval)', ...tracked.map((k) => `X_ssp ${k} before → after`)]));
    lines.push(`|---|--:|--:|${tracked.map(() => '---|').join('')}`);
    for (const r of c.conditions.filter((x) => x.source === 'runs')) {
      const cells = tracked.map((k) => {
        const t = r.x_ssp_tracked[k];
        return t ? `${f4(t.before)} → ${f4(t.after)}` : '–';
      });
      lines.push(row([r.key.replace(/\|/g, '\\|'), `${r.collapsed} / ${r.n}`, r.max_label === null ? '–' : r.max_label.toFixed(2), ...cells]));
    }
    lines.push('', `The star tree's largest label is 2; collapse is flagged at ${STAR_TREE_MAX_LABEL} or under. Tracked X_ssp: a fresh probe trained on half of a fixed set of evaluation sentences and scored on the other half (\`track:\` in the run config), means over the runs.`);
  }
  lines.push('', '## Notes', '');
  lines.push(`- Scores: the ${c.which} ${c.metric} of each run (\`${c.which}\` in results.json). std is the sample standard deviation (n − 1).`);
  lines.push(`- 95% CI: percentile bootstrap of the mean (10000 resamples, seed ${CI_SEED}).`);
  lines.push('- p (Welch): Welch\'s unequal-variance t test against the baseline, two-sided.');
  lines.push('- p (rank): the Wilcoxon signed-rank test, paired by seed, where a condition ran exactly the same seeds as its baseline; the Mann-Whitney U test (two-sided) otherwise. The `test` column says which.');
  lines.push('- p Holm: Holm\'s step-down correction across the conditions compared with the same baseline, separately for the Welch and the rank p-values (raw p-values beside them).');
  lines.push(`- collapsed: runs whose final evaluation showed collapse (\`collapsed\` in results.json: every prediction one class, or a guided submodule's mean largest tree label at or under ${STAR_TREE_MAX_LABEL}, the star tree being 2)${c.metric === 'mcc' ? '; runs from before that flag existed count when their final MCC is exactly 0' : ''}. "mean excl. collapsed" leaves them out.`);
  if (c.paper) lines.push(`- Conditions labelled \`paper:\` are the authors' published scores (${c.paper.files.map((f) => `\`${f}\``).join(', ')}), tested against the paper's own baseline where it has one.`);
  if (c.measure) lines.push(`- X_ssp from \`${c.measure.dir}\`.`);
  for (const n of c.notes) lines.push(`- ${n}`);
  if (c.missing.length > 0) {
    lines.push('', '## Missing runs', '', '| run | status | reason |', '|---|---|---|');
    for (const m of c.missing) lines.push(`| ${m.name} | ${m.status} | ${m.reason} |`);
  }
  lines.push('', '![comparison](comparison.svg)', '');
  return lines.join('\n');
}

/**
 * The plot: the score per guided submodule (x; conditions with several guides at `a+b`, unguided ones at
 * `none`), each condition's mean with its bootstrap interval as an error bar and its single runs as small
 * open points, coloured by the rest of the condition; the baseline's CI as a grey band with its mean as a
 * dashed line. With X_ssp known, a second panel below shows it for the same submodules.
 */
export function comparisonChartSpec(c: Comparison): TopLevelSpec {
  const xOf = (r: ConditionResult) => (r.layers.length === 0 ? 'none' : r.layers.join('+'));
  const shown = c.conditions.filter((r) => r.key !== c.baseline);
  // Colour: the source and what, besides the submodule, tells a source's conditions apart.
  const tokensOf = (r: ConditionResult) => r.key.replace(/^paper: /, '').split(/\s+/).filter((t) => t !== '+' && t !== 'baseline' && !/^layer=\d+$/.test(t));
  const common = new Map<string, Set<string>>();
  for (const source of ['runs', 'paper']) {
    const lists = shown.filter((r) => r.source === source).map(tokensOf);
    common.set(source, new Set(lists.length ? lists.reduce((acc, l) => acc.filter((t) => l.includes(t))) : []));
  }
  const variantOf = (r: ConditionResult) => {
    const rest = tokensOf(r).filter((t) => !common.get(r.source)!.has(t)).join(' ');
    const name = r.source === 'paper' ? 'paper' : 'ours';
    return rest === '' ? name : `${name}: ${rest}`;
  };
  const xs = [...new Set(shown.map(xOf))];
  const sortKey = (x: string) => (x === 'none' ? -1 : Number(x.split('+')[0]));
  const domain = xs.sort((a, b) => sortKey(a) - sortKey(b) || a.localeCompare(b));
  const base = c.conditions.find((r) => r.key === c.baseline);
  const yTitle = `${c.metric} (${c.which})`;
  const yEnc = (field: string) => ({ field, type: 'quantitative', title: yTitle, scale: { zero: false } }) as const;
  const x = { field: 'x', type: 'ordinal', title: SUBMODULE_AXIS_TITLE, scale: { domain: domain.length ? domain : ['none'], type: 'band', paddingInner: 0.2 }, axis: { labelAngle: 0 } } as const;
  const color = { field: 'variant', type: 'nominal', title: 'condition', legend: { labelLimit: 400 } } as const;
  const means = shown.filter((r) => r.mean !== null).map((r) => ({ x: xOf(r), variant: variantOf(r), condition: r.key, mean: r.mean, lo: r.ci_low, hi: r.ci_high, n: r.n }));
  const points = shown.flatMap((r) => r.samples.map((s) => ({ x: xOf(r), variant: variantOf(r), run: s.run, seed: s.seed, value: s.value })));
  const layers: unknown[] = [];
  if (base && base.mean !== null) {
    layers.push(
      { data: { values: [{ lo: base.ci_low, hi: base.ci_high }] }, mark: { type: 'rect', color: '#bbbbbb', opacity: 0.35 }, encoding: { y: yEnc('lo'), y2: { field: 'hi' } } },
      { data: { values: [{ mean: base.mean, label: `baseline mean (n=${base.n})` }] }, mark: { type: 'rule', color: '#555555', strokeDash: [5, 3], strokeWidth: 1.5 }, encoding: { y: yEnc('mean') } },
    );
  }
  layers.push(
    { data: { values: means }, mark: { type: 'rule', strokeWidth: 2 }, encoding: { x, xOffset: { field: 'variant' }, y: yEnc('lo'), y2: { field: 'hi' }, color } },
    { data: { values: means }, mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { x, xOffset: { field: 'variant' }, y: yEnc('mean'), color } },
    { data: { values: points }, mark: { type: 'point', filled: false, size: 22, opacity: 0.7 }, encoding: { x, xOffset: { field: 'variant' }, y: yEnc('value'), color } },
  );
  const title = `${c.task}: ${c.metric} (${c.which}) per guided submodule${base ? '; grey band: baseline 95% CI' : ''}`;
  const scores = { width: 520, height: 300, layer: layers, resolve: { scale: { y: 'shared' } } };
  const xsspValues = c.measure ? c.measure.rows.filter((r) => r.x_ssp !== null && domain.includes(String(r.submodule))).map((r) => ({ x: String(r.submodule), x_ssp: r.x_ssp })) : [];
  const spec = c.measure && xsspValues.length > 0
    ? {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title,
        vconcat: [
          scores,
          {
            width: 520, height: 140,
            data: { values: xsspValues },
            encoding: { x, y: { field: 'x_ssp', type: 'quantitative', title: 'X_ssp (held-out MSE)', scale: { zero: false } } },
            layer: [{ mark: { type: 'line', color: '#444444' } }, { mark: { type: 'point', shape: 'square', filled: true, color: '#444444', size: 50 } }],
          },
        ],
      }
    : { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...scores };
  return spec as TopLevelSpec;
}

export interface ComparisonFiles {
  csv: string;
  json: string;
  md: string;
  svg: string;
  png: string;
}

/** Writes comparison.csv/.json/.md/.svg/.png into `outDir`, each atomically. */
export async function writeComparison(c: Comparison, outDir: string): Promise<ComparisonFiles> {
  const base = join(outDir, 'comparison');
  const plot = await renderVegaLite(comparisonChartSpec(c), base);
  writeFileAtomic(`${base}.csv`, comparisonCsv(c));
  writeJsonAtomic(`${base}.json`, c);
  writeFileAtomic(`${base}.md`, comparisonMarkdown(c));
  return { csv: `${base}.csv`, json: `${base}.json`, md: `${base}.md`, svg: plot.svg, png: plot.png };
}

/** compareRuns + writeComparison into `out` (default: the sweep folder, or ./comparison). */
export async function runCompare(opts: CompareOptions & { out?: string }): Promise<{ comparison: Comparison; files: ComparisonFiles }> {
  const comparison = compareRuns(opts);
  const out = resolve(opts.out ?? comparison.input.sweep ?? 'comparison');
  const files = await writeComparison(comparison, out);
  return { comparison, files };
}
