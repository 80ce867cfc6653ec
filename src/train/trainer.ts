/**
 * Fine-tuning a BERT on a GLUE task, optionally with probe guidance (`topoprobe train`). Reads top to bottom:
 *
 *   prepare data -> build model, guides, optimizer -> for each epoch, for each batch: forward, task loss +
 *   guidance terms, backward, (accumulate,) clip, AdamW, log -> evaluate each epoch (and every N steps), keep
 *   the best checkpoint, stop early if asked -> results.json.
 *
 * A run folder holds the resolved config, metrics.jsonl, results.json, checkpoints/{last,best} (Hugging Face
 * safetensors + the optimizer's moments + the guides' probes + the trainer state) and a pino log. `resume`
 * continues from checkpoints/last: weights, optimizer state, schedule position, data order and random state,
 * so a resumed run ends with the same numbers as an uninterrupted one on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { TrainConfig, TaskName } from './config.js';
import { selectGuides, buildGuides, batchPositions, guideLoss, weightAt, type Guide } from './guidance.js';
import { AdamW, defaultNoDecay } from './optimizer.js';
import { parameterGrads, applyGradients } from './step.js';
import { replaceDir, saveOptimizerState, loadOptimizerState, trimMetrics } from './checkpointing.js';
import { runFolders, writeTrainResult, type TrainResult } from '../util/run-folder.js';
import { taskLoss } from './loss.js';
import { makeSchedule } from './schedule.js';
import { taskMetrics, primaryMetric } from './metrics.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { saveCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { BertModel } from '../model/bert.js';
import { readGlue, numLabels as glueNumLabels, glueTaskInfo, type GlueTask } from '../data/glue.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { dataDir as resolveDataDir } from '../data/paths.js';
import { DepthProbe } from '../probe/probe.js';
import { trainProbe, heldOutMse, type ProbeExample } from '../probe/train.js';
import { scoredPositions, rowsAt } from '../probe/positions.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { configToYaml } from '../util/config.js';
import { currentBackend } from '../backend/index.js';

interface Example {
  ids: number[];
  tokenTypeIds: number[];
  label: number;
}

export interface TrainHooks {
  log: Logger;
  onProgress?: (done: number, total: number, info: { epoch: number; loss: number }) => void;
  /** Stop (as if interrupted) after this many updates, saving checkpoints/last: for testing resume. */
  stopAfter?: number;
  /** Polled after every update; true saves checkpoints/last and stops (the CLI's Ctrl-C). */
  shouldStop?: () => boolean;
}

export type { TrainResult };

interface TrainerState {
  epoch: number;
  /** Next batch index within the epoch. */
  batch: number;
  step: number;
  modelRng: number[];
  best: number | null;
  bestEpoch: number | null;
  bestStep: number | null;
  badEvals: number;
  wallTime: number;
}

function readTask(config: TrainConfig, split: 'train' | 'dev' | 'test', dir: string): Array<{ s1: string; s2?: string; label: number }> {
  const glue: GlueTask = config.task;
  return readGlue(glue, split, dir).map((e) => {
    if (e.label === undefined) throw new TopoprobeError(`data.${split === config.data.train_split ? 'train' : 'eval'}_split: ${config.task} ${split} has no labels`);
    return { s1: e.sentence1, s2: e.sentence2, label: e.label };
  });
}

