/**
 * Sweep configs and their expansion into runs.
 *
 *   name: cola-layers
 *   base: ../cola/paper.yaml          # a train config (path relative to this file)
 *   set: {epochs: 3}                  # overrides for every run
 *   axes:                             # config key path -> values; every combination is one run
 *     guidance[0].layer: ["0..24"]    # "a..b" is a range; [1, 5, "...", 37] an arithmetic progression
 *     seed: [1, 5, "...", 37]
 *   baseline: true                    # also the base without guidance, once per value of the non-guidance axes
 */
import { z } from 'zod';
import { dirname, resolve } from 'node:path';
import { TopoprobeError } from '../util/errors.js';
import { applySet, formatIssues, readConfigChain } from '../util/config.js';
import { trainConfigSchema } from '../train/config.js';

const scalar = z.union([z.number(), z.string(), z.boolean()]);

export const sweepConfigSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only'),
    base: z.string().min(1),
    set: z.record(z.string(), z.unknown()).default({}),
    axes: z.record(z.string(), z.array(scalar).nonempty()).refine((a) => Object.keys(a).length > 0, 'at least one axis'),
    baseline: z.boolean().default(true),
    /** Parallel runs (default: what the machine can hold: one per 2 cores, at least 1). */
    workers: z.number().int().positive().optional(),
    /** How many times a failed run is tried again. */
    retries: z.number().int().nonnegative().default(1),
    out_dir: z.string().default('runs/sweeps'),
    /** Where the runs run: `local` (a pool of worker processes on this machine) or `slurm` (one job array). */
    executor: z.enum(['local', 'slurm']).default('local'),
    /** The Slurm job array's resources (src/sweep/slurm.ts); the CLI's --partition etc. override them. */
    slurm: z
      .object({
        partition: z.string().min(1).optional(),
        time: z.string().min(1).optional(),
        cpus_per_task: z.number().int().positive().optional(),
        gpus_per_task: z.number().int().positive().optional(),
        array_parallelism: z.number().int().positive().optional(),
        sbatch_args: z.array(z.string().min(1)).default([]),
        /** Seconds before the time limit at which a task checkpoints and requeues itself. */
        signal_lead: z.number().int().positive().default(300),
      })
      .strict()
      .default({ sbatch_args: [], signal_lead: 300 }),
  })
  .strict();

export type SweepConfig = z.infer<typeof sweepConfigSchema>;

export interface PlannedRun {
  name: string;
  /** `key=value` overrides applied to the base config (values as YAML). */
  overrides: string[];
  baseline: boolean;
}

/** Expands range notation in an axis: "a..b" (inclusive) and [a, b, "...", c] (step b - a). */
export function expandAxis(key: string, values: ReadonlyArray<number | string | boolean>): Array<number | string | boolean> {
  const out: Array<number | string | boolean> = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v === 'string' && /^-?\d+\s*\.\.\s*-?\d+$/.test(v)) {
      const [a, b] = v.split('..').map((x) => Number(x.trim())) as [number, number];
      if (b < a) throw new TopoprobeError(`axes.${key}: range "${v}" is empty`);
      for (let x = a; x <= b; x++) out.push(x);
    } else if (v === '...') {
      const prev = out[out.length - 1];
      const prev2 = out[out.length - 2];
      const next = values[i + 1];
      if (typeof prev !== 'number' || typeof prev2 !== 'number' || typeof next !== 'number' || prev === prev2) {
        throw new TopoprobeError(`axes.${key}: "..." needs two numbers before it and one after (e.g. [1, 5, "...", 37])`);
      }
      const step = prev - prev2;
      if ((next - prev) % step !== 0 || (next - prev) / step < 1) throw new TopoprobeError(`axes.${key}: ${next} is not reached from ${prev} in steps of ${step}`);
      for (let x = prev + step; x < next; x += step) out.push(x);
    } else {
      out.push(v);
    }
  }
  return out;
}

const shortKey = (key: string) => key.replace(/^guidance\[0\]\./, '').replace(/\[(\d+)\]/g, '$1').split('.').pop()!;

