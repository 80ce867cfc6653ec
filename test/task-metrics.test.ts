import { expect } from 'chai';
import {
  accuracy,
  f1,
  higherIsBetter,
  isCollapsed,
  matthewsCorrelation,
  pearsonCorrelation,
  primaryMetric,
  spearmanCorrelation,
  taskMetrics,
  type TaskMetricName,
} from '../src/train/metrics.js';
import { GLUE_TASKS, glueTaskInfo, type GlueTask } from '../src/data/glue.js';
import { expectError } from './helpers.js';

/** Predictions and labels with the given confusion counts, in a shuffled-looking order. */
function fromCounts(tp: number, tn: number, fp: number, fn: number): { pred: number[]; gold: number[] } {
  const pairs: Array<[number, number]> = [
    ...Array<[number, number]>(tp).fill([1, 1]),
    ...Array<[number, number]>(tn).fill([0, 0]),
    ...Array<[number, number]>(fp).fill([1, 0]),
    ...Array<[number, number]>(fn).fill([0, 1]),
  ];
  // Interleave deterministically so the classes are not in blocks.
  const order = pairs.map((_, i) => i).sort((a, b) => ((a * 7) % pairs.length) - ((b * 7) % pairs.length));
  return { pred: order.map((i) => pairs[i]![0]), gold: order.map((i) => pairs[i]![1]) };
}

describe('task metrics: MCC', () => {
  it('matches a hand computation (TP=6 TN=3 FP=1 FN=2)', () => {
    const { pred, gold } = fromCounts(6, 3, 1, 2);
    // (6·3 − 1·2) / sqrt((6+1)(6+2)(3+1)(3+2)) = 16 / sqrt(1120)
    expect(matthewsCorrelation(pred, gold)).to.be.closeTo(16 / Math.sqrt(1120), 1e-12);
    expect(matthewsCorrelation(pred, gold)).to.be.closeTo(0.478091, 1e-6);
  });

  it('is 0, not NaN, when every prediction (or every label) is one class', () => {
    expect(matthewsCorrelation([1, 1, 1, 1], [1, 0, 1, 0])).to.equal(0);
    expect(matthewsCorrelation([0, 0, 0, 0], [1, 0, 1, 0])).to.equal(0);
    expect(matthewsCorrelation([1, 0, 1, 0], [1, 1, 1, 1])).to.equal(0);
    expect(matthewsCorrelation([1, 1], [1, 1])).to.equal(0); // scikit-learn gives 0 here too
  });

  it('is 1 for perfect and -1 for perfectly inverted predictions', () => {
    const gold = [1, 0, 0, 1, 1, 0, 1];
    expect(matthewsCorrelation(gold, gold)).to.equal(1);
    expect(matthewsCorrelation(gold.map((g) => 1 - g), gold)).to.equal(-1);
  });

  it('is symmetric in pred and gold', () => {
    const { pred, gold } = fromCounts(5, 4, 3, 1);
    expect(matthewsCorrelation(pred, gold)).to.be.closeTo(matthewsCorrelation(gold, pred), 1e-15);
  });

  it('matches the formula for larger counts', () => {
    const { pred, gold } = fromCounts(4000, 3000, 1000, 2000);
    const expected = (4e3 * 3e3 - 1e3 * 2e3) / Math.sqrt(5e3 * 6e3 * 4e3 * 5e3);
    expect(matthewsCorrelation(pred, gold)).to.be.closeTo(expected, 1e-12);
  });

  it('rejects non-binary labels, length mismatches and an empty set', () => {
    expectError(() => matthewsCorrelation([0, 2], [0, 1]), 'matthewsCorrelation', 'pred[1]', 'binary');
    expectError(() => matthewsCorrelation([0, 1], [0, 0.5]), 'gold[1]');
    expectError(() => matthewsCorrelation([0, 1, 1], [0, 1]), 'matthewsCorrelation', '3', '2');
    expectError(() => matthewsCorrelation([], []), 'empty');
  });
});

