import { expect } from 'chai';
import {
  bootstrapCI,
  holm,
  mannWhitneyU,
  normalCdf,
  regularizedIncompleteBeta,
  studentTCdf,
  summarize,
  welchTTest,
  wilcoxonSignedRank,
} from '../src/util/stats.js';
import { TopoprobeError } from '../src/util/errors.js';
import { Rng } from '../src/util/random.js';

/** All k-element subsets of 0..n-1, as index arrays (for brute-force null distributions). */
function subsets(n: number, k: number): number[][] {
  const out: number[][] = [];
  const pick = (start: number, chosen: number[]): void => {
    if (chosen.length === k) {
      out.push([...chosen]);
      return;
    }
    for (let i = start; i < n; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return out;
}

/**
 * The exact two-sided Mann-Whitney p by brute force: every way of splitting the pooled (tie-free)
 * values into groups of sizes na and nb, U of the first group counted pair by pair.
 */
function bruteForceMannWhitney(a: number[], b: number[]): { u: number; p: number } {
  const pooled = [...a, ...b];
  const uOf = (xs: number[], ys: number[]): number => {
    let u = 0;
    for (const x of xs) for (const y of ys) u += x > y ? 1 : 0;
    return u;
  };
  const u = uOf(a, b);
  const uMin = Math.min(u, a.length * b.length - u);
  const splits = subsets(pooled.length, a.length);
  let atMost = 0;
  for (const idx of splits) {
    const xs = idx.map((i) => pooled[i]!);
    const ys = pooled.filter((_, i) => !idx.includes(i));
    if (uOf(xs, ys) <= uMin) atMost++;
  }
  return { u, p: Math.min(1, (2 * atMost) / splits.length) };
}

/** The exact two-sided signed-rank p by brute force over all 2^n sign patterns of the ranks 1..n. */
function bruteForceSignedRank(n: number, w: number): number {
  let atMost = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    let wPlus = 0;
    for (let r = 1; r <= n; r++) if (mask & (1 << (r - 1))) wPlus += r;
    if (wPlus <= w) atMost++;
  }
  return Math.min(1, (2 * atMost) / 2 ** n);
}

describe('stats: distributions', () => {
  it('normalCdf at known quantiles and far in the lower tail', () => {
    expect(normalCdf(0)).to.equal(0.5);
    expect(normalCdf(1.96)).to.be.closeTo(0.9750021048517795, 1e-14);
    expect(normalCdf(-1)).to.be.closeTo(0.15865525393145707, 1e-14);
    expect(normalCdf(2.5)).to.be.closeTo(0.9937903346742238, 1e-14);
    // Relative accuracy in the tail (the complement is not formed there): Phi(-10) = 7.6198530241605e-24.
    expect(normalCdf(-10) / 7.619853024160527e-24).to.be.closeTo(1, 1e-12);
    expect(normalCdf(Infinity)).to.equal(1);
    expect(normalCdf(-Infinity)).to.equal(0);
    expect(normalCdf(NaN)).to.be.NaN;
  });

  it('studentTCdf against closed forms and published quantiles', () => {
    // df = 1 is the Cauchy distribution: 1/2 + atan(t)/pi.
    expect(studentTCdf(1, 1)).to.be.closeTo(0.75, 1e-14);
    for (const t of [-30, -2.5, -0.3, 0, 0.7, 4]) {
      expect(studentTCdf(t, 1), `df 1, t ${t}`).to.be.closeTo(0.5 + Math.atan(t) / Math.PI, 1e-14);
      // df = 2: 1/2 + t / (2 sqrt(2 + t^2)).
      expect(studentTCdf(t, 2), `df 2, t ${t}`).to.be.closeTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-14);
    }
    // Table quantiles: t_{0.975, 10} = 2.228, t_{0.995, 30} = 2.750, t_{0.95, 5} = 2.015.
    expect(studentTCdf(2.228, 10)).to.be.closeTo(0.975, 1e-4);
    expect(studentTCdf(-2.228, 10)).to.be.closeTo(0.025, 1e-4);
    expect(studentTCdf(2.75, 30)).to.be.closeTo(0.995, 1e-4);
    expect(studentTCdf(2.015, 5)).to.be.closeTo(0.95, 1e-4);
    // Huge df approaches the normal.
    expect(studentTCdf(1.96, 1e6)).to.be.closeTo(normalCdf(1.96), 1e-6); // they differ by about 1.4e-7
    expect(studentTCdf(1.96, Infinity)).to.equal(normalCdf(1.96));
    expect(() => studentTCdf(1, 0)).to.throw(TopoprobeError, 'df must be positive');
  });

  it('regularizedIncompleteBeta against closed forms', () => {
    for (const x of [0, 0.05, 0.3, 0.5, 0.8, 0.999, 1]) {
      expect(regularizedIncompleteBeta(x, 1, 1), `I_${x}(1,1)`).to.be.closeTo(x, 1e-14);
      expect(regularizedIncompleteBeta(x, 3.5, 1), `I_${x}(3.5,1)`).to.be.closeTo(x ** 3.5, 1e-14);
      expect(regularizedIncompleteBeta(x, 1, 4), `I_${x}(1,4)`).to.be.closeTo(1 - (1 - x) ** 4, 1e-14);
      // I_x(2, 3) = P(Binomial(4, x) >= 2).
      const binom = 6 * x ** 2 * (1 - x) ** 2 + 4 * x ** 3 * (1 - x) + x ** 4;
      expect(regularizedIncompleteBeta(x, 2, 3), `I_${x}(2,3)`).to.be.closeTo(binom, 1e-14);
    }
    expect(regularizedIncompleteBeta(0.5, 7.3, 7.3)).to.be.closeTo(0.5, 1e-14);
    expect(regularizedIncompleteBeta(0.5, 40, 40)).to.be.closeTo(0.5, 1e-13);
    // Symmetry I_x(a, b) = 1 - I_{1-x}(b, a) across the continued fraction's switch.
    expect(regularizedIncompleteBeta(0.3, 2.5, 7.1) + regularizedIncompleteBeta(0.7, 7.1, 2.5)).to.be.closeTo(1, 1e-14);
    expect(regularizedIncompleteBeta(0.3, 2.5, 7.1)).to.be.closeTo(0.6490225790210132, 1e-13); // scipy betainc
    expect(() => regularizedIncompleteBeta(1.5, 1, 1)).to.throw(TopoprobeError, 'x must be in [0, 1]');
    expect(() => regularizedIncompleteBeta(0.5, 0, 1)).to.throw(TopoprobeError, 'must be positive');
  });
});

