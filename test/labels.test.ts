import { expect } from 'chai';
import {
  greedyGap,
  isTreeConsistent,
  squaredError,
  treeLabels,
  treeLabelsBatch,
  type LabelVariant,
} from '../src/probe/labels.js';
import { Rng } from '../src/util/random.js';
import { expectError } from './helpers.js';

/** Random norm vectors of several shapes and scales, some with many exact ties. */
function randomNorms(rng: Rng, n: number): number[] {
  const kind = rng.int(5);
  const scale = [0.1, 1, 3, 20][rng.int(4)]!;
  switch (kind) {
    case 0: // i.i.d. uniform
      return Array.from({ length: n }, () => rng.uniform() * scale * n);
    case 1: // normal around an offset, negatives included
      return Array.from({ length: n }, () => 2 + scale * rng.normal());
    case 2: {
      // noisy depths of a random tree: each word hangs below an earlier one
      const depth = [1];
      for (let i = 1; i < n; i++) depth.push(depth[rng.int(i)]! + 1);
      rng.shuffle(depth);
      return depth.map((d) => d + (scale / 4) * rng.normal());
    }
    case 3: // quantised to halves: exact ties in norms and exact halfway cases
      return Array.from({ length: n }, () => rng.int(2 * n + 2) / 2);
    default: // a few large gaps
      return Array.from({ length: n }, () => rng.int(4) * scale * 10 + rng.uniform());
  }
}

/**
 * Searches every tree-consistent labelling of n positions; returns the least cost, a labelling with it,
 * and whether that labelling is the only one within 1e-9 of it.
 */
function bruteForceAll(norms: readonly number[]): { cost: number; labels: number[]; unique: boolean } {
  const n = norms.length;
  const labels = new Array<number>(n).fill(0);
  let best = { cost: Infinity, labels: [] as number[], unique: true };
  // Assign the root, then peel off the positions at depth 2, 3, ... as nonempty subsets of the rest.
  const rec = (remaining: number, level: number, cost: number): void => {
    if (remaining === 0) {
      if (cost < best.cost - 1e-9) best = { cost, labels: labels.slice(), unique: true };
      else if (cost <= best.cost + 1e-9) best.unique = false;
      return;
    }
    for (let sub = remaining; sub > 0; sub = (sub - 1) & remaining) {
      let c = cost;
      for (let i = 0; i < n; i++) {
        if (sub & (1 << i)) {
          labels[i] = level;
          c += (norms[i]! - level) ** 2;
        }
      }
      rec(remaining & ~sub, level + 1, c);
    }
  };
  for (let r = 0; r < n; r++) {
    labels[r] = 1;
    rec(((1 << n) - 1) & ~(1 << r), 2, (norms[r]! - 1) ** 2);
  }
  return best;
}

/**
 * The documented tie rule, by enumeration: over all non-decreasing sequences 1, 2, then steps of 0 or 1
 * on the stably sorted norms, the pointwise maximum of those with the least cost; returned by position.
 */
function bruteForceSortedHighest(norms: readonly number[]): number[] {
  const n = norms.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => norms[a]! - norms[b]!);
  const xs = order.map((i) => norms[i]!);
  const seqs: Array<{ cost: number; seq: number[] }> = [];
  const steps = Math.max(0, n - 2);
  for (let bits = 0; bits < 1 << steps; bits++) {
    const seq = xs.map((_, k) => k + 1).slice(0, Math.min(n, 2));
    for (let k = 2; k < n; k++) seq.push(seq[k - 1]! + ((bits >> (k - 2)) & 1));
    seqs.push({ cost: squaredError(xs, seq), seq });
  }
  const min = Math.min(...seqs.map((s) => s.cost));
  const optimal = seqs.filter((s) => s.cost <= min + 1e-9);
  const highest = xs.map((_, k) => Math.max(...optimal.map((s) => s.seq[k]!)));
  expect(optimal.some((s) => s.seq.every((l, k) => l === highest[k]))).to.equal(true, 'pointwise max is optimal');
  const out = new Array<number>(n);
  order.forEach((pos, k) => (out[pos] = highest[k]!));
  return out;
}

