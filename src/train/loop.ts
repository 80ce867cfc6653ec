/**
 * The training loop that `topoprobe train` (fine-tuning, trainer.ts) and `topoprobe pretrain` (masked-LM,
 * pretrain.ts) both drive. It knows no model or task: an objective turns a batch of example indices into
 * a loss and its named terms (the seam Hugging Face's Trainer calls `compute_loss`), evaluates, and writes
 * its part of a checkpoint. Reads top to bottom:
 *
 *   a fresh run folder (config.yaml, empty metrics.jsonl), or a resumed one (trainer state, optimizer
 *   moments, random state; metrics.jsonl cut back to the checkpoint) -> for each epoch, for each group of
 *   grad_accum batches: gradients of the objective's losses, non-finite check, clip + AdamW, a train line
 *   every log_every updates -> evaluations (before the first update, every N updates, after each epoch, as
 *   asked), the best checkpoint and early stopping where the objective scores -> checkpoints/last after
 *   every evaluation and when stopped (Ctrl-C, --stop-after) -> a last evaluation if the final update had none.
 *
 * Data order comes from (seed, epoch) alone and the model's dropout stream is checkpointed, so a resumed
 * run ends with the same numbers as an uninterrupted one on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AdamW } from './optimizer.js';
import { accumulateGradients, applyGradients, readUpdate, type LossFn } from './step.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { RunEvents } from '../util/run-events.js';
import { CONFIG_FILE, METRICS_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE, checkpointDir, hasCheckpoint, recoverCheckpoint, replaceCheckpoint } from '../util/run-folder.js';

/** What the caller (the CLI, a test) gives a training run: a log, progress, and ways to stop it. */
export interface TrainHooks {
  log: Logger;
  onProgress?: (done: number, total: number, info: { epoch: number; loss: number }) => void;
  /** Stop (as if interrupted) after this many updates, saving checkpoints/last: for testing resume. */
  stopAfter?: number;
  /** Polled after every update; true saves checkpoints/last and stops (the CLI's Ctrl-C). */
  shouldStop?: () => boolean;
}

/** The model produced NaN or infinity (a diverged run). */
export class NonFiniteError extends TopoprobeError {}

/** Where the loop is (checkpointed as trainer_state.json, with the objective's own fields `E` beside). */
export interface LoopState {
  /** The epoch, and the next batch index within it; updates applied; the model's random state. */
  epoch: number;
  batch: number;
  step: number;
  modelRng: number[];
  /** The best score so far, where, and evaluations since. */
  best: number | null;
  bestEpoch: number | null;
  bestStep: number | null;
  badEvals: number;
  /** Seconds of wall time, earlier sessions included. */
  wallTime: number;
}

export interface Objective<E> {
  /**
   * One batch's loss closure, run inside the gradient tape; it returns the loss and its named terms as
   * scalars. What must be read from the device first (on a backend without synchronous reads) is awaited
   * before it is returned.
   */
  loss(batch: readonly number[], at: { epoch: number; index: number; state: LoopState & E }): LossFn | Promise<LossFn>;
  /** The fields of an eval line; a `score` (higher is better) selects the best checkpoint and drives early stopping. */
  evaluate(epoch: number, state: LoopState & E): Promise<{ record: Record<string, unknown>; score?: number | null }>;
  /** Writes the objective's part of a checkpoint (model, tokenizer, probes) into a fresh folder. */
  save(dir: string): Promise<void>;
  /** The term shown as the progress bar's loss; the diverged-run message of an update and what to try. */
  progressTerm: string;
  nonFinite(terms: Record<string, number>, update: number): string;
  hint: string;
  /** Optional: the train line's loss fields (default: the terms), fields after lr and grad_norm, and work after each epoch's evaluation. */
  trainFields?(terms: Record<string, number>): Record<string, unknown>;
  trainExtra?(state: LoopState & E): Record<string, number>;
  afterEpoch?(epoch: number, state: LoopState & E, record: (entry: Record<string, unknown>) => void): Promise<void>;
  /** Optional: work before the first update of a fresh run (not on resume), e.g. measuring the starting model. */
  atStart?(state: LoopState & E, record: (entry: Record<string, unknown>) => void): Promise<void>;
}

export interface LoopSpec<E> {
  runDir: string;
  resume: boolean;
  hooks: TrainHooks;
  /** When the command started (its wall time counts from there); the resolved config for a fresh run folder. */
  started: number;
  configYaml: string;
  params: Map<string, tf.Variable>;
  optimizer: AdamW;
  lrAt: (step: number) => number;
  /** The model's random stream (dropout); the examples' lengths (for bucketing; their number is an epoch's size). */
  rng: { getState(): number[]; setState(state: number[]): void };
  lengths: readonly number[];
  /** Epochs to run (null: as many as totalSteps takes). */
  epochs: number | null;
  totalSteps: number;
  seed: number;
  batchSize: number;
  gradAccum: number;
  bucketing: boolean;
  logEvery: number;
  maxGradNorm: number | null;
  evaluate: { everySteps: number | null; eachEpoch: boolean; atStart: boolean };
  earlyStopping: number | null;
  saveBest: boolean;
  /** The objective, and its own checkpointed state, fresh. */
  objective: Objective<E>;
  extra: E;
}

