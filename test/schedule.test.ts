import { expect } from 'chai';
import {
  constantSchedule,
  guidanceWeight,
  linearWarmupDecay,
  makeSchedule,
  warmupSteps,
  type GuidanceKind,
  type ScheduleKind,
} from '../src/train/schedule.js';
import { expectError } from './helpers.js';

/** Hugging Face's lr_lambda of get_linear_schedule_with_warmup, written out as in its source. */
function hfLinearLambda(current: number, warmup: number, total: number): number {
  if (current < warmup) return current / Math.max(1, warmup);
  return Math.max(0, (total - current) / Math.max(1, total - warmup));
}

describe('schedule: linear warm-up and decay', () => {
  const p = 3e-5;
  const opts = { peak: p, warmupSteps: 2, totalSteps: 10 };

  it('gives the hand values of a 10-step schedule with 2 warm-up steps', () => {
    const expected = [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0].map((f) => f * p);
    const got = expected.map((_, step) => linearWarmupDecay(step, opts));
    got.forEach((lr, step) => expect(lr, `step ${step}`).to.be.closeTo(expected[step]!, 1e-18));
    expect(linearWarmupDecay(0, opts)).to.equal(0); // the first update has lr 0, as in HF
  });

  it('matches the HF formula at and around the boundaries', () => {
    for (const [warmup, total] of [
      [0, 1],
      [0, 5],
      [1, 1],
      [3, 3],
      [2, 10],
      [7, 100],
    ] as const) {
      for (const step of [0, 1, warmup - 1, warmup, warmup + 1, total - 1, total, total + 1, total + 50]) {
        if (step < 0) continue;
        expect(linearWarmupDecay(step, { peak: 2, warmupSteps: warmup, totalSteps: total }), `w=${warmup} t=${total} s=${step}`).to.be.closeTo(
          2 * hfLinearLambda(step, warmup, total),
          1e-15,
        );
      }
    }
  });

  it('peaks at warmupSteps, reaches 0 at totalSteps and never goes negative', () => {
    expect(linearWarmupDecay(2, opts)).to.equal(p);
    expect(linearWarmupDecay(10, opts)).to.equal(0);
    expect(linearWarmupDecay(11, opts)).to.equal(0);
    expect(linearWarmupDecay(1000, opts)).to.equal(0);
    // No warm-up: full rate at step 0.
    expect(linearWarmupDecay(0, { peak: p, warmupSteps: 0, totalSteps: 4 })).to.equal(p);
    // All warm-up: the ramp, then 0 at the end (HF's max(1, ·) guard).
    expect(linearWarmupDecay(3, { peak: 4, warmupSteps: 4, totalSteps: 4 })).to.equal(3);
    expect(linearWarmupDecay(4, { peak: 4, warmupSteps: 4, totalSteps: 4 })).to.equal(0);
  });

  it('rejects invalid arguments, naming them', () => {
    expectError(() => linearWarmupDecay(-1, opts), 'linearWarmupDecay', 'step', '-1');
    expectError(() => linearWarmupDecay(1.5, opts), 'step');
    expectError(() => linearWarmupDecay(0, { ...opts, warmupSteps: 11 }), 'warmupSteps', 'totalSteps (10)', '11');
    expectError(() => linearWarmupDecay(0, { ...opts, warmupSteps: -1 }), 'warmupSteps');
    expectError(() => linearWarmupDecay(0, { ...opts, totalSteps: 0, warmupSteps: 0 }), 'totalSteps', 'positive');
    expectError(() => linearWarmupDecay(0, { ...opts, totalSteps: -5 }), 'totalSteps');
    expectError(() => linearWarmupDecay(0, { ...opts, peak: -1 }), 'peak');
    expectError(() => linearWarmupDecay(0, { ...opts, peak: NaN }), 'peak');
  });
});

