/**
 * BERT configuration, read from and written to a Hugging Face `config.json`.
 *
 * Field names are Hugging Face's own (snake_case), so a config round-trips unchanged; fields this
 * project does not use are kept as they were read (`extra`).
 */
import { existsSync } from 'node:fs';
import { readJson } from '../util/fs.js';
import { z } from 'zod';
import { TopoprobeError } from '../util/errors.js';
import type { Float32Tensor } from './safetensors.js';

/** Canonical (Hugging Face) parameter name -> tensor. */
export type WeightMap = Map<string, Float32Tensor>;

const positiveInt = z.number().int().positive();
const probability = z.number().min(0).max(1);

export const bertConfigSchema = z
  .object({
    model_type: z.string().optional(),
    architectures: z.array(z.string()).optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    intermediate_size: positiveInt,
    hidden_act: z.string().default('gelu'),
    hidden_dropout_prob: probability.default(0.1),
    attention_probs_dropout_prob: probability.default(0.1),
    max_position_embeddings: positiveInt.default(512),
    type_vocab_size: positiveInt.default(2),
    initializer_range: z.number().positive().default(0.02),
    layer_norm_eps: z.number().positive().default(1e-12),
    pad_token_id: z.number().int().nonnegative().default(0),
    position_embedding_type: z.string().default('absolute'),
    classifier_dropout: probability.nullable().optional(),
    num_labels: positiveInt.optional(),
    id2label: z.record(z.string(), z.string()).optional(),
    label2id: z.record(z.string(), z.number()).optional(),
    problem_type: z.enum(['regression', 'single_label_classification', 'multi_label_classification']).nullable().optional(),
  })
  .passthrough()
  .superRefine((c, ctx) => {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['hidden_size'],
        message: `hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`,
      });
    }
    if (!['gelu', 'gelu_python'].includes(c.hidden_act)) {
      ctx.addIssue({ code: 'custom', path: ['hidden_act'], message: `hidden_act "${c.hidden_act}" is not supported (only the exact erf "gelu")` });
    }
    if (c.position_embedding_type !== 'absolute') {
      ctx.addIssue({ code: 'custom', path: ['position_embedding_type'], message: `position_embedding_type "${c.position_embedding_type}" is not supported (only "absolute")` });
    }
  });

export type BertConfig = z.infer<typeof bertConfigSchema>;

/** Hugging Face defaults for bert-large-uncased; handy for tests and benchmarks. */
export const BERT_LARGE_UNCASED: Readonly<BertConfig> = Object.freeze(
  bertConfigSchema.parse({
    model_type: 'bert',
    architectures: ['BertForMaskedLM'],
    vocab_size: 30522,
    hidden_size: 1024,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    intermediate_size: 4096,
  }),
);

/** Validates a parsed config object; `source` names the file in error messages. */
export function parseBertConfig(raw: unknown, source = 'config'): BertConfig {
  const result = bertConfigSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues
      .map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('\n');
    throw new TopoprobeError(`${source}: invalid BERT config\n${issues}`);
  }
  if (result.data.model_type !== undefined && result.data.model_type !== 'bert') {
    throw new TopoprobeError(`${source}: model_type is "${result.data.model_type}", expected "bert"`);
  }
  return result.data;
}

/** Reads and validates `config.json`. */
export function readBertConfig(path: string): BertConfig {
  if (!existsSync(path)) throw new TopoprobeError(`${path}: config.json not found`);
  return parseBertConfig(readJson(path), path);
}

/** Number of outputs of the sequence-classification head: `num_labels`, else the size of `id2label`, else 2. */
export function numLabels(config: BertConfig): number {
  if (config.num_labels !== undefined) return config.num_labels;
  if (config.id2label) return Object.keys(config.id2label).length;
  return 2;
}

/** Whether the head is a regression head (one output, MSE) rather than a classifier. */
export function isRegression(config: BertConfig): boolean {
  return config.problem_type === 'regression' || (config.problem_type == null && numLabels(config) === 1);
}

/**
 * Every parameter of the encoder (and, with `head`, of the sequence-classification head) with its
 * shape, under the names Hugging Face's BertModel / BertForSequenceClassification use today (no `bert.`
 * prefix; Linear weights are [out, in]). The order is the order of `named_parameters()`.
 */
export function bertParameterShapes(config: BertConfig, opts: { head?: boolean } = {}): Map<string, number[]> {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const shapes = new Map<string, number[]>();
  shapes.set('embeddings.word_embeddings.weight', [config.vocab_size, H]);
  shapes.set('embeddings.position_embeddings.weight', [config.max_position_embeddings, H]);
  shapes.set('embeddings.token_type_embeddings.weight', [config.type_vocab_size, H]);
  shapes.set('embeddings.LayerNorm.weight', [H]);
  shapes.set('embeddings.LayerNorm.bias', [H]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value']) {
      shapes.set(`${p}.attention.self.${m}.weight`, [H, H]);
      shapes.set(`${p}.attention.self.${m}.bias`, [H]);
    }
    shapes.set(`${p}.attention.output.dense.weight`, [H, H]);
    shapes.set(`${p}.attention.output.dense.bias`, [H]);
    shapes.set(`${p}.attention.output.LayerNorm.weight`, [H]);
    shapes.set(`${p}.attention.output.LayerNorm.bias`, [H]);
    shapes.set(`${p}.intermediate.dense.weight`, [I, H]);
    shapes.set(`${p}.intermediate.dense.bias`, [I]);
    shapes.set(`${p}.output.dense.weight`, [H, I]);
    shapes.set(`${p}.output.dense.bias`, [H]);
    shapes.set(`${p}.output.LayerNorm.weight`, [H]);
    shapes.set(`${p}.output.LayerNorm.bias`, [H]);
  }
  shapes.set('pooler.dense.weight', [H, H]);
  shapes.set('pooler.dense.bias', [H]);
  if (opts.head) {
    shapes.set('classifier.weight', [numLabels(config), H]);
    shapes.set('classifier.bias', [numLabels(config)]);
  }
  return shapes;
}

/** Names of the head's parameters, which a checkpoint may lack (a fresh head is then initialised). */
export const HEAD_PARAMETERS = ['classifier.weight', 'classifier.bias'] as const;
