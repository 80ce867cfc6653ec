import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { BertModel } from '../src/model/bert.js';
import { parseBertConfig } from '../src/model/config.js';
import { AdamW, clipFactor, globalNorm } from '../src/train/optimizer.js';
import { trainingStep } from '../src/train/step.js';
import { Rng } from '../src/util/random.js';
import { nativeAvailable } from './helpers.js';
import { gelu, layerNorm, dropout } from '../src/backend/fused.js';

function randomArray(n: number, rng: Rng, positive = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = positive ? 0.1 + 2 * rng.uniform() : rng.normal();
  return a;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Runs `op` on the same inputs on the plain cpu backend and on blas, and returns both results as flat
 * arrays with their shapes.
 */
async function both(
  shapes: number[][],
  op: (...xs: tf.Tensor[]) => tf.Tensor,
  opts: { positive?: boolean; seed?: number; reference?: (...xs: tf.Tensor[]) => tf.Tensor } = {},
) {
  const rng = new Rng(opts.seed ?? 1);
  const data = shapes.map((s) => randomArray(size(s), rng, opts.positive));
  const run = async (backend: 'cpu' | 'blas') => {
    await initBackend(backend);
    const f = backend === 'cpu' ? (opts.reference ?? op) : op;
    return tf.tidy(() => {
      const y = f(...data.map((d, i) => tf.tensor(d, shapes[i])));
      return { shape: y.shape, values: Array.from(y.dataSync()) };
    });
  };
  return { plain: await run('cpu'), fast: await run('blas') };
}

function expectClose(r: Awaited<ReturnType<typeof both>>, rtol: number, what: string): void {
  expect(r.fast.shape, `${what}: shape`).to.deep.equal(r.plain.shape);
  const scale = Math.max(1e-6, ...r.plain.values.map(Math.abs));
  r.plain.values.forEach((p, i) => {
    const f = r.fast.values[i]!;
    if (Number.isNaN(p)) expect(Number.isNaN(f), `${what}[${i}] NaN`).to.equal(true);
    else expect(Math.abs(f - p), `${what}[${i}]: ${f} vs ${p}`).to.be.at.most(rtol * scale);
  });
}

describe('blas backend: native kernels against the plain cpu backend', function () {
  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  const matmuls: Array<[number[], number[], boolean, boolean]> = [
    [[3, 4], [4, 5], false, false],
    [[4, 3], [4, 5], true, false],
    [[3, 4], [5, 4], false, true],
    [[4, 3], [5, 4], true, true],
    [[17, 33], [33, 9], false, false],
    [[1, 1], [1, 1], false, false],
    [[5, 1], [1, 7], false, false],
    [[2, 3, 4], [2, 4, 5], false, false],
    [[2, 3, 4], [4, 5], false, false], // b broadcast over the batch
    [[1, 3, 4], [6, 5, 4], false, true], // a broadcast
    [[2, 12, 9, 8], [2, 12, 9, 8], false, true], // attention scores
  ];
  for (const [sa, sb, ta, tb] of matmuls) {
    it(`matMul [${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`, async () => {
      expectClose(await both([sa, sb], (a, b) => tf.matMul(a!, b!, ta, tb)), 1e-5, 'matMul');
    });
  }

  it('matMul broadcasts several batch dimensions as numpy does (tfjs 4.22 cpu and wasm do not)', async () => {
    // [2,1] x [3] batches -> [2,3]; the reference tiles both operands explicitly.
    const r = await both([[2, 1, 4, 3], [3, 4, 5]], (a, b) => tf.matMul(a!, b!, true, false), {
      reference: (a, b) =>
        tf.matMul(tf.tile(a!, [1, 3, 1, 1]).reshape([6, 4, 3]), tf.tile(b!.expandDims(0), [2, 1, 1, 1]).reshape([6, 4, 5]), true, false).reshape([2, 3, 3, 5]),
    });
    expectClose(r, 1e-5, 'broadcast matMul');
  });

  it('fused matMul with bias and relu, transposed b (where wasm 4.22 is wrong)', async () => {
    for (const activation of ['linear', 'relu'] as const) {
      const r = await both([[6, 8], [7, 8], [7]], (a, b, bias) =>
        tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeB: true, bias, activation }),
      );
      expectClose(r, 1e-5, `fused ${activation}`);
    }
  });

  const broadcasts: Array<[number[], number[]]> = [[[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[3, 1], [1, 4]], [[2, 1, 4], [3, 1]], [[], [5]], [[], []], [[4, 1, 1, 3], [4, 2, 5, 3]], [[1], [7, 1]]];
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'squaredDifference'] as const) {
    it(`${op} with broadcasting`, async () => {
      for (const [sa, sb] of broadcasts) {
        const r = await both([sa, sb], (a, b) => (tf[op] as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(a!, b!), { positive: op === 'div' });
        expectClose(r, 1e-6, `${op} [${sa}] [${sb}]`);
      }
    });
  }

  for (const op of ['exp', 'log', 'sqrt', 'rsqrt', 'square', 'neg', 'erf', 'tanh', 'abs', 'reciprocal', 'floor', 'sigmoid', 'relu'] as const) {
    it(`${op}`, async () => {
      const positive = ['log', 'sqrt', 'rsqrt', 'reciprocal'].includes(op);
      const r = await both([[3, 5, 7]], (x) => (tf[op] as (x: tf.Tensor) => tf.Tensor)(x!), { positive });
      expectClose(r, 2e-6, op);
    });
  }

  const reductions: Array<[number[], number | number[] | undefined, boolean]> = [
    [[4, 6], 1, false], [[4, 6], 0, false], [[2, 3, 4, 5], [1, 2], false], [[2, 3, 4, 5], [0, 3], true],
    [[2, 3, 4, 5], undefined, false], [[3, 1, 4], -1, true], [[7], 0, false], [[2, 1, 3], [0, 1], false],
  ];
  for (const op of ['sum', 'mean', 'max', 'min'] as const) {
    it(`${op} over any axes`, async () => {
      for (const [shape, axis, keepDims] of reductions) {
        const r = await both([shape], (x) => (tf[op] as (x: tf.Tensor, axis?: number | number[], keep?: boolean) => tf.Tensor)(x!, axis, keepDims));
        expectClose(r, 1e-6, `${op} [${shape}] axis ${axis} keepDims ${keepDims}`);
      }
    });
  }

  it('transpose with any permutation', async () => {
    for (const [shape, perm] of [[[2, 3], [1, 0]], [[2, 3], [0, 1]], [[2, 3, 4, 5], [0, 2, 1, 3]], [[2, 3, 4, 5], [3, 1, 0, 2]], [[1, 4, 1, 3, 2], [4, 3, 2, 1, 0]]] as Array<[number[], number[]]>) {
      expectClose(await both([shape], (x) => tf.transpose(x!, perm)), 0, `transpose [${shape}] [${perm}]`);
    }
  });

  it('gathers embedding rows (and their gradient) as the cpu backend does', async () => {
    const ids = [3, 0, 3, 7, 1];
    expectClose(await both([[8, 5]], (t) => tf.gather(t!, tf.tensor1d(ids, 'int32'))), 0, 'gather');
    expectClose(await both([[8]], (t) => tf.gather(t!, tf.tensor2d([[1, 2], [2, 7]], undefined, 'int32'))), 0, 'gather 1-D table');
    expectClose(await both([[8, 5], [5, 5]], (t, dy) => tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, tf.tensor1d(ids, 'int32')), dy!)))(t!)), 1e-6, 'gather grad');
    await initBackend('blas');
    expect(() => tf.gather(tf.ones([4, 2]), tf.tensor1d([4], 'int32'))).to.throw(/index 4 is not in \[0, 4\)/);
  });

  it('the global gradient norm and AdamW with a gradient scale match the plain backend', async () => {
    const results: number[][] = [];
    for (const backend of ['cpu', 'blas'] as const) {
      await initBackend(backend);
      const rng = new Rng(5);
      const grads = { a: tf.tensor(randomArray(1000, rng), [10, 100]), b: tf.tensor(randomArray(7, rng), [7]) };
      const expected = Math.sqrt([...grads.a.dataSync(), ...grads.b.dataSync()].reduce((s, x) => s + x * x, 0));
      const norm = await globalNorm(grads);
      expect(norm).to.be.closeTo(expected, 1e-4 * expected);
      const params = new Map([['a', tf.variable(tf.zeros([10, 100]))], ['b', tf.variable(tf.zeros([7]))]]);
      const opt = new AdamW({ weightDecay: 0 });
      opt.apply(params, grads, 0.1, clipFactor(norm, 1));
      opt.apply(params, grads, 0.1, 0.5);
      results.push([...params.values()].flatMap((v) => Array.from(v.dataSync())));
      tf.dispose([...Object.values(grads), ...params.values()]);
      opt.dispose();
    }
    results[0]!.forEach((p, i) => expect(results[1]![i]).to.be.closeTo(p, 1e-5));
  });

  it('gives the same numbers for the same seed (training with dropout on, twice)', async () => {
    await initBackend('blas');
    const config = parseBertConfig({ vocab_size: 60, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16, num_labels: 2 });
    const run = async () => {
      const model = BertModel.init(config, { head: true, seed: 2 });
      const opt = new AdamW();
      const inputs = { inputIds: tf.tensor2d([[2, 5, 9, 3], [2, 7, 3, 0]], undefined, 'int32'), attentionMask: tf.tensor2d([[1, 1, 1, 1], [1, 1, 1, 0]], undefined, 'int32') };
      const labels = tf.tensor1d([0, 1], 'int32');
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await trainingStep(model, opt, inputs, labels, { lr: 1e-3, maxGradNorm: 1 })).loss);
      tf.dispose([inputs.inputIds, inputs.attentionMask, labels]);
      opt.dispose();
      model.dispose();
      return losses;
    };
    expect(await run()).to.deep.equal(await run());
  });

  it('softmax along the last axis, and its gradient', async () => {
    expectClose(await both([[2, 3, 7]], (x) => tf.softmax(x!)), 1e-6, 'softmax');
    expectClose(await both([[2, 3, 7], [2, 3, 7]], (x, dy) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), dy!)))(x!)), 1e-5, 'softmax grad');
  });

  it('keeps int32 operations exact by falling back to the cpu kernels', async () => {
    for (const backend of ['cpu', 'blas'] as const) {
      await initBackend(backend);
      const a = tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32');
      const r = tf.sum(tf.add(tf.mul(a, a), tf.scalar(1, 'int32')), 1);
      expect(r.dtype).to.equal('int32');
      expect(Array.from(r.dataSync())).to.deep.equal([7, 27]);
      tf.dispose([a, r]);
    }
  });

  it('the fused, in-place AdamW matches the elementwise update', async () => {
    const results: number[][] = [];
    for (const backend of ['cpu', 'blas'] as const) {
      await initBackend(backend);
      const rng = new Rng(3);
      const initial = tf.tensor(randomArray(12, rng), [3, 4]);
      const weight = tf.variable(initial);
      initial.dispose();
      // The bias's initial tensor stays alive and shares its storage, so it must not be updated in place.
      const sharedBias = tf.tensor(randomArray(4, rng), [4]);
      const params = new Map([
        ['w.weight', weight],
        ['w.bias', tf.variable(sharedBias)],
      ]);
      const biasBefore = Array.from(sharedBias.dataSync());
      const opt = new AdamW({ weightDecay: 0.1 });
      const storage = params.get('w.weight')!.dataId;
      for (let step = 0; step < 3; step++) {
        const grads = { 'w.weight': tf.tensor(randomArray(12, rng), [3, 4]), 'w.bias': tf.tensor(randomArray(4, rng), [4]) };
        opt.apply(params, grads, 0.01);
        tf.dispose(Object.values(grads));
      }
      // On blas the update is written in place (the variable keeps its storage); elsewhere it is replaced.
      expect(params.get('w.weight')!.dataId === storage, backend).to.equal(backend === 'blas');
      expect(Array.from(sharedBias.dataSync()), 'a tensor sharing storage is left alone').to.deep.equal(biasBefore);
      sharedBias.dispose();
      results.push([...params.values()].flatMap((v) => Array.from(v.dataSync())));
      opt.dispose();
      for (const v of params.values()) v.dispose();
    }
    results[0]!.forEach((p, i) => expect(results[1]![i]).to.be.closeTo(p, 1e-6));
  });

  it('fused GELU and its gradient match the composite ops', async () => {
    expectClose(await both([[4, 33]], (x) => gelu(x!)), 1e-6, 'gelu');
    expectClose(await both([[4, 33], [4, 33]], (x, dy) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), dy!)))(x!)), 1e-5, 'gelu grad');
  });

  it('fused LayerNorm and its gradients (x, gamma, beta) match the composite ops', async () => {
    const ln = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(tf.add(tf.mul(x, 3), 1), g, b, 1e-12);
    expectClose(await both([[2, 5, 24], [24], [24]], (x, g, b) => ln(x!, g!, b!)), 1e-5, 'layerNorm');
    for (let which = 0; which < 3; which++) {
      const r = await both([[2, 5, 24], [24], [24], [2, 5, 24]], (x, g, b, dy) =>
        tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(ln(a, c, d), dy!)))([x!, g!, b!])[which]!,
      );
      expectClose(r, 1e-4, `layerNorm grad ${['x', 'gamma', 'beta'][which]}`);
    }
  });

  it('native dropout keeps 1 - rate of the elements, scales them, repeats for a seed, and passes gradients through the mask', async () => {
    await initBackend('blas');
    const x = tf.ones([200, 500]);
    const a = dropout(x, 0.25, 42).dataSync();
    const b = dropout(x, 0.25, 42).dataSync();
    const c = dropout(x, 0.25, 43).dataSync();
    const zeros = a.filter((v) => v === 0).length / a.length;
    expect(zeros).to.be.closeTo(0.25, 0.005);
    expect(new Set(a)).to.deep.equal(new Set([0, 1 / 0.75].map(Math.fround)));
    expect(Array.from(b)).to.deep.equal(Array.from(a));
    expect(Array.from(c)).to.not.deep.equal(Array.from(a));
    const g = tf.grad((t: tf.Tensor) => tf.sum(dropout(t, 0.25, 42)))(x).dataSync();
    expect(Array.from(g)).to.deep.equal(Array.from(a));
    x.dispose();
  });

  it('a tiny BERT trains with the same loss curve as on the plain backend (dropout off: the backends draw different masks)', async () => {
    const config = parseBertConfig({
      vocab_size: 60, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16, num_labels: 3,
      hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
    });
    const curves: number[][] = [];
    for (const backend of ['cpu', 'blas'] as const) {
      await initBackend(backend);
      const model = BertModel.init(config, { head: true, seed: 11 });
      const opt = new AdamW();
      const inputs = {
        inputIds: tf.tensor2d([[2, 5, 9, 13, 3, 0], [2, 7, 8, 3, 0, 0], [2, 40, 41, 42, 43, 3]], undefined, 'int32'),
        attentionMask: tf.tensor2d([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], undefined, 'int32'),
      };
      const labels = tf.tensor1d([0, 2, 1], 'int32');
      const curve: number[] = [];
      for (let step = 0; step < 6; step++) curve.push((await trainingStep(model, opt, inputs, labels, { lr: 1e-3, maxGradNorm: 1 })).loss);
      curves.push(curve);
      tf.dispose([inputs.inputIds, inputs.attentionMask, labels]);
      opt.dispose();
      model.dispose();
    }
    expect(curves[1]![5]).to.be.below(curves[1]![0]!);
    curves[0]!.forEach((l, i) => expect(curves[1]![i], `step ${i}`).to.be.closeTo(l, 1e-4));
  });
});
