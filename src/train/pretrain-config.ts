/**
 * The `topoprobe pretrain` config (YAML, validated here; `extends:` and `--set` come from
 * src/util/config.ts): masked-language-model pretraining of a BERT on plain-text files.
 */
import { z } from 'zod';
import { optimizerSchema, scheduleSchema } from './config.js';

const architectureSchema = z
  .object({
    hidden_size: z.number().int().positive().default(256),
    num_hidden_layers: z.number().int().positive().default(4),
    num_attention_heads: z.number().int().positive().default(4),
    intermediate_size: z.number().int().positive().default(1024),
    max_position_embeddings: z.number().int().positive().default(128),
    hidden_dropout_prob: z.number().min(0).lt(1).default(0.1),
    attention_probs_dropout_prob: z.number().min(0).lt(1).default(0.1),
    initializer_range: z.number().positive().default(0.02),
  })
  .strict();

export const pretrainConfigSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only').optional(),
    /** The architecture of a freshly initialised model (vocab_size comes from the tokenizer). */
    model: architectureSchema.prefault({}),
    /** Continue from an existing model (a folder, hub id or built-in name) instead of a fresh one. */
    init_from: z.string().min(1).nullable().default(null),
    tokenizer: z
      .object({
        /** A vocab.txt, or "bert-uncased" for the data directory's. Ignored with init_from (its own is used). */
        vocab: z.string().min(1).default('bert-uncased'),
        /** Keep only the pieces the training lines use (see src/tokenize/restrict.ts); the ids are renumbered. */
        restrict: z.boolean().default(false),
        /** With restrict: the fewest uses a piece needs to be kept (single characters are always kept). */
        min_count: z.number().int().positive().default(1),
      })
      .strict()
      .prefault({}),
    corpus: z
      .object({
        /** Plain-text files, one sentence or paragraph per line. */
        files: z.array(z.string().min(1)).nonempty(),
        /** Lines drawn (seeded) for the held-out MLM loss and accuracy. */
        held_out: z.number().int().positive().default(1000),
        /** Longest sequence in word pieces, [CLS] and [SEP] included; longer lines are cut into chunks. */
        max_length: z.number().int().min(3).default(128),
      })
      .strict(),
    mlm: z
      .object({
        probability: z.number().gt(0).lt(1).default(0.15),
        mask: z.number().min(0).max(1).default(0.8),
        random: z.number().min(0).max(1).default(0.1),
        whole_word: z.boolean().default(false),
      })
      .strict()
      .prefault({})
      .refine((m) => m.mask + m.random <= 1, { message: 'mask + random must be at most 1 (the rest keep the original piece)' }),
    seed: z.number().int().default(1),
    epochs: z.number().int().positive().default(1),
    /** Stop after this many updates (the schedule spans max_steps when given, else all epochs). */
    max_steps: z.number().int().positive().optional(),
    batch_size: z.number().int().positive().default(128),
    optimizer: optimizerSchema({ lr: 5e-4, beta2: 0.98, eps: 1e-6 }),
    schedule: scheduleSchema({ warmupRatio: 0.05 }),
    max_grad_norm: z.number().positive().nullable().default(1.0),
    eval: z
      .object({
        /** Held-out evaluation (and a checkpoints/last save) every N updates, and at the end. */
        every_steps: z.number().int().positive().default(500),
        batch_size: z.number().int().positive().default(128),
      })
      .strict()
      .prefault({}),
    /** Group lines of similar length into batches; the order stays seeded. */
    bucketing: z.boolean().default(true),
    log_every: z.number().int().positive().default(50),
    /** The dtype of the final model folder (`model/`); checkpoints are always F32. */
    save_dtype: z.enum(['F32', 'F16']).default('F32'),
    out_dir: z.string().default('runs'),
  })
  .strict();

export type PretrainConfig = z.infer<typeof pretrainConfigSchema>;
