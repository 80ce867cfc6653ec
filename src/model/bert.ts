/**
 * BERT in TensorFlow.js, as Hugging Face's `BertModel` and `BertForSequenceClassification` compute it.
 *
 * Parameters live in one map keyed by Hugging Face's names (`encoder.layer.3.attention.self.query.weight`),
 * with Hugging Face's shapes (Linear weights are [out, in]), so a checkpoint's tensors map one to one and
 * each function below reads like the module of the same name in `modeling_bert.py`:
 *
 *   embeddings -> encoder.layer[0..N-1] (attention.self, attention.output, intermediate, output) -> pooler
 *   -> classifier (optional)
 *
 * `forward` returns the hidden states of every submodule the caller asks for: index 0 is the embedding
 * output, index i the output of layer i (Hugging Face's `hidden_states[i]`).
 */
import * as tf from '@tensorflow/tfjs';
import { type BertConfig, bertParameterShapes, HEAD_PARAMETERS } from './config.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { gelu, layerNorm, dropout, linear } from '../backend/fused.js';
import { readCopy } from '../backend/read.js';

import type { WeightMap } from './config.js';

export type { WeightMap };

export interface BertInputs {
  /** [batch, seq] int32 word-piece ids. */
  inputIds: tf.Tensor2D;
  /** [batch, seq] 1 for real tokens, 0 for padding. */
  attentionMask: tf.Tensor2D;
  /** [batch, seq] segment ids (0 for sentence A, 1 for B); zeros when omitted. */
  tokenTypeIds?: tf.Tensor2D;
}

export interface ForwardOptions {
  /** Dropout on (training) or off (evaluation, the default). */
  training?: boolean;
  /**
   * Which hidden states to return: 'all' (numLayers + 1 tensors), 'none', or a list of submodule indices
   * (0 = embeddings, i = layer i). Those not asked for are freed as soon as the next layer has used them.
   */
  hiddenStates?: 'all' | 'none' | readonly number[];
  /** Whether to compute the pooler (and the head, if the model has one). Default true. */
  pool?: boolean;
  /** Source of dropout seeds; defaults to the model's own generator. */
  rng?: Rng;
  /**
   * Stop after this submodule (no later layers, no pooler or head): the states a probe reads at a low
   * layer, without the cost of the rest.
   */
  upTo?: number;
}

export interface BertOutput {
  /** The requested hidden states, [batch, seq, hidden] each, keyed by submodule index. */
  hiddenStates: Map<number, tf.Tensor3D>;
  /** The last layer's output [batch, seq, hidden] (with `upTo`, submodule upTo's). */
  lastHiddenState: tf.Tensor3D;
  /** tanh(pooler.dense(h[:, 0])) [batch, hidden]; absent with pool: false. */
  pooled?: tf.Tensor2D;
  /** The sequence-classification head's output [batch, numLabels]; only when the model has a head. */
  logits?: tf.Tensor2D;
}

/** The most negative float32, added to the attention scores of padded keys (as Hugging Face does). */
const MASK_VALUE = -3.4028234663852886e38;

export class BertModel {
  readonly config: BertConfig;
  /** Trainable parameters under Hugging Face names. */
  readonly params: Map<string, tf.Variable>;
  readonly hasHead: boolean;
  /** Dropout seed source used when forward() is not given one. */
  rng: Rng;

  private constructor(config: BertConfig, params: Map<string, tf.Variable>, hasHead: boolean, seed: number) {
    this.config = config;
    this.params = params;
    this.hasHead = hasHead;
    this.rng = new Rng(seed ^ 0x5eed);
  }

