import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { initBackend } from '../src/backend/index.js';
import { loadModel } from '../src/model/load.js';
import { BertModel } from '../src/model/bert.js';
import { Rng } from '../src/util/random.js';
import { saveCheckpoint, loadCheckpoint } from '../src/model/checkpoint.js';
import { parseBertConfig } from '../src/model/config.js';
import { crossEntropy } from '../src/train/loss.js';
import { parameterGrads } from '../src/train/step.js';
import { FIXTURES, referenceOutputs, maxAbsDiff, flatten, testBackends } from './helpers.js';

const ref = referenceOutputs();

function referenceBatch() {
  return {
    inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
    tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
  };
}

for (const backend of await testBackends()) {
  describe(`BERT faithfulness against the torch reference (${backend})`, () => {
    before(async () => {
      await initBackend(backend);
    });

    it('reproduces every hidden state and the pooled output of the hub-layout checkpoint within 1e-4, padding included', async () => {
      const { model } = await loadModel(join(FIXTURES, 'tiny-bert-hub'));
      const batch = referenceBatch();
      const out = model.forward(batch, { hiddenStates: 'all' });
      expect(out.hiddenStates.size).to.equal(ref.hidden_states.length);
      for (const [i, h] of out.hiddenStates) {
        expect(maxAbsDiff(await h.array(), ref.hidden_states[i]), `hidden_states[${i}]`).to.be.below(1e-4);
      }
      expect(maxAbsDiff(await out.pooled!.array(), ref.pooled_output)).to.be.below(1e-4);
      tf.dispose([...out.hiddenStates.values(), out.pooled!, batch.inputIds, batch.attentionMask, batch.tokenTypeIds]);
      model.dispose();
    });

    it('reproduces the classifier logits, the loss and the gradients of the sequence-classification checkpoint', async () => {
      const { model } = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: true });
      const batch = referenceBatch();
      const labels = tf.tensor1d(ref.labels, 'int32');
      const out = model.forward(batch, { hiddenStates: 'none' });
      expect(maxAbsDiff(await out.logits!.array(), ref.logits)).to.be.below(1e-4);
      const { value, grads } = parameterGrads(model.params, () => {
        const o = model.forward(batch, { hiddenStates: 'none' });
        return crossEntropy(o.logits!, labels);
      });
      expect((await value.data())[0]).to.be.closeTo(ref.loss, 1e-5);
      for (const [name, expected] of Object.entries(ref.grad)) {
        const g = grads[name];
        expect(g, name).to.not.equal(undefined);
        const scale = Math.max(...flatten(expected).map(Math.abs));
        expect(maxAbsDiff(await g!.array(), expected), name).to.be.below(1e-4 * Math.max(1, scale));
      }
      tf.dispose([value, ...Object.values(grads), labels, out.lastHiddenState, out.pooled!, out.logits!]);
      tf.dispose([batch.inputIds, batch.attentionMask, batch.tokenTypeIds]);
      model.dispose();
    });
  });
}