describe('labels: treeLabels (hand-worked)', () => {
  it('ssp: follows the greedy keep-or-rise rule on the sorted norms', () => {
    // sorted 0.5 -> 1, 1.9 -> 2, 2.6: |2.6-2| = 0.6 vs |3-2.6| = 0.4 -> 3, 3.2: 0.2 vs 0.8 -> keeps 3.
    expect(treeLabels([0.5, 3.2, 1.9, 2.6])).to.deep.equal([1, 3, 2, 3]);
    expect(treeLabels([0.5, 3.2, 1.9, 2.6], 'ssp')).to.deep.equal([1, 3, 2, 3]);
  });

  it('ssp: a norm exactly halfway rises, one just below keeps', () => {
    expect(treeLabels([1, 2, 2.5])).to.deep.equal([1, 2, 3]);
    expect(treeLabels([1, 2, 2.49])).to.deep.equal([1, 2, 2]);
    expect(treeLabels([3.5, 1, 3, 2])).to.deep.equal([4, 1, 3, 2]); // 3.5 is halfway between 3 and 4
  });

  it('ssp: equal norms are ordered by position (the stable sort decides who is 1 and 2)', () => {
    expect(treeLabels([0.7, 0.7, 0.7])).to.deep.equal([1, 2, 2]);
    // sorted: position 1 (1), position 2 (1), position 0 (2): 2 is nearer 2 than 3, so it keeps 2.
    expect(treeLabels([2, 1, 1])).to.deep.equal([2, 1, 2]);
  });

  it('handles lengths 0, 1 and 2', () => {
    for (const v of ['ssp', 'essp', 'exact'] as const) {
      expect(treeLabels([], v)).to.deep.equal([]);
      expect(treeLabels([5], v)).to.deep.equal([1]);
      expect(treeLabels([4, 4], v)).to.deep.equal(v === 'essp' ? [2, 1] : [1, 2]);
    }
    expect(treeLabels([3, -1])).to.deep.equal([2, 1]);
    expect(treeLabels([3, -1], 'exact')).to.deep.equal([2, 1]);
  });

  it('climbs at most one level per step, however large the gap', () => {
    expect(treeLabels([0, 100, 200])).to.deep.equal([1, 2, 3]);
    expect(treeLabels([200, 0, 100], 'exact')).to.deep.equal([3, 1, 2]);
    expect(treeLabels([0, 1000, 1000.2, 5000])).to.deep.equal([1, 2, 3, 4]);
  });

  it('works with negative norms', () => {
    // sorted -3 -> 1, -2 -> 2; -1 and -0.5 are far nearer 2 than 3.
    expect(treeLabels([-3, -1, -2, -0.5])).to.deep.equal([1, 2, 2, 2]);
    expect(treeLabels([-3, -1, -2, -0.5], 'exact')).to.deep.equal([1, 2, 2, 2]);
  });

  it('essp reads the ssp labels in reversed position order', () => {
    expect(treeLabels([0.5, 3.2, 1.9, 2.6], 'essp')).to.deep.equal([3, 2, 3, 1]);
    expect(treeLabels([2, 1, 1], 'essp')).to.deep.equal([2, 1, 2]);
    expect(treeLabels([1, 2, 2.49], 'essp')).to.deep.equal([2, 2, 1]);
  });

  it('exact: agrees with ssp where greedy is optimal', () => {
    // sorted 0.5, 1.9, 2.6, 3.2: tails (2,2) 1.8, (2,3) 0.4, (3,3) 0.2, (3,4) 0.8 -> (3,3).
    expect(treeLabels([0.5, 3.2, 1.9, 2.6], 'exact')).to.deep.equal([1, 3, 2, 3]);
  });

  it('exact: beats the greedy labels when keeping now forces a poor fit later', () => {
    const norms = [3.9, 1, 4.9, 2.45, 2];
    // greedy: 2.45 keeps 2 (0.45 < 0.55), then 3.9 -> 3 and 4.9 -> 4: 0.2025 + 0.81 + 0.81 = 1.8225
    expect(treeLabels(norms)).to.deep.equal([3, 1, 4, 2, 2]);
    // exact: 2.45 -> 3 costs 0.3025 but lets 3.9 -> 4 and 4.9 -> 5 cost 0.01 each: 0.3225
    expect(treeLabels(norms, 'exact')).to.deep.equal([4, 1, 5, 3, 2]);
    const gap = greedyGap(norms);
    expect(gap.greedy).to.be.closeTo(1.8225, 1e-12);
    expect(gap.exact).to.be.closeTo(0.3225, 1e-12);
  });

  it('exact: among equal-cost labellings, returns the pointwise highest', () => {
    expect(treeLabels([1, 2, 2.5], 'exact')).to.deep.equal([1, 2, 3]);
    // sorted 1, 2, 2.5, 2.5: tails (2,2), (2,3), (3,3) all cost 0.5; the highest is (3,3).
    expect(treeLabels([2.5, 1, 2.5, 2], 'exact')).to.deep.equal([3, 1, 3, 2]);
  });

  it('rejects NaN and infinite norms and unknown variants, naming the argument', () => {
    expectError(() => treeLabels([1, NaN, 2]), 'norms[1]', 'NaN');
    expectError(() => treeLabels([1, Infinity], 'exact'), 'norms[1]');
    expectError(() => treeLabels([1, 2], 'greedy' as LabelVariant), 'variant', 'greedy');
  });
});

