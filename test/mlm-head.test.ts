import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { BertModel } from '../src/model/bert.js';
import { parseBertConfig, type BertConfig } from '../src/model/config.js';
import { MlmHead, mlmLoss, mlmHeadShapes, MLM_HEAD_PREFIX } from '../src/model/mlm-head.js';
import { loadCheckpoint, saveCheckpoint, type WeightMap } from '../src/model/checkpoint.js';
import { readSafetensors, writeSafetensors } from '../src/model/safetensors.js';
import { parameterGrads } from '../src/train/step.js';
import { Rng } from '../src/util/random.js';
import { expectError, testBackends } from './helpers.js';

const V = 20;
const H = 8;
const config: BertConfig = parseBertConfig({
  model_type: 'bert', vocab_size: V, hidden_size: H, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16,
  max_position_embeddings: 16, layer_norm_eps: 1e-5, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
});

const random = (rng: Rng, n: number, scale: number, offset = 0) => Float32Array.from({ length: n }, () => offset + rng.normal() * scale);

/** Head weights far from the initialisation (LayerNorm not 1/0, biases not 0), so every parameter matters. */
function headWeights(seed: number): WeightMap {
  const rng = new Rng(seed);
  return new Map([
    ['cls.predictions.transform.dense.weight', { shape: [H, H], data: random(rng, H * H, 0.4) }],
    ['cls.predictions.transform.dense.bias', { shape: [H], data: random(rng, H, 0.2) }],
    ['cls.predictions.transform.LayerNorm.weight', { shape: [H], data: random(rng, H, 0.3, 1) }],
    ['cls.predictions.transform.LayerNorm.bias', { shape: [H], data: random(rng, H, 0.1) }],
    ['cls.predictions.bias', { shape: [V], data: random(rng, V, 0.2) }],
  ]);
}

/** A model whose word embeddings are O(0.5), so the decoder's logits spread widely. */
function makeModel(seed: number): BertModel {
  const model = BertModel.init(config, { seed });
  const e = model.params.get('embeddings.word_embeddings.weight')!;
  e.assign(tf.tensor2d(random(new Rng(seed + 100), V * H, 0.5), [V, H]));
  return model;
}

/** erf to ~1e-15 for |x| < 4 (Taylor series), else ±1. */
function erf(x: number): number {
  if (Math.abs(x) >= 4) return Math.sign(x) * (1 - 1e-8);
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const arr = (t: tf.Tensor) => Array.from(t.dataSync());

/**
 * The head in plain Float64: dense -> exact GELU -> LayerNorm -> x E^T + b.
 * Returns the transformed rows and the logits.
 */
function reference(rows: number[][], w: WeightMap, E: number[]): { transformed: number[][]; logits: number[][] } {
  const get = (n: string) => Array.from(w.get(MLM_HEAD_PREFIX + n)!.data);
  const W = get('transform.dense.weight');
  const b = get('transform.dense.bias');
  const gamma = get('transform.LayerNorm.weight');
  const beta = get('transform.LayerNorm.bias');
  const bias = get('bias');
  const transformed = rows.map((x) => {
    const d = Array.from({ length: H }, (_, o) => b[o]! + x.reduce((s, xi, i) => s + W[o * H + i]! * xi, 0));
    const g = d.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const mean = g.reduce((s, v) => s + v, 0) / H;
    const variance = g.reduce((s, v) => s + (v - mean) ** 2, 0) / H;
    return g.map((v, i) => ((v - mean) / Math.sqrt(variance + config.layer_norm_eps)) * gamma[i]! + beta[i]!);
  });
  const logits = transformed.map((t) => Array.from({ length: V }, (_, v) => bias[v]! + t.reduce((s, ti, i) => s + ti * E[v * H + i]!, 0)));
  return { transformed, logits };
}

const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

function randomRows(seed: number, n: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Array.from(random(rng, H, 1)));
}

const backends = await testBackends();