describe('schedule: constant', () => {
  it('is the peak at every step, with an optional linear warm-up', () => {
    for (const step of [0, 1, 5, 100]) expect(constantSchedule(step, { peak: 0.1 })).to.equal(0.1);
    const warm = { peak: 1, warmupSteps: 4, totalSteps: 10 };
    expect([0, 1, 2, 3, 4, 9, 10, 20].map((s) => constantSchedule(s, warm))).to.deep.equal([0, 0.25, 0.5, 0.75, 1, 1, 1, 1]);
  });

  it('rejects invalid arguments, naming them', () => {
    expectError(() => constantSchedule(-2, { peak: 1 }), 'constantSchedule', 'step');
    expectError(() => constantSchedule(0, { peak: 1, warmupSteps: 5, totalSteps: 4 }), 'warmupSteps', 'totalSteps (4)');
    expectError(() => constantSchedule(0, { peak: 1, warmupSteps: -1 }), 'warmupSteps', 'non-negative');
    expectError(() => constantSchedule(0, { peak: Infinity }), 'peak');
  });
});

describe('schedule: warmupSteps', () => {
  it('rounds up as HF does (math.ceil of the float product)', () => {
    expect(warmupSteps(10, 0.1)).to.equal(1);
    expect(warmupSteps(10, 0.15)).to.equal(2);
    expect(warmupSteps(1000, 0.06)).to.equal(60);
    expect(warmupSteps(7, 0.5)).to.equal(4);
    expect(warmupSteps(3, 0.01)).to.equal(1);
    expect(warmupSteps(10, 0)).to.equal(0);
    expect(warmupSteps(10, 1)).to.equal(10);
    expect(warmupSteps(0, 0.1)).to.equal(0);
    // 100 * 0.07 is 7.000000000000001 in binary floating point; Python's math.ceil gives 8 too.
    expect(warmupSteps(100, 0.07)).to.equal(8);
  });

  it('rejects a ratio outside [0, 1] and a bad step count, naming them', () => {
    expectError(() => warmupSteps(10, -0.1), 'warmupRatio');
    expectError(() => warmupSteps(10, 1.5), 'warmupRatio');
    expectError(() => warmupSteps(10, NaN), 'warmupRatio');
    expectError(() => warmupSteps(-1, 0.1), 'totalSteps');
    expectError(() => warmupSteps(2.5, 0.1), 'totalSteps');
  });
});

describe('schedule: makeSchedule', () => {
  it('builds the linear schedule from a warm-up ratio or step count', () => {
    const byRatio = makeSchedule({ kind: 'linear', peak: 1, warmupRatio: 0.2, totalSteps: 10 });
    const bySteps = makeSchedule({ kind: 'linear', peak: 1, warmupSteps: 2, totalSteps: 10 });
    for (let s = 0; s <= 12; s++) {
      expect(byRatio(s)).to.equal(linearWarmupDecay(s, { peak: 1, warmupSteps: 2, totalSteps: 10 }));
      expect(bySteps(s)).to.equal(byRatio(s));
    }
    expect(byRatio(1)).to.equal(0.5);
    expect(byRatio(3)).to.equal(7 / 8);
  });

  it('defaults to no warm-up and builds the constant schedule', () => {
    const lin = makeSchedule({ kind: 'linear', peak: 2, totalSteps: 4 });
    expect([0, 1, 2, 3, 4].map(lin)).to.deep.equal([2, 1.5, 1, 0.5, 0]);
    const con = makeSchedule({ kind: 'constant', peak: 2, warmupRatio: 0.5, totalSteps: 4 });
    expect([0, 1, 2, 3, 4, 5].map(con)).to.deep.equal([0, 1, 2, 2, 2, 2]);
  });

  it('rejects invalid configs up front and bad steps when called', () => {
    expectError(() => makeSchedule({ kind: 'cosine' as ScheduleKind, peak: 1, totalSteps: 10 }), 'kind', 'cosine');
    expectError(() => makeSchedule({ kind: 'linear', peak: 1, warmupSteps: 2, warmupRatio: 0.1, totalSteps: 10 }), 'not both');
    expectError(() => makeSchedule({ kind: 'linear', peak: 1, warmupSteps: 20, totalSteps: 10 }), 'makeSchedule', 'warmupSteps');
    expectError(() => makeSchedule({ kind: 'linear', peak: 1, warmupRatio: 2, totalSteps: 10 }), 'warmupRatio');
    expectError(() => makeSchedule({ kind: 'constant', peak: 1, totalSteps: 0 }), 'totalSteps');
    expectError(() => makeSchedule({ kind: 'constant', peak: -1, totalSteps: 5 }), 'peak');
    const lr = makeSchedule({ kind: 'linear', peak: 1, totalSteps: 10 });
    expectError(() => lr(-1), 'step');
  });
});