describe('labels: isTreeConsistent and squaredError', () => {
  it('accepts exactly the tree-shaped label vectors', () => {
    expect(isTreeConsistent([1])).to.equal(true);
    expect(isTreeConsistent([1, 2, 2, 3])).to.equal(true);
    expect(isTreeConsistent([2, 1, 3])).to.equal(true);
    expect(isTreeConsistent([])).to.equal(false); // no root
    expect(isTreeConsistent([1, 1, 2])).to.equal(false); // two roots
    expect(isTreeConsistent([2, 3])).to.equal(false); // no root
    expect(isTreeConsistent([1, 3])).to.equal(false); // depth 2 missing
    expect(isTreeConsistent([1, 2, 4, 4])).to.equal(false); // depth 3 missing
    expect(isTreeConsistent([1, 2.5])).to.equal(false);
    expect(isTreeConsistent([0, 1])).to.equal(false);
  });

  it('sums squared differences and checks lengths', () => {
    expect(squaredError([1, 2.5, 0], [1, 2, 2])).to.equal(0.25 + 4);
    expect(squaredError([], [])).to.equal(0);
    expectError(() => squaredError([1, 2], [1]), 'norms', 'labels');
  });
});

describe('labels: properties over random vectors', () => {
  const rng = new Rng(20231);
  const cases = Array.from({ length: 3000 }, () => randomNorms(rng, 1 + rng.int(40)));

  it('ssp, essp and exact are always tree-consistent', () => {
    for (const x of cases) {
      for (const v of ['ssp', 'essp', 'exact'] as const) {
        const l = treeLabels(x, v);
        expect(l).to.have.length(x.length);
        expect(isTreeConsistent(l), `${v} of ${JSON.stringify(x)}`).to.equal(true);
      }
    }
  });

  it('exact never has a larger squared error than ssp', () => {
    let strictlyBetter = 0;
    for (const x of cases) {
      const { greedy, exact } = greedyGap(x);
      expect(exact, JSON.stringify(x)).to.be.at.most(greedy + 1e-9);
      if (exact < greedy - 1e-9) strictlyBetter++;
    }
    // The check has teeth: the greedy rule is suboptimal on a fair share of these vectors.
    expect(strictlyBetter).to.be.greaterThan(cases.length / 20);
  });

  it('essp is the position reversal of ssp (so a permutation of it)', () => {
    for (const x of cases) {
      const ssp = treeLabels(x, 'ssp');
      expect(treeLabels(x, 'essp')).to.deep.equal(ssp.slice().reverse());
    }
  });

  it('ssp and exact labels never decrease as the norm grows', () => {
    for (const x of cases) {
      for (const v of ['ssp', 'exact'] as const) {
        const l = treeLabels(x, v);
        let ok = true;
        for (let i = 0; i < x.length; i++) {
          for (let j = 0; j < x.length; j++) if (x[i]! < x[j]! && l[i]! > l[j]!) ok = false;
        }
        expect(ok, `${v} of ${JSON.stringify(x)}`).to.equal(true);
      }
    }
  });

  it('exact equals a brute-force search over all tree-consistent labellings (n <= 8)', () => {
    const local = new Rng(7);
    for (let t = 0; t < 300; t++) {
      const n = 1 + local.int(8);
      const x = randomNorms(local, n);
      const brute = bruteForceAll(x);
      const exact = treeLabels(x, 'exact');
      expect(squaredError(x, exact), JSON.stringify(x)).to.be.closeTo(brute.cost, 1e-9);
      // Where the optimum is unique the labels themselves must match.
      if (brute.unique) expect(exact, JSON.stringify(x)).to.deep.equal(brute.labels);
    }
  });

  it('exact follows the documented tie rule (pointwise highest optimum), ties included (n <= 14)', () => {
    const local = new Rng(11);
    for (let t = 0; t < 400; t++) {
      const n = 1 + local.int(14);
      const x = randomNorms(local, n);
      expect(treeLabels(x, 'exact'), JSON.stringify(x)).to.deep.equal(bruteForceSortedHighest(x));
    }
  });
});

