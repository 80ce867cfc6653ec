import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { testBackends } from './helpers.js';

// Each backend that runs here gets the same checks against hand-computed sums.
for (const backend of await testBackends()) {
  describe(`UnsortedSegmentSum kernel (${backend})`, () => {
    before(async () => {
      await initBackend(backend);
    });

    it('adds rows with repeated ids and leaves unused segments zero', async () => {
      const x = tf.tensor2d([[1, 2], [10, 20], [100, 200], [1000, 2000]]);
      const ids = tf.tensor1d([2, 0, 2, 2], 'int32');
      const out = tf.unsortedSegmentSum(x, ids, 4);
      expect(out.shape).to.deep.equal([4, 2]);
      expect(await out.array()).to.deep.equal([[10, 20], [0, 0], [1101, 2202], [0, 0]]);
      tf.dispose([x, ids, out]);
    });

    it('drops ids outside [0, numSegments), as TensorFlow does', async () => {
      const x = tf.tensor1d([1, 2, 3, 4]);
      const ids = tf.tensor1d([0, -1, 5, 0], 'int32');
      const out = tf.unsortedSegmentSum(x, ids, 2);
      expect(Array.from(await out.data())).to.deep.equal([5, 0]);
      tf.dispose([x, ids, out]);
    });

    it('handles int32 values and higher-rank rows', async () => {
      const x = tf.tensor3d([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], undefined, 'int32');
      const ids = tf.tensor1d([1, 1], 'int32');
      const out = tf.unsortedSegmentSum(x, ids, 2);
      expect(out.dtype).to.equal('int32');
      expect(await out.array()).to.deep.equal([[[0, 0], [0, 0]], [[6, 8], [10, 12]]]);
      tf.dispose([x, ids, out]);
    });

    it('is the gradient of an embedding lookup with repeated ids, over a 30522-row vocabulary', async () => {
      const vocab = 30522;
      const table = tf.zeros([vocab, 4]);
      const ids = tf.tensor2d([[101, 7592, 101], [102, 7592, 7592]], undefined, 'int32');
      const before = process.memoryUsage().rss;
      const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, ids), tf.tensor1d([1, 2, 3, 4]))))(table);
      const rssGrowthMb = (process.memoryUsage().rss - before) / 2 ** 20;
      const rows = await g.gather(tf.tensor1d([101, 102, 7592, 0], 'int32')).array();
      // 101 appears twice, 102 once, 7592 three times; each occurrence contributes [1, 2, 3, 4].
      expect(rows).to.deep.equal([[2, 4, 6, 8], [1, 2, 3, 4], [3, 6, 9, 12], [0, 0, 0, 0]]);
      // The built-in cpu kernel materialises a [vocab x ids] comparison; ours is one pass.
      expect(rssGrowthMb).to.be.below(200);
      tf.dispose([table, ids, g]);
    });
  });
}