describe('stats: summarize', () => {
  it('mean, sample std, median of an even n, min, max', () => {
    const s = summarize([3, 1, 4, 1, 5, 9]);
    expect(s.n).to.equal(6);
    expect(s.mean).to.be.closeTo(23 / 6, 1e-14);
    // Sum of squares 133, minus n * mean^2 = 529/6, gives 269/6; over n - 1 = 5.
    expect(s.std).to.be.closeTo(Math.sqrt(269 / 30), 1e-14);
    expect(s.median).to.equal(3.5); // sorted 1 1 3 4 5 9
    expect(s.min).to.equal(1);
    expect(s.max).to.equal(9);
    expect(summarize([4, 2, 7]).median).to.equal(4);
  });

  it('NaN where undefined; rejects non-finite scores', () => {
    const one = summarize([0.8]);
    expect(one).to.deep.include({ n: 1, mean: 0.8, median: 0.8, min: 0.8, max: 0.8 });
    expect(one.std).to.be.NaN;
    const none = summarize([]);
    expect(none.n).to.equal(0);
    for (const v of [none.mean, none.std, none.median, none.min, none.max]) expect(v).to.be.NaN;
    expect(() => summarize([1, NaN])).to.throw(TopoprobeError, 'xs[1] must be a finite number');
  });
});

