/**
 * Probe guidance: the tree topological probe's loss at chosen submodules, a term added to the task loss
 * (`guidanceTerm`; the fine-tuning objective in trainer.ts adds it):
 *
 *   loss = task loss + sum over guides of weight(t) * MSE(norms, labels)
 *
 * For each guide, the hidden states of its submodule at the scored positions of the selected examples go
 * through the depth probe (||B h||^2); the labels are the tree labels (greedy ssp, reversed essp, or exact)
 * of those same predictions, recomputed every step and carrying no gradient (`targets: current`, the
 * paper's), or of the pretrained encoder's predictions under the starting probe, computed once before
 * fine-tuning (`targets: pretrained`, see `fixedTargets`). Gradients reach the encoder (that is the
 * guidance) and, when the probe is trainable, the probe.
 *
 * Why `pretrained` exists: labels read off the probe's own outputs make a loss with a trivial minimum, the
 * star tree (one token at depth 1, every other at 2), which the encoder can reach by making a sentence's
 * states nearly one vector; on builtin:mini it does so within a few hundred updates and the classifier then
 * predicts one class (src/train/monitor.ts watches for it). Fixed labels can only be met by keeping the
 * measured depths apart.
 *
 * Scored positions follow the mode: real word pieces only (clean), or every padded position including
 * [CLS], [SEP] and pads (the authors' code). Examples follow `examples`: the positive ones (label 1, the
 * paper's choice for CoLA) or all.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DepthProbe } from '../probe/probe.js';
import { groupLabels, labelMse, probeMse, targetLabels, targetMetric } from '../probe/objective.js';
import { syncReads } from '../backend/webgpu.js';
import type { GuideConfig, TrainConfig } from './config.js';
import { guidanceWeight } from './schedule.js';
import { TopoprobeError } from '../util/errors.js';
import { scoredPositions, type ProbeMode } from '../probe/positions.js';
import { MEASURE_FILE, measuredProbePath, readMeasureJson, type Selection } from '../util/run-folder.js';

export interface Guide {
  config: GuideConfig;
  probe: DepthProbe;
  /** With `targets: pretrained`: each training example's fixed labels at its scored positions, by example index. */
  fixed?: Map<number, Float32Array>;
}

export type { Selection };

/** Expands `select:` into guides using a measure run's results and probes. */
export function selectGuides(config: TrainConfig): { guides: GuideConfig[]; selection?: Selection } {
  if (!config.select) return { guides: config.guidance };
  const sel = config.select;
  const from = resolve(sel.from);
  const measured = readMeasureJson(from, 'select.from');
  const ranked = measured.rows
    .filter((r) => r[sel.by] !== null)
    .map((r) => ({ layer: r.submodule, value: r[sel.by]! }))
    .sort((a, b) => a.value - b.value || a.layer - b.layer);
  if (ranked.length < sel.best) {
    throw new TopoprobeError(`select.best: ${sel.best} submodules asked for, but ${join(from, MEASURE_FILE)} has ${sel.by} for only ${ranked.length}`);
  }
  const chosen = ranked.slice(0, sel.best);
  const guides = chosen.map(({ layer }) => ({
    layer,
    weight: sel.weight,
    labels: sel.labels,
    probe: measuredProbePath(from, layer, sel.by),
    trainable: sel.trainable,
    examples: sel.examples,
    targets: sel.targets,
    schedule: sel.schedule,
  }));
  return { guides: [...config.guidance, ...guides], selection: { from, by: sel.by, chosen } };
}

/**
 * The probe file a guide names: a safetensors file as given, or, for a measure run folder (or a model
 * folder that carries its measured probes, like models/mini), that run's X_ssp probe of the guided
 * submodule (X_essp with `labels: essp`), so one setting follows a sweep's layer axis.
 */