/** Batches of example indices for one epoch: a seeded shuffle, then (optionally) length buckets. */
export function epochBatches(n: number, lengths: readonly number[], batchSize: number, seed: number, epoch: number, bucketing: boolean): number[][] {
  const rng = new Rng(seed * 7919 + epoch);
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  if (bucketing) {
    // Sort windows of 50 batches by length, so batches hold similar lengths, then shuffle the batches.
    const window = batchSize * 50;
    for (let i = 0; i < order.length; i += window) {
      const part = order.slice(i, i + window).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
      order.splice(i, part.length, ...part);
    }
  }
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return bucketing ? rng.shuffle(batches) : batches;
}

/**
 * Keeps the metrics.jsonl lines of updates up to `step`; later lines belong to an interrupted session. A
 * last line cut short (a kill or a full disk in the middle of an append) is dropped too; returns what was
 * dropped, for the log. An unreadable line before the last is an error naming the file and line.
 */
export function trimMetrics(metricsPath: string, step: number): { later: number; torn: boolean } {
  if (!existsSync(metricsPath)) return { later: 0, torn: false };
  const lines = readFileSync(metricsPath, 'utf8').split('\n');
  const kept: string[] = [];
  let later = 0;
  let torn = false;
  lines.forEach((line, i) => {
    if (line === '') return;
    let entry: { step?: unknown };
    try {
      entry = JSON.parse(line) as { step?: unknown };
    } catch {
      if (lines.slice(i + 1).every((l) => l === '')) {
        torn = true;
        return;
      }
      throw new TopoprobeError(`${metricsPath}:${i + 1}: not a JSON line; remove or repair it to resume`);
    }
    if (typeof entry.step !== 'number') throw new TopoprobeError(`${metricsPath}:${i + 1}: no "step" field`);
    if (entry.step <= step) kept.push(line);
    else later += 1;
  });
  if (later > 0 || torn) writeFileAtomic(metricsPath, kept.map((l) => l + '\n').join(''));
  return { later, torn };
}