function encodeAll(rows: Array<{ s1: string; s2?: string; label: number }>, loaded: LoadedModel, maxLength: number): { examples: Example[]; truncated: number } {
  let truncated = 0;
  const examples = rows.map((r) => {
    const full = loaded.tokenizer.encode(r.s1, r.s2);
    const enc = full.ids.length > maxLength ? loaded.tokenizer.encode(r.s1, r.s2, { maxLength }) : full;
    if (enc !== full) truncated += 1;
    return { ids: enc.ids, tokenTypeIds: enc.tokenTypeIds, label: r.label };
  });
  return { examples, truncated };
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

function toBatch(examples: readonly Example[], idx: readonly number[], padId: number) {
  const batch = padBatch(idx.map((i) => ({ ids: examples[i]!.ids, tokenTypeIds: examples[i]!.tokenTypeIds })), padId);
  const labels = idx.map((i) => examples[i]!.label);
  return { batch, labels };
}

/** The model produced NaN or infinity (a diverged run). */
export class NonFiniteError extends TopoprobeError {}

/** Evaluates on the whole set: task metrics from all predictions at once, and the mean task loss. */
export function evaluate(model: BertModel, examples: readonly Example[], padId: number, task: TaskName, batchSize: number): { metrics: Record<string, number | null>; loss: number; predictions: number[] } {
  const regression = glueTaskInfo(task).regression;
  const predictions: number[] = [];
  let lossSum = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, examples.length - i) }, (_, k) => i + k);
    const { batch, labels } = toBatch(examples, idx, padId);
    const out = model.forward(batch, { hiddenStates: 'none' });
    const y = tf.tensor1d(labels, regression ? 'float32' : 'int32');
    const loss = taskLoss(out.logits!, y, regression);
    lossSum += loss.dataSync()[0]! * idx.length;
    const logits = out.logits!.arraySync();
    if (logits.some((row) => row.some((x) => !Number.isFinite(x)))) {
      tf.dispose([out.lastHiddenState, out.pooled!, out.logits!, y, loss]);
      disposeBatch(batch);
      throw new NonFiniteError('non-finite model outputs on the evaluation set');
    }
    for (const row of logits) predictions.push(regression ? row[0]! : row.indexOf(Math.max(...row)));
    tf.dispose([out.lastHiddenState, out.pooled!, out.logits!, y, loss]);
    disposeBatch(batch);
  }
  const metrics = taskMetrics(task, predictions, examples.map((e) => e.label));
  return { metrics, loss: lossSum / Math.max(1, examples.length), predictions };
}

function saveRunCheckpoint(dir: string, loaded: LoadedModel, optimizer: AdamW, guides: readonly Guide[], state: TrainerState): void {
  replaceDir(dir, (tmp) => {
    saveCheckpoint(tmp, loaded.model.config, loaded.model.weights());
    loaded.tokenizer.save(tmp);
    saveOptimizerState(join(tmp, 'optimizer.safetensors'), optimizer);
    guides.forEach((g, i) => g.probe.save(join(tmp, `probe-${i}.safetensors`), { layer: String(g.config.layer) }));
    writeJsonAtomic(join(tmp, 'trainer_state.json'), state);
  });
}

