import { expect } from 'chai';
import { depthSpearman, distanceSpearman, mse, rootAccuracy, uuas } from '../src/probe/metrics.js';
import { type ConlluSentence, goldDistances } from '../src/data/conllu.js';
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

/** The distances along a chain of n words: |i - j|. */
const chain = (n: number): number[][] => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.abs(i - j)));

/** A random tree of n words as a sentence: the words in a random order, each attached to an earlier one. */
function randomTree(rng: Rng, n: number): ConlluSentence {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const heads = new Array<number>(n).fill(0);
  for (let k = 1; k < n; k++) heads[order[k]!] = order[rng.int(k)]! + 1;
  return {
    words: heads.map((head, i) => ({ index: i + 1, form: `w${i + 1}`, upos: 'X', xpos: 'X', head, deprel: 'dep' })),
    line: 1,
  };
}

/** structural-probes' tree: ordered pairs of kept words stably sorted by distance, kept when they join two components. */
function kruskalEdges(d: ArrayLike<ArrayLike<number>>, keep: readonly boolean[]): string[] {
  const n = d.length;
  const pairs: Array<[number, number, number]> = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (keep[i] && keep[j]) pairs.push([i, j, d[i]![j]!]);
  pairs.sort((x, y) => x[2] - y[2]);
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (v: number): number => (parent[v] === v ? v : find(parent[v]!));
  const edges: string[] = [];
  for (const [i, j] of pairs) {
    if (find(i) === find(j)) continue;
    parent[find(i)] = find(j);
    edges.push(`${Math.min(i, j)}-${Math.max(i, j)}`);
  }
  return edges;
}

