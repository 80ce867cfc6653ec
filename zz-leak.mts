import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend/index.js';
import { BertModel } from './src/model/bert.js';
import { parseBertConfig } from './src/model/config.js';
import { AdamW } from './src/train/optimizer.js';
import { trainingStep } from './src/train/step.js';
await initBackend('blas');
const cfg = parseBertConfig({ vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 32, num_labels: 3 });
const m = BertModel.init(cfg, { head: true, seed: 1 });
const ids = tf.tensor2d([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], undefined, 'int32');
const mask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], undefined, 'int32');
const opt = new AdamW();
const labels = tf.tensor1d([0, 2], 'int32');
for (let i = 0; i < 4; i++) { const r = trainingStep(m, opt, { inputIds: ids, attentionMask: mask }, labels, { lr: 1e-3, maxGradNorm: 1 }); console.log(r.loss, tf.memory().numTensors); }
