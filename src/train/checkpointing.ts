/**
 * What the trainers (fine-tuning and pretraining) share to make a run resumable: a checkpoint folder
 * replaced atomically, the optimizer's moments in safetensors, and metrics.jsonl cut back to the
 * update a checkpoint covers.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import type { AdamW } from './optimizer.js';
import { readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { writeFileAtomic } from '../util/fs.js';

/** Writes a folder next to `dir` and renames it into place (the previous one removed after). */
export function replaceDir(dir: string, write: (tmp: string) => void): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  write(tmp);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Saves AdamW's step and moments (`m.<name>`, `v.<name>`). */
export function saveOptimizerState(path: string, optimizer: AdamW): void {
  const { step, m, v } = optimizer.state();
  const moments = [...m.entries()].flatMap(([name, t]) => [
    { name: `m.${name}`, shape: [...t.shape], data: (t.dataSync() as Float32Array).slice() },
    { name: `v.${name}`, shape: [...t.shape], data: (v.get(name)!.dataSync() as Float32Array).slice() },
  ]);
  writeSafetensors(path, moments, { metadata: { step: String(step) } });
}

/** Restores what `saveOptimizerState` wrote. */
export function loadOptimizerState(path: string, optimizer: AdamW): void {
  const { tensors, metadata } = readSafetensors(path);
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  for (const [name, t] of tensors) (name.startsWith('m.') ? m : v).set(name.slice(2), tf.tensor(t.data as Float32Array, t.shape));
  optimizer.load({ step: Number(metadata.step), m, v });
  tf.dispose([...m.values(), ...v.values()]);
}

/** Keeps the metrics.jsonl lines of updates up to `step`; later lines belong to an interrupted run. */
export function trimMetrics(metricsPath: string, step: number): void {
  if (!existsSync(metricsPath)) return;
  const kept = readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= step);
  writeFileAtomic(metricsPath, kept.map((l) => l + '\n').join(''));
}
