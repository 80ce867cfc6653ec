/**
 * BERT's masked-language-model head, as Hugging Face's `BertOnlyMLMHead` computes it:
 *
 *   cls.predictions.transform.dense -> GELU -> cls.predictions.transform.LayerNorm
 *   -> decoder (the word embeddings, transposed: tied, not a parameter of its own) + cls.predictions.bias
 *
 * Parameter names are the checkpoint keys of `BertForMaskedLM`. The decoder weight is the encoder's
 * `embeddings.word_embeddings.weight` itself, so gradients of the MLM loss reach the embedding table
 * through both the input lookup and the output projection, as in BERT. (`save_pretrained` stores no
 * separate `cls.predictions.decoder.weight` for tied weights, and neither does this project.)
 */
import * as tf from '@tensorflow/tfjs';
import type { BertModel } from './bert.js';
import type { BertConfig, WeightMap } from './config.js';
import { gelu, layerNorm, linear } from '../backend/fused.js';
import { readCopy } from '../backend/read.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';

export const MLM_HEAD_PREFIX = 'cls.predictions.';

/** The head's own parameters and their shapes. */
export function mlmHeadShapes(config: BertConfig): Map<string, number[]> {
  const H = config.hidden_size;
  return new Map([
    ['cls.predictions.transform.dense.weight', [H, H]],
    ['cls.predictions.transform.dense.bias', [H]],
    ['cls.predictions.transform.LayerNorm.weight', [H]],
    ['cls.predictions.transform.LayerNorm.bias', [H]],
    ['cls.predictions.bias', [config.vocab_size]],
  ]);
}

export class MlmHead {
  readonly params: Map<string, tf.Variable>;
  private readonly model: BertModel;

  private constructor(model: BertModel, params: Map<string, tf.Variable>) {
    this.model = model;
    this.params = params;
  }

  /**
   * The head for `model`, from `weights` (checkpoint keys) or, for those absent, Hugging Face's
   * initialisation from `seed`: normal(0, initializer_range) dense weight, zero biases, unit LayerNorm.
   */
  static create(model: BertModel, weights: WeightMap = new Map(), seed = 0): MlmHead {
    const rng = new Rng(seed ^ 0x6d6c6d);
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of mlmHeadShapes(model.config)) {
      const w = weights.get(name);
      let data: Float32Array;
      if (w) {
        if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
          for (const v of params.values()) v.dispose();
          throw new TopoprobeError(`weights: tensor ${name} has shape [${w.shape}], the config expects [${shape}]`);
        }
        data = w.data;
      } else {
        data = new Float32Array(shape.reduce((a, b) => a * b, 1));
        if (name.endsWith('LayerNorm.weight')) data.fill(1);
        else if (name.endsWith('dense.weight')) for (let i = 0; i < data.length; i++) data[i] = rng.normal() * model.config.initializer_range;
      }
      const t = tf.tensor(data, shape, 'float32');
      params.set(name, tf.variable(t, true));
      t.dispose();
    }
    return new MlmHead(model, params);
  }

  private p(name: string): tf.Variable {
    return this.params.get(`${MLM_HEAD_PREFIX}${name}`)!;
  }

  /** Vocabulary logits [n, vocab] for hidden states [n, hidden]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const dense = linear(hidden, this.p('transform.dense.weight'), this.p('transform.dense.bias'));
      const h = layerNorm(gelu(dense), this.p('transform.LayerNorm.weight'), this.p('transform.LayerNorm.bias'), this.model.config.layer_norm_eps);
      const decoder = this.model.params.get('embeddings.word_embeddings.weight')!;
      return tf.add(tf.matMul(h as tf.Tensor2D, decoder, false, true), this.p('bias')) as tf.Tensor2D;
    });
  }

  /** Plain copies of the head's parameters, for saving. */
  async weights(): Promise<WeightMap> {
    const out: WeightMap = new Map();
    for (const [name, v] of this.params) out.set(name, { shape: [...v.shape], data: await readCopy(v) });
    return out;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

/**
 * The MLM loss and accuracy on the selected positions: `hidden` is the last layer [batch, seq, hidden],
 * `flatPositions` index its rows as batch * seq + position, `labels` the original pieces.
 * Returns the mean cross-entropy (a scalar with gradients) and the argmax predictions.
 */
export function mlmLoss(head: MlmHead, hidden: tf.Tensor3D, flatPositions: tf.Tensor1D, labels: tf.Tensor1D): { loss: tf.Scalar; predictions: tf.Tensor1D } {
  return tf.tidy(() => {
    const [batch, seq, size] = hidden.shape;
    const rows = tf.gather(hidden.reshape([batch * seq, size]), flatPositions) as tf.Tensor2D;
    const logits = head.logits(rows);
    const logProbs = tf.logSoftmax(logits, -1);
    const onehot = tf.oneHot(labels, logits.shape[1]);
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(logProbs, onehot), -1))) as tf.Scalar;
    return { loss, predictions: tf.argMax(logits, -1) as tf.Tensor1D };
  });
}