describe('metrics: uuas and distanceSpearman (distance probe)', () => {
  // Sentence A: the gold tree is the chain 0-1-2-3-4. The predicted matrix's spanning tree is
  // 2-3 (0.9), 0-1 (1.0), 1-2 (1.1), 2-4 (1.2): 3 of the 4 gold edges (3-4 is missed).
  const a = {
    gold: chain(5),
    pred: [
      [0, 1.0, 2.5, 3.1, 2.9],
      [1.0, 0, 1.1, 2.2, 2.4],
      [2.5, 1.1, 0, 0.9, 1.2],
      [3.1, 2.2, 0.9, 0, 1.5],
      [2.9, 2.4, 1.2, 1.5, 0],
    ],
  };
  // Sentence B: word 1 heads words 0, 2, 3 and the punctuation word 4. Over words 0..3 the gold tree is
  // 0-1, 1-2, 1-3; the prediction's is 2-3 (0.8), 0-1 (1.0), 1-2 (1.3): 2 of 3. The punctuation word is
  // predicted 0.1 from everything, so were it kept the predicted tree would be the star around it.
  const b = {
    gold: [
      [0, 1, 2, 2, 2],
      [1, 0, 1, 1, 1],
      [2, 1, 0, 2, 2],
      [2, 1, 2, 0, 2],
      [2, 1, 2, 2, 0],
    ],
    pred: [
      [0, 1.0, 2.0, 2.6, 0.1],
      [1.0, 0, 1.3, 1.9, 0.1],
      [2.0, 1.3, 0, 0.8, 0.1],
      [2.6, 1.9, 0.8, 0, 0.1],
      [0.1, 0.1, 0.1, 0.1, 0],
    ],
    exclude: [false, false, false, false, true],
  };

  it('uuas: hand-counted edges, punctuation left out of both trees', () => {
    expect(uuas([a, b])).to.deep.equal({ value: 5 / 7, correct: 5, total: 7 });
    expect(uuas([a])).to.deep.equal({ value: 3 / 4, correct: 3, total: 4 });
    // keeping the punctuation word: gold 0-1, 1-2, 1-3, 1-4 against the star 0-4, 1-4, 2-4, 3-4: only 1-4
    expect(uuas([a, { pred: b.pred, gold: b.gold }])).to.deep.equal({ value: 4 / 8, correct: 4, total: 8 });
    // the gold matrix of sentence B is goldDistances of its tree
    const heads = [2, 0, 2, 2, 2];
    const words = heads.map((head, i) => ({ index: i + 1, form: 'w', upos: i === 4 ? 'PUNCT' : 'X', xpos: 'X', head, deprel: 'dep' }));
    expect(goldDistances({ words, line: 1 })).to.deep.equal(b.gold);
  });

  it('uuas: typed-array rows, and an asymmetric prediction read through the smaller entry', () => {
    const rows = a.pred.map((row) => Float32Array.from(row));
    expect(uuas([{ pred: rows, gold: a.gold }])).to.deep.equal({ value: 3 / 4, correct: 3, total: 4 });
    // 3-4 predicted 0.3 one way and 5 the other: the smaller entry makes it the lightest edge, and the
    // tree 3-4, 2-3, 0-1, 1-2 is the gold chain (the larger entry or the mean, 2.65, would leave 3 of 4)
    rows[4]![3] = 0.3;
    rows[3]![4] = 5;
    expect(uuas([{ pred: rows, gold: a.gold }])).to.deep.equal({ value: 1, correct: 4, total: 4 });
  });

  it('uuas: a prediction that orders the gold distances, up to noise under half the gap, is perfect', () => {
    const rng = new Rng(31);
    let expectedTotal = 0;
    const sentences = [];
    for (let t = 0; t < 60; t++) {
      const n = 2 + rng.int(25);
      const tree = randomTree(rng, n);
      const gold = goldDistances(tree);
      // gold distances doubled are 2 apart; noise in (-0.95, 0.95), different in each direction
      const pred = gold.map((row) => row.map((g) => 2 * g + (rng.uniform() * 1.9 - 0.95)));
      // leaving out some leaves keeps the rest a tree (the root, never a leaf here, stays)
      const isLeaf = Array.from({ length: n }, (_, i) => !tree.words.some((w) => w.head === i + 1));
      const exclude = isLeaf.map((leaf) => t % 2 === 1 && leaf && rng.uniform() < 0.5);
      const kept = exclude.filter((e) => !e).length;
      expectedTotal += Math.max(0, kept - 1);
      sentences.push({ pred, gold, exclude });
    }
    const r = uuas(sentences);
    expect(r.total).to.equal(expectedTotal);
    expect(r.correct).to.equal(expectedTotal);
    expect(r.value).to.equal(1);
  });

  it('uuas: agrees with structural-probes\' Kruskal on random predictions (ties in the gold matrix included)', () => {
    const rng = new Rng(32);
    let correct = 0;
    let total = 0;
    const sentences = [];
    for (let t = 0; t < 80; t++) {
      const n = 1 + rng.int(15);
      const gold = goldDistances(randomTree(rng, n));
      const pred = gold.map((row) => row.map(() => rng.uniform()));
      pred.forEach((row, i) => row.forEach((_, j) => j < i && (row[j] = pred[j]![i]!)));
      const exclude = Array.from({ length: n }, () => rng.uniform() < 0.25); // internal words too
      const keep = exclude.map((e) => !e);
      const goldEdges = kruskalEdges(gold, keep);
      const predEdges = new Set(kruskalEdges(pred, keep));
      correct += goldEdges.filter((e) => predEdges.has(e)).length;
      total += goldEdges.length;
      sentences.push({ pred, gold, exclude });
    }
    expect(uuas(sentences)).to.deep.equal({ value: correct / total, correct, total });
  });

  it('uuas: NaN with nothing to count; rejects bad shapes and NaN between kept words, naming the sentence', () => {
    expect(uuas([]).value).to.be.NaN;
    const none = uuas([{ pred: [[0]], gold: [[0]] }, { pred: b.pred, gold: b.gold, exclude: [true, true, true, true, false] }]);
    expect(none).to.deep.include({ correct: 0, total: 0 });
    expect(none.value).to.be.NaN;
    expectError(() => uuas([a, { pred: b.pred.slice(1), gold: b.gold }]), 'uuas', 'sentences[1].pred', '4 rows');
    expectError(() => uuas([{ pred: a.pred, gold: a.gold.map((r) => r.slice(1)) }]), 'sentences[0].gold[0]', '4 entries');
    expectError(() => uuas([{ ...b, exclude: [true] }]), 'sentences[0].exclude', '1 entries');
    const nan = b.pred.map((row) => row.slice());
    nan[4]![0] = NaN; // between the excluded punctuation and word 0: ignored
    expect(uuas([{ ...b, pred: nan }]).correct).to.equal(2);
    nan[2]![3] = NaN;
    expectError(() => uuas([a, { ...b, pred: nan }]), 'sentences[1].pred[2][3]', 'NaN');
  });

  // Rows of the chain of 5 (gold) against a prediction equal to it except in two rows:
  // row 0 [0, 1, 2, 4, 3]: d^2 = 2, rho = 1 - 6 * 2 / (5 * 24) = 0.9; row 4 reversed: rho = -1.
  // The sentence's rows: 0.9, 1, 1, 1, -1.
  const s1 = { gold: chain(5), pred: chain(5).map((row) => row.slice()) };
  s1.pred[0] = [0, 1, 2, 4, 3];
  s1.pred[4] = [0, 1, 2, 3, 4];
  const s2 = { gold: chain(5), pred: chain(5).map((row) => row.map((g) => 3 * g + 1)) }; // all rows 1
  const s3 = { gold: chain(6), pred: chain(6).map((row) => row.map((g) => -g)) }; // all rows -1
  const s4 = { gold: chain(4), pred: chain(4).map((row) => row.map((g) => -g)) }; // length 4: all rows -1

  it('distanceSpearman: hand-computed rows, the self-distance included', () => {
    const r = distanceSpearman([s1]);
    expect(r.value).to.be.closeTo(2.9 / 5, 1e-12);
    expect([...r.perLength.keys()]).to.deep.equal([5]);
    expect(r.sentences).to.equal(1);
    // a self-distance predicted largest: row 0 ranks [5, 1, 2, 3, 4] against [1..5], d^2 = 20, rho = 0
    const self = { gold: chain(5), pred: chain(5).map((row) => row.slice()) };
    self.pred[0]![0] = 5;
    expect(distanceSpearman([self]).value).to.be.closeTo(4 / 5, 1e-12);
  });

  it('distanceSpearman: the mean of per-length means, not a pooled mean; lengths out of range ignored', () => {
    const r = distanceSpearman([s1, s4, s2, s3]);
    // length 5: the 10 rows of s1 and s2 -> (2.9 + 5) / 10 = 0.79; length 6: -1
    expect([...r.perLength.keys()]).to.deep.equal([5, 6]);
    expect(r.perLength.get(5)).to.be.closeTo(0.79, 1e-12);
    expect(r.perLength.get(6)).to.be.closeTo(-1, 1e-12);
    expect(r.value).to.be.closeTo((0.79 - 1) / 2, 1e-12); // pooled over rows it would be 1.9 / 16
    expect(r.sentences).to.equal(3);
    const wide = distanceSpearman([s1, s4, s2, s3], { minLength: 4 });
    expect([...wide.perLength.keys()]).to.deep.equal([4, 5, 6]);
    expect(wide.value).to.be.closeTo((-1 + 0.79 - 1) / 3, 1e-12);
    expect(wide.sentences).to.equal(4);
    const narrow = distanceSpearman([s1, s4, s2, s3], { maxLength: 5 });
    expect(narrow.value).to.be.closeTo(0.79, 1e-12);
    expect(narrow.sentences).to.equal(2);
    const none = distanceSpearman([s4]);
    expect(none.value).to.be.NaN;
    expect(none.sentences).to.equal(0);
  });

  it('distanceSpearman: per length, the mean of the sentences\' mean row rho (random data)', () => {
    const rng = new Rng(33);
    const sentences = [];
    const bySentence = new Map<number, number[]>();
    for (let t = 0; t < 60; t++) {
      const n = 3 + rng.int(8);
      const gold = goldDistances(randomTree(rng, n));
      const pred = gold.map((row) => row.map((g) => g + rng.normal()));
      sentences.push({ pred, gold });
      if (n < 5) continue;
      const rhos = pred.map((row, i) => spearman(row, gold[i]!));
      bySentence.set(n, [...(bySentence.get(n) ?? []), mean(rhos)]);
    }
    const r = distanceSpearman(sentences);
    const lengths = [...bySentence.keys()].sort((x, y) => x - y);
    expect([...r.perLength.keys()]).to.deep.equal(lengths);
    for (const n of lengths) expect(r.perLength.get(n)).to.be.closeTo(mean(bySentence.get(n)!), 1e-12);
    expect(r.value).to.be.closeTo(mean(lengths.map((n) => mean(bySentence.get(n)!))), 1e-12);
  });

  it('distanceSpearman: a constant row gives NaN, carried into its length and the value', () => {
    const flat = { gold: chain(6), pred: chain(6).map((row) => row.slice()) };
    flat.pred[2] = [1, 1, 1, 1, 1, 1];
    const r = distanceSpearman([s1, flat]);
    expect(r.perLength.get(5)).to.be.closeTo(0.58, 1e-12);
    expect(r.perLength.get(6)).to.be.NaN;
    expect(r.value).to.be.NaN;
  });

  it('distanceSpearman: rejects bad shapes, NaN entries and bad ranges', () => {
    expectError(() => distanceSpearman([s1, { gold: chain(5), pred: chain(4) }]), 'distanceSpearman', 'sentences[1].pred');
    expectError(() => distanceSpearman([{ gold: chain(5), pred: chain(5).map((r) => r.slice(1)) }]), 'sentences[0].pred[0]');
    const nan = { gold: chain(5), pred: chain(5).map((r) => r.slice()) };
    nan.pred[1]![3] = NaN;
    expectError(() => distanceSpearman([nan]), 'sentences[0].pred[1][3]', 'NaN');
    expectError(() => distanceSpearman([], { minLength: 10, maxLength: 5 }), 'distanceSpearman', 'maxLength');
    expectError(() => distanceSpearman([], { minLength: 0 }), 'distanceSpearman', 'minLength');
  });
});
