import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { DepthProbe, DistanceProbe } from '../src/probe/probe.js';
import { trainProbe, heldOutMse, predictDepths, type ProbeExample } from '../src/probe/train.js';
import { spearman } from '../src/util/stats.js';
import { Rng } from '../src/util/random.js';

describe('probes', () => {
  before(async () => {
    await initBackend('cpu');
  });

  it('DepthProbe computes ||B h||^2 and DistanceProbe ||B (h_i - h_j)||^2 (hand-computed)', () => {
    // B = [[1, 2], [0, 1]]; h0 = [1, 1] -> B h0 = [3, 1] -> 10; h1 = [2, -1] -> B h1 = [0, -1] -> 1.
    const weights = Float32Array.from([1, 2, 0, 1]);
    const depth = new DepthProbe({ hidden: 2, rank: 2, weights });
    const dist = new DistanceProbe({ hidden: 2, rank: 2, weights });
    const h = tf.tensor2d([[1, 1], [2, -1]]);
    expect(Array.from(depth.predict(h).dataSync())).to.deep.equal([10, 1]);
    // h0 - h1 = [-1, 2] -> B (h0 - h1) = [3, 2] -> 13.
    expect(dist.predict(h).arraySync()).to.deep.equal([[0, 13], [13, 0]]);
    depth.dispose();
    dist.dispose();
    h.dispose();
  });

  it('initialises B uniformly in (-0.05, 0.05) with rank hidden / 2 by default, and saves and loads it', async () => {
    const probe = new DepthProbe({ hidden: 40, seed: 3 });
    expect(probe.rank).to.equal(20);
    const w = await probe.weights();
    expect(Math.max(...w.map(Math.abs))).to.be.below(0.05);
    expect(Math.max(...w.map(Math.abs))).to.be.above(0.04);
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-probe-'));
    try {
      await probe.save(join(dir, 'p.safetensors'), { submodule: '3' });
      const { probe: again, metadata } = DepthProbe.load(join(dir, 'p.safetensors'));
      expect(Array.from(await again.weights())).to.deep.equal(Array.from(w));
      expect(metadata).to.include({ submodule: '3', probe: 'depth', rank: '20' });
      again.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      probe.dispose();
    }
  });

  /**
   * Synthetic sentences whose hidden states encode depth the way a depth probe can read it: h = A z with
   * ||z||^2 = depth (z = sqrt(depth) times a random unit vector in R^k), plus noise. A rank-k probe
   * B = (A^+ restricted) recovers depth exactly in the noise-free case.
   */
  function synthetic(seed: number, count: number, hidden: number, informative: boolean): ProbeExample[] {
    const rng = new Rng(seed);
    const k = 4;
    const A = Array.from({ length: hidden * k }, () => rng.normal() / Math.sqrt(hidden));
    const out: ProbeExample[] = [];
    for (let s = 0; s < count; s++) {
      const n = 5 + rng.int(10);
      const gold = Float32Array.from({ length: n }, () => 1 + rng.int(6));
      const states = new Float32Array(n * hidden);
      for (let t = 0; t < n; t++) {
        const v = Array.from({ length: k }, () => rng.normal());
        const norm = Math.hypot(...v);
        const z = v.map((x) => (x / norm) * Math.sqrt(gold[t]!));
        for (let i = 0; i < hidden; i++) {
          let x = 0.01 * rng.normal();
          if (informative) for (let j = 0; j < k; j++) x += A[i * k + j]! * z[j]!;
          else x += rng.normal();
          states[t * hidden + i] = x;
        }
      }
      out.push({ states, n, gold });
    }
    return out;
  }

  it('recovers depths linearly encoded in hidden states (held-out MSE near 0, Spearman near 1), and not from noise', async () => {
    const hidden = 16;
    const run = async (informative: boolean) => {
      const train = synthetic(1, 300, hidden, informative);
      const test = synthetic(2, 60, hidden, informative).map((e, i) => ({ ...e, states: informative ? e.states : synthetic(3 + i, 1, hidden, false)[0]!.states.slice(0, e.n * hidden) }));
      // The same A for train and test: regenerate the test set from the train seed's A.
      const sameA = informative ? synthetic(1, 360, hidden, true).slice(300) : test;
      const { probe } = await trainProbe('sp', train, sameA.slice(0, 30), { hidden, lr: 0.02, epochs: 30, batchSize: 16, seed: 5 });
      const heldOut = sameA.slice(30);
      const { mse } = await heldOutMse(probe, heldOut, 'sp');
      const preds = await predictDepths(probe, heldOut);
      const rho = heldOut.map((e, i) => spearman(preds[i]!, e.gold!)).filter(Number.isFinite);
      probe.dispose();
      return { mse, rho: rho.reduce((a, b) => a + b, 0) / rho.length };
    };
    const signal = await run(true);
    expect(signal.mse).to.be.below(0.1);
    expect(signal.rho).to.be.above(0.95);
    const noise = await run(false);
    expect(noise.mse).to.be.above(1);
    expect(noise.rho).to.be.below(0.3);
  });

  it('self-supervised training lowers the tree-label loss and keeps the best dev epoch', async () => {
    const train = synthetic(4, 100, 12, true);
    const dev = synthetic(4, 130, 12, true).slice(100);
    const result = await trainProbe('ssp', train, dev, { hidden: 12, lr: 0.01, epochs: 6, batchSize: 16, seed: 2 });
    expect(result.trainLoss[result.trainLoss.length - 1]).to.be.below(result.trainLoss[0]!);
    expect((await heldOutMse(result.probe, dev, 'ssp')).mse).to.be.closeTo(result.devMse, 1e-6);
    result.probe.dispose();
  });
});