describe('BertModel', () => {
  before(async () => {
    await initBackend('cpu');
  });

  const tinyConfig = parseBertConfig({
    vocab_size: 40, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32,
    max_position_embeddings: 16, num_labels: 3, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
  });

  it('matches a central finite difference of the loss for a few parameters', async () => {
    const { model } = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: true });
    const batch = referenceBatch();
    const labels = tf.tensor1d(ref.labels, 'int32');
    const loss = () => tf.tidy(() => crossEntropy(model.forward(batch, { hiddenStates: 'none' }).logits!, labels));
    const { value, grads } = parameterGrads(model.params, loss);
    value.dispose();
    const h = 1e-2;
    const checked: string[] = [];
    for (const name of ['encoder.layer.0.attention.self.value.weight', 'encoder.layer.2.intermediate.dense.weight', 'embeddings.position_embeddings.weight', 'encoder.layer.1.output.LayerNorm.weight', 'pooler.dense.weight']) {
      const v = model.params.get(name)!;
      const g = grads[name]!.dataSync();
      // The entry with the largest gradient, where a float32 difference quotient is most informative.
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
      const original = v.dataSync().slice();
      const at = (delta: number) => {
        const w = original.slice();
        w[k] += delta;
        v.assign(tf.tensor(w, v.shape));
        return loss().dataSync()[0]!;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(original, v.shape));
      expect(fd, `${name}[${k}]`).to.be.closeTo(g[k]!, 2e-3 + 0.02 * Math.abs(g[k]!));
      checked.push(name);
    }
    expect(checked).to.have.length(5);
    tf.dispose([...Object.values(grads), labels, batch.inputIds, batch.attentionMask, batch.tokenTypeIds]);
    model.dispose();
  });

  it('keeps a checkpoint head that fits the task and replaces one that does not', async () => {
    const fits = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: { numLabels: 3, regression: false } });
    const loaded = loadCheckpoint(join(FIXTURES, 'tiny-bert-cls'), { head: true }).weights.get('classifier.weight')!;
    expect(Array.from(fits.model.params.get('classifier.weight')!.dataSync())).to.deep.equal(Array.from(loaded.data));
    const other = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: { numLabels: 1, regression: true } });
    expect(other.model.params.get('classifier.weight')!.shape).to.deep.equal([1, 32]);
    expect(other.model.config.problem_type).to.equal('regression');
    // The encoder is the checkpoint's either way.
    const w = 'encoder.layer.1.output.dense.weight';
    expect(Array.from(other.model.params.get(w)!.dataSync())).to.deep.equal(Array.from(fits.model.params.get(w)!.dataSync()));
    fits.model.dispose();
    other.model.dispose();
  });

  it('returns only the hidden states asked for and frees the rest', () => {
    const model = BertModel.init(tinyConfig, { seed: 3 });
    const ids = tf.tensor2d([[2, 5, 6, 3]], undefined, 'int32');
    const mask = tf.ones([1, 4], 'int32') as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const all = model.forward({ inputIds: ids, attentionMask: mask }, { hiddenStates: 'all' });
    const some = model.forward({ inputIds: ids, attentionMask: mask }, { hiddenStates: [1], pool: false });
    expect([...all.hiddenStates.keys()]).to.deep.equal([0, 1, 2]);
    expect([...some.hiddenStates.keys()]).to.deep.equal([1]);
    expect(maxAbsDiff(some.hiddenStates.get(1)!.arraySync(), all.hiddenStates.get(1)!.arraySync())).to.equal(0);
    tf.dispose([...all.hiddenStates.values(), all.pooled!, ...some.hiddenStates.values(), some.lastHiddenState]);
    expect(tf.memory().numTensors).to.equal(before);
    expect(() => model.forward({ inputIds: ids, attentionMask: mask }, { hiddenStates: [3] })).to.throw(/submodule 3 does not exist \(valid: 0\.\.2\)/);
    tf.dispose([ids, mask]);
    model.dispose();
  });

  it('ignores padding: a padded sequence gives the same real-token states as the same sequence alone', () => {
    const model = BertModel.init(tinyConfig, { seed: 4 });
    const alone = model.forward({ inputIds: tf.tensor2d([[2, 7, 8, 3]], undefined, 'int32'), attentionMask: tf.ones([1, 4]) as tf.Tensor2D });
    const padded = model.forward({
      inputIds: tf.tensor2d([[2, 7, 8, 3, 0, 0], [2, 9, 9, 9, 9, 3]], undefined, 'int32'),
      attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]),
    });
    const a = alone.lastHiddenState.arraySync()[0]!;
    const p = padded.lastHiddenState.arraySync()[0]!.slice(0, 4);
    expect(maxAbsDiff(a, p)).to.be.below(1e-5);
    model.dispose();
  });

  it('is initialised the same for the same seed and differently for another', async () => {
    const a = await BertModel.init(tinyConfig, { seed: 7, head: true }).weights();
    const b = await BertModel.init(tinyConfig, { seed: 7, head: true }).weights();
    const c = await BertModel.init(tinyConfig, { seed: 8, head: true }).weights();
    const w = 'encoder.layer.1.attention.self.query.weight';
    expect(Array.from(a.get(w)!.data)).to.deep.equal(Array.from(b.get(w)!.data));
    expect(Array.from(a.get(w)!.data)).to.not.deep.equal(Array.from(c.get(w)!.data));
    // Hugging Face's init: LayerNorm weight 1, biases 0, the [PAD] row of the word embeddings 0, std ~ initializer_range.
    expect(Array.from(a.get('embeddings.LayerNorm.weight')!.data).every((x) => x === 1)).to.equal(true);
    expect(Array.from(a.get('classifier.bias')!.data).every((x) => x === 0)).to.equal(true);
    expect(Array.from(a.get('embeddings.word_embeddings.weight')!.data.slice(0, 16)).every((x) => x === 0)).to.equal(true);
    const big = Array.from((await BertModel.init({ ...tinyConfig, hidden_size: 64, num_attention_heads: 2 }, { seed: 1 }).weights()).get('encoder.layer.0.intermediate.dense.weight')!.data);
    const std = Math.sqrt(big.reduce((s, x) => s + x * x, 0) / big.length);
    expect(std).to.be.closeTo(0.02, 0.001);
  });

  it('drops out in training mode, deterministically for the same seed, and not at evaluation', () => {
    const cfg = { ...tinyConfig, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
    const inputs = { inputIds: tf.tensor2d([[2, 7, 8, 3]], undefined, 'int32'), attentionMask: tf.ones([1, 4]) as tf.Tensor2D };
    const run = (seed: number, training: boolean) => {
      const m = BertModel.init(cfg, { seed: 1 });
      m.rng = new Rng(seed);
      const out = m.forward(inputs, { training }).lastHiddenState.arraySync();
      m.dispose();
      return out;
    };
    expect(maxAbsDiff(run(1, true), run(1, true))).to.equal(0);
    expect(maxAbsDiff(run(1, true), run(2, true))).to.be.above(1e-3);
    expect(maxAbsDiff(run(1, false), run(2, false))).to.equal(0);
  });

  it('saves a checkpoint with Hugging Face names that loads back to the same outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-bert-'));
    try {
      const model = BertModel.init(tinyConfig, { seed: 5, head: true });
      saveCheckpoint(dir, model.config, await model.weights());
      const loaded = loadCheckpoint(dir, { head: true });
      expect(loaded.headLoaded).to.equal(true);
      const again = BertModel.fromWeights(loaded.config, loaded.weights, { head: true });
      const inputs = { inputIds: tf.tensor2d([[2, 7, 8, 3]], undefined, 'int32'), attentionMask: tf.ones([1, 4]) as tf.Tensor2D };
      expect(maxAbsDiff(model.forward(inputs).logits!.arraySync(), again.forward(inputs).logits!.arraySync())).to.equal(0);
      model.dispose();
      again.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads with a dropout override in a copy of the config, leaving the source (and a later load) as it was', async () => {
    const plain = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: true });
    const before = { ...plain.model.config };
    const dropped = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: true, dropout: 0.25 });
    expect(dropped.model.config.hidden_dropout_prob).to.equal(0.25);
    expect(dropped.model.config.attention_probs_dropout_prob).to.equal(0.25);
    expect(plain.model.config).to.deep.equal(before);
    const again = await loadModel(join(FIXTURES, 'tiny-bert-cls'), { head: true, dropout: null });
    expect(again.model.config).to.deep.equal(before);
    const tiny = await loadModel('builtin:tiny', { head: { numLabels: 2, regression: false }, dropout: 0 });
    const tinyAgain = await loadModel('builtin:tiny', { head: { numLabels: 2, regression: false } });
    expect(tiny.model.config.hidden_dropout_prob).to.equal(0);
    expect(tinyAgain.model.config.hidden_dropout_prob).to.be.greaterThan(0);
    for (const m of [plain, dropped, again, tiny, tinyAgain]) m.model.dispose();
  });
});