/** Leaf key paths of nested mappings, so `set: {data: {max_length: 64}}` changes only that key. */
function flatten(obj: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? flatten(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

/** Every combination of the axes (first axis outermost), plus the baseline runs, each before the first guided run of its setting. */
export function planRuns(config: SweepConfig): PlannedRun[] {
  const axes = Object.entries(config.axes).map(([key, values]) => ({ key, values: expandAxis(key, values) }));
  const combos = (list: typeof axes): Array<Array<[string, number | string | boolean]>> =>
    list.reduce<Array<Array<[string, number | string | boolean]>>>((acc, axis) => acc.flatMap((c) => axis.values.map((v) => [...c, [axis.key, v] as [string, number | string | boolean]])), [[]]);
  const nameOf = (c: Array<[string, unknown]>) => c.map(([k, v]) => `${shortKey(k)}-${String(v).replace(/[^\w.-]/g, '_')}`).join('_');
  const fixed = flatten(config.set).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const isGuidance = (key: string) => /^(guidance|select)\b/.test(key);
  const runs: PlannedRun[] = combos(axes).map((c) => ({ name: nameOf(c), overrides: [...fixed, ...c.map(([k, v]) => `${k}=${JSON.stringify(v)}`)], baseline: false }));
  if (config.baseline) {
    // Each baseline run goes just before the first guided run of its setting (its values of the other axes), so
    // a sweep stopped part way has the baseline of every setting it reached (with seed as the first axis: whole seeds).
    const settingOf = (c: ReadonlyArray<[string, unknown]>) => JSON.stringify(c.filter(([k]) => !isGuidance(k)));
    const firstOf = new Map<string, number>();
    combos(axes).forEach((c, i) => {
      if (!firstOf.has(settingOf(c))) firstOf.set(settingOf(c), i);
    });
    const plain = axes.filter((a) => !isGuidance(a.key));
    const inserts = combos(plain).map((c) => ({
      at: firstOf.get(settingOf(c)) ?? runs.length,
      run: { name: ['baseline', nameOf(c)].filter(Boolean).join('_'), overrides: [...fixed, 'guidance=[]', 'select=null', ...c.map(([k, v]) => `${k}=${JSON.stringify(v)}`)], baseline: true },
    }));
    for (const { at, run } of [...inserts].reverse()) runs.splice(at, 0, run);
  }
  const seen = new Set<string>();
  for (const r of runs) {
    if (seen.has(r.name)) throw new TopoprobeError(`sweep: two runs would be named "${r.name}"; make the axes' values distinct`);
    seen.add(r.name);
  }
  return runs;
}

/** The base train config's absolute path. */
export function basePath(configPath: string, config: SweepConfig): string {
  return resolve(dirname(resolve(configPath)), config.base);
}

/** Keys a sweep sets for every run itself (`--set out_dir=<sweep>/runs`, `--name <run>`): an override of them would be ignored. */
const SWEEP_KEYS = new Set(['out_dir', 'name']);

/**
 * Checks every run's config (the base with the run's overrides, as `topoprobe train --set` applies them)
 * against the train config schema before anything starts. `source` names where the runs come from (the
 * sweep config, or the manifest), `origin` what an override key is there (`axes.seed`, `set.epochs`). The
 * error names the run and, when one override alone breaks the base, that override's origin.
 */
export function validateRuns(base: string, runs: readonly PlannedRun[], source: string, origin: (key: string) => string = (k) => `override ${k}`): void {
  const raw = readConfigChain(base);
  const keyOf = (o: string) => o.slice(0, Math.max(0, o.indexOf('='))).trim();
  const tryRun = (overrides: readonly string[]) => {
    const config = structuredClone(raw);
    for (const o of overrides) applySet(config, o);
    return trainConfigSchema.safeParse({ ...config, out_dir: 'runs', name: 'x' });
  };
  const baseValid = tryRun([]).success;
  for (const run of runs) {
    for (const o of run.overrides) {
      const key = keyOf(o);
      if (SWEEP_KEYS.has(key)) throw new TopoprobeError(`${source}: ${origin(key)}: a sweep names each run's folder itself (<sweep>/runs/<run>); remove this key`);
    }
    let result: ReturnType<typeof tryRun>;
    try {
      result = tryRun(run.overrides);
    } catch (err) {
      if (err instanceof TopoprobeError) throw new TopoprobeError(`${source}: run "${run.name}": ${err.message}; nothing was started`);
      throw err;
    }
    if (!result.success) {
      // The override that alone breaks the base (an axis over an unknown key, a value of the wrong type).
      const culprit = !baseValid ? undefined : run.overrides.find((o) => {
        try {
          return !tryRun([o]).success;
        } catch {
          return true;
        }
      });
      throw new TopoprobeError(`${source}: ${culprit ? `${origin(keyOf(culprit))}: ` : ''}run "${run.name}" would not be a valid train config; nothing was started\n${formatIssues(base, result.error.issues)}`);
    }
  }
}

/** Where a planned run's override key comes from in a sweep config: `axes.<key>` or `set.<key>`. */
export function overrideOrigin(config: SweepConfig): (key: string) => string {
  return (key) => (key in config.axes ? `axes.${key}` : `set.${key}`);
}
