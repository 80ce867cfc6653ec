import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { DistanceProbe } from '../src/probe/probe.js';
import { distanceLoss, mergeToWords, predictWordDistances, trainDistanceProbe, type DistanceExample } from '../src/probe/distance.js';
import { uuas } from '../src/probe/metrics.js';
import { Rng } from '../src/util/random.js';

/** A random tree over n words: word k > 0 hangs from a random earlier word, then the words are shuffled. */
function randomHeads(rng: Rng, n: number): number[] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const heads = new Array<number>(n).fill(-1);
  for (let k = 1; k < n; k++) heads[order[k]!] = order[rng.int(k)]!;
  return heads;
}

/** Path lengths by walking up to the common ancestor (independent of the code under test). */
function pathLengths(heads: readonly number[]): number[][] {
  const up = (w: number): number[] => (w < 0 ? [] : [w, ...up(heads[w]!)]);
  return heads.map((_, i) => heads.map((__, j) => {
    const a = up(i);
    const b = up(j);
    const common = a.find((x) => b.includes(x))!;
    return a.indexOf(common) + b.indexOf(common);
  }));
}

/**
 * Sentences whose hidden states hold a tree's path metric as squared Euclidean distances: every edge gets
 * its own unit vector and a word sits at the sum of the edge vectors on its path from the root, so
 * ||x_i - x_j||^2 = d(i, j). Those `edgeDims` coordinates are mixed into `hidden` by a fixed random map,
 * plus noise dimensions; a word's pieces share its state up to small noise.
 */
function synthetic(seed: number, count: number, hidden: number, edgeDims: number, informative = true): DistanceExample[] {
  const mixRng = new Rng(99);
  const mix = Array.from({ length: hidden * edgeDims }, () => mixRng.normal() / Math.sqrt(edgeDims));
  const rng = new Rng(seed);
  const out: DistanceExample[] = [];
  for (let s = 0; s < count; s++) {
    const words = 4 + rng.int(edgeDims - 3);
    const heads = randomHeads(rng, words);
    const dist = pathLengths(heads);
    // word w's coordinates: the edge (child c -> head) of every c on its path to the root is coordinate c
    const coords = heads.map((_, w) => {
      const v = new Array<number>(edgeDims).fill(0);
      for (let c = w; heads[c]! >= 0; c = heads[c]!) v[c] = 1;
      return v;
    });
    const pieceWord: number[] = [];
    for (let w = 0; w < words; w++) for (let k = 0, m = 1 + rng.int(2); k < m; k++) pieceWord.push(w);
    const n = pieceWord.length;
    const states = new Float32Array(n * hidden);
    pieceWord.forEach((w, p) => {
      for (let i = 0; i < hidden; i++) {
        let x = 0.01 * rng.normal();
        if (informative) for (let j = 0; j < edgeDims; j++) x += mix[i * edgeDims + j]! * coords[w]![j]!;
        else x += rng.normal();
        states[p * hidden + i] = x;
      }
    });
    out.push({ states, n, pieceWord: Int32Array.from(pieceWord), words, gold: Float32Array.from(dist.flat()) });
  }
  return out;
}

const goldRows = (e: DistanceExample) => Array.from({ length: e.words }, (_, i) => Array.from(e.gold!.subarray(i * e.words, (i + 1) * e.words)));

