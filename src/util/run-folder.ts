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
 *                                     trainer_state.json (written last: a checkpoint is complete with it)
 *   <run>/measure.json, measure.csv   a measure run (`measureJsonSchema`)
 *   <run>/probes/sub-<i>-<metric>.safetensors   a measure run's trained probe of submodule i
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { TopoprobeError } from './errors.js';
import { readJson, writeJsonAtomic } from './fs.js';

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
/** A checkpoint is complete when its trainer state, written last, is there. */
export const hasCheckpoint = (dir: string) => existsSync(join(dir, TRAINER_STATE_FILE));
export const isFinished = (runDir: string) => existsSync(join(runDir, RESULTS_FILE));
/** Guide i's probe inside a train checkpoint. */
export const guideProbeFile = (checkpoint: string, index: number) => join(checkpoint, `probe-${index}.safetensors`);
/** A measure run's probe of one submodule for one metric (x_sp, x_ssp, x_essp). */
export const measuredProbePath = (runDir: string, submodule: number, metric: string) => join(runDir, 'probes', `sub-${submodule}-${metric}.safetensors`);

/**
 * A train or pretrain run's folder and its checkpoints/last: `out_dir/name` (default `<prefix>-<time>`) for
 * a new run, which must not hold a finished one, or the folder being resumed, which must hold a checkpoint.
 */
export function runFolders(outDir: string, name: string | undefined, prefix: string, resume?: string): { runDir: string; lastDir: string } {
  const runDir = resume ? resolve(resume) : resolve(outDir, name ?? timestampedName(prefix));
  const lastDir = checkpointDir(runDir, 'last');
  if (!resume && isFinished(runDir)) {
    throw new TopoprobeError(`${runDir} already holds a finished run; choose another name or --resume it`);
  }
  if (resume && !hasCheckpoint(lastDir)) {
    throw new TopoprobeError(`--resume ${runDir}: no checkpoints/last/${TRAINER_STATE_FILE} to resume from`);
  }
  return { runDir, lastDir };
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

export function writeMeasureJson(runDir: string, value: MeasureJson): void {
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
  collapsed: z.boolean().optional(),
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