describe('stats: welchTTest', () => {
  it("Wikipedia's Welch example 1 (t -2.46, df 24.99, p 0.021)", () => {
    const a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
    const b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
    const r = welchTTest(a, b);
    expect(r.t).to.be.closeTo(-2.46, 0.005);
    expect(r.df).to.be.closeTo(24.99, 0.005);
    expect(r.p).to.be.closeTo(0.021, 0.0005);
    // Tighter, against scipy.stats.ttest_ind(a, b, equal_var=False).
    expect(r.t).to.be.closeTo(-2.455356398286006, 1e-12);
    expect(r.df).to.be.closeTo(24.988529290231416, 1e-10);
    expect(r.p).to.be.closeTo(0.021378001462867, 1e-12);
    // Swapping the groups flips t only.
    const s = welchTTest(b, a);
    expect(s.t).to.be.closeTo(-r.t, 1e-12);
    expect(s.p).to.be.closeTo(r.p, 1e-14);
  });

  it('p = 2 P(T_df <= -|t|) with the Welch-Satterthwaite df, by hand', () => {
    const a = [1, 2, 3, 4]; // mean 2.5, var 5/3
    const b = [2, 4, 6, 8, 10, 12]; // mean 7, var 14
    const va = 5 / 3 / 4;
    const vb = 14 / 6;
    const t = (2.5 - 7) / Math.sqrt(va + vb);
    const df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 5);
    const r = welchTTest(a, b);
    expect(r.t).to.be.closeTo(t, 1e-12);
    expect(r.df).to.be.closeTo(df, 1e-12);
    expect(r.p).to.be.closeTo(2 * studentTCdf(-Math.abs(t), df), 1e-12);
  });

  it('NaN where undefined: n < 2 in a group, or both variances 0', () => {
    const small = welchTTest([1], [1, 2, 3]);
    expect(small.t).to.be.NaN;
    expect(small.df).to.be.NaN;
    expect(small.p).to.be.NaN;
    const flat = welchTTest([1, 1, 1], [2, 2]);
    expect(flat.t).to.equal(-Infinity);
    expect(flat.df).to.be.NaN;
    expect(flat.p).to.be.NaN;
    expect(welchTTest([3, 3], [3, 3, 3]).t).to.be.NaN;
    // One constant group is fine: df falls back to the other's n - 1.
    const one = welchTTest([5, 5, 5], [1, 2, 3, 4]);
    expect(one.df).to.be.closeTo(3, 1e-12);
    expect(one.p).to.be.greaterThan(0).and.lessThan(0.05);
  });
});

describe('stats: mannWhitneyU', () => {
  it('exact small samples: [1,2,3] vs [4,5,6] and [1,3,5] vs [2,4,6]', () => {
    expect(mannWhitneyU([1, 2, 3], [4, 5, 6])).to.deep.equal({ u: 0, p: 0.1, exact: true }); // 2 of C(6,3) = 20
    const r = mannWhitneyU([1, 3, 5], [2, 4, 6]);
    expect(r.u).to.equal(3);
    expect(r.exact).to.equal(true);
    expect(r.p).to.be.closeTo(0.7, 1e-15); // P(U <= 3) = 7/20, doubled
    // U is that of sample a: the other order gives n_a n_b - U and the same p.
    const s = mannWhitneyU([4, 5, 6], [1, 2, 3]);
    expect(s.u).to.equal(9);
    expect(s.p).to.be.closeTo(0.1, 1e-15);
  });

  it('exact n = 4, 4 against a hand enumeration of the 70 splits', () => {
    // U counts for n = 4, 4 (u = 0..16): 1 1 2 3 5 5 7 7 8 7 7 5 5 3 2 1 1. U_a = 4: P(U <= 4) = 12/70.
    const a = [1, 2, 4, 7];
    const b = [3, 5, 6, 8];
    const r = mannWhitneyU(a, b);
    expect(r.u).to.equal(4);
    expect(r.exact).to.equal(true);
    expect(r.p).to.be.closeTo(24 / 70, 1e-15);
    expect(bruteForceMannWhitney(a, b).p).to.be.closeTo(24 / 70, 1e-15);
  });

  it('the DP null distribution matches brute force on random tie-free samples', () => {
    const rng = new Rng(7);
    for (const [na, nb] of [[5, 6], [2, 7], [6, 6], [1, 8]] as const) {
      const a = Array.from({ length: na }, () => rng.normal());
      const b = Array.from({ length: nb }, () => rng.normal() + 0.7);
      const r = mannWhitneyU(a, b);
      const ref = bruteForceMannWhitney(a, b);
      expect(r.exact, `${na},${nb}`).to.equal(true);
      expect(r.u, `${na},${nb}`).to.equal(ref.u);
      expect(r.p, `${na},${nb}`).to.be.closeTo(ref.p, 1e-14);
    }
  });

  it('normal approximation with tie and continuity corrections, by hand', () => {
    // Pooled and sorted: 1a 2a 2a 2b 3a 3b 3b 4a 5b 6b 7b; ranks 1, 3 (x3), 6 (x3), 8, 9, 10, 11.
    // R_a = 1 + 3 + 3 + 6 + 8 = 21, U_a = 21 - 15 = 6, U_b = 30 - 6 = 24, mean 15.
    // Ties: two groups of 3, sum t^3 - t = 48. Var = 30/12 * (12 - 48 / (11 * 10)).
    const r = mannWhitneyU([1, 2, 2, 3, 4], [2, 3, 3, 5, 6, 7]);
    expect(r.u).to.equal(6);
    expect(r.exact).to.equal(false);
    const z = (24 - 15 - 0.5) / Math.sqrt(2.5 * (12 - 48 / 110));
    expect(r.p).to.be.closeTo(2 * (1 - normalCdf(z)), 1e-14);
    expect(r.p).to.be.closeTo(0.11390314458853068, 1e-12); // scipy.stats.mannwhitneyu, default method
  });

  it('normal approximation without ties once a group exceeds 20', () => {
    const a = Array.from({ length: 25 }, (_, i) => i);
    const b = Array.from({ length: 22 }, (_, i) => i * 1.3 + 2.05);
    const r = mannWhitneyU(a, b);
    expect(r.exact).to.equal(false);
    expect(r.u).to.equal(205);
    const z = (25 * 22 - 205 - 275 - 0.5) / Math.sqrt((25 * 22 * 48) / 12);
    expect(r.p).to.be.closeTo(2 * normalCdf(-z), 1e-14);
    expect(r.p).to.be.closeTo(0.13840816419615298, 1e-12); // scipy, method='asymptotic'
    // At 20 and 20 it is still exact (scipy, method='exact': 0.04595422986872423).
    const e = mannWhitneyU(a.slice(0, 20), b.slice(0, 20));
    expect(e.exact).to.equal(true);
    expect(e.u).to.equal(126);
    expect(e.p).to.be.closeTo(0.04595422986872423, 1e-13);
  });

  it('NaN where undefined: an empty group, or all values equal', () => {
    const empty = mannWhitneyU([], [1, 2]);
    expect(empty.u).to.be.NaN;
    expect(empty.p).to.be.NaN;
    const flat = mannWhitneyU([1, 1], [1, 1, 1]);
    expect(flat.u).to.equal(3);
    expect(flat.p).to.be.NaN;
    expect(() => mannWhitneyU([1, Infinity], [2])).to.throw(TopoprobeError, 'a[1] must be a finite number');
  });
});

