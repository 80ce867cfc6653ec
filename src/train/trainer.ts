/**
 * Fine-tuning a BERT on a GLUE task, optionally with probe guidance (`topoprobe train`). Reads top to bottom:
 *
 *   prepare data -> build model, guides, optimizer -> the fine-tuning objective: forward, task loss +
 *   the guidance term (guidance.ts), evaluation on the whole evaluation set, X_ssp tracking -> the
 *   training loop (loop.ts: batches, backward, clip, AdamW, logging, evaluation cadence, best checkpoint,
 *   early stopping, resume) -> results.json.
 *
 * A run folder (src/util/run-folder.ts) holds the resolved config, metrics.jsonl, results.json,
 * checkpoints/{last,best} (Hugging Face safetensors + the optimizer's moments + the guides' probes + the
 * trainer state) and a pino log. `resume` continues from checkpoints/last: weights, optimizer state,
 * schedule position, data order and random state, so a resumed run ends with the same numbers as an
 * uninterrupted one on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig, TaskName } from './config.js';
import { selectGuides, buildGuides, batchPositions, guidanceTerm } from './guidance.js';
import { AdamW, defaultNoDecay } from './optimizer.js';
import { runLoop, NonFiniteError, type TrainHooks } from './loop.js';
import { taskLoss } from './loss.js';
import { makeSchedule } from './schedule.js';
import { taskMetrics, primaryMetric } from './metrics.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { saveCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { BertModel } from '../model/bert.js';
import { readGlue, numLabels as glueNumLabels, glueTaskInfo } from '../data/glue.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { dataDir as resolveDataDir } from '../data/paths.js';
import { DepthProbe } from '../probe/probe.js';
import { trainProbe, heldOutMse, type ProbeExample } from '../probe/train.js';
import { scoredPositions, rowsAt } from '../probe/positions.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { configToYaml } from '../util/config.js';
import { guideProbeFile, runFolders, writeTrainResult, type TrainResult } from '../util/run-folder.js';
import { currentBackend } from '../backend/index.js';

export type { TrainResult, TrainHooks };

interface Example {
  ids: number[];
  tokenTypeIds: number[];
  label: number;
}

function readTask(config: TrainConfig, split: 'train' | 'dev' | 'test', dir: string): Array<{ s1: string; s2?: string; label: number }> {
  return readGlue(config.task, split, dir).map((e) => {
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

function toBatch(examples: readonly Example[], idx: readonly number[], padId: number) {
  const batch = padBatch(idx.map((i) => ({ ids: examples[i]!.ids, tokenTypeIds: examples[i]!.tokenTypeIds })), padId);
  const labels = idx.map((i) => examples[i]!.label);
  return { batch, labels };
}

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

export async function runTrain(config: TrainConfig, hooks: TrainHooks, opts: { dataDir?: string; resume?: string } = {}): Promise<TrainResult> {
  const { log } = hooks;
  const started = Date.now();
  const dir = resolveDataDir(config.data.dir ?? opts.dataDir);
  const { runDir, lastDir } = runFolders(config.out_dir, config.name, 'train', opts.resume);

  // Data.
  const { guides: guideConfigs, selection } = selectGuides(config);
  const regression = glueTaskInfo(config.task).regression;
  const loaded = await loadModel(config.model, { head: { numLabels: glueNumLabels(config.task), regression }, dropout: config.dropout, seed: config.seed, dataDir: dir });
  const maxLength = Math.min(config.data.max_length, loaded.model.config.max_position_embeddings);
  const cap = <T>(rows: T[], max?: number, salt = 0) => (max !== undefined ? new Rng(config.seed + salt).shuffle([...rows]).slice(0, max) : rows);
  const trainRows = cap(readTask(config, config.data.train_split, dir), config.data.max_train_examples, 1);
  const evalRows = cap(readTask(config, config.data.eval_split, dir), config.data.max_eval_examples, 2);
  const train = encodeAll(trainRows, loaded, maxLength);
  const evalSet = encodeAll(evalRows, loaded, maxLength);
  log.info(`${config.task}: ${train.examples.length} training and ${evalSet.examples.length} evaluation examples (${train.truncated + evalSet.truncated} truncated to ${maxLength} pieces)`);
  const { model, tokenizer } = loaded;
  const guides = buildGuides(guideConfigs, model.config.hidden_size, model.config.num_hidden_layers, config.seed);
  if (config.track) {
    config.track.submodules.forEach((sub, i) => {
      if (sub > model.config.num_hidden_layers) throw new TopoprobeError(`track.submodules[${i}]: ${sub} does not exist (this model has submodules 0..${model.config.num_hidden_layers})`);
    });
  }

  // Optimizer over the encoder, the head and the trainable probes.
  const params = new Map(model.params);
  guides.forEach((g, i) => {
    if (g.config.trainable) params.set(`probe.${i}.B`, g.probe.B);
  });
  const optimizer = new AdamW({
    beta1: config.optimizer.beta1, beta2: config.optimizer.beta2, epsilon: config.optimizer.eps, weightDecay: config.optimizer.weight_decay,
    noDecay: (name) => defaultNoDecay(name) || name.startsWith('probe.'),
  });
  const batchesPerEpoch = Math.ceil(train.examples.length / config.batch_size);
  const updatesPerEpoch = Math.ceil(batchesPerEpoch / config.grad_accum);
  const totalSteps = config.max_steps ?? updatesPerEpoch * config.epochs;
  const primary = primaryMetric(config.task);
  if (opts.resume) {
    const ckpt = loadCheckpoint(lastDir, { head: true });
    for (const [name, v] of model.params) tf.tidy(() => v.assign(tf.tensor(ckpt.weights.get(name)!.data, v.shape)));
    guides.forEach((g, i) => {
      const { probe } = DepthProbe.load(guideProbeFile(lastDir, i));
      g.probe.B.assign(probe.B);
      probe.dispose();
    });
  }

  // X_ssp tracking: a fixed set of evaluation sentences, half to train a fresh probe, half to score it.
  const trackSet = config.track ? evalSet.examples.slice(0, config.track.sentences) : [];
  const trackXssp = (epoch: number, step: number, record: (entry: Record<string, unknown>) => void) => {
    if (!config.track || trackSet.length < 4) return;
    const values: Record<string, number> = {};
    for (const sub of config.track.submodules) {
      const examples: ProbeExample[] = [];
      for (let i = 0; i < trackSet.length; i += config.eval.batch_size) {
        const idx = Array.from({ length: Math.min(config.eval.batch_size, trackSet.length - i) }, (_, k) => i + k);
        const { batch } = toBatch(trackSet, idx, tokenizer.padId);
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
    record({ type: 'track', step, epoch, x_ssp: values });
    log.info(`X_ssp after epoch ${epoch}: ${Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
  };

  // The fine-tuning objective: task loss + the guidance term.
  const guideLayers = [...new Set(guides.map((g) => g.config.layer))];
  let lastEval: Record<string, number | null> = {};
  try {
    const { status, state } = await runLoop({
      runDir, resume: Boolean(opts.resume), hooks, started, params, optimizer, rng: model.rng,
      configYaml: configToYaml({ ...config, guidance: guideConfigs, select: undefined, ...(selection ? { selected: selection } : {}) }),
      lrAt: makeSchedule({ kind: config.schedule.kind, peak: config.optimizer.lr, warmupRatio: config.schedule.warmup_ratio, totalSteps }),
      lengths: train.examples.map((e) => e.ids.length),
      seed: config.seed, epochs: config.epochs, totalSteps, batchSize: config.batch_size, gradAccum: config.grad_accum, bucketing: config.bucketing,
      logEvery: config.log_every, maxGradNorm: config.max_grad_norm, evaluate: { everySteps: config.eval.every_steps, eachEpoch: true, atStart: false },
      earlyStopping: config.early_stopping, saveBest: config.save_best, extra: {},
      objective: {
        progressTerm: 'task_loss',
        hint: 'Try a lower learning rate or guidance weight',
        loss: (idx, at) => {
          const { batch, labels } = toBatch(train.examples, idx, tokenizer.padId);
          const positions = batchPositions(batch.lengths, batch.inputIds.shape[1], config.mode);
          const out = model.forward(batch, { training: true, hiddenStates: guideLayers });
          const task = taskLoss(out.logits!, tf.tensor1d(labels, regression ? 'float32' : 'int32'), regression);
          const taskValue = task.dataSync()[0]!;
          const guidance = guidanceTerm(guides, out.hiddenStates, positions, labels, at.state.step, totalSteps);
          return { loss: guidance.total ? (tf.add(task, guidance.total) as tf.Scalar) : task, terms: { task_loss: taskValue, ...guidance.values } };
        },
        trainFields: ({ task_loss, ...perGuide }) => ({ task_loss, guidance: perGuide }),
        nonFinite: ({ task_loss, ...perGuide }, update) => `non-finite loss at update ${update} (task loss ${task_loss}${guides.length ? `, guidance ${Object.values(perGuide).join(', ')}` : ''})`,
        evaluate: (epoch, state) => {
          const ev = evaluate(model, evalSet.examples, tokenizer.padId, config.task, config.eval.batch_size);
          lastEval = ev.metrics;
          log.info(`eval at update ${state.step} (epoch ${epoch}): ${Object.entries(ev.metrics).map(([k, v]) => `${k} ${v === null ? '-' : v.toFixed(4)}`).join(', ')}`);
          return { record: { eval_loss: ev.loss, ...ev.metrics }, score: ev.metrics[primary] ?? null };
        },
        afterEpoch: (epoch, state, record) => trackXssp(epoch, state.step, record),
        save: (tmp) => {
          saveCheckpoint(tmp, model.config, model.weights());
          tokenizer.save(tmp);
          guides.forEach((g, i) => g.probe.save(guideProbeFile(tmp, i), { layer: String(g.config.layer) }));
        },
      },
    });
    const res: TrainResult = {
      runDir, task: config.task, metric: primary, best: state.best, final: lastEval[primary] ?? null, best_epoch: state.bestEpoch, best_step: state.bestStep,
      final_metrics: lastEval, seed: config.seed, wall_time_s: state.wallTime, backend: currentBackend()?.name ?? tf.getBackend(),
      status, steps: state.step, guidance: guideConfigs.map((g) => ({ ...g })), ...(selection ? { selection } : {}),
    };
    if (status !== 'interrupted') writeTrainResult(runDir, res);
    return res;
  } finally {
    optimizer.dispose();
    for (const g of guides) g.probe.dispose();
    model.dispose();
  }
}