export function guideProbePath(g: GuideConfig, index: number): string {
  if (!existsSync(g.probe)) throw new TopoprobeError(`guidance[${index}].probe: ${g.probe} not found`);
  if (!statSync(g.probe).isDirectory()) return g.probe;
  const file = measuredProbePath(g.probe, g.layer, targetMetric(g.labels));
  if (!existsSync(file)) throw new TopoprobeError(`guidance[${index}].probe: ${g.probe} is a folder without ${file} (expected a topoprobe measure run that measured submodule ${g.layer})`);
  return file;
}

/** Builds each guide's probe: loaded from its file (see guideProbePath), or fresh (rank hidden/2, U(-0.05, 0.05)). */
export function buildGuides(guides: readonly GuideConfig[], hidden: number, numLayers: number, seed: number): Guide[] {
  return guides.map((g, i) => {
    if (g.layer > numLayers) {
      throw new TopoprobeError(`guidance[${i}].layer: ${g.layer} does not exist (this model has submodules 0..${numLayers})`);
    }
    if (g.probe === 'fresh') return { config: g, probe: new DepthProbe({ hidden, seed: seed + 1000 + i }) };
    const path = guideProbePath(g, i);
    const { probe } = DepthProbe.load(path);
    if (probe.hidden !== hidden) {
      probe.dispose();
      throw new TopoprobeError(`guidance[${i}].probe: ${path} is for hidden size ${probe.hidden}, the model has ${hidden}`);
    }
    return { config: g, probe };
  });
}

/** Positions (flat b * seq + t) scored in each example of a batch padded to `seq`. */
export function batchPositions(lengths: readonly number[], seq: number, mode: ProbeMode): number[][] {
  return lengths.map((len, b) => scoredPositions(len, seq, mode).map((t) => b * seq + t));
}

/** Whether a guide's probe term sees an example with this task label. */
export const guideSees = (guide: Guide, label: number) => guide.config.examples === 'all' || label === 1;

/**
 * The fixed labels of `targets: pretrained`: for each sentence (an example index, and the probe's
 * predicted norms at its scored positions under the pretrained encoder and the starting probe), the tree
 * labels of the guide's target.
 */
export function fixedTargets(guide: Guide, sentences: Iterable<{ index: number; norms: ArrayLike<number> }>): Map<number, Float32Array> {
  const out = new Map<number, Float32Array>();
  for (const { index, norms } of sentences) out.set(index, Float32Array.from(targetLabels(guide.config.labels, norms)));
  return out;
}

/** The selected examples of a batch (by position in it) and their scored positions. */
function chosenPositions(guide: Guide, positions: readonly number[][], labels: ArrayLike<number>): Array<{ p: readonly number[]; b: number }> {
  return positions.map((p, b) => ({ p, b })).filter(({ p, b }) => p.length > 0 && guideSees(guide, labels[b]!));
}

/** The probe's predictions at the scored positions of the chosen examples, in order. */
function predictAt(guide: Guide, hidden: tf.Tensor3D, chosen: ReadonlyArray<{ p: readonly number[] }>): tf.Tensor1D {
  const flat = chosen.flatMap(({ p }) => p);
  const [batch, seq, size] = hidden.shape;
  const rows = tf.gather(hidden.reshape([batch * seq, size]), tf.tensor1d(flat, 'int32')) as tf.Tensor2D;
  return guide.probe.predict(rows);
}

/**
 * Whether `targets: current` labels are read before the gradient tape (`currentTargets`) rather than
 * inside it: on a backend without synchronous reads (webgpu), where the loss cannot read the predictions
 * mid-tape. Both give the same labels: the hidden states come from the same weights and dropout masks.
 */
export function labelsBeforeTape(guides: readonly Guide[]): boolean {
  return !syncReads() && guides.some((g) => !g.fixed);
}

/**
 * The labels `targets: current` would compute inside the tape, computed from hidden states of a forward
 * pass run before it (with the same dropout masks): one flat array per guide (null for a guide with fixed
 * targets, or with no selected example in the batch).
 */