describe('stats: wilcoxonSignedRank', () => {
  it('all positive differences, n = 5: W- = 0, p = 2/32', () => {
    const r = wilcoxonSignedRank([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]);
    expect(r).to.deep.equal({ w: 0, p: 0.0625, exact: true });
  });

  it('mixed signs, hand-enumerated', () => {
    // d = 1, -2, 3, 4, -5, 6: ranks 1..6, W- = 2 + 5 = 7, W+ = 14, w = 7. Subsets of 1..6 with sum
    // <= 7: sums 0,1,2 (one each), 3 (2), 4 (2), 5 (3), 6 (4), 7 (4) = 18 of 64, so p = 36/64.
    const zeros = [0, 0, 0, 0, 0, 0];
    const r = wilcoxonSignedRank([1, -2, 3, 4, -5, 6], zeros);
    expect(r.w).to.equal(7);
    expect(r.exact).to.equal(true);
    expect(r.p).to.be.closeTo(36 / 64, 1e-15);
    expect(bruteForceSignedRank(6, 7)).to.be.closeTo(36 / 64, 1e-15);
  });

  it('the DP null distribution matches brute force', () => {
    const rng = new Rng(11);
    for (const n of [3, 8, 12]) {
      const a = Array.from({ length: n }, () => rng.normal() + 0.4);
      const b = Array.from({ length: n }, () => rng.normal());
      const r = wilcoxonSignedRank(a, b);
      expect(r.exact, `n ${n}`).to.equal(true);
      expect(r.p, `n ${n}`).to.be.closeTo(bruteForceSignedRank(n, r.w), 1e-14);
    }
  });

  it('zero differences are dropped before ranking', () => {
    const withZeros = wilcoxonSignedRank([5, 1, -2, 7, 3, 4, -5, 6], [5, 0, 0, 7, 0, 0, 0, 0]);
    expect(withZeros).to.deep.equal(wilcoxonSignedRank([1, -2, 3, 4, -5, 6], [0, 0, 0, 0, 0, 0]));
    const all = wilcoxonSignedRank([1, 2, 3], [1, 2, 3]);
    expect(all.w).to.equal(0);
    expect(all.p).to.be.NaN;
    expect(all.exact).to.equal(false);
    expect(wilcoxonSignedRank([], []).p).to.be.NaN;
  });

  it('normal approximation with the tie correction, by hand', () => {
    // |d| = 1, 2, 2, 4, 5, 6: ranks 1, 2.5, 2.5, 4, 5, 6. W- = 2.5 + 5 = 7.5, W+ = 13.5.
    // mean 6*7/4 = 10.5; var 6*7*13/24 - (2^3 - 2)/48 = 22.75 - 0.125.
    const r = wilcoxonSignedRank([1, -2, 2, 4, -5, 6], [0, 0, 0, 0, 0, 0]);
    expect(r.w).to.equal(7.5);
    expect(r.exact).to.equal(false);
    expect(r.p).to.be.closeTo(2 * normalCdf((7.5 - 10.5) / Math.sqrt(22.625)), 1e-14);
    expect(r.p).to.be.closeTo(0.5282327768679831, 1e-12); // scipy.stats.wilcoxon, method='approx'
  });

  it('normal approximation without ties past n = 25', () => {
    // d = +-1..+-26, negative for the multiples of 3 (3 + 6 + ... + 24 = 108), so w = 108.
    const d = Array.from({ length: 26 }, (_, i) => ((i + 1) % 3 === 0 ? -(i + 1) : i + 1));
    const r = wilcoxonSignedRank(d, d.map(() => 0));
    expect(r.w).to.equal(108);
    expect(r.exact).to.equal(false);
    const z = (108 - (26 * 27) / 4) / Math.sqrt((26 * 27 * 53) / 24);
    expect(r.p).to.be.closeTo(2 * normalCdf(z), 1e-14);
  });

  it('rejects samples of different lengths', () => {
    expect(() => wilcoxonSignedRank([1, 2], [1])).to.throw(TopoprobeError, 'same length');
  });
});