  /**
   * Builds a model from checkpoint weights. With `head` and no head weights in `weights`, the head is
   * freshly initialised from `seed` (Hugging Face's initialisation: normal(0, initializer_range), zero bias).
   */
  static fromWeights(config: BertConfig, weights: WeightMap, opts: { head?: boolean; seed?: number } = {}): BertModel {
    const head = opts.head ?? false;
    const seed = opts.seed ?? 0;
    const shapes = bertParameterShapes(config, { head });
    const rng = new Rng(seed);
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of shapes) {
      let w = weights.get(name);
      if (!w) {
        if (!(HEAD_PARAMETERS as readonly string[]).includes(name)) {
          disposeAll(params);
          throw new TopoprobeError(`weights: required tensor ${name} is missing`);
        }
        w = { shape, data: initialValues(name, shape, config, rng) };
      }
      if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
        disposeAll(params);
        throw new TopoprobeError(`weights: tensor ${name} has shape [${w.shape}], the config expects [${shape}]`);
      }
      const initial = tf.tensor(w.data, shape, 'float32');
      params.set(name, tf.variable(initial, true));
      initial.dispose();
    }
    return new BertModel(config, params, head, seed);
  }

  /** A freshly initialised model (Hugging Face's `_init_weights`), the same for the same seed everywhere. */
  static init(config: BertConfig, opts: { head?: boolean; seed?: number } = {}): BertModel {
    const head = opts.head ?? false;
    const rng = new Rng(opts.seed ?? 0);
    const weights: WeightMap = new Map();
    for (const [name, shape] of bertParameterShapes(config, { head })) {
      weights.set(name, { shape, data: initialValues(name, shape, config, rng) });
    }
    return BertModel.fromWeights(config, weights, opts);
  }

  get numLayers(): number {
    return this.config.num_hidden_layers;
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`BertModel: no parameter ${name}`);
    return v;
  }

  /** x [.., in] -> x W^T + b, W [out, in] (torch.nn.Linear). */
  private linear(x: tf.Tensor, prefix: string, activation?: 'gelu' | 'tanh'): tf.Tensor {
    const w = this.p(`${prefix}.weight`);
    const b = this.p(`${prefix}.bias`);
    const inDim = x.shape[x.shape.length - 1]!;
    const lead = x.shape.slice(0, -1);
    let y: tf.Tensor = linear(x.reshape([-1, inDim]) as tf.Tensor2D, w, b);
    if (activation === 'gelu') y = gelu(y);
    else if (activation === 'tanh') y = tf.tanh(y);
    return y.reshape([...lead, w.shape[0]!]);
  }

  private layerNorm(x: tf.Tensor, prefix: string): tf.Tensor {
    return layerNorm(x, this.p(`${prefix}.weight`), this.p(`${prefix}.bias`), this.config.layer_norm_eps);
  }

  private dropout(x: tf.Tensor, rate: number, opts: { training: boolean; rng: Rng }): tf.Tensor {
    if (!opts.training || rate === 0) return x;
    return dropout(x, rate, opts.rng.nextUint32());
  }

  /** BertEmbeddings: word + position + token type, LayerNorm, dropout. */
  private embeddings(inputs: BertInputs, opts: { training: boolean; rng: Rng }): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, seq] = inputs.inputIds.shape;
      if (seq > this.config.max_position_embeddings) {
        throw new TopoprobeError(`input length ${seq} exceeds max_position_embeddings ${this.config.max_position_embeddings}`);
      }
      const words = tf.gather(this.p('embeddings.word_embeddings.weight'), inputs.inputIds.toInt());
      const positions = tf.gather(this.p('embeddings.position_embeddings.weight'), tf.range(0, seq, 1, 'int32'));
      const types = inputs.tokenTypeIds ?? tf.zeros([batch, seq], 'int32');
      const typeEmb = tf.gather(this.p('embeddings.token_type_embeddings.weight'), types.toInt());
      const sum = tf.add(tf.add(words, positions), typeEmb);
      const normed = this.layerNorm(sum, 'embeddings.LayerNorm');
      return this.dropout(normed, this.config.hidden_dropout_prob, opts) as tf.Tensor3D;
    });
  }

  /** BertSelfAttention + BertSelfOutput. `maskBias` is [batch, 1, 1, seq]. */
  private attention(x: tf.Tensor3D, maskBias: tf.Tensor, prefix: string, opts: { training: boolean; rng: Rng }): tf.Tensor3D {
    const [batch, seq, hidden] = x.shape;
    const heads = this.config.num_attention_heads;
    const headDim = hidden / heads;
    const split = (t: tf.Tensor) => t.reshape([batch, seq, heads, headDim]).transpose([0, 2, 1, 3]);
    const q = split(this.linear(x, `${prefix}.attention.self.query`));
    const k = split(this.linear(x, `${prefix}.attention.self.key`));
    const v = split(this.linear(x, `${prefix}.attention.self.value`));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)), maskBias);
    const probs = this.dropout(tf.softmax(scores, -1), this.config.attention_probs_dropout_prob, opts);
    const context = tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([batch, seq, hidden]);
    const projected = this.dropout(this.linear(context, `${prefix}.attention.output.dense`), this.config.hidden_dropout_prob, opts);
    return this.layerNorm(tf.add(projected, x), `${prefix}.attention.output.LayerNorm`) as tf.Tensor3D;
  }

  /** BertLayer: attention, then the GELU feed-forward (intermediate, output) with residual + LayerNorm. */
  private layer(x: tf.Tensor3D, maskBias: tf.Tensor, index: number, opts: { training: boolean; rng: Rng }): tf.Tensor3D {
    return tf.tidy(() => {
      const prefix = `encoder.layer.${index}`;
      const attended = this.attention(x, maskBias, prefix, opts);
      const inner = this.linear(attended, `${prefix}.intermediate.dense`, 'gelu');
      const out = this.dropout(this.linear(inner, `${prefix}.output.dense`), this.config.hidden_dropout_prob, opts);
      return this.layerNorm(tf.add(out, attended), `${prefix}.output.LayerNorm`) as tf.Tensor3D;
    });
  }

  forward(inputs: BertInputs, options: ForwardOptions = {}): BertOutput {
    const opts = { training: options.training ?? false, rng: options.rng ?? this.rng };
    const want = options.hiddenStates ?? 'all';
    const n = this.numLayers;
    const last = options.upTo ?? n;
    if (!Number.isInteger(last) || last < 0 || last > n) throw new TopoprobeError(`upTo: submodule ${last} does not exist (valid: 0..${n})`);
    const keep = (i: number) => i <= last && (want === 'all' || (want !== 'none' && want.includes(i)));
    if (Array.isArray(want)) {
      for (const i of want) {
        if (!Number.isInteger(i) || i < 0 || i > n) throw new TopoprobeError(`submodule ${i} does not exist (valid: 0..${n})`);
      }
    }
    const [batch, seq] = inputs.inputIds.shape;
    if (inputs.attentionMask.shape[0] !== batch || inputs.attentionMask.shape[1] !== seq) {
      throw new TopoprobeError(`attention mask shape [${inputs.attentionMask.shape}] does not match input ids [${inputs.inputIds.shape}]`);
    }
    const maskBias = tf.tidy(() =>
      tf.mul(tf.sub(1, inputs.attentionMask.toFloat()), MASK_VALUE).reshape([batch, 1, 1, seq]),
    );
    const hiddenStates = new Map<number, tf.Tensor3D>();
    let h = this.embeddings(inputs, opts);
    if (keep(0)) hiddenStates.set(0, h);
    for (let i = 0; i < last; i++) {
      const next = this.layer(h, maskBias, i, opts);
      if (!keep(i)) h.dispose();
      h = next;
      if (keep(i + 1)) hiddenStates.set(i + 1, h);
    }
    maskBias.dispose();
    const out: BertOutput = { hiddenStates, lastHiddenState: h };
    if ((options.pool ?? true) && last === n) {
      const pooled = tf.tidy(() => {
        const first = h.slice([0, 0, 0], [batch, 1, this.config.hidden_size]).reshape([batch, this.config.hidden_size]);
        return this.linear(first, 'pooler.dense', 'tanh') as tf.Tensor2D;
      });
      out.pooled = pooled;
      if (this.hasHead) {
        out.logits = tf.tidy(() => {
          const rate = this.config.classifier_dropout ?? this.config.hidden_dropout_prob;
          return this.linear(this.dropout(pooled, rate, opts), 'classifier') as tf.Tensor2D;
        });
      }
    }
    return out;
  }

  /** Plain copies of every parameter, for saving (copies: the optimiser may update parameters in place). */
  async weights(): Promise<WeightMap> {
    const out: WeightMap = new Map();
    for (const [name, v] of this.params) out.set(name, { shape: [...v.shape], data: await readCopy(v) });
    return out;
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    disposeAll(this.params);
  }
}

function disposeAll(params: Map<string, tf.Variable>): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

/** Hugging Face's BertPreTrainedModel._init_weights for one parameter, drawn from `rng`. */
function initialValues(name: string, shape: number[], config: BertConfig, rng: Rng): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  if (name.endsWith('LayerNorm.weight')) return data.fill(1);
  if (name.endsWith('.bias')) return data;
  const std = config.initializer_range;
  for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
  if (name === 'embeddings.word_embeddings.weight') {
    const pad = config.pad_token_id;
    if (pad < shape[0]!) data.fill(0, pad * shape[1]!, (pad + 1) * shape[1]!);
  }
  return data;
}

