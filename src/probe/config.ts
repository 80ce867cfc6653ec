/**
 * The `topoprobe measure` config (YAML, validated here). Every key has a default, so a config only names
 * what it changes; the run folder records the fully resolved config.
 */
import { z } from 'zod';

export const METRICS = ['x_sp', 'x_ssp', 'x_essp'] as const;
export type Metric = (typeof METRICS)[number];

const relPath = z.string().min(1);

export const measureConfigSchema = z
  .object({
    /** Run folder name under out_dir (default: measure-<time>). */
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only').optional(),
    /** Model folder, hub id, or builtin:<name>. */
    model: z.string().min(1).default('builtin:tiny'),
    /**
     * The random-encoder control: measure the model's architecture (and tokenizer) with freshly
     * initialised weights (Hugging Face's initialisation, seeded by `seed`) instead of the trained ones.
     */
    reinitialize: z.boolean().default(false),
    /** Submodules to measure: 0 = embeddings, i = layer i; "all" = 0..num_hidden_layers. */
    submodules: z.union([z.literal('all'), z.array(z.number().int().nonnegative()).nonempty()]).default('all'),
    metrics: z.array(z.enum(METRICS)).nonempty().default([...METRICS]),
    /**
     * Hewitt & Manning's distance probe (UUAS and distance Spearman per submodule), trained on the same
     * gold trees as X_sp. Default: on when x_sp is measured (the resolved config says which).
     */
    distance: z.boolean().optional(),
    /**
     * A measure run folder to draw beside this one in the measure plot, normally the random-encoder
     * control (the same config with `reinitialize: true`).
     */
    control: z.string().min(1).optional(),
    /**
     * clean (default): only real word pieces are scored. paper: the authors' choices: [CLS], [SEP] and pad
     * positions are scored too, every sentence is padded to the longest of its whole set, and specials and
     * pads get gold depth 2.
     */
    mode: z.enum(['clean', 'paper']).default('clean'),
    /** Label operator for X_ssp/X_essp: the paper's greedy one, or the exact least-squares projection. */
    labels: z.enum(['greedy', 'exact']).default('greedy'),
    data: z
      .object({
        /** Data directory (default: --data-dir, $TOPOPROBE_DATA_DIR, ../shared/data, ~/.cache/topoprobe/data). */
        dir: z.string().optional(),
        /** UD EWT files (relative to the data directory) for X_sp: train, dev (probe selection), test (reported). */
        ewt: z
          .object({
            train: relPath.default('ud-ewt/en_ewt-ud-train.conllu'),
            dev: relPath.default('ud-ewt/en_ewt-ud-dev.conllu'),
            test: relPath.default('ud-ewt/en_ewt-ud-test.conllu'),
          })
          .strict()
          .prefault({}),
        /** Held-out shares of the X_ssp sentence pool (acceptable CoLA train + MRPC + RTE + STS-B). */
        pool_dev: z.number().gt(0).lt(0.5).default(0.1),
        pool_test: z.number().gt(0).lt(0.5).default(0.1),
        /** At most this many sentences per split (after a seeded shuffle); for quick runs. */
        max_sentences: z.number().int().positive().optional(),
        /** Longest encoding in word pieces, specials included (at most the model's max_position_embeddings). */
        max_length: z.number().int().min(3).default(128),
        /** What to do with longer sentences: skip them, or cut words from the end. Both are counted. */
        too_long: z.enum(['skip', 'truncate']).default('skip'),
      })
      .strict()
      .prefault({}),
    /** Depth of the root word: 1 as in the authors' code, 0 as in Hewitt & Manning. */
    root_depth: z.union([z.literal(0), z.literal(1)]).default(1),
    probe: z
      .object({
        /** Rank of B; default hidden / 2 (the paper). */
        rank: z.number().int().positive().optional(),
        init_range: z.number().positive().default(0.05),
      })
      .strict()
      .prefault({}),
    optimizer: z
      .object({
        name: z.literal('adam').default('adam'),
        lr: z.number().positive().default(0.001),
      })
      .strict()
      .prefault({}),
    epochs: z.number().int().positive().default(10),
    /** Sentences per probe optimisation step. */
    batch_size: z.number().int().positive().default(32),
    /** Sentences per encoder forward pass. */
    encode_batch_size: z.number().int().positive().default(32),
    seed: z.number().int().default(1),
    out_dir: z.string().default('runs'),
  })
  .strict();

export type MeasureConfig = z.infer<typeof measureConfigSchema>;
