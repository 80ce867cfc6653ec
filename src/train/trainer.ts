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
import { selectGuides, buildGuides, batchPositions, guidanceTerm, fixedTargets, guideSees, labelsBeforeTape, currentTargets, type Guide } from './guidance.js';
import { collapseVerdict, maxTreeLabel, sameness, STAR_TREE_MAX_LABEL, type GuideMonitor } from './monitor.js';
import { holdoutSplit } from '../data/holdout.js';
import { AdamW, defaultNoDecay } from './optimizer.js';
import { runLoop, NonFiniteError, type TrainHooks } from './loop.js';
import { taskLoss } from './loss.js';
import { makeSchedule } from './schedule.js';
import { taskMetrics, primaryMetric, isCollapsed } from './metrics.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { saveCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { BertModel } from '../model/bert.js';
import { readGlue, numLabels as glueNumLabels, glueTaskInfo, type GlueSplit } from '../data/glue.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { dataDir as resolveDataDir } from '../data/paths.js';
import { DepthProbe } from '../probe/probe.js';
import { trainProbe, heldOutMse, type ProbeExample } from '../probe/train.js';
import { scoredPositions, rowsAt } from '../probe/positions.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { configToYaml } from '../util/config.js';
import { guideProbeFile, guideTargetsFile, readGuideTargets, runFolders, writeGuideTargets, writeTrainResult, type TrainResult } from '../util/run-folder.js';
import { currentBackend } from '../backend/index.js';

export type { TrainResult, TrainHooks };

interface Example {
  ids: number[];
  tokenTypeIds: number[];
  label: number;
}

function readTask(config: TrainConfig, split: GlueSplit, dir: string): Array<{ s1: string; s2?: string; label: number }> {
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

/**
 * Runs the encoder without dropout over examples `idx` of a set in batches of similar lengths (less padding)
 * and hands each sentence's states at its word pieces (clean positions), per requested submodule, to `each`;
 * `onBatch` sees each batch's whole output first (the task head's logits, in the order of `chunk`). Frees
 * every tensor it makes.
 */
async function forEachSentence(
  model: BertModel, examples: readonly Example[], idx: readonly number[], layers: readonly number[], batchSize: number, padId: number,
  each: (index: number, states: ReadonlyMap<number, Float32Array>, n: number) => void | Promise<void>,
  onBatch?: (out: ReturnType<BertModel['forward']>, chunk: readonly number[], labels: number[]) => Promise<void>,
): Promise<void> {
  const size = model.config.hidden_size;
  const order = [...idx].sort((a, b) => examples[a]!.ids.length - examples[b]!.ids.length || a - b);
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    const { batch, labels } = toBatch(examples, chunk, padId);
    const out = model.forward(batch, { hiddenStates: layers.length > 0 ? layers : 'none', pool: onBatch !== undefined });
    try {
      await onBatch?.(out, chunk, labels);
      const seq = batch.inputIds.shape[1];
      const data = new Map<number, Float32Array>();
      for (const l of layers) data.set(l, (await out.hiddenStates.get(l)!.data()) as Float32Array);
      for (const [b, len] of batch.lengths.entries()) {
        const pos = scoredPositions(len, seq, 'clean');
        await each(chunk[b]!, new Map(layers.map((l) => [l, rowsAt(data.get(l)!, size, seq, b, pos)])), pos.length);
      }
    } finally {
      tf.dispose([...out.hiddenStates.values(), out.lastHiddenState, ...(out.pooled ? [out.pooled] : []), ...(out.logits ? [out.logits] : [])]);
      disposeBatch(batch);
    }
  }
}

/** A probe's predicted norms for `n` rows of states. */
async function probeNorms(probe: DepthProbe, rows: Float32Array, n: number, hidden: number): Promise<Float32Array> {
  const pred = tf.tidy(() => probe.predict(tf.tensor2d(rows, [n, hidden])));
  const values = (await pred.data()) as Float32Array;
  pred.dispose();
  return values;
}

/** What one evaluation measured: task metrics from all predictions at once, the mean task loss, and the collapse monitors. */
export interface Evaluation {
  metrics: Record<string, number | null>;
  loss: number;
  predictions: number[];
  /** Every prediction one class (src/train/monitor.ts). */
  constantPredictor: boolean;
  /** Per guide (`layer_<i>`): the mean largest tree label of its probe and the sameness of its states. */
  guides: Record<string, GuideMonitor>;
}