export async function runLoop<E extends object>(spec: LoopSpec<E>): Promise<{ status: 'completed' | 'stopped' | 'interrupted'; state: LoopState & E }> {
  const { runDir, hooks, params, optimizer, objective: obj } = spec;
  const lastDir = checkpointDir(runDir, 'last');
  const metricsPath = join(runDir, METRICS_FILE);
  let state: LoopState & E = { epoch: 1, batch: 0, step: 0, modelRng: spec.rng.getState(), best: null, bestEpoch: null, bestStep: null, badEvals: 0, wallTime: 0, ...spec.extra };
  mkdirSync(runDir, { recursive: true });
  if (spec.resume) {
    state = { ...state, ...(readJson(join(lastDir, TRAINER_STATE_FILE)) as LoopState & E) };
    optimizer.restore(join(lastDir, OPTIMIZER_FILE));
    spec.rng.setState(state.modelRng);
    const dropped = trimMetrics(metricsPath, state.step);
    if (dropped.later > 0 || dropped.torn) {
      const what = [dropped.later > 0 ? `${dropped.later} lines after update ${state.step}` : '', dropped.torn ? 'a last line cut short' : ''].filter(Boolean);
      hooks.log.warn(`${METRICS_FILE}: dropped ${what.join(' and ')} (written after the checkpoint)`);
    }
    if (spec.saveBest) recoverCheckpoint(checkpointDir(runDir, 'best'));
    hooks.log.info(`resuming ${runDir} at epoch ${state.epoch}, batch ${state.batch}, update ${state.step}`);
  } else {
    writeFileAtomic(join(runDir, CONFIG_FILE), spec.configYaml);
    writeFileAtomic(metricsPath, '');
  }
  // The TensorBoard view of metrics.jsonl, rebuilt from the lines kept on resume (src/util/run-events.ts).
  const configPath = join(runDir, CONFIG_FILE);
  const events = RunEvents.open(runDir, existsSync(configPath) ? readFileSync(configPath, 'utf8') : spec.configYaml, spec.resume ? metricsEntries(metricsPath) : []);
  try {
    return await loopBody();
  } finally {
    events.close();
  }

  async function loopBody(): Promise<{ status: 'completed' | 'stopped' | 'interrupted'; state: LoopState & E }> {
    const record = (entry: Record<string, unknown>) => {
      appendFileSync(metricsPath, JSON.stringify(entry) + '\n');
      events.record(entry);
    };
    const snapshot = () => ({ ...state, modelRng: spec.rng.getState(), wallTime: state.wallTime + (Date.now() - spec.started) / 1000 });
    const save = (dir: string) =>
      replaceCheckpoint(dir, state.step, async (tmp) => {
        await obj.save(tmp);
        await optimizer.save(join(tmp, OPTIMIZER_FILE));
        writeJsonAtomic(join(tmp, TRAINER_STATE_FILE), snapshot());
      });
    const diverged = (what: string) =>
      new NonFiniteError(`${what}; stopped: ${hasCheckpoint(lastDir) ? `the last good checkpoint is ${lastDir}` : 'no checkpoint had been saved yet'}. ${obj.hint}`);

    let lastEvalStep = -1;
    /** Evaluates and records; true when early stopping says stop. */
    const runEval = async (epoch: number): Promise<boolean> => {
      lastEvalStep = state.step;
      let ev: Awaited<ReturnType<Objective<E>['evaluate']>>;
      try {
        ev = await obj.evaluate(epoch, state);
      } catch (err) {
        throw err instanceof NonFiniteError ? diverged(`${err.message} after update ${state.step}`) : err;
      }
      record({ type: 'eval', step: state.step, epoch, ...ev.record });
      if (ev.score === undefined) return false;
      if (ev.score !== null && (state.best === null || ev.score > state.best)) {
        Object.assign(state, { best: ev.score, bestEpoch: epoch, bestStep: state.step, badEvals: 0 });
        if (spec.saveBest) await save(checkpointDir(runDir, 'best'));
      } else {
        state.badEvals += 1;
      }
      return spec.earlyStopping !== null && state.badEvals >= spec.earlyStopping;
    };

    let status: 'completed' | 'stopped' | 'interrupted' = 'completed';
    if (!spec.resume) await obj.atStart?.(state, record);
    if (spec.evaluate.atStart && state.step === 0) await runEval(state.epoch);
    outer: for (let epoch = state.epoch; spec.epochs === null || epoch <= spec.epochs; epoch++) {
      const batches = epochBatches(spec.lengths.length, spec.lengths, spec.batchSize, spec.seed, epoch, spec.bucketing);
      for (let b = epoch === state.epoch ? state.batch : 0; b < batches.length; b += spec.gradAccum) {
        if (state.step >= spec.totalSteps) break outer;
        const micro = batches.slice(b, b + spec.gradAccum).map((idx, k) => () => obj.loss(idx, { epoch, index: b + k, state }));
        const accumulated = await accumulateGradients(params, micro);
        const { grads } = accumulated;
        const { terms, norm } = await readUpdate(grads, accumulated.terms);
        if (!Object.values(terms).every(Number.isFinite)) {
          tf.dispose(Object.values(grads));
          throw diverged(obj.nonFinite(terms, state.step + 1));
        }
        const lr = spec.lrAt(state.step);
        applyGradients(optimizer, params, grads, lr, norm, spec.maxGradNorm);
        state.step += 1;
        state.batch = b + micro.length;
        if (state.step % spec.logEvery === 0 || state.step === 1) {
          record({ type: 'train', step: state.step, epoch, ...(obj.trainFields?.(terms) ?? terms), lr, grad_norm: norm, ...obj.trainExtra?.(state) });
        }
        hooks.onProgress?.(state.step, spec.totalSteps, { epoch, loss: terms[obj.progressTerm]! });
        const every = spec.evaluate.everySteps;
        // Not on the last update (the final evaluation follows), nor where the epoch's evaluation follows.
        if (every !== null && state.step % every === 0 && state.step < spec.totalSteps && !(spec.evaluate.eachEpoch && state.batch >= batches.length)) {
          const stop = await runEval(epoch);
          await save(lastDir);
          if (stop) {
            status = 'stopped';
            break outer;
          }
        }
        // Let signal handlers (Ctrl-C) and progress output run between updates.
        await new Promise((r) => setImmediate(r));
        if ((hooks.stopAfter !== undefined && state.step >= hooks.stopAfter) || hooks.shouldStop?.()) {
          await save(lastDir);
          status = 'interrupted';
          break outer;
        }
      }
      state.epoch = epoch + 1;
      state.batch = 0;
      if (spec.evaluate.eachEpoch) {
        const stop = await runEval(epoch);
        await obj.afterEpoch?.(epoch, state, record);
        await save(lastDir);
        if (stop) {
          status = 'stopped';
          break;
        }
      }
    }
    if (status === 'stopped') hooks.log.info(`early stopping after ${state.badEvals} evaluations without improvement`);
    if (status === 'completed' && lastEvalStep !== state.step) {
      // The last update had no evaluation (max_steps inside an epoch, or no per-epoch evaluation).
      await runEval(state.batch === 0 ? state.epoch - 1 : state.epoch);
      await save(lastDir);
    }
    return { status, state: snapshot() };
  }
}

/** The entries of metrics.jsonl (after `trimMetrics`, every line is whole). */
function metricsEntries(metricsPath: string): Array<Record<string, unknown>> {
  if (!existsSync(metricsPath)) return [];
  return readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}