export async function runTrain(config: TrainConfig, hooks: TrainHooks, opts: { dataDir?: string; resume?: string } = {}): Promise<TrainResult> {
  const { log } = hooks;
  const started = Date.now();
  const dir = resolveDataDir(config.data.dir ?? opts.dataDir);
  const { runDir, lastDir } = runFolders(config.out_dir, config.name, 'train', opts.resume);

  // Data.
  const { guides: guideConfigs, selection } = selectGuides(config);
  const loaded = await loadModel(config.model, { head: { numLabels: glueNumLabels(config.task), regression: glueTaskInfo(config.task).regression }, dropout: config.dropout, seed: config.seed, dataDir: dir });
  const maxLength = Math.min(config.data.max_length, loaded.model.config.max_position_embeddings);
  const cap = <T>(rows: T[], max?: number, salt = 0) => (max !== undefined ? new Rng(config.seed + salt).shuffle([...rows]).slice(0, max) : rows);
  const trainRows = cap(readTask(config, config.data.train_split, dir), config.data.max_train_examples, 1);
  const evalRows = cap(readTask(config, config.data.eval_split, dir), config.data.max_eval_examples, 2);
  const train = encodeAll(trainRows, loaded, maxLength);
  const evalSet = encodeAll(evalRows, loaded, maxLength);
  log.info(`${config.task}: ${train.examples.length} training and ${evalSet.examples.length} evaluation examples (${train.truncated + evalSet.truncated} truncated to ${maxLength} pieces)`);
  const regression = glueTaskInfo(config.task).regression;
  const model = loaded.model;
  const guides = buildGuides(guideConfigs, model.config.hidden_size, model.config.num_hidden_layers, config.seed);

  // Optimizer over the encoder, the head and the trainable probes.
  const params = new Map(model.params);
  guides.forEach((g, i) => {
    if (g.config.trainable) params.set(`probe.${i}.B`, g.probe.B);
  });
  const optimizer = new AdamW({
    beta1: config.optimizer.beta1, beta2: config.optimizer.beta2, epsilon: config.optimizer.eps, weightDecay: config.optimizer.weight_decay,
    noDecay: (name) => defaultNoDecay(name) || name.startsWith('probe.'),
  });
  const lengths = train.examples.map((e) => e.ids.length);
  const batchesPerEpoch = Math.ceil(train.examples.length / config.batch_size);
  const updatesPerEpoch = Math.ceil(batchesPerEpoch / config.grad_accum);
  const totalSteps = config.max_steps ?? updatesPerEpoch * config.epochs;
  const lrAt = makeSchedule({ kind: config.schedule.kind, peak: config.optimizer.lr, warmupRatio: config.schedule.warmup_ratio, totalSteps });
  const primary = primaryMetric(config.task);

  let state: TrainerState = { epoch: 1, batch: 0, step: 0, modelRng: model.rng.getState(), best: null, bestEpoch: null, bestStep: null, badEvals: 0, wallTime: 0 };
  mkdirSync(runDir, { recursive: true });
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (opts.resume) {
    state = JSON.parse(readFileSync(join(lastDir, 'trainer_state.json'), 'utf8')) as TrainerState;
    const ckpt = loadCheckpoint(lastDir, { head: true });
    for (const [name, v] of model.params) tf.tidy(() => v.assign(tf.tensor(ckpt.weights.get(name)!.data, v.shape)));
    loadOptimizerState(join(lastDir, 'optimizer.safetensors'), optimizer);
    guides.forEach((g, i) => {
      const { probe } = DepthProbe.load(join(lastDir, `probe-${i}.safetensors`));
      g.probe.B.assign(probe.B);
      probe.dispose();
    });
    model.rng.setState(state.modelRng);
    trimMetrics(metricsPath, state.step);
    log.info(`resuming ${runDir} at epoch ${state.epoch}, batch ${state.batch}, update ${state.step}`);
  } else {
    writeFileAtomic(join(runDir, 'config.yaml'), configToYaml({ ...config, guidance: guideConfigs, select: undefined, ...(selection ? { selected: selection } : {}) }));
    writeFileAtomic(metricsPath, '');
  }
  const record = (entry: Record<string, unknown>) => appendFileSync(metricsPath, JSON.stringify(entry) + '\n');
  const guideLayers = [...new Set(guides.map((g) => g.config.layer))];
  const result = (status: TrainResult['status'], final: Record<string, number | null>): TrainResult => ({
    runDir, task: config.task, metric: primary, best: state.best, final: final[primary] ?? null, best_epoch: state.bestEpoch, best_step: state.bestStep,
    final_metrics: final, seed: config.seed, wall_time_s: state.wallTime + (Date.now() - started) / 1000, backend: currentBackend()?.name ?? tf.getBackend(),
    status, steps: state.step, guidance: guideConfigs.map((g) => ({ ...g })), ...(selection ? { selection } : {}),
  });
  const snapshot = () => ({ ...state, modelRng: model.rng.getState(), wallTime: state.wallTime + (Date.now() - started) / 1000 });

  // X_ssp tracking: a fixed set of evaluation sentences, half to train a fresh probe, half to score it.
  const trackSet = config.track ? evalSet.examples.slice(0, config.track.sentences) : [];
  if (config.track) {
    config.track.submodules.forEach((sub, i) => {
      if (sub > model.config.num_hidden_layers) throw new TopoprobeError(`track.submodules[${i}]: ${sub} does not exist (this model has submodules 0..${model.config.num_hidden_layers})`);
    });
  }
  const trackXssp = (epoch: number) => {
    if (!config.track || trackSet.length < 4) return;
    const values: Record<string, number> = {};
    for (const sub of config.track.submodules) {
      const examples: ProbeExample[] = [];
      for (let i = 0; i < trackSet.length; i += config.eval.batch_size) {
        const idx = Array.from({ length: Math.min(config.eval.batch_size, trackSet.length - i) }, (_, k) => i + k);
        const { batch } = toBatch(trackSet, idx, loaded.tokenizer.padId);
        const out = model.forward(batch, { hiddenStates: [sub], pool: false });
        const seq = batch.inputIds.shape[1];
        const h = out.hiddenStates.get(sub)!.dataSync() as Float32Array;
        const size = model.config.hidden_size;
        batch.lengths.forEach((len, b) => {
          const pos = scoredPositions(len, seq, config.mode);
          if (pos.length > 0) examples.push({ states: rowsAt(h, size, seq, b, pos), n: pos.length });
        });
        tf.dispose([...out.hiddenStates.values(), out.lastHiddenState]);
        disposeBatch(batch);
      }
      const half = Math.floor(examples.length / 2);
      const trained = trainProbe('ssp', examples.slice(0, half), [], {
        hidden: model.config.hidden_size, lr: 1e-3, epochs: config.track.epochs, batchSize: 32, seed: config.seed + sub,
      });
      values[`layer_${sub}`] = heldOutMse(trained.probe, examples.slice(half), 'ssp').mse;
      trained.probe.dispose();
    }
    record({ type: 'track', step: state.step, epoch, x_ssp: values });
    log.info(`X_ssp after epoch ${epoch}: ${Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
  };

  const diverged = (what: string) => {
    const kept = existsSync(join(lastDir, 'trainer_state.json')) ? `the last good checkpoint is ${lastDir}` : 'no checkpoint had been saved yet';
    return new NonFiniteError(`${what}; stopped: ${kept}. Try a lower learning rate or guidance weight`);
  };
  let lastEval: Record<string, number | null> = {};
  let lastEvalStep = -1;
  const runEval = (epoch: number): boolean => {
    lastEvalStep = state.step;
    let ev: ReturnType<typeof evaluate>;
    try {
      ev = evaluate(model, evalSet.examples, loaded.tokenizer.padId, config.task, config.eval.batch_size);
    } catch (err) {
      if (err instanceof NonFiniteError) throw diverged(`${err.message} after update ${state.step}`);
      throw err;
    }
    lastEval = ev.metrics;
    record({ type: 'eval', step: state.step, epoch, eval_loss: ev.loss, ...ev.metrics });
    const value = ev.metrics[primary];
    log.info(`eval at update ${state.step} (epoch ${epoch}): ${Object.entries(ev.metrics).map(([k, v]) => `${k} ${v === null ? '-' : v.toFixed(4)}`).join(', ')}`);
    if (value !== null && value !== undefined && (state.best === null || value > state.best)) {
      state.best = value;
      state.bestEpoch = epoch;
      state.bestStep = state.step;
      state.badEvals = 0;
      if (config.save_best) saveRunCheckpoint(join(runDir, 'checkpoints', 'best'), loaded, optimizer, guides, snapshot());
    } else {
      state.badEvals += 1;
    }
    return config.early_stopping !== null && state.badEvals >= config.early_stopping;
  };

  let status: TrainResult['status'] = 'completed';
  try {
    outer: for (let epoch = state.epoch; epoch <= config.epochs; epoch++) {
      const batches = epochBatches(train.examples.length, lengths, config.batch_size, config.seed, epoch, config.bucketing);
      for (let b = epoch === state.epoch ? state.batch : 0; b < batches.length; b += config.grad_accum) {
        if (state.step >= totalSteps) break outer;
        const micro = batches.slice(b, b + config.grad_accum);
        let grads: Record<string, tf.Tensor> | undefined;
        let taskSum = 0;
        const guideSums = guides.map(() => 0);
        for (const idx of micro) {
          const { batch, labels } = toBatch(train.examples, idx, loaded.tokenizer.padId);
          const seq = batch.inputIds.shape[1];
          const positions = batchPositions(batch.lengths, seq, config.mode);
          const y = tf.tensor1d(labels, regression ? 'float32' : 'int32');
          const weights = guides.map((g) => weightAt(g, state.step, totalSteps));
          const { value, grads: g } = parameterGrads(params, () => {
            const out = model.forward(batch, { training: true, hiddenStates: guideLayers });
            let total = taskLoss(out.logits!, y, regression);
            taskSum += total.dataSync()[0]!;
            guides.forEach((guide, i) => {
              const term = guideLoss(guide, out.hiddenStates.get(guide.config.layer)!, positions, labels);
              if (!term) return;
              guideSums[i]! += term.dataSync()[0]!;
              if (weights[i]! > 0) total = tf.add(total, tf.mul(term, weights[i]!)) as tf.Scalar;
            });
            return tf.div(total, micro.length) as tf.Scalar;
          });
          value.dispose();
          if (!grads) grads = g;
          else {
            for (const [k, t] of Object.entries(g)) {
              const sum = tf.add(grads[k]!, t);
              tf.dispose([grads[k]!, t]);
              grads[k] = sum;
            }
          }
          tf.dispose(y);
          disposeBatch(batch);
        }
        const lossValue = taskSum / micro.length;
        if (!Number.isFinite(lossValue) || guideSums.some((s) => !Number.isFinite(s))) {
          tf.dispose(Object.values(grads ?? {}));
          throw diverged(`non-finite loss at update ${state.step + 1} (task loss ${lossValue}${guides.length ? `, guidance ${guideSums.join(', ')}` : ''})`);
        }
        const lr = lrAt(state.step);
        const norm = applyGradients(optimizer, params, grads!, lr, config.max_grad_norm);
        state.step += 1;
        state.batch = b + micro.length;
        if (state.step % config.log_every === 0 || state.step === 1) {
          record({ type: 'train', step: state.step, epoch, task_loss: lossValue, guidance: Object.fromEntries(guides.map((g, i) => [`layer_${g.config.layer}`, guideSums[i]! / micro.length])), lr, grad_norm: norm });
        }
        hooks.onProgress?.(state.step, totalSteps, { epoch, loss: lossValue });
        if (config.eval.every_steps !== null && state.step % config.eval.every_steps === 0 && b + micro.length < batches.length) {
          if (runEval(epoch)) break outer;
          saveRunCheckpoint(lastDir, loaded, optimizer, guides, snapshot());
        }
        // Let signal handlers (Ctrl-C) and progress output run between updates.
        await new Promise((r) => setImmediate(r));
        if ((hooks.stopAfter !== undefined && state.step >= hooks.stopAfter) || hooks.shouldStop?.()) {
          saveRunCheckpoint(lastDir, loaded, optimizer, guides, snapshot());
          status = 'interrupted';
          break outer;
        }
      }
      state.epoch = epoch + 1;
      state.batch = 0;
      const stop = runEval(epoch);
      trackXssp(epoch);
      saveRunCheckpoint(lastDir, loaded, optimizer, guides, snapshot());
      if (stop) {
        status = 'stopped';
        log.info(`early stopping after ${state.badEvals} evaluations without improvement`);
        break;
      }
    }
    if (status === 'completed' && state.step >= totalSteps && lastEvalStep !== state.step) {
      // max_steps ended the run inside an epoch: evaluate what was trained.
      runEval(state.epoch - (state.batch === 0 ? 1 : 0));
      saveRunCheckpoint(lastDir, loaded, optimizer, guides, snapshot());
    }
    const res = result(status, lastEval);
    if (status !== 'interrupted') writeTrainResult(runDir, res);
    return res;
  } finally {
    optimizer.dispose();
    for (const g of guides) g.probe.dispose();
    model.dispose();
  }
}
