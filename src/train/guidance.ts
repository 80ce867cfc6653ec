/**
 * Probe guidance: the tree topological probe's loss at chosen submodules, a term added to the task loss
 * (`guidanceTerm`; the fine-tuning objective in trainer.ts adds it):
 *
 *   loss = task loss + sum over guides of weight(t) * MSE(norms, labels)
 *
 * For each guide, the hidden states of its submodule at the scored positions of the selected examples go
 * through the depth probe (||B h||^2); the labels are the tree labels of those same predictions (greedy
 * ssp, reversed essp, or exact), recomputed every step and carrying no gradient. Gradients reach the encoder
 * (that is the guidance) and, when the probe is trainable, the probe.
 *
 * Scored positions follow the mode: real word pieces only (clean), or every padded position including
 * [CLS], [SEP] and pads (the authors' code). Examples follow `examples`: the positive ones (label 1, the
 * paper's choice for CoLA) or all.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DepthProbe } from '../probe/probe.js';
import { probeMse, targetMetric } from '../probe/objective.js';
import type { GuideConfig, TrainConfig } from './config.js';
import { guidanceWeight } from './schedule.js';
import { TopoprobeError } from '../util/errors.js';
import { scoredPositions, type ProbeMode } from '../probe/positions.js';
import { MEASURE_FILE, measuredProbePath, readMeasureJson, type Selection } from '../util/run-folder.js';

export interface Guide {
  config: GuideConfig;
  probe: DepthProbe;
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

/**
 * One guide's probe loss on a batch: MSE between the probe's predictions at the scored positions of the
 * selected examples and their tree labels. Null when no example of the batch is selected.
 */
export function guideLoss(
  guide: Guide,
  hidden: tf.Tensor3D,
  positions: readonly number[][],
  labels: ArrayLike<number>,
): tf.Scalar | null {
  const chosen = positions.filter((p, b) => p.length > 0 && (guide.config.examples === 'all' || labels[b] === 1));
  if (chosen.length === 0) return null;
  const flat = chosen.flat();
  const [batch, seq, size] = hidden.shape;
  const rows = tf.gather(hidden.reshape([batch * seq, size]), tf.tensor1d(flat, 'int32')) as tf.Tensor2D;
  return probeMse(guide.probe.predict(rows), chosen.map((p) => p.length), guide.config.labels);
}

/**
 * The guidance term of one batch: the sum over guides of weight(step) * the guide's probe loss (null when
 * no guide contributes), and each guide's unweighted probe loss to log, keyed `layer_<submodule>` (0 for a
 * batch without a selected example).
 */
export function guidanceTerm(
  guides: readonly Guide[],
  hiddenStates: ReadonlyMap<number, tf.Tensor3D>,
  positions: readonly number[][],
  labels: ArrayLike<number>,
  step: number,
  totalSteps: number,
): { total: tf.Scalar | null; values: Record<string, number> } {
  let total: tf.Scalar | null = null;
  const values: Record<string, number> = {};
  for (const guide of guides) {
    const key = `layer_${guide.config.layer}`;
    values[key] = 0;
    const term = guideLoss(guide, hiddenStates.get(guide.config.layer)!, positions, labels);
    if (!term) continue;
    values[key] = term.dataSync()[0]!;
    const weight = guidanceWeight(guide.config.schedule, step, totalSteps, guide.config.weight);
    if (weight > 0) {
      const weighted = tf.mul(term, weight) as tf.Scalar;
      total = total ? (tf.add(total, weighted) as tf.Scalar) : weighted;
    }
  }
  return { total, values };
}
