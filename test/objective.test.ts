import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { groupLabels, measureTarget, probeMse, targetLabels, targetMetric, TREE_TARGETS } from '../src/probe/objective.js';
import { guideSchema } from '../src/train/config.js';

describe('probe objective', () => {
  before(async () => {
    await initBackend('cpu');
  });

  // Norms 0.9, 3.2, 2.1, 2.4: sorted 0.9 (1), 2.1 (2), 2.4 (|2.4-2| < |3-2.4|: 2), 3.2 (3).
  const norms = [0.9, 3.2, 2.1, 2.4];

  it('maps each target to its labels, worked by hand', () => {
    expect(Array.from(targetLabels('ssp', norms))).to.deep.equal([1, 3, 2, 2]);
    expect(Array.from(targetLabels('essp', norms))).to.deep.equal([2, 2, 3, 1]);
    // Exact: labels non-decreasing along the sorted norms 0.9, 2.1, 2.4, 3.2 starting 1, 2: [1,2,2,3] costs
    // 0.01+0.01+0.16+0.04 = 0.22, [1,2,3,3] 0.01+0.01+0.36+0.04 = 0.42, [1,2,3,4] more: the greedy one wins.
    expect(Array.from(targetLabels('ssp-exact', norms))).to.deep.equal([1, 3, 2, 2]);
    expect(Array.from(targetLabels('essp-exact', norms))).to.deep.equal([2, 2, 3, 1]);
    expect(Array.from(targetLabels('sp', norms, [1, 2, 3, 4]))).to.deep.equal([1, 2, 3, 4]);
    expect(() => targetLabels('sp', norms)).to.throw('gold depths');
  });

  it('names the metric of each target, and the target of each measured metric', () => {
    expect(TREE_TARGETS.map(targetMetric)).to.deep.equal(['x_ssp', 'x_essp', 'x_ssp', 'x_essp']);
    expect(targetMetric('sp')).to.equal('x_sp');
    expect(measureTarget('x_sp', 'exact')).to.equal('sp');
    expect(measureTarget('x_ssp', 'greedy')).to.equal('ssp');
    expect(measureTarget('x_essp', 'greedy')).to.equal('essp');
    expect(measureTarget('x_ssp', 'exact')).to.equal('ssp-exact');
    expect(measureTarget('x_essp', 'exact')).to.equal('essp-exact');
  });

  it('labels each sentence of a flat batch on its own', () => {
    const flat = [...norms, 5, 7];
    expect(Array.from(groupLabels('ssp', flat, [4, 2]))).to.deep.equal([1, 3, 2, 2, 1, 2]);
    expect(Array.from(groupLabels('sp', [0, 0, 0], [1, 2], [[4], [5, 6]]))).to.deep.equal([4, 5, 6]);
  });

  it('probeMse is the mean squared error to the labels, whose gradient treats the labels as constants', () => {
    const pred = tf.tensor1d([...norms, 5, 7]);
    const loss = probeMse(pred, [4, 2], 'ssp');
    const labels = [1, 3, 2, 2, 1, 2];
    const values = [...norms, 5, 7];
    const expected = values.reduce((s, x, i) => s + (x - labels[i]!) ** 2, 0) / 6;
    expect(loss.dataSync()[0]).to.be.closeTo(expected, 1e-5);
    const grad = tf.grad((p: tf.Tensor) => probeMse(p as tf.Tensor1D, [4, 2], 'ssp'))(pred);
    const g = Array.from(grad.dataSync());
    values.forEach((x, i) => expect(g[i]).to.be.closeTo((2 * (x - labels[i]!)) / 6, 1e-5));
    tf.dispose([pred, loss, grad]);
  });

  it('a guide names its target; `exact` is read as ssp-exact', () => {
    expect(guideSchema.parse({ layer: 1 }).labels).to.equal('ssp');
    expect(guideSchema.parse({ layer: 1, labels: 'exact' }).labels).to.equal('ssp-exact');
    expect(guideSchema.parse({ layer: 1, labels: 'essp-exact' }).labels).to.equal('essp-exact');
    expect(guideSchema.safeParse({ layer: 1, labels: 'sp' }).success).to.equal(false);
  });
});