describe('schedule: guidance weight', () => {
  it('constant is the weight at every step', () => {
    for (const step of [0, 5, 10, 20]) expect(guidanceWeight('constant', step, 10, 0.3)).to.equal(0.3);
  });

  it('linear-decay falls from the weight to 0 at the end, clamped after', () => {
    expect(guidanceWeight('linear-decay', 0, 10, 2)).to.equal(2);
    expect(guidanceWeight('linear-decay', 5, 10, 2)).to.equal(1);
    expect(guidanceWeight('linear-decay', 8, 10, 2)).to.be.closeTo(0.4, 1e-15);
    expect(guidanceWeight('linear-decay', 10, 10, 2)).to.equal(0);
    expect(guidanceWeight('linear-decay', 15, 10, 2)).to.equal(0);
  });

  it('warmup ramps from 0 to the weight over warmupSteps, by default 10% of the total', () => {
    expect(guidanceWeight('warmup', 0, 100, 2, 20)).to.equal(0);
    expect(guidanceWeight('warmup', 10, 100, 2, 20)).to.equal(1);
    expect(guidanceWeight('warmup', 20, 100, 2, 20)).to.equal(2);
    expect(guidanceWeight('warmup', 100, 100, 2, 20)).to.equal(2);
    // Default: ceil(0.1 · 100) = 10 steps.
    expect(guidanceWeight('warmup', 0, 100, 2)).to.equal(0);
    expect(guidanceWeight('warmup', 5, 100, 2)).to.equal(1);
    expect(guidanceWeight('warmup', 10, 100, 2)).to.equal(2);
    // Default rounds up: ceil(0.1 · 15) = 2.
    expect(guidanceWeight('warmup', 1, 15, 2)).to.equal(1);
    // An explicit 0 means no ramp.
    expect(guidanceWeight('warmup', 0, 100, 2, 0)).to.equal(2);
  });

  it('halving gives weight 2^-(epoch - 1), and 0 once that factor is under 0.1 (epoch 5 on)', () => {
    const got = [1, 2, 3, 4, 5, 6].map((epoch) => guidanceWeight('halving', 7, 100, 8, undefined, epoch));
    expect(got).to.deep.equal([8, 4, 2, 1, 0, 0]);
    // The step plays no part within an epoch.
    expect(guidanceWeight('halving', 0, 100, 10, undefined, 2)).to.equal(guidanceWeight('halving', 99, 100, 10, undefined, 2));
    expectError(() => guidanceWeight('halving', 0, 10, 1), 'halving', 'epoch');
    expectError(() => guidanceWeight('halving', 0, 10, 1, undefined, 0), 'halving', 'epoch');
  });

  it('rejects invalid arguments, naming them', () => {
    expectError(() => guidanceWeight('constant', -1, 10, 1), 'guidanceWeight', 'step');
    expectError(() => guidanceWeight('linear-decay', 0, 0, 1), 'totalSteps');
    expectError(() => guidanceWeight('constant', 0, 10, -0.5), 'weight');
    expectError(() => guidanceWeight('warmup', 0, 10, 1, 11), 'warmupSteps', 'totalSteps (10)');
    expectError(() => guidanceWeight('warmup', 0, 10, 1, 2.5), 'warmupSteps');
    expectError(() => guidanceWeight('cyclic' as GuidanceKind, 0, 10, 1), 'kind', 'cyclic');
  });
});
