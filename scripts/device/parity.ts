/**
 * The GPU check's parity step (scripts/device/run.sh): on the webgpu backend, the tiny fixture BERTs'
 * hidden states, pooled output, classifier logits, loss and every gradient against the independent
 * PyTorch reference in test/fixtures (the same comparison test/bert.test.ts makes on every backend).
 * Prints one JSON object; exits 1 when any difference is 1e-4 or more (relative to the gradient's
 * scale for gradients).
 *
 *   node parity.js <fixtures folder>
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { adapterText } from '../../src/backend/webgpu.js';
import { loadModel } from '../../src/model/load.js';
import { crossEntropy } from '../../src/train/loss.js';
import { parameterGrads } from '../../src/train/step.js';

const fixtures = process.argv[2] ?? 'test/fixtures';
const ref = JSON.parse(readFileSync(join(fixtures, 'tiny-bert-expected.json'), 'utf8')) as {
  input_ids: number[][]; attention_mask: number[][]; token_type_ids: number[][]; labels: number[]; loss: number;
  logits: number[][]; pooled_output: number[][]; hidden_states: number[][][][]; grad: Record<string, unknown>;
};
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);
const maxDiff = (a: unknown, b: unknown) => {
  const fa = flat(a);
  const fb = flat(b);
  if (fa.length !== fb.length) throw new Error(`size mismatch ${fa.length} vs ${fb.length}`);
  return fa.reduce((m, v, i) => Math.max(m, Math.abs(v - fb[i]!)), 0);
};

const info = await initBackend('webgpu');
const batch = {
  inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
  attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
  tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
};
const hub = (await loadModel(join(fixtures, 'tiny-bert-hub'))).model;
const out = hub.forward(batch, { hiddenStates: 'all' });
const hidden: number[] = [];
for (const [i, h] of out.hiddenStates) hidden[i] = maxDiff(await h.array(), ref.hidden_states[i]);
const pooled = maxDiff(await out.pooled!.array(), ref.pooled_output);
const cls = (await loadModel(join(fixtures, 'tiny-bert-cls'), { head: true })).model;
const logits = maxDiff(await cls.forward(batch, { hiddenStates: 'none' }).logits!.array(), ref.logits);
const labels = tf.tensor1d(ref.labels, 'int32');
const { value, grads } = parameterGrads(cls.params, () => crossEntropy(cls.forward(batch, { hiddenStates: 'none' }).logits!, labels));
const loss = Math.abs((await value.data())[0]! - ref.loss);
const gradRel: Record<string, number> = {};
for (const [name, expected] of Object.entries(ref.grad)) {
  const scale = Math.max(1, ...flat(expected).map(Math.abs));
  gradRel[name] = maxDiff(await grads[name]!.array(), expected) / scale;
}
const worstGrad = Math.max(...Object.values(gradRel));
const pass = Math.max(...hidden, pooled, logits, loss, worstGrad) < 1e-4;
process.stdout.write(JSON.stringify({
  backend: info.name, adapter: info.adapter ? adapterText(info.adapter) : null, tolerance: 1e-4, pass,
  hidden_states_max_abs_diff: hidden, pooled_max_abs_diff: pooled, logits_max_abs_diff: logits, loss_abs_diff: loss,
  grad_max_rel_diff: worstGrad, gradients: Object.keys(gradRel).length,
}) + '\n');
process.exitCode = pass ? 0 : 1;