describe('task metrics: accuracy and F1', () => {
  it('accuracy is the fraction of exact matches, for any number of classes', () => {
    expect(accuracy([1, 0, 1, 1], [1, 1, 1, 0])).to.equal(0.5);
    expect(accuracy([0, 1, 2, 2, 1], [0, 1, 2, 1, 0])).to.equal(0.6);
    expect(accuracy([2], [2])).to.equal(1);
  });

  it('accuracy rejects non-class-id values and length mismatches', () => {
    expectError(() => accuracy([0.5, 1], [0, 1]), 'accuracy', 'pred[0]', 'class id');
    expectError(() => accuracy([0, 1], [0, -1]), 'gold[1]');
    expectError(() => accuracy([0, 1], [0]), 'accuracy', '2', '1');
  });

  it('F1 matches a hand computation', () => {
    // TP=6 FP=1 FN=2: precision 6/7, recall 6/8, F1 = 2·6 / (2·6 + 1 + 2) = 12/15
    const { pred, gold } = fromCounts(6, 3, 1, 2);
    expect(f1(pred, gold)).to.be.closeTo(0.8, 1e-12);
    const p = 6 / 7;
    const r = 6 / 8;
    expect(f1(pred, gold)).to.be.closeTo((2 * p * r) / (p + r), 1e-12);
  });

  it('F1 is 0 with no predicted and no true positives (zero_division=0), and whenever TP is 0', () => {
    expect(f1([0, 0, 0], [0, 0, 0])).to.equal(0);
    expect(f1([0, 0, 0], [1, 0, 1])).to.equal(0); // no predicted positives
    expect(f1([1, 1, 0], [0, 0, 0])).to.equal(0); // no true positives
  });

  it('F1 is 1 for perfect predictions and rejects non-binary labels', () => {
    expect(f1([1, 0, 1], [1, 0, 1])).to.equal(1);
    expectError(() => f1([0, 2], [0, 1]), 'f1', 'pred[1]');
  });
});

describe('task metrics: correlations', () => {
  it('Pearson and Spearman match hand values', () => {
    // pred = [1, 2, 3, 4], gold = [1, 3, 2, 5]: deviations (-1.5, -.5, .5, 1.5) and (-1.75, .25, -.75, 2.25)
    // sum of products 2.625+(-.125)+(-.375)+3.375 = 5.5; sums of squares 5 and 8.75.
    expect(pearsonCorrelation([1, 2, 3, 4], [1, 3, 2, 5])).to.be.closeTo(5.5 / Math.sqrt(5 * 8.75), 1e-12);
    // ranks [1,2,3,4] and [1,3,2,4]: d² = 0+1+1+0 = 2, rho = 1 − 6·2/(4·15) = 0.8
    expect(spearmanCorrelation([1, 2, 3, 4], [1, 3, 2, 5])).to.be.closeTo(0.8, 1e-12);
    // Ties take average ranks: [1, 2, 2, 3] ranks as [1, 2.5, 2.5, 4].
    expect(spearmanCorrelation([1, 2, 2, 3], [10, 20, 30, 40])).to.be.closeTo(
      pearsonCorrelation([1, 2.5, 2.5, 4], [1, 2, 3, 4]),
      1e-12,
    );
    expect(spearmanCorrelation([1, 2, 3], [30, 20, 10])).to.be.closeTo(-1, 1e-12);
  });

  it('are NaN for constant predictions or a single example', () => {
    expect(pearsonCorrelation([2, 2, 2], [1, 2, 3])).to.be.NaN;
    expect(spearmanCorrelation([2, 2, 2], [1, 2, 3])).to.be.NaN;
    expect(pearsonCorrelation([2], [1])).to.be.NaN;
  });

  it('reject non-finite predictions, length mismatches and an empty set', () => {
    expectError(() => pearsonCorrelation([1, NaN], [1, 2]), 'pearsonCorrelation', 'pred[1]', 'finite');
    expectError(() => spearmanCorrelation([1, 2], [1, Infinity]), 'spearmanCorrelation', 'gold[1]');
    expectError(() => spearmanCorrelation([1, 2], [1]), 'spearmanCorrelation', '2', '1');
    expectError(() => pearsonCorrelation([], []), 'empty');
  });
});

