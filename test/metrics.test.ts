import { expect } from 'chai';
import { depthSpearman, mse, rootAccuracy } from '../src/probe/metrics.js';
import { mean, pearson, rank, spearman, std } from '../src/util/stats.js';
import { Rng } from '../src/util/random.js';
import { expectError } from './helpers.js';

/** An independent O(n^2) average rank: the values below, plus the middle of the run of equal values. */
function referenceRank(xs: readonly number[]): number[] {
  return xs.map((x) => {
    const below = xs.filter((y) => y < x).length;
    const equal = xs.filter((y) => y === x).length;
    return below + (equal + 1) / 2;
  });
}

describe('metrics: mean, std, mse', () => {
  it('mean and sample std (n - 1), NaN where undefined', () => {
    expect(mean([2, 4, 4, 4, 5, 5, 7, 9])).to.equal(5);
    expect(std([2, 4, 4, 4, 5, 5, 7, 9])).to.be.closeTo(Math.sqrt(32 / 7), 1e-12);
    expect(mean([])).to.be.NaN;
    expect(std([3])).to.be.NaN;
  });

  it('mse over all positions and over masked positions', () => {
    expect(mse([1, 2, 3], [1, 4, 0])).to.be.closeTo(13 / 3, 1e-12);
    expect(mse([1, 2, 3], [1, 4, 0], [1, 1, 0])).to.equal(2);
    expect(mse(Float32Array.from([1, 2, 3]), [1, 4, 0], [false, true, true])).to.equal(6.5);
  });

  it('mse ignores whatever the masked-out positions hold, NaN included', () => {
    expect(mse([1, NaN, 3], [1, Infinity, 0], Uint8Array.from([1, 0, 1]))).to.equal(4.5);
  });

  it('mse throws on length mismatch and on an empty selection', () => {
    expectError(() => mse([1, 2], [1]), 'pred', 'target');
    expectError(() => mse([1, 2], [1, 2], [1]), 'mask');
    expectError(() => mse([1, 2], [1, 2], [0, 0]), 'mask selects no position');
    expectError(() => mse([], []), 'empty');
  });
});

describe('metrics: rank, pearson, spearman', () => {
  it('ranks with ties given their average rank', () => {
    expect(rank([3, 1, 2])).to.deep.equal([3, 1, 2]);
    expect(rank([10, 20, 20, 30])).to.deep.equal([1, 2.5, 2.5, 4]);
    expect(rank([2, 1, 2, 1, 2])).to.deep.equal([4, 1.5, 4, 1.5, 4]);
    expect(rank([5, 5, 5])).to.deep.equal([2, 2, 2]);
    expect(rank([])).to.deep.equal([]);
    expectError(() => rank([1, NaN]), 'xs[1]', 'NaN');
  });

  it('rank agrees with a reference on random vectors with many ties', () => {
    const rng = new Rng(5);
    for (let t = 0; t < 200; t++) {
      const xs = Array.from({ length: 1 + rng.int(30) }, () => rng.int(8) - 3);
      expect(rank(xs)).to.deep.equal(referenceRank(xs));
    }
  });

  it('pearson: hand-computed values', () => {
    // deviations (-1, 0, 1) and (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 114/9) = 15 / sqrt(228)
    expect(pearson([1, 2, 3], [2, 4, 7])).to.be.closeTo(15 / Math.sqrt(228), 1e-12);
    expect(pearson([1, 2, 3, 4], [10, 8, 6, 4])).to.equal(-1);
    expect(pearson([1, 2, 3], [5, 7, 9])).to.equal(1);
  });

  it('spearman: hand-computed value with ties', () => {
    // ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): cov 4.5, var 4.5 and 5 -> 4.5 / sqrt(22.5) = 3 / sqrt(10)
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).to.be.closeTo(3 / Math.sqrt(10), 1e-12);
    // monotone but not linear: rho is 1 where Pearson is not
    expect(spearman([1, 2, 3, 4], [1, 8, 27, 1000])).to.equal(1);
    expect(pearson([1, 2, 3, 4], [1, 8, 27, 1000])).to.be.lessThan(0.9);
  });

  it('spearman equals 1 - 6 sum d^2 / (n (n^2 - 1)) without ties', () => {
    const rng = new Rng(9);
    for (let t = 0; t < 200; t++) {
      const n = 2 + rng.int(30);
      const a = Array.from({ length: n }, () => rng.normal());
      const b = a.map((x) => 0.5 * x + rng.normal());
      const ra = referenceRank(a);
      const rb = referenceRank(b);
      let d2 = 0;
      for (let i = 0; i < n; i++) d2 += (ra[i]! - rb[i]!) ** 2;
      expect(spearman(a, b)).to.be.closeTo(1 - (6 * d2) / (n * (n * n - 1)), 1e-9);
    }
  });

  it('returns NaN, without throwing, for n < 2 or a constant input; throws on length mismatch', () => {
    expect(spearman([1], [2])).to.be.NaN;
    expect(spearman([], [])).to.be.NaN;
    expect(spearman([1, 1, 1], [1, 2, 3])).to.be.NaN;
    expect(pearson([1, 2, 3], [4, 4, 4])).to.be.NaN;
    expect(pearson([1], [1])).to.be.NaN;
    expectError(() => spearman([1, 2], [1]), 'a', 'b');
    expectError(() => pearson([1, 2], [1]), 'a', 'b');
  });
});