describe('stats: bootstrapCI', () => {
  it('covers the true mean at about the nominal rate', function () {
    this.timeout(60000);
    // 200 samples of 20 standard normals (mean 0), each with the default 95% interval and seed.
    // Observed: 185 of 200 (92.5%) cover 0; the percentile bootstrap runs a little under nominal at
    // n = 20, as expected.
    const data = new Rng(2024);
    let covered = 0;
    for (let k = 0; k < 200; k++) {
      const xs = Array.from({ length: 20 }, () => data.normal());
      const [lo, hi] = bootstrapCI(xs);
      if (lo <= 0 && 0 <= hi) covered++;
    }
    expect(covered / 200).to.be.within(0.88, 0.99);
  });

  it('is deterministic for a seed, narrower at a lower level, and brackets the mean', () => {
    const xs = [0.81, 0.79, 0.84, 0.8, 0.77, 0.83, 0.82, 0.78];
    const a = bootstrapCI(xs, { seed: 3 });
    expect(bootstrapCI(xs, { seed: 3 })).to.deep.equal(a);
    expect(bootstrapCI(xs, { seed: 4 })).to.not.deep.equal(a);
    const half = bootstrapCI(xs, { level: 0.5, seed: 3 });
    expect(half[1] - half[0]).to.be.lessThan(a[1] - a[0]);
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    for (const [lo, hi] of [a, half]) {
      expect(lo).to.be.lessThan(m);
      expect(hi).to.be.greaterThan(m);
    }
    expect(a[0]).to.be.at.least(0.77);
    expect(a[1]).to.be.at.most(0.84);
  });

  it('n = 1 and n = 0, and bad options', () => {
    expect(bootstrapCI([0.7])).to.deep.equal([0.7, 0.7]);
    const none = bootstrapCI([]);
    expect(none[0]).to.be.NaN;
    expect(none[1]).to.be.NaN;
    expect(() => bootstrapCI([1, 2], { level: 1 })).to.throw(TopoprobeError, 'level');
    expect(() => bootstrapCI([1, 2], { resamples: 0 })).to.throw(TopoprobeError, 'resamples');
  });
});

describe('stats: holm', () => {
  it('the hand example, in input order', () => {
    // Sorted: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09 (monotone), 0.2*1 = 0.2.
    const r = holm([0.01, 0.04, 0.03, 0.2]);
    const expected = [0.04, 0.09, 0.09, 0.2];
    r.forEach((p, i) => expect(p, `index ${i}`).to.be.closeTo(expected[i]!, 1e-15));
  });

  it('caps at 1, keeps NaN out of the count, and rejects p outside [0, 1]', () => {
    expect(holm([0.5, 0.6])).to.deep.equal([1, 1]);
    const r = holm([0.01, NaN, 0.04]);
    expect(r[0]).to.be.closeTo(0.02, 1e-15);
    expect(r[1]).to.be.NaN;
    expect(r[2]).to.be.closeTo(0.04, 1e-15);
    expect(holm([])).to.deep.equal([]);
    expect(() => holm([0.2, 1.5])).to.throw(TopoprobeError, 'pvalues[1] must be in [0, 1]');
  });
});