describe('task metrics: taskMetrics and primaryMetric', () => {
  it('reports GLUE’s metrics for each task', () => {
    const { pred, gold } = fromCounts(6, 3, 1, 2);
    expect(taskMetrics('cola', pred, gold)).to.deep.equal({ mcc: matthewsCorrelation(pred, gold) });
    for (const task of ['mrpc', 'qqp'] as const) {
      const m = taskMetrics(task, pred, gold);
      expect(Object.keys(m)).to.deep.equal(['accuracy', 'f1']);
      expect(m.accuracy).to.equal(0.75);
      expect(m.f1).to.be.closeTo(0.8, 1e-12);
    }
    for (const task of ['sst2', 'mnli', 'mnli-mm', 'qnli', 'rte', 'wnli'] as const) {
      expect(taskMetrics(task, [0, 1, 2, 1], [0, 1, 1, 1])).to.deep.equal({ accuracy: 0.75 });
    }
    const sts = taskMetrics('stsb', [1, 2, 3, 4], [1, 3, 2, 5]);
    expect(Object.keys(sts)).to.deep.equal(['pearson', 'spearman']);
    expect(sts.spearman).to.be.closeTo(0.8, 1e-12);
  });

  it('reports an undefined correlation as null, never NaN', () => {
    expect(taskMetrics('stsb', [3, 3, 3], [1, 2, 5])).to.deep.equal({ pearson: null, spearman: null });
    expect(taskMetrics('cola', [1, 1, 1], [0, 1, 0])).to.deep.equal({ mcc: 0 });
  });

  it('rejects unknown tasks and mismatched lengths', () => {
    expectError(() => taskMetrics('boolq' as GlueTask, [0], [0]), 'unknown GLUE task', 'boolq', 'cola');
    expectError(() => taskMetrics('rte', [0, 1], [0]), 'taskMetrics(rte)', '2', '1');
    expectError(() => primaryMetric('sts' as GlueTask), 'primaryMetric', 'sts');
  });

  it('names the model-selection metric, always one the task reports, higher being better', () => {
    expect(primaryMetric('cola')).to.equal('mcc');
    expect(primaryMetric('mrpc')).to.equal('f1');
    expect(primaryMetric('qqp')).to.equal('f1');
    expect(primaryMetric('stsb')).to.equal('pearson');
    for (const task of ['sst2', 'mnli', 'mnli-mm', 'qnli', 'rte', 'wnli'] as const) {
      expect(primaryMetric(task)).to.equal('accuracy');
    }
    for (const task of GLUE_TASKS) {
      expect(glueTaskInfo(task).metrics).to.include(primaryMetric(task));
      expect(higherIsBetter(primaryMetric(task))).to.equal(true);
    }
    expect(GLUE_TASKS).to.have.length(10);
    expectError(() => higherIsBetter('loss' as TaskMetricName), 'higherIsBetter', 'loss');
  });
});

describe('task metrics: isCollapsed', () => {
  it('flags a constant predictor', () => {
    expect(isCollapsed([1, 1, 1])).to.equal(true);
    expect(isCollapsed([0])).to.equal(true);
    expect(isCollapsed([2.5, 2.5])).to.equal(true);
    expect(isCollapsed([1, 0, 1])).to.equal(false);
    expect(isCollapsed([0, 0, 2])).to.equal(false);
  });

  it('rejects an empty list and NaN', () => {
    expectError(() => isCollapsed([]), 'isCollapsed', 'empty');
    expectError(() => isCollapsed([1, NaN]), 'isCollapsed', 'predictions[1]');
  });
});
