/**
 * A run folder's TensorBoard view: the metrics a run records (metrics.jsonl lines, measure rows) as scalar
 * summaries in an event file in the run folder (tensorboard.ts writes the format), so that
 * `tensorboard --logdir runs` shows every run, and a sweep's runs side by side.
 *
 * Names follow Hugging Face's Trainer where it has one (its TensorBoard callback logs `train/loss`,
 * `train/learning_rate`, `train/grad_norm`, `train/epoch`, `eval/loss` and `eval/<metric>` with the
 * metric names of the GLUE scorers, e.g. `eval/matthews_correlation`). The rest keep our field names under
 * the same prefixes: per guided submodule `train/guidance/layer_<i>`, the collapse monitors
 * `eval/constant_predictor` (0/1), `eval/max_label/layer_<i>` and `eval/sameness/layer_<i>`, tracked X_ssp
 * `track/x_ssp/layer_<i>`, pretraining's `train/loss` (the masked-LM loss), `eval/loss` and `eval/accuracy`
 * (held out), and a measure run's `measure/<column>` with the submodule as the step. The resolved config
 * is a text summary, `config`.
 *
 * metrics.jsonl stays the record; the event file is rebuilt from it when a run resumes (the lines after
 * the checkpoint are dropped, so their events must go too): the kept lines are written into a new file,
 * keeping the wall times the old files had, which then replaces them. TensorBoard sees one series per tag
 * with no step twice.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EventWriter, readScalars } from './tensorboard.js';

/** Our field name -> Hugging Face Trainer's, per record type (fields not listed keep their name). */
const RENAMES: Record<string, Record<string, string>> = {
  train: { lr: 'learning_rate', mlm_loss: 'loss' },
  eval: { eval_loss: 'loss', held_out_loss: 'loss', held_out_accuracy: 'accuracy', mcc: 'matthews_correlation', spearman: 'spearmanr' },
  track: {},
};

/** Fields that are bookkeeping, not curves. */
const SKIPPED = new Set(['type', 'step']);

/**
 * The scalars of one metrics.jsonl entry ({type, step, epoch, ...}), by tag: numbers as they are,
 * booleans as 0/1, one level of nesting ({guidance: {layer_2: x}}) as `train/guidance/layer_2`; nulls,
 * strings and deeper values are left out. `epoch` is logged as `train/epoch` on train lines only.
 */
export function entryScalars(entry: Record<string, unknown>): Record<string, number> {
  const type = String(entry.type);
  const renames = RENAMES[type] ?? {};
  const prefix = type === 'train' || type === 'eval' || type === 'track' ? type : `metrics/${type}`;
  const out: Record<string, number> = {};
  const put = (tag: string, v: unknown) => {
    if (typeof v === 'number') out[tag] = v;
    else if (typeof v === 'boolean') out[tag] = v ? 1 : 0;
  };
  for (const [key, value] of Object.entries(entry)) {
    if (SKIPPED.has(key) || (key === 'epoch' && type !== 'train')) continue;
    const name = `${prefix}/${renames[key] ?? key}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [sub, v] of Object.entries(value as Record<string, unknown>)) put(`${name}/${sub}`, v);
    } else {
      put(name, value);
    }
  }
  return out;
}

/** The scalars of one measure row: every score column, under `measure/`; counts are left out. */
export function measureRowScalars(row: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(row)) {
    if (key === 'submodule' || /_(sentences|tokens)$/.test(key)) continue;
    if (typeof value === 'number') out[`measure/${key}`] = value;
  }
  return out;
}

const isEventFile = (name: string) => name.includes('tfevents');
const TMP_PREFIX = '.tensorboard-';

/** The config as a markdown text summary (a fenced YAML block). */
const configMarkdown = (yaml: string) => `\`\`\`yaml\n${yaml.trimEnd()}\n\`\`\``;

/** A run's event file, open for appending entries as the run records them. */
export class RunEvents {
  private constructor(private readonly writer: EventWriter, readonly path: string) {}

  /**
   * Opens the run folder's event file: a new one holding the config and `replay` (the metrics entries a
   * resumed run keeps), which replaces every event file already there. The wall time of a replayed
   * scalar is the one the old files had for its tag and step, when they had it.
   */
  static open(runDir: string, configYaml: string, replay: ReadonlyArray<Record<string, unknown>> = []): RunEvents {
    mkdirSync(runDir, { recursive: true });
    // A rebuild cut short by a crash leaves its folder; nothing in it was moved in yet.
    for (const f of readdirSync(runDir)) if (f.startsWith(TMP_PREFIX)) rmSync(join(runDir, f), { recursive: true, force: true });
    const old = readdirSync(runDir).filter(isEventFile);
    const times = new Map<string, number>();
    let firstTime: number | undefined;
    for (const f of old) {
      for (const s of readScalars(join(runDir, f))) {
        times.set(`${s.tag}\u0000${s.step}`, s.wallTime * 1000);
        firstTime = Math.min(firstTime ?? Infinity, s.wallTime * 1000);
      }
    }
    // Written beside the run folder's files, then moved in: TensorBoard never sees half a rebuild.
    const tmp = join(runDir, `${TMP_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`);
    const writer = new EventWriter(tmp);
    try {
      writer.text('config', configMarkdown(configYaml), 0, firstTime);
      for (const entry of replay) {
        const step = entry.step;
        if (typeof step !== 'number') continue;
        const scalars = entryScalars(entry);
        const tag = Object.keys(scalars)[0];
        writer.scalars(scalars, step, tag !== undefined ? times.get(`${tag}\u0000${step}`) : undefined);
      }
      const path = join(runDir, basename(writer.path));
      renameSync(writer.path, path);
      for (const f of old) rmSync(join(runDir, f), { force: true });
      return new RunEvents(writer, path);
    } catch (err) {
      writer.close();
      throw err;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Appends one metrics entry's scalars at its step. */
  record(entry: Record<string, unknown>): void {
    if (typeof entry.step !== 'number') return;
    this.writer.scalars(entryScalars(entry), entry.step);
  }

  /** Appends scalars at a step (e.g. a measure row at its submodule). */
  scalars(values: Record<string, number>, step: number): void {
    this.writer.scalars(values, step);
  }

  close(): void {
    this.writer.close();
  }
}

/** Whether a folder has an event file (for tests and `sweep --status`-like readers). */
export function hasEvents(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some(isEventFile);
}
