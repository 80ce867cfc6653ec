/**
 * The run-folder contract: what `topoprobe measure`, `train` and `pretrain` write into a run folder, under
 * which names, and typed readers for the files other commands read back (guidance `select`, `compare`,
 * `sweep`, scripts/model-card.ts). Each JSON file has one zod schema, used by its writer before writing and
 * by its readers after reading, so a reader never trusts a shape the writer did not produce.
 *
 *   <run>/config.yaml                 the resolved config (every default filled in)
 *   <run>/log.jsonl                   the pino log
 *   <run>/metrics.jsonl               train / eval / track lines, each with its update `step`
 *   <run>/results.json                a finished train run (`trainResultSchema`) or pretrain run
 *   <run>/checkpoints/{last,best}/    model, tokenizer, optimizer.safetensors, probe-<i>.safetensors,
 *                                     trainer_state.json, and complete.json (written last: the update it
 *                                     holds and every file's size; a checkpoint is complete with it)
 *
 * A checkpoint is replaced by {@link replaceCheckpoint}: the new one is written beside it (`last.tmp-*`),
 * marked complete, then swapped in (the old one renamed to `last.old-*`, the new one to `last`, the old
 * one removed). A crash at any instant leaves at least one complete checkpoint among `last` and its
 * siblings, and {@link recoverCheckpoint} (on resume) puts the newest complete one back at `last`.
 *   <run>/measure.json, measure.csv   a measure run (`measureJsonSchema`)
 *   <run>/probes/sub-<i>-<metric>.safetensors   a measure run's trained probe of submodule i (metric x_sp,
 *                                     x_ssp, x_essp, or distance: the distance probe)
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { TopoprobeError } from './errors.js';
import { readJson, writeJsonAtomic } from './fs.js';
import { faultPoint } from './fault.js';

export const CONFIG_FILE = 'config.yaml';
export const LOG_FILE = 'log.jsonl';
export const METRICS_FILE = 'metrics.jsonl';
export const RESULTS_FILE = 'results.json';
export const MEASURE_FILE = 'measure.json';
export const MEASURE_CSV_FILE = 'measure.csv';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

/** A run folder's name when none is given: `<prefix>-<UTC time>`, e.g. cola-2026-12-02T18-07-06-888Z. */
export const timestampedName = (prefix: string, now = new Date()) => `${prefix}-${now.toISOString().replace(/[:.]/g, '-')}`;
export const checkpointDir = (runDir: string, which: 'last' | 'best') => join(runDir, 'checkpoints', which);
export const COMPLETE_FILE = 'complete.json';
export const isFinished = (runDir: string) => existsSync(join(runDir, RESULTS_FILE));

const completeSchema = z.object({ step: z.number().int().nonnegative(), files: z.record(z.string(), z.number().int().nonnegative()) });

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? filesUnder(dir, rel) : e.isFile() ? [rel] : [];
  });
}

/**
 * The update a checkpoint folder holds when it is complete (its complete.json there, every file it lists
 * with that size), else null. A folder of an earlier topoprobe (no complete.json) counts when it sits at
 * its own name (`last`, `best`) with its trainer state, since only complete folders were renamed there.
 */
export function checkpointStep(dir: string): number | null {
  try {
    if (!existsSync(join(dir, COMPLETE_FILE))) {
      if (!/^(last|best)$/.test(basename(dir)) || !existsSync(join(dir, TRAINER_STATE_FILE))) return null;
      const step = (readJson(join(dir, TRAINER_STATE_FILE)) as { step?: unknown }).step;
      return typeof step === 'number' ? step : null;
    }
    const marker = completeSchema.safeParse(readJson(join(dir, COMPLETE_FILE)));
    if (!marker.success) return null;
    for (const [file, size] of Object.entries(marker.data.files)) {
      const path = join(dir, file);
      if (!existsSync(path) || statSync(path).size !== size) return null;
    }
    return marker.data.step;
  } catch {
    return null;
  }
}

/** A checkpoint folder (checkpoints/last or best) is complete; see {@link checkpointStep}. */
export const hasCheckpoint = (dir: string) => checkpointStep(dir) !== null;