describe('masked-LM head', () => {
  for (const backend of backends) {
    it(`logits equal dense -> GELU(erf) -> LayerNorm -> x E^T + b computed in Float64 (${backend})`, async () => {
      await initBackend(backend);
      const model = makeModel(1);
      const w = headWeights(2);
      const head = MlmHead.create(model, w);
      const rows = randomRows(3, 6);
      const x = tf.tensor2d(rows);
      const logits = head.logits(x);
      expect(logits.shape).to.deep.equal([6, V]);
      const ref = reference(rows, w, Array.from(await model.params.get('embeddings.word_embeddings.weight')!.data()));
      const got = Array.from(await logits.data());
      const want = ref.logits.flat();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst).to.be.below(1e-4);
      // The logits are not trivially small: the comparison has something to compare.
      expect(Math.max(...want.map(Math.abs))).to.be.above(1);
      tf.dispose([x, logits]);
      head.dispose();
      model.dispose();
    });
  }

  describe('on the cpu backend', () => {
    before(async () => {
      await initBackend('cpu');
    });

    it('mlmLoss is the mean cross-entropy at the flattened positions, and predictions are the argmax', () => {
      const model = makeModel(4);
      const w = headWeights(5);
      const head = MlmHead.create(model, w);
      const batch = 2;
      const seq = 5;
      const flatRows = randomRows(6, batch * seq);
      const hidden = tf.tensor3d([flatRows.slice(0, seq), flatRows.slice(seq)]);
      const positions = [1, 3, 6, 9];
      const labels = [7, 0, 19, 7];
      const flat = tf.tensor1d(positions, 'int32');
      const gold = tf.tensor1d(labels, 'int32');
      const { loss, predictions } = mlmLoss(head, hidden, flat, gold);
      const ref = reference(positions.map((p) => flatRows[p]!), w, arr(model.params.get('embeddings.word_embeddings.weight')!));
      const want = ref.logits.reduce((s, z, i) => s - Math.log(softmax(z)[labels[i]!]!), 0) / labels.length;
      expect(loss.shape).to.deep.equal([]);
      expect(loss.dataSync()[0]).to.be.closeTo(want, 1e-4);
      expect(arr(predictions)).to.deep.equal(ref.logits.map((z) => z.indexOf(Math.max(...z))));
      tf.dispose([hidden, flat, gold, loss, predictions]);
      head.dispose();
      model.dispose();
    });

    it('the decoder is the word-embedding table: the gradient reaches it, as (softmax - onehot) x transformed', () => {
      const model = makeModel(7);
      const w = headWeights(8);
      const head = MlmHead.create(model, w);
      // Constant hidden states: the only path from the loss to the embedding table is the decoder.
      const rows = randomRows(9, 4);
      const hidden = tf.tensor3d([rows]);
      const labels = [3, 11, 3, 16];
      const flat = tf.tensor1d([0, 1, 2, 3], 'int32');
      const gold = tf.tensor1d(labels, 'int32');
      const E = model.params.get('embeddings.word_embeddings.weight')!;
      const bias = head.params.get('cls.predictions.bias')!;
      const { value, grads } = tf.variableGrads(() => {
        const out = mlmLoss(head, hidden, flat, gold);
        out.predictions.dispose();
        return out.loss;
      }, [E, bias]);
      const ref = reference(rows, w, arr(E));
      const probs = ref.logits.map(softmax);
      const m = labels.length;
      const gE = arr(grads[E.name]!);
      const gBias = arr(grads[bias.name]!);
      let worst = 0;
      for (let v = 0; v < V; v++) {
        const coef = probs.map((p, i) => (p[v]! - (labels[i] === v ? 1 : 0)) / m);
        worst = Math.max(worst, Math.abs(gBias[v]! - coef.reduce((a, b) => a + b, 0)));
        for (let k = 0; k < H; k++) worst = Math.max(worst, Math.abs(gE[v * H + k]! - coef.reduce((s, c, i) => s + c * ref.transformed[i]![k]!, 0)));
      }
      expect(worst).to.be.below(1e-5);
      // A label row's gradient is clearly non-zero.
      expect(Math.max(...gE.slice(11 * H, 12 * H).map(Math.abs))).to.be.above(1e-3);
      tf.dispose([hidden, flat, gold, value, ...Object.values(grads)]);
      head.dispose();
      model.dispose();
    });

    it('through the encoder, a row used only as a label gets exactly its decoder gradient; an input row gets more', () => {
      const model = makeModel(10);
      const w = headWeights(11);
      const head = MlmHead.create(model, w);
      const ids = [[2, 5, 6, 4, 3]];
      const batch = { inputIds: tf.tensor2d(ids, [1, 5], 'int32'), attentionMask: tf.ones([1, 5], 'int32') as tf.Tensor2D };
      const positions = [1, 3];
      const labels = [13, 6]; // 13 is never an input; 6 is an input (at position 2)
      const flat = tf.tensor1d(positions, 'int32');
      const gold = tf.tensor1d(labels, 'int32');
      const params = new Map([...model.params, ...head.params]);
      let lastHidden: number[][] = [];
      const { value, grads } = parameterGrads(params, () => {
        const out = model.forward(batch, { hiddenStates: 'none', pool: false });
        lastHidden = (out.lastHiddenState.arraySync() as number[][][])[0]!;
        const { loss, predictions } = mlmLoss(head, out.lastHiddenState, flat, gold);
        predictions.dispose();
        return loss;
      });
      const gE = arr(grads['embeddings.word_embeddings.weight']!);
      const ref = reference(positions.map((p) => lastHidden[p]!), w, arr(model.params.get('embeddings.word_embeddings.weight')!));
      const probs = ref.logits.map(softmax);
      const decoderGrad = (v: number) =>
        Array.from({ length: H }, (_, k) => probs.reduce((s, p, i) => s + ((p[v]! - (labels[i] === v ? 1 : 0)) / labels.length) * ref.transformed[i]![k]!, 0));
      const diff = (v: number) => Math.max(...decoderGrad(v).map((g, k) => Math.abs(g - gE[v * H + k]!)));
      for (const v of [13, 0, 19]) expect(diff(v), `row ${v}`).to.be.below(1e-5); // not inputs: decoder path only
      expect(Math.max(...gE.slice(13 * H, 14 * H).map(Math.abs))).to.be.above(1e-3);
      for (const v of [5, 6, 4]) expect(diff(v), `row ${v}`).to.be.above(1e-4); // inputs: the lookup adds its part
      tf.dispose([value, flat, gold, batch.inputIds, batch.attentionMask, ...Object.values(grads)]);
      head.dispose();
      model.dispose();
    });

    it('changing one embedding row changes exactly that column of the logits', async () => {
      const model = makeModel(12);
      const head = MlmHead.create(model, headWeights(13));
      const x = tf.tensor2d(randomRows(14, 3));
      const logitsOf = () => tf.tidy(() => head.logits(x).arraySync());
      const before = logitsOf();
      const E = model.params.get('embeddings.word_embeddings.weight')!;
      const data = arr(E);
      for (let k = 0; k < H; k++) data[9 * H + k]! += 0.5;
      E.assign(tf.tensor2d(data, [V, H]));
      const after = logitsOf();
      for (let i = 0; i < 3; i++) {
        for (let v = 0; v < V; v++) {
          if (v === 9) expect(Math.abs(after[i]![v]! - before[i]![v]!)).to.be.above(1e-3);
          else expect(after[i]![v]).to.be.closeTo(before[i]![v]!, 1e-6);
        }
      }
      x.dispose();
      head.dispose();
      model.dispose();
    });

    it('a fresh head is initialised as Hugging Face does, seeded; wrong shapes are rejected', async () => {
      const model = BertModel.init(config, { seed: 0 });
      const fresh = async (seed: number) => {
        const head = MlmHead.create(model, new Map(), seed);
        const w = (await head.weights());
        head.dispose();
        return w;
      };
      const [a, b, c] = [await fresh(3), await fresh(3), await fresh(4)];
      expect([...a.keys()]).to.deep.equal([...mlmHeadShapes(config).keys()]);
      expect(a).to.deep.equal(b);
      expect(Array.from(a.get('cls.predictions.transform.dense.weight')!.data)).to.not.deep.equal(Array.from(c.get('cls.predictions.transform.dense.weight')!.data));
      const dense = Array.from(a.get('cls.predictions.transform.dense.weight')!.data);
      const std = Math.sqrt(dense.reduce((s, v) => s + v * v, 0) / dense.length);
      expect(std).to.be.within(0.015, 0.025); // initializer_range 0.02
      expect(Array.from(a.get('cls.predictions.transform.LayerNorm.weight')!.data).every((v) => v === 1)).to.equal(true);
      for (const n of ['cls.predictions.transform.dense.bias', 'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.bias']) {
        expect(Array.from(a.get(n)!.data).every((v) => v === 0), n).to.equal(true);
      }
      const bad = headWeights(1);
      bad.set('cls.predictions.bias', { shape: [V + 1], data: new Float32Array(V + 1) });
      expectError(() => MlmHead.create(model, bad), 'cls.predictions.bias', `[${V + 1}]`, `[${V}]`);
      model.dispose();
    });
  });

  describe('in checkpoints', () => {
    let scratch: string;
    before(async () => {
      await initBackend('cpu');
    });
    beforeEach(() => {
      scratch = mkdtempSync(join(tmpdir(), 'topoprobe-mlm-'));
    });
    afterEach(() => rmSync(scratch, { recursive: true, force: true }));

    it('saves as BertForMaskedLM (bert.-prefixed encoder, cls.predictions.*, no decoder copy) and loads back exactly', async () => {
      const model = makeModel(20);
      const head = MlmHead.create(model, headWeights(21));
      saveCheckpoint(scratch, model.config, (await model.weights()), { mlmHead: (await head.weights()) });
      const json = JSON.parse(readFileSync(join(scratch, 'config.json'), 'utf8')) as { architectures: string[]; vocab_size: number };
      expect(json.architectures).to.deep.equal(['BertForMaskedLM']);
      expect(json.vocab_size).to.equal(V);
      const names = [...readSafetensors(join(scratch, 'model.safetensors')).tensors.keys()];
      const headNames = [...mlmHeadShapes(config).keys()];
      expect(names.filter((n) => n.startsWith('cls.')).sort()).to.deep.equal([...headNames].sort());
      const encoder = names.filter((n) => !n.startsWith('cls.'));
      expect(encoder).to.have.length(model.params.size);
      for (const n of encoder) expect(n).to.match(/^bert\./);
      expect(names).to.include('bert.embeddings.word_embeddings.weight');

      const withHead = loadCheckpoint(scratch, { mlmHead: true });
      expect(withHead.weights).to.deep.equal((await model.weights()));
      expect(withHead.mlmHead).to.deep.equal((await head.weights()));
      expect(withHead.ignored).to.deep.equal([]);
      const rebuilt = BertModel.fromWeights(withHead.config, withHead.weights);
      const head2 = MlmHead.create(rebuilt, withHead.mlmHead);
      const x = tf.tensor2d(randomRows(22, 2));
      expect(tf.tidy(() => head2.logits(x).arraySync())).to.deep.equal(tf.tidy(() => head.logits(x).arraySync()));

      // Without mlmHead the encoder still loads; cls.* is dropped.
      const plain = loadCheckpoint(scratch);
      expect(plain.weights).to.deep.equal((await model.weights()));
      expect(plain.mlmHead.size).to.equal(0);
      expect([...plain.ignored].sort()).to.deep.equal([...headNames].sort());
      x.dispose();
      head.dispose();
      head2.dispose();
      rebuilt.dispose();
      model.dispose();
    });

    it('reads legacy gamma/beta head names, ignoring the NSP head and a stored decoder copy', async () => {
      const model = makeModel(30);
      const head = MlmHead.create(model, headWeights(31));
      const weights = (await head.weights());
      const tensors = [
        ...[...(await model.weights())].map(([name, t]) => ({ name: `bert.${name}`.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'), ...t })),
        ...[...weights].map(([name, t]) => ({ name: name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'), ...t })),
        { name: 'cls.predictions.decoder.weight', shape: [V, H], data: new Float32Array(V * H) },
        { name: 'cls.seq_relationship.weight', shape: [2, H], data: new Float32Array(2 * H) },
        { name: 'cls.seq_relationship.bias', shape: [2], data: new Float32Array(2) },
      ];
      expect(tensors.map((t) => t.name)).to.include('cls.predictions.transform.LayerNorm.gamma');
      writeSafetensors(join(scratch, 'model.safetensors'), tensors, { metadata: { format: 'pt' } });
      saveCheckpoint(join(scratch, 'cfg'), model.config, (await model.weights())); // just for its config.json
      const cfg = readFileSync(join(scratch, 'cfg', 'config.json'), 'utf8');
      rmSync(join(scratch, 'cfg'), { recursive: true });
      writeFileSync(join(scratch, 'config.json'), cfg);

      const loaded = loadCheckpoint(scratch, { mlmHead: true });
      expect(loaded.mlmHead).to.deep.equal(weights);
      expect(loaded.weights).to.deep.equal((await model.weights()));
      expect([...loaded.ignored].sort()).to.deep.equal(['cls.predictions.decoder.weight', 'cls.seq_relationship.bias', 'cls.seq_relationship.weight']);
      head.dispose();
      model.dispose();
    });

    it('refuses an incomplete head, and a classifier together with a masked-LM head', async () => {
      const model = makeModel(40);
      const head = headWeights(41);
      head.delete('cls.predictions.bias');
      const encoder = await model.weights();
      expectError(() => saveCheckpoint(scratch, model.config, encoder, { mlmHead: head }), 'cannot save the masked-LM head', 'missing', 'cls.predictions.bias');
      const extra = headWeights(41);
      extra.set('cls.predictions.decoder.weight', { shape: [V, H], data: new Float32Array(V * H) });
      expectError(() => saveCheckpoint(scratch, model.config, encoder, { mlmHead: extra }), 'unexpected', 'cls.predictions.decoder.weight');
      const withClassifier = BertModel.init({ ...config, num_labels: 2 }, { head: true, seed: 1 });
      const classifierWeights = await withClassifier.weights();
      expectError(() => saveCheckpoint(scratch, withClassifier.config, classifierWeights, { mlmHead: headWeights(41) }), 'cannot save both a classifier and a masked-LM head');
      withClassifier.dispose();
      model.dispose();
    });
  });
});