describe('labels: treeLabelsBatch', () => {
  // Row 0: [CLS] w w w w [SEP]; row 1: [CLS] w w w [SEP] [PAD] (the pad holds garbage).
  const norms = Float32Array.from([9, 0.5, 3.2, 1.9, 2.6, 9, 9, 2, 1, 5, 9, NaN]);
  const mask = Uint8Array.from([0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0]);

  it('labels the masked positions of each row and writes 0 elsewhere (hand example)', () => {
    // row 1's words [2, 1, 5]: 1 -> 1, 2 -> 2, 5: |5-2| = 3 vs |3-5| = 2 -> 3.
    expect(Array.from(treeLabelsBatch(norms, mask, 2, 6, 'ssp'))).to.deep.equal([0, 1, 3, 2, 3, 0, 0, 2, 1, 3, 0, 0]);
    expect(Array.from(treeLabelsBatch(norms, mask, 2, 6, 'essp'))).to.deep.equal([0, 3, 2, 3, 1, 0, 0, 3, 1, 2, 0, 0]);
    expect(Array.from(treeLabelsBatch(norms, Array.from(mask), 2, 6, 'exact'))).to.deep.equal([
      0, 1, 3, 2, 3, 0, 0, 2, 1, 3, 0, 0,
    ]);
  });

  it('with an all-ones mask (the paper mode) labels the whole padded row', () => {
    const x = Float32Array.from([9, 0.5, 3.2, 1.9, 2.6, 9]);
    const out = treeLabelsBatch(x, new Uint8Array(6).fill(1), 1, 6, 'ssp');
    expect(Array.from(out)).to.deep.equal(treeLabels(x, 'ssp'));
  });

  it('matches treeLabels on each row for random batches and masks', () => {
    const rng = new Rng(3);
    for (let t = 0; t < 100; t++) {
      const batch = 1 + rng.int(5);
      const seqLen = 1 + rng.int(30);
      const x = Float32Array.from({ length: batch * seqLen }, () => rng.normal() * 3);
      const m = Uint8Array.from({ length: batch * seqLen }, () => (rng.uniform() < 0.7 ? 1 : 0));
      for (const v of ['ssp', 'essp', 'exact'] as const) {
        const out = treeLabelsBatch(x, m, batch, seqLen, v);
        for (let b = 0; b < batch; b++) {
          const pos = [...Array(seqLen).keys()].map((t2) => b * seqLen + t2).filter((i) => m[i] === 1);
          const expected = treeLabels(pos.map((i) => x[i]!), v);
          const row = Array.from(out.subarray(b * seqLen, (b + 1) * seqLen));
          const want = new Array<number>(seqLen).fill(0);
          pos.forEach((i, k) => (want[i - b * seqLen] = expected[k]!));
          expect(row).to.deep.equal(want);
        }
      }
    }
  });

  it('rejects mismatched sizes, non-0/1 masks and NaN at masked positions', () => {
    expectError(() => treeLabelsBatch(new Float32Array(5), new Uint8Array(6), 2, 3), 'norms', '2 * 3');
    expectError(() => treeLabelsBatch(new Float32Array(6), new Uint8Array(5), 2, 3), 'mask', '2 * 3');
    expectError(() => treeLabelsBatch(new Float32Array(2), [1, 2], 1, 2), 'mask[row 0, position 1]');
    expectError(() => treeLabelsBatch(Float32Array.from([1, NaN]), [1, 1], 1, 2), 'norms[row 0, position 1]', 'NaN');
    expectError(() => treeLabelsBatch(new Float32Array(2), [1, 1], 1, 2, 'nope' as LabelVariant), 'variant');
  });
});