export async function currentTargets(
  guides: readonly Guide[],
  hiddenStates: ReadonlyMap<number, tf.Tensor3D>,
  positions: readonly number[][],
  labels: ArrayLike<number>,
): Promise<Array<Float32Array | null>> {
  const out: Array<Float32Array | null> = [];
  for (const guide of guides) {
    const chosen = chosenPositions(guide, positions, labels);
    if (guide.fixed || chosen.length === 0) {
      out.push(null);
      continue;
    }
    const pred = tf.tidy(() => predictAt(guide, hiddenStates.get(guide.config.layer)!, chosen));
    const values = await pred.data();
    pred.dispose();
    out.push(groupLabels(guide.config.labels, values, chosen.map(({ p }) => p.length)));
  }
  return out;
}

/**
 * One guide's probe loss on a batch: MSE between the probe's predictions at the scored positions of the
 * selected examples and their labels (tree labels of the current predictions, given as `current` when
 * they were computed before the tape, or the fixed ones of the examples `examples[b]`). Null when no
 * example of the batch is selected.
 */
export function guideLoss(
  guide: Guide,
  hidden: tf.Tensor3D,
  positions: readonly number[][],
  labels: ArrayLike<number>,
  examples?: readonly number[],
  current?: Float32Array | null,
): tf.Scalar | null {
  const chosen = chosenPositions(guide, positions, labels);
  if (chosen.length === 0) return null;
  const pred = predictAt(guide, hidden, chosen);
  if (!guide.fixed && current) return labelMse(pred, current);
  if (!guide.fixed) return probeMse(pred, chosen.map(({ p }) => p.length), guide.config.labels);
  const flat = chosen.flatMap(({ p }) => p);
  if (!examples) throw new Error('guideLoss: fixed targets need the example indices of the batch');
  const target = new Float32Array(flat.length);
  let at = 0;
  for (const { p, b } of chosen) {
    const fixed = guide.fixed.get(examples[b]!);
    if (!fixed || fixed.length !== p.length) {
      throw new TopoprobeError(`guidance (layer ${guide.config.layer}): no fixed labels of ${p.length} positions for training example ${examples[b]}`);
    }
    target.set(fixed, at);
    at += p.length;
  }
  return labelMse(pred, target);
}

/**
 * The guidance term of one batch: the sum over guides of weight(step, epoch) * the guide's probe loss
 * (null when no guide contributes), and each guide's unweighted probe loss to log, keyed
 * `layer_<submodule>` (a scalar; 0 for a batch without a selected example). `at.examples` are the batch's
 * example indices (needed by fixed targets); `at.current` the labels of `currentTargets`, when they were
 * computed before the tape.
 */
export function guidanceTerm(
  guides: readonly Guide[],
  hiddenStates: ReadonlyMap<number, tf.Tensor3D>,
  positions: readonly number[][],
  labels: ArrayLike<number>,
  at: { step: number; totalSteps: number; epoch: number; examples?: readonly number[]; current?: ReadonlyArray<Float32Array | null> },
): { total: tf.Scalar | null; values: Record<string, tf.Scalar> } {
  let total: tf.Scalar | null = null;
  const values: Record<string, tf.Scalar> = {};
  for (const [i, guide] of guides.entries()) {
    const key = `layer_${guide.config.layer}`;
    const term = guideLoss(guide, hiddenStates.get(guide.config.layer)!, positions, labels, at.examples, at.current?.[i]);
    values[key] = term ?? tf.scalar(0);
    if (!term) continue;
    const weight = guidanceWeight(guide.config.schedule, at.step, at.totalSteps, guide.config.weight, undefined, at.epoch);
    if (weight > 0) {
      const weighted = tf.mul(term, weight) as tf.Scalar;
      total = total ? (tf.add(total, weighted) as tf.Scalar) : weighted;
    }
  }
  return { total, values };
}
