import { expect } from 'chai';
import { collapseVerdict, maxTreeLabel, sameness, STAR_TREE_MAX_LABEL } from '../src/train/monitor.js';
import { holdoutSplit } from '../src/data/holdout.js';
import { expectError } from './helpers.js';

describe('collapse monitors', () => {
  it('maxTreeLabel is the largest greedy tree label: a chain climbs, a star stays at 2', () => {
    // Sorted 1, 2, 3, 4: each rises (|x - prev| is never below |prev + 1 - x|), labels 1..4.
    expect(maxTreeLabel([3, 1, 4, 2])).to.equal(4);
    // The star: one small norm, the rest together: 1, then 2, and 2.1, 2.2 keep 2.
    expect(maxTreeLabel([2.2, 0.1, 2, 2.1])).to.equal(2);
    expect(maxTreeLabel([5])).to.equal(1);
    expect(maxTreeLabel([])).to.equal(0);
  });

  it('sameness is |mean h| / mean |h|: 1 for one direction, 0 for opposite states, hand values between', () => {
    expect(sameness([1, 2, 1, 2, 1, 2], 3, 2)).to.be.closeTo(1, 1e-12);
    expect(sameness([1, 0, 3, 0], 2, 2)).to.be.closeTo(1, 1e-12); // positive multiples of one direction
    expect(sameness([1, 2, -1, -2], 2, 2)).to.be.closeTo(0, 1e-12);
    // (1, 0) and (0, 1): |(0.5, 0.5)| = sqrt(0.5), mean norm 1.
    expect(sameness([1, 0, 0, 1], 2, 2)).to.be.closeTo(Math.SQRT1_2, 1e-12);
    // (3, 4) and (0, -1): mean (1.5, 1.5), |.| = 1.5 sqrt 2; norms 5 and 1, mean 3.
    expect(sameness([3, 4, 0, -1], 2, 2)).to.be.closeTo((1.5 * Math.SQRT2) / 3, 1e-12);
    expect(sameness([], 0, 4)).to.equal(null);
    expect(sameness([0, 0, 0, 0], 2, 2)).to.equal(null);
    expectError(() => sameness([1, 2, 3], 2, 2), 'sameness', '3 values');
  });

  it('collapseVerdict: one predicted class, or any guide at or under the star-tree bound', () => {
    const healthy = { layer_4: { max_label: 5.4, sameness: 0.51 } };
    expect(collapseVerdict(false, healthy)).to.deep.equal({ collapsed: false, constant_predictor: false, star_tree: [] });
    expect(collapseVerdict(true, healthy)).to.deep.equal({ collapsed: true, constant_predictor: true, star_tree: [] });
    const star = { layer_2: { max_label: 2.0, sameness: 0.99 }, layer_4: { max_label: STAR_TREE_MAX_LABEL + 1e-9, sameness: 0.9 } };
    expect(collapseVerdict(false, star)).to.deep.equal({ collapsed: true, constant_predictor: false, star_tree: ['layer_2'] });
    expect(collapseVerdict(false, { layer_1: { max_label: STAR_TREE_MAX_LABEL, sameness: null } }).star_tree).to.deep.equal(['layer_1']);
    expect(collapseVerdict(false, { layer_1: { max_label: null, sameness: null } }).collapsed).to.equal(false);
    expect(collapseVerdict(false, {}).collapsed).to.equal(false);
  });
});

describe('held-out split', () => {
  it('holds out round(n * fraction) examples, disjoint from the rest, the same every call', () => {
    const { train, holdout } = holdoutSplit(1000, 0.15);
    expect(holdout).to.have.length(150);
    expect(train).to.have.length(850);
    expect(new Set([...train, ...holdout]).size).to.equal(1000);
    expect([...train].sort((a, b) => a - b)).to.deep.equal(train);
    expect([...holdout].sort((a, b) => a - b)).to.deep.equal(holdout);
    expect(holdoutSplit(1000, 0.15)).to.deep.equal({ train, holdout });
    // A shuffle, not a prefix or a stride.
    expect(holdout).to.not.deep.equal(Array.from({ length: 150 }, (_, i) => i));
    expect(holdout.some((i) => i >= 500) && holdout.some((i) => i < 500)).to.equal(true);
  });

  it('refuses fractions that leave nothing on a side, naming the field', () => {
    expectError(() => holdoutSplit(10, 0), 'data.holdout', 'strictly between 0 and 1');
    expectError(() => holdoutSplit(10, 1), 'data.holdout');
    expectError(() => holdoutSplit(10, 0.01), 'data.holdout', '0 held out');
    expectError(() => holdoutSplit(3, 0.9), 'data.holdout', '0 to train on');
  });
});