/** Evaluates on the whole set: task metrics, loss and, for each guide, the collapse monitors over every sentence. */
export async function evaluate(model: BertModel, examples: readonly Example[], padId: number, task: TaskName, batchSize: number, guides: readonly Guide[] = []): Promise<Evaluation> {
  const regression = glueTaskInfo(task).regression;
  const predictions: number[] = new Array<number>(examples.length);
  let lossSum = 0;
  const layers = [...new Set(guides.map((g) => g.config.layer))];
  const hidden = model.config.hidden_size;
  const sums = guides.map(() => ({ label: 0, labelN: 0, same: 0, sameN: 0 }));
  const all = examples.map((_, i) => i);
  await forEachSentence(model, examples, all, layers, batchSize, padId, async (_, states, n) => {
    if (n === 0) return;
    for (const [k, g] of guides.entries()) {
      const rows = states.get(g.config.layer)!;
      sums[k]!.label += maxTreeLabel(await probeNorms(g.probe, rows, n, hidden));
      sums[k]!.labelN += 1;
      const same = sameness(rows, n, hidden);
      if (same !== null) {
        sums[k]!.same += same;
        sums[k]!.sameN += 1;
      }
    }
  }, async (out, chunk, labels) => {
    const y = tf.tensor1d(labels, regression ? 'float32' : 'int32');
    const loss = taskLoss(out.logits!, y, regression);
    lossSum += (await loss.data())[0]! * chunk.length;
    tf.dispose([y, loss]);
    const logits = (await out.logits!.array()) as number[][];
    if (logits.some((row) => row.some((x) => !Number.isFinite(x)))) throw new NonFiniteError('non-finite model outputs on the evaluation set');
    logits.forEach((row, b) => (predictions[chunk[b]!] = regression ? row[0]! : row.indexOf(Math.max(...row))));
  });
  const metrics = taskMetrics(task, predictions, examples.map((e) => e.label));
  const monitors: Record<string, GuideMonitor> = {};
  guides.forEach((g, k) => {
    const m = sums[k]!;
    monitors[`layer_${g.config.layer}`] = { max_label: m.labelN > 0 ? m.label / m.labelN : null, sameness: m.sameN > 0 ? m.same / m.sameN : null };
  });
  return { metrics, loss: lossSum / Math.max(1, examples.length), predictions, constantPredictor: isCollapsed(predictions), guides: monitors };
}

/** The fine-tuning objective's own checkpointed state (beside the loop's). */
interface TrainExtra {
  monitor: { constant_predictor: boolean; guides: Record<string, GuideMonitor> } | null;
  warned: string[];
  firstCollapse: number | null;
  xsspStart: Record<string, number> | null;
  xsspLast: Record<string, number> | null;
}

const fmt = (v: number | null, digits: number) => (v === null ? '-' : v.toFixed(digits));

function collapseText(v: ReturnType<typeof collapseVerdict>): string {
  return [v.constant_predictor ? 'every evaluation prediction is one class' : '', ...v.star_tree.map((k) => `${k}'s labels are the star tree`)].filter(Boolean).join('; ');
}

/** Warns on the console the first time a run predicts one class, or a guide's labels come near the star tree. */
function warnCollapse(state: TrainExtra & { step: number }, ev: Evaluation, log: { warn(msg: string): void }): void {
  const verdict = collapseVerdict(ev.constantPredictor, ev.guides);
  if (verdict.collapsed && state.firstCollapse === null) state.firstCollapse = state.step;
  if (verdict.constant_predictor && !state.warned.includes('constant_predictor')) {
    state.warned.push('constant_predictor');
    log.warn(`update ${state.step}: every evaluation prediction is one class (a constant predictor; MCC and correlations carry no signal)`);
  }
  for (const key of verdict.star_tree) {
    if (state.warned.includes(key)) continue;
    state.warned.push(key);
    const m = ev.guides[key]!;
    log.warn(`update ${state.step}: ${key}'s tree labels are near the star tree (mean largest label ${fmt(m.max_label, 2)} <= ${STAR_TREE_MAX_LABEL}, sameness ${fmt(m.sameness, 3)}): the guidance is being met by collapsing the layer`);
  }
}