/** `dir` and its `<name>.tmp-*` / `<name>.old-*` siblings (left by a save that was cut short). */
function checkpointCandidates(dir: string): string[] {
  const parent = dirname(dir);
  const name = basename(dir);
  if (!existsSync(parent)) return [];
  const siblings = readdirSync(parent).filter((f) => f.startsWith(`${name}.tmp-`) || f.startsWith(`${name}.old-`)).sort();
  return [...(existsSync(dir) ? [dir] : []), ...siblings.map((f) => join(parent, f))];
}

function removeSiblings(dir: string): void {
  for (const c of checkpointCandidates(dir)) {
    if (c === dir) continue;
    faultPoint('rm', c);
    rmSync(c, { recursive: true, force: true });
  }
}

const sidePath = (dir: string, kind: 'tmp' | 'old') => `${dir}.${kind}-${process.pid}-${randomBytes(3).toString('hex')}`;

/**
 * Writes a checkpoint for update `step` into `dir` (checkpoints/last or best) so that a crash at any
 * instant leaves a complete checkpoint: `write` fills a fresh sibling folder, complete.json marks it
 * complete, and two renames swap it in. A failed write removes its partial folder (so a resume after
 * freeing space works); a successful swap removes every stale sibling.
 */
export async function replaceCheckpoint(dir: string, step: number, write: (tmp: string) => void | Promise<void>): Promise<void> {
  const tmp = sidePath(dir, 'tmp');
  try {
    faultPoint('mkdir', tmp);
    mkdirSync(tmp, { recursive: true });
    await write(tmp);
    const files = Object.fromEntries(filesUnder(tmp).map((f) => [f, statSync(join(tmp, f)).size]));
    writeJsonAtomic(join(tmp, COMPLETE_FILE), completeSchema.parse({ step, files }));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  let old: string | null = null;
  if (existsSync(dir)) {
    old = sidePath(dir, 'old');
    faultPoint('rename', dir);
    renameSync(dir, old);
  }
  try {
    faultPoint('rename', tmp);
    renameSync(tmp, dir);
  } catch (err) {
    if (old && !existsSync(dir)) renameSync(old, dir);
    throw err;
  }
  removeSiblings(dir);
}

/**
 * Puts the newest complete checkpoint among `dir` and its siblings at `dir` (a crash can leave it beside
 * it) and returns its update, or null when there is none. Stale siblings are removed.
 */
export function recoverCheckpoint(dir: string): number | null {
  const complete = checkpointCandidates(dir)
    .map((c) => ({ c, step: checkpointStep(c) }))
    .filter((x): x is { c: string; step: number } => x.step !== null);
  if (complete.length === 0) return null;
  // The newest; at equal updates the one already in place.
  const best = complete.reduce((a, b) => (b.step > a.step || (b.step === a.step && b.c === dir) ? b : a));
  if (best.c !== dir) {
    if (existsSync(dir)) {
      const aside = sidePath(dir, 'old');
      faultPoint('rename', dir);
      renameSync(dir, aside);
    }
    faultPoint('rename', best.c);
    renameSync(best.c, dir);
  }
  removeSiblings(dir);
  return best.step;
}

/** Whether a run folder can be resumed: some complete checkpoint of checkpoints/last (in place or beside it). */
export function canResume(runDir: string): boolean {
  const dir = checkpointDir(runDir, 'last');
  return checkpointCandidates(dir).some((c) => checkpointStep(c) !== null);
}

/** A path inside `base` (for names read from files or flags); null when it would lie outside. */
export function insideFolder(base: string, path: string): string | null {
  const abs = resolve(base, path);
  const rel = relative(resolve(base), abs);
  return rel !== '' && !isAbsolute(rel) && rel.split(sep)[0] !== '..' ? abs : null;
}
/** Guide i's probe inside a train checkpoint. */
export const guideProbeFile = (checkpoint: string, index: number) => join(checkpoint, `probe-${index}.safetensors`);
/** Guide i's fixed labels (`targets: pretrained`) in a train run folder. */
export const guideTargetsFile = (runDir: string, index: number) => join(runDir, `targets-${index}.json`);

const guideTargetsSchema = z.object({
  layer: z.number().int().nonnegative(),
  /** Training example index -> its labels at its scored positions. */
  examples: z.record(z.string().regex(/^\d+$/), z.array(z.number().finite())),
});

/** Writes a guide's fixed labels (atomically: a crash leaves the old file or the new one). */
export function writeGuideTargets(path: string, layer: number, labels: ReadonlyMap<number, Float32Array>): void {
  const examples: Record<string, number[]> = {};
  for (const [k, v] of labels) examples[String(k)] = Array.from(v);
  writeJsonAtomic(path, { layer, examples });
}

/** Reads a guide's fixed labels back (on resume), checked against the guide's layer. */
export function readGuideTargets(path: string, layer: number): Map<number, Float32Array> {
  if (!existsSync(path)) throw new TopoprobeError(`${path}: not found; the run's fixed guidance labels (targets: pretrained) are needed to resume`);
  const value = readJsonFile(path, guideTargetsSchema);
  if (value.layer !== layer) throw new TopoprobeError(`${path}: labels of submodule ${value.layer}, the guide is at ${layer}`);
  return new Map(Object.entries(value.examples).map(([k, v]) => [Number(k), Float32Array.from(v)]));
}

/** A measure run's probe of one submodule for one metric (x_sp, x_ssp, x_essp). */
export const measuredProbePath = (runDir: string, submodule: number, metric: string) => join(runDir, 'probes', `sub-${submodule}-${metric}.safetensors`);

/**
 * Refuses a run name that is not one plain folder name (a path separator, `.`, `..`, empty): `what` names
 * where it came from (`--name`, the config's `name`). A name like `../x` would put the run outside out_dir.
 */
export function checkRunName(name: string, what: string): void {
  if (name === '' || name === '.' || name === '..' || /[\\/\0]/.test(name)) {
    throw new TopoprobeError(`${what}: ${JSON.stringify(name)} is not a run folder name (one folder name: no "/", "\\", "." or "..")`);
  }
}

/**
 * A train or pretrain run's folder and its checkpoints/last: `out_dir/name` (default `<prefix>-<time>`) for
 * a new run, which must not hold a finished one, or the folder being resumed, which must hold a complete
 * checkpoint (put back at checkpoints/last if a crash left it beside it, see {@link recoverCheckpoint}).
 */
export function runFolders(outDir: string, name: string | undefined, prefix: string, resume?: string): { runDir: string; lastDir: string } {
  if (!resume && name !== undefined) checkRunName(name, 'name');
  const runDir = resume ? resolve(resume) : resolve(outDir, name ?? timestampedName(prefix));
  const lastDir = checkpointDir(runDir, 'last');
  if (isFinished(runDir)) {
    throw new TopoprobeError(resume ? `--resume ${runDir}: the run is finished (${RESULTS_FILE}); nothing to resume` : `${runDir} already holds a finished run; choose another name`);
  }
  if (resume && recoverCheckpoint(lastDir) === null) {
    throw new TopoprobeError(`--resume ${runDir}: no complete checkpoint in checkpoints/ to resume from`);
  }
  if (resume) removeStaleTemps(runDir);
  return { runDir, lastDir };
}

/** Removes the temporary files of atomic writes (`.<name>.<pid>.<hex>.tmp`) that a killed process left in a run folder. */
function removeStaleTemps(runDir: string): void {
  for (const f of readdirSync(runDir)) if (/^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(f)) rmSync(join(runDir, f), { force: true });
}

/**
 * Removes a run folder that a command created and that holds nothing but its log (the command was refused
 * before the run began), so a refused run leaves no stub behind.
 */
export function removeStubRun(runDir: string, existedBefore: boolean): void {
  if (existedBefore || !existsSync(runDir)) return;
  const entries = readdirSync(runDir);
  if (entries.every((e) => e === LOG_FILE)) rmSync(runDir, { recursive: true, force: true });
}

/** Reads a JSON file and validates it against `schema`; errors name the file and the first field at fault. */
function readJsonFile<S extends z.ZodType>(path: string, schema: S): z.infer<S> {
  const parsed = schema.safeParse(readJson(path));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new TopoprobeError(`${path}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
}

// ---- measure.json ------------------------------------------------------------------------------------

const score = z.number().nullable();
const count = z.number().int().nonnegative();

export const measureRowSchema = z.object({
  submodule: count,
  x_sp: score, x_ssp: score, x_essp: score, spearman: score, root_acc: score,
  // The distance probe's (absent from runs of topoprobe before it had one).
  uuas: score.default(null), distance_spearman: score.default(null),
  sp_train_sentences: count, sp_test_sentences: count, sp_test_tokens: count,
  ssp_train_sentences: count, ssp_test_sentences: count, ssp_test_tokens: count,
});

export type MeasureRow = z.infer<typeof measureRowSchema>;

export const measureJsonSchema = z.object({
  model: z.string(), reinitialized: z.boolean(), mode: z.enum(['clean', 'paper']), labels: z.enum(['greedy', 'exact']),
  num_hidden_layers: count, hidden_size: count, encoder_passes: count,
  datasets: z.record(z.string(), z.object({ train: count, dev: count, test: count, pad_to: count, skipped: count, truncated: count })),
  rows: z.array(measureRowSchema),
});

export type MeasureJson = z.infer<typeof measureJsonSchema>;

export function writeMeasureJson(runDir: string, value: z.input<typeof measureJsonSchema>): void {
  writeJsonAtomic(join(runDir, MEASURE_FILE), measureJsonSchema.parse(value));
}

/** A measure run's measure.json; `what` names the flag or key that pointed here, for the error. */
export function readMeasureJson(runDir: string, what: string): MeasureJson {
  const path = join(resolve(runDir), MEASURE_FILE);
  if (!existsSync(path)) throw new TopoprobeError(`${what}: ${path} not found (expected a topoprobe measure run folder)`);
  return readJsonFile(path, measureJsonSchema);
}

// ---- results.json of a train run ---------------------------------------------------------------------

export const selectionSchema = z.object({
  from: z.string(),
  by: z.string(),
  chosen: z.array(z.object({ layer: z.number().int(), value: z.number() })),
});

/** Why guides were chosen, when chosen by rule (`select`) from a measure run. */
export type Selection = z.infer<typeof selectionSchema>;

export const trainResultSchema = z.object({
  runDir: z.string(), task: z.string(), metric: z.string(),
  best: score, final: score, best_epoch: z.number().int().nullable(), best_step: z.number().int().nullable(),
  final_metrics: z.record(z.string(), score),
  seed: z.number().int(), wall_time_s: z.number(), backend: z.string(),
  status: z.enum(['completed', 'stopped', 'interrupted']), steps: count,
  guidance: z.array(z.record(z.string(), z.unknown())),
  selection: selectionSchema.optional(),
  /** Whether the final evaluation showed collapse (src/train/monitor.ts: one predicted class, or star-tree labels). */
  collapsed: z.boolean().optional(),
  collapse: z
    .object({
      constant_predictor: z.boolean(),
      star_tree: z.array(z.string()),
      /** The first update whose evaluation showed collapse (null: none did). */
      first_step: count.nullable(),
      monitors: z.record(z.string(), z.object({ max_label: score, sameness: score })),
    })
    .optional(),
  /** Tracked X_ssp (`track:`) before fine-tuning and after the last epoch, by submodule (`layer_<i>`). */
  x_ssp: z.object({ before: z.record(z.string(), z.number()).nullable(), after: z.record(z.string(), z.number()).nullable() }).optional(),
});

export type TrainResult = z.infer<typeof trainResultSchema>;

export function writeTrainResult(runDir: string, value: TrainResult): void {
  writeJsonAtomic(join(runDir, RESULTS_FILE), trainResultSchema.parse(value));
}

/** A finished train run's results.json. */
export function readTrainResult(runDir: string): TrainResult {
  const path = join(runDir, RESULTS_FILE);
  if (!existsSync(path)) throw new TopoprobeError(`${runDir}: no ${RESULTS_FILE} (not a finished topoprobe train run folder)`);
  return readJsonFile(path, trainResultSchema);
}