describe('metrics: depthSpearman (DSpr.)', () => {
  const gold5 = [2, 1, 3, 2, 3];
  const gold6 = [1, 2, 2, 3, 4, 3];
  const sentences = [
    { pred: gold5.map((g) => g + 0.1), gold: gold5 }, // length 5, rho 1
    { pred: gold5.map((g) => -g), gold: gold5 }, // length 5, rho -1
    { pred: gold6.map((g) => g * 2), gold: gold6 }, // length 6, rho 1
    { pred: [4, 3, 2, 1], gold: [1, 2, 3, 4] }, // length 4: out of the default range, rho -1
  ];

  it('averages within each length, then across lengths 5..50', () => {
    const r = depthSpearman(sentences);
    expect([...r.perLength.entries()]).to.deep.equal([
      [5, 0],
      [6, 1],
    ]);
    // per-length means (0 and 1) average to 0.5; a plain mean over the three sentences would be 1/3
    expect(r.value).to.equal(0.5);
    expect(r.sentences).to.equal(3);
  });

  it('honours minLength and maxLength (inclusive)', () => {
    const r = depthSpearman(sentences, { minLength: 4, maxLength: 5 });
    expect([...r.perLength.keys()]).to.deep.equal([4, 5]);
    expect(r.value).to.equal(-0.5); // mean of -1 (length 4) and 0 (length 5)
    expect(r.sentences).to.equal(3);
  });

  it('gives NaN with no sentence in range, and carries a constant prediction\'s NaN as H&M do', () => {
    const none = depthSpearman([sentences[3]!]);
    expect(none.value).to.be.NaN;
    expect(none.sentences).to.equal(0);
    expect(none.perLength.size).to.equal(0);
    const flat = depthSpearman([sentences[0]!, { pred: [1, 1, 1, 1, 1], gold: gold5 }]);
    expect(flat.value).to.be.NaN;
  });

  it('rejects mismatched sentences and bad ranges', () => {
    expectError(() => depthSpearman([{ pred: [1, 2, 3, 4, 5], gold: [1, 2, 3, 4] }]), 'sentences[0]');
    expectError(() => depthSpearman([], { minLength: 10, maxLength: 5 }), 'maxLength');
    expectError(() => depthSpearman([], { minLength: 0 }), 'minLength');
  });
});

describe('metrics: rootAccuracy', () => {
  it('picks the smallest predicted depth among non-excluded words', () => {
    const acc = rootAccuracy([
      // the comma (word 1) has the smallest depth but is excluded; word 2 is next and is the root
      { pred: [2, 0.1, 1, 3], goldRoot: 2, exclude: [false, true, false, false] },
      // word 0 is smallest, the root is word 1: wrong
      { pred: [0.5, 1, 2], goldRoot: 1 },
      // every word excluded: falls back to the plain smallest (word 1), as H&M's code does
      { pred: [3, 1], goldRoot: 1, exclude: [true, true] },
      // equal smallest depths: the first word wins
      { pred: [1, 1, 2], goldRoot: 0 },
    ]);
    expect(acc).to.equal(3 / 4);
    // without the exclusion the first sentence turns wrong
    expect(rootAccuracy([{ pred: [2, 0.1, 1, 3], goldRoot: 2 }])).to.equal(0);
    expect(rootAccuracy([{ pred: [1, 1, 2], goldRoot: 1 }])).to.equal(0);
  });

  it('NaN for no sentences; rejects bad roots, exclusions and NaN depths', () => {
    expect(rootAccuracy([])).to.be.NaN;
    expectError(() => rootAccuracy([{ pred: [1, 2], goldRoot: 2 }]), 'sentences[0].goldRoot');
    expectError(() => rootAccuracy([{ pred: [1, 2], goldRoot: 0, exclude: [true] }]), 'sentences[0].exclude');
    expectError(() => rootAccuracy([{ pred: [], goldRoot: 0 }]), 'sentences[0]', 'no words');
    expectError(() => rootAccuracy([{ pred: [1, NaN], goldRoot: 0 }]), 'sentences[0].pred[1]');
  });
});