export async function runTrain(config: TrainConfig, hooks: TrainHooks, opts: { dataDir?: string; resume?: string } = {}): Promise<TrainResult> {
  const { log } = hooks;
  const started = Date.now();
  const dir = resolveDataDir(config.data.dir ?? opts.dataDir);
  const { runDir, lastDir } = runFolders(config.out_dir, config.name, 'train', opts.resume);

  // Data.
  const { guides: guideConfigs, selection } = selectGuides(config);
  if (config.data.eval_split === 'holdout' && config.data.holdout === undefined) {
    throw new TopoprobeError('data.eval_split: holdout needs data.holdout, the fraction of the training split to hold out (e.g. 0.1)');
  }
  guideConfigs.forEach((g, i) => {
    if (g.targets === 'pretrained' && config.mode === 'paper') {
      throw new TopoprobeError(`guidance[${i}].targets: pretrained needs mode: clean (fixed labels are per word piece; paper mode scores padding, which changes with the batch)`);
    }
  });
  const regression = glueTaskInfo(config.task).regression;
  const loaded = await loadModel(config.model, { head: { numLabels: glueNumLabels(config.task), regression }, dropout: config.dropout, seed: config.seed, dataDir: dir });
  const maxLength = Math.min(config.data.max_length, loaded.model.config.max_position_embeddings);
  const cap = <T>(rows: T[], max?: number, salt = 0) => (max !== undefined ? new Rng(config.seed + salt).shuffle([...rows]).slice(0, max) : rows);
  // The held-out part of the training split (data.holdout) is never trained on; eval_split: holdout evaluates on it.
  const splitRows = readTask(config, config.data.train_split, dir);
  const held = config.data.holdout !== undefined ? holdoutSplit(splitRows.length, config.data.holdout) : null;
  const trainRows = cap(held ? held.train.map((i) => splitRows[i]!) : splitRows, config.data.max_train_examples, 1);
  const evalSplit = config.data.eval_split;
  const evalRows = cap(evalSplit === 'holdout' ? held!.holdout.map((i) => splitRows[i]!) : readTask(config, evalSplit, dir), config.data.max_eval_examples, 2);
  const train = encodeAll(trainRows, loaded, maxLength);
  const evalSet = encodeAll(evalRows, loaded, maxLength);
  log.info(`${config.task}: ${train.examples.length} training and ${evalSet.examples.length} evaluation examples (${evalSplit === 'holdout' ? `held out from ${config.data.train_split}` : evalSplit}; ${train.truncated + evalSet.truncated} truncated to ${maxLength} pieces)`);
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

  // Fixed labels (targets: pretrained): computed once from the pretrained encoder and the starting probes,
  // written to the run folder, and read back on resume (the encoder has moved on by then).
  for (const [i, g] of guides.entries()) {
    if (g.config.targets !== 'pretrained') continue;
    const file = guideTargetsFile(runDir, i);
    if (opts.resume) {
      g.fixed = readGuideTargets(file, g.config.layer);
      continue;
    }
    const seen = train.examples.flatMap((e, k) => (guideSees(g, e.label) ? [k] : []));
    const sentences: Array<{ index: number; norms: Float32Array }> = [];
    await forEachSentence(model, train.examples, seen, [g.config.layer], config.eval.batch_size, tokenizer.padId, async (index, states, n) => {
      if (n > 0) sentences.push({ index, norms: await probeNorms(g.probe, states.get(g.config.layer)!, n, model.config.hidden_size) });
    });
    g.fixed = fixedTargets(g, sentences);
    writeGuideTargets(file, g.config.layer, g.fixed);
    const maxLabels = [...g.fixed.values()].map((l) => Math.max(...l));
    log.info(`guidance[${i}] (layer ${g.config.layer}): fixed ${g.config.labels} labels of ${g.fixed.size} training sentences from the pretrained encoder (mean largest label ${(maxLabels.reduce((a, b) => a + b, 0) / Math.max(1, maxLabels.length)).toFixed(2)})`);
  }

  // X_ssp tracking: a fixed set of evaluation sentences, half to train a fresh probe, half to score it.
  const trackSet = config.track ? evalSet.examples.slice(0, config.track.sentences) : [];
  const trackXssp = async (epoch: number, step: number, record: (entry: Record<string, unknown>) => void): Promise<Record<string, number> | null> => {
    if (!config.track || trackSet.length < 4) return null;
    const values: Record<string, number> = {};
    for (const sub of config.track.submodules) {
      const examples: ProbeExample[] = [];
      for (let i = 0; i < trackSet.length; i += config.eval.batch_size) {
        const idx = Array.from({ length: Math.min(config.eval.batch_size, trackSet.length - i) }, (_, k) => i + k);
        const { batch } = toBatch(trackSet, idx, tokenizer.padId);
        const out = model.forward(batch, { hiddenStates: [sub], pool: false });
        const seq = batch.inputIds.shape[1];
        const h = (await out.hiddenStates.get(sub)!.data()) as Float32Array;
        const size = model.config.hidden_size;
        batch.lengths.forEach((len, b) => {
          const pos = scoredPositions(len, seq, config.mode);
          if (pos.length > 0) examples.push({ states: rowsAt(h, size, seq, b, pos), n: pos.length });
        });
        tf.dispose([...out.hiddenStates.values(), out.lastHiddenState]);
        disposeBatch(batch);
      }
      const half = Math.floor(examples.length / 2);
      const trained = await trainProbe('ssp', examples.slice(0, half), [], {
        hidden: model.config.hidden_size, lr: 1e-3, epochs: config.track.epochs, batchSize: 32, seed: config.seed + sub,
      });
      values[`layer_${sub}`] = (await heldOutMse(trained.probe, examples.slice(half), 'ssp')).mse;
      trained.probe.dispose();
    }
    record({ type: 'track', step, epoch, x_ssp: values });
    log.info(`X_ssp ${epoch === 0 ? 'before fine-tuning' : `after epoch ${epoch}`}: ${Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    return values;
  };

  // The fine-tuning objective: task loss + the guidance term.
  const guideLayers = [...new Set(guides.map((g) => g.config.layer))];
  const currentLayers = [...new Set(guides.filter((g) => !g.fixed).map((g) => g.config.layer))];
  let lastEval: Record<string, number | null> = {};
  // Checkpointed with the loop's state: the last evaluation's collapse monitors, the warnings given, the first
  // update at which a collapse was seen, and the tracked X_ssp before fine-tuning and at the last epoch.
  const extra: TrainExtra = { monitor: null, warned: [], firstCollapse: null, xsspStart: null, xsspLast: null };
  try {
    const { status, state } = await runLoop({
      runDir, resume: Boolean(opts.resume), hooks, started, params, optimizer, rng: model.rng,
      configYaml: configToYaml({ ...config, guidance: guideConfigs, select: undefined, ...(selection ? { selected: selection } : {}) }),
      lrAt: makeSchedule({ kind: config.schedule.kind, peak: config.optimizer.lr, warmupRatio: config.schedule.warmup_ratio, totalSteps }),
      lengths: train.examples.map((e) => e.ids.length),
      seed: config.seed, epochs: config.epochs, totalSteps, batchSize: config.batch_size, gradAccum: config.grad_accum, bucketing: config.bucketing,
      logEvery: config.log_every, maxGradNorm: config.max_grad_norm, evaluate: { everySteps: config.eval.every_steps, eachEpoch: true, atStart: false },
      earlyStopping: config.early_stopping, saveBest: config.save_best, extra,
      objective: {
        progressTerm: 'task_loss',
        hint: 'Try a lower learning rate or guidance weight',
        loss: async (idx, at) => {
          // targets: current on a backend without synchronous reads: the labels come from a forward pass up
          // to the guided layers with a copy of the dropout stream (so the same masks), read before the tape.
          let current: Array<Float32Array | null> | undefined;
          if (labelsBeforeTape(guides)) {
            const { batch, labels } = toBatch(train.examples, idx, tokenizer.padId);
            const pre = model.forward(batch, { training: true, hiddenStates: currentLayers, upTo: Math.max(...currentLayers), rng: model.rng.clone() });
            try {
              current = await currentTargets(guides, pre.hiddenStates, batchPositions(batch.lengths, batch.inputIds.shape[1], config.mode), labels);
            } finally {
              tf.dispose([...pre.hiddenStates.values(), pre.lastHiddenState]);
              disposeBatch(batch);
            }
          }
          return () => {
            const { batch, labels } = toBatch(train.examples, idx, tokenizer.padId);
            const positions = batchPositions(batch.lengths, batch.inputIds.shape[1], config.mode);
            const out = model.forward(batch, { training: true, hiddenStates: guideLayers });
            const task = taskLoss(out.logits!, tf.tensor1d(labels, regression ? 'float32' : 'int32'), regression);
            const guidance = guidanceTerm(guides, out.hiddenStates, positions, labels, { step: at.state.step, totalSteps, epoch: at.epoch, examples: idx, current });
            const loss = guidance.total ? (tf.add(task, guidance.total) as tf.Scalar) : task;
            return { loss, terms: { loss, task_loss: task, ...guidance.values } };
          };
        },
        trainFields: ({ loss, task_loss, ...perGuide }) => ({ loss, task_loss, guidance: perGuide }),
        nonFinite: ({ loss: _total, task_loss, ...perGuide }, update) => `non-finite loss at update ${update} (task loss ${task_loss}${guides.length ? `, guidance ${Object.values(perGuide).join(', ')}` : ''})`,
        evaluate: async (epoch, state) => {
          const ev = await evaluate(model, evalSet.examples, tokenizer.padId, config.task, config.eval.batch_size, guides);
          lastEval = ev.metrics;
          const monitorText = Object.entries(ev.guides).map(([k, m]) => `, ${k} max label ${fmt(m.max_label, 2)} sameness ${fmt(m.sameness, 3)}`).join('');
          log.info(`eval at update ${state.step} (epoch ${epoch}): ${Object.entries(ev.metrics).map(([k, v]) => `${k} ${fmt(v, 4)}`).join(', ')}${monitorText}`);
          state.monitor = { constant_predictor: ev.constantPredictor, guides: ev.guides };
          warnCollapse(state, ev, log);
          const byGuide = (f: keyof GuideMonitor) => Object.fromEntries(Object.entries(ev.guides).map(([k, m]) => [k, m[f]]));
          const record = { eval_loss: ev.loss, ...ev.metrics, constant_predictor: ev.constantPredictor, ...(guides.length ? { max_label: byGuide('max_label'), sameness: byGuide('sameness') } : {}) };
          return { record, score: ev.metrics[primary] ?? null };
        },
        atStart: async (state, record) => {
          state.xsspStart = await trackXssp(0, 0, record);
        },
        afterEpoch: async (epoch, state, record) => {
          const last = epoch === config.epochs || state.step >= totalSteps;
          if (config.track && (config.track.every_epoch || last)) state.xsspLast = (await trackXssp(epoch, state.step, record)) ?? state.xsspLast;
        },
        save: async (tmp) => {
          saveCheckpoint(tmp, model.config, await model.weights());
          tokenizer.save(tmp);
          for (const [i, g] of guides.entries()) await g.probe.save(guideProbeFile(tmp, i), { layer: String(g.config.layer) });
        },
      },
    });
    const verdict = state.monitor ? collapseVerdict(state.monitor.constant_predictor, state.monitor.guides) : null;
    const res: TrainResult = {
      runDir, task: config.task, metric: primary, best: state.best, final: lastEval[primary] ?? null, best_epoch: state.bestEpoch, best_step: state.bestStep,
      final_metrics: lastEval, seed: config.seed, wall_time_s: state.wallTime, backend: currentBackend()?.name ?? tf.getBackend(),
      status, steps: state.step, guidance: guideConfigs.map((g) => ({ ...g })), ...(selection ? { selection } : {}),
      ...(verdict && state.monitor
        ? { collapsed: verdict.collapsed, collapse: { constant_predictor: verdict.constant_predictor, star_tree: verdict.star_tree, first_step: state.firstCollapse, monitors: state.monitor.guides } }
        : {}),
      ...(state.xsspStart || state.xsspLast ? { x_ssp: { before: state.xsspStart, after: state.xsspLast } } : {}),
    };
    if (verdict?.collapsed) log.warn(`the run ended collapsed (${collapseText(verdict)}); results.json records it`);
    if (status !== 'interrupted') writeTrainResult(runDir, res);
    return res;
  } finally {
    optimizer.dispose();
    for (const g of guides) g.probe.dispose();
    model.dispose();
  }
}