describe('probe/distance: the distance probe', () => {
  before(async () => {
    await initBackend('cpu');
  });

  it('predictBatch equals ||B (h_i - h_j)||^2 computed pair by pair', () => {
    const rng = new Rng(3);
    const hidden = 6;
    const probe = new DistanceProbe({ hidden, rank: 4, seed: 1, initRange: 0.5 });
    const x = Float32Array.from({ length: 2 * 5 * hidden }, () => rng.normal());
    const B = probe.B.arraySync() as number[][];
    const got = probe.predictBatch(tf.tensor3d(x, [2, 5, hidden])).arraySync() as number[][][];
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 5; i++) {
        for (let j = 0; j < 5; j++) {
          let want = 0;
          for (const row of B) {
            let dot = 0;
            for (let k = 0; k < hidden; k++) dot += row[k]! * (x[(b * 5 + i) * hidden + k]! - x[(b * 5 + j) * hidden + k]!);
            want += dot * dot;
          }
          expect(got[b]![i]![j]!).to.be.closeTo(want, 1e-4 * Math.max(1, want));
        }
      }
    }
    probe.dispose();
  });

  it('the loss is structural-probes\' L1 over piece pairs / n^2, pieces inheriting their word\'s distances (hand-computed)', async () => {
    // B = [1, 0] reads the first coordinate. Pieces at x = 0, 1, 3 (pieces 0 and 1 form word 0; piece 2 is
    // word 1). Predicted: d01 = 1, d02 = 9, d12 = 4. Gold: word distance 1, so pairs (0,2), (1,2) have gold 1
    // and (0,1) gold 0. Sum over all 9 ordered pairs of |pred - gold| = 2 * (1 + 8 + 3) = 24; / 9.
    const probe = new DistanceProbe({ hidden: 2, rank: 1, weights: Float32Array.from([1, 0]) });
    const e: DistanceExample = { states: Float32Array.from([0, 5, 1, -2, 3, 7]), n: 3, pieceWord: Int32Array.from([0, 0, 1]), words: 2, gold: Float32Array.from([0, 1, 1, 0]) };
    expect(await distanceLoss(probe, [e])).to.be.closeTo(24 / 9, 1e-6);
    // A second, one-piece-per-word sentence with loss 0 halves the mean.
    const exact: DistanceExample = { states: Float32Array.from([0, 0, 2, 0]), n: 2, pieceWord: Int32Array.from([0, 1]), words: 2, gold: Float32Array.from([0, 4, 4, 0]) };
    expect(await distanceLoss(probe, [e, exact])).to.be.closeTo(12 / 9, 1e-6);
    // Word-level: word 0 to word 1 is the mean of d02 = 9 and d12 = 4; the diagonal is 0.
    const [words] = await predictWordDistances(probe, [e]);
    expect(words![0]![1]).to.be.closeTo(6.5, 1e-5);
    expect(words![1]![0]).to.be.closeTo(6.5, 1e-5);
    expect([words![0]![0], words![1]![1]]).to.deep.equal([0, 0]);
    probe.dispose();
  });

  it('mergeToWords averages each word pair\'s piece pairs (hand-computed)', () => {
    // pieces: 0 -> word 0, 1 -> word 1, 2 -> word 1
    const pred = [0, 2, 4, 2, 0, 1, 4, 1, 0];
    expect(mergeToWords(pred, 3, [0, 1, 1], 2)).to.deep.equal([[0, 3], [3, 0]]);
  });

  it('learns tree distances held as squared Euclidean distances (UUAS near 1), and not from noise', async function () {
    this.timeout(120000);
    const hidden = 20;
    const edgeDims = 10;
    const opts = { hidden, rank: 12, lr: 0.02, epochs: 25, batchSize: 16, seed: 4 };
    const score = async (informative: boolean) => {
      const train = synthetic(1, 160, hidden, edgeDims, informative);
      const dev = synthetic(2, 20, hidden, edgeDims, informative);
      const test = synthetic(3, 40, hidden, edgeDims, informative);
      const { probe, trainLoss, devLoss } = await trainDistanceProbe(train, dev, opts);
      const preds = await predictWordDistances(probe, test);
      const result = uuas(test.map((e, i) => ({ pred: preds[i]!, gold: goldRows(e) })));
      const loss = await distanceLoss(probe, test);
      expect(devLoss).to.be.closeTo(await distanceLoss(probe, dev), 1e-5);
      probe.dispose();
      return { uuas: result.value, loss, first: trainLoss[0]!, last: trainLoss[trainLoss.length - 1]! };
    };
    const signal = await score(true);
    expect(signal.last).to.be.below(signal.first / 4);
    expect(signal.uuas).to.be.above(0.95);
    expect(signal.loss).to.be.below(0.3);
    const noise = await score(false);
    // A random tree over k words shares about 2/k of its edges with another: far below 1.
    expect(noise.uuas).to.be.below(0.6);
    expect(noise.loss).to.be.above(0.5);
  });

  it('the same seed gives the same probe', async () => {
    const train = synthetic(5, 30, 8, 6);
    const a = await trainDistanceProbe(train, [], { hidden: 8, lr: 0.01, epochs: 2, batchSize: 8, seed: 2 });
    const b = await trainDistanceProbe(train, [], { hidden: 8, lr: 0.01, epochs: 2, batchSize: 8, seed: 2 });
    expect(Array.from(await a.probe.weights())).to.deep.equal(Array.from(await b.probe.weights()));
    expect(a.bestEpoch).to.be.within(1, 2);
    a.probe.dispose();
    b.probe.dispose();
  });
});
