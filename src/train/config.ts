/**
 * The `topoprobe train` config (YAML, validated here; `extends:` and `--set` come from src/util/config.ts).
 * Defaults follow the paper's fine-tuning recipe: AdamW lr 2e-5, 10% linear warm-up then linear decay,
 * 3 epochs, batch 32, gradient clipping at 1.0.
 */
import { z } from 'zod';
import { GLUE_TASKS, type GlueTask } from '../data/glue.js';
import { TREE_TARGETS, type TreeTarget } from '../probe/objective.js';

export type TaskName = GlueTask;

/** AdamW's settings, with a command's own defaults (fine-tuning and pretraining differ). */
export function optimizerSchema(defaults: { lr: number; beta2: number; eps: number }) {
  return z
    .object({
      lr: z.number().positive().default(defaults.lr),
      weight_decay: z.number().nonnegative().default(0.01),
      beta1: z.number().min(0).lt(1).default(0.9),
      beta2: z.number().min(0).lt(1).default(defaults.beta2),
      eps: z.number().positive().default(defaults.eps),
    })
    .strict()
    .prefault({});
}

/** The learning-rate schedule: linear warm-up, then linear decay (or constant). */
export function scheduleSchema(defaults: { warmupRatio: number }) {
  return z
    .object({
      kind: z.enum(['linear', 'constant']).default('linear'),
      warmup_ratio: z.number().min(0).max(1).default(defaults.warmupRatio),
    })
    .strict()
    .prefault({});
}

const guideLabels = z
  .enum([...TREE_TARGETS, 'exact'])
  .default('ssp')
  .transform((l): TreeTarget => (l === 'exact' ? 'ssp-exact' : l));

export const guideSchema = z
  .object({
    /** Submodule to guide: 0 = embedding output, i = output of layer i. */
    layer: z.number().int().nonnegative(),
    /** lambda: the probe term's weight in the loss (the paper: 10). */
    weight: z.number().nonnegative().default(10),
    /**
     * The probe's target (src/probe/objective.ts): the paper's greedy tree labels (ssp), reversed (essp),
     * or the exact least-squares ones (ssp-exact, essp-exact; `exact` is read as ssp-exact).
     */
    labels: guideLabels,
    /**
     * A measured probe to start from: a safetensors file written by `topoprobe measure`, or a measure run
     * folder (its probe of this layer: X_ssp, or X_essp with labels essp); or `fresh`.
     */
    probe: z.string().min(1).default('fresh'),
    /** Whether the probe itself is updated during fine-tuning. */
    trainable: z.boolean().default(true),
    /** Which examples the probe term sees: the positive (label 1, e.g. acceptable CoLA) ones, or all. */
    examples: z.enum(['positive', 'all']).default('positive'),
    /**
     * Where the labels come from: `current`, the paper's, recomputed every step from the probe's current
     * predictions (a target the encoder can meet by collapsing to the star tree); or `pretrained`, computed
     * once before fine-tuning from the pretrained encoder and the starting probe, then held fixed, so the
     * term keeps the measured structure (clean mode only).
     */
    targets: z.enum(['current', 'pretrained']).default('current'),
    /**
     * How the weight evolves over training: constant; linear-decay to 0; warmup over the first 10% of
     * updates; halving (weight * 2^-(epoch - 1), 0 once that factor is under 0.1: the authors' commented-out decay).
     */
    schedule: z.enum(['constant', 'linear-decay', 'warmup', 'halving']).default('constant'),
  })
  .strict();

export type GuideConfig = z.infer<typeof guideSchema>;

/** Guides chosen by rule from a measure run: each gets a guide's settings, its probe the measured one of `by`. */
export const selectSchema = guideSchema
  .omit({ layer: true, probe: true })
  .extend({
    /** A `topoprobe measure` run folder. */
    from: z.string().min(1),
    /** The measured metric to rank submodules by (lower held-out MSE = more tree-like). */
    by: z.enum(['x_ssp', 'x_essp', 'x_sp']).default('x_ssp'),
    /** How many submodules to guide. */
    best: z.number().int().positive().default(1),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only').optional(),
    model: z.string().min(1).default('builtin:tiny'),
    task: z.enum(GLUE_TASKS as [GlueTask, ...GlueTask[]]).default('cola'),
    data: z
      .object({
        dir: z.string().optional(),
        train_split: z.enum(['train', 'dev', 'test']).default('train'),
        /** `holdout`: the part of the training split that `holdout` sets aside (for choosing recipes). */
        eval_split: z.enum(['train', 'dev', 'test', 'holdout']).default('dev'),
        /**
         * Hold out this fraction of the training split (the same examples for every seed and recipe,
         * src/data/holdout.ts): the run never trains on them, and `eval_split: holdout` evaluates on them.
         */
        holdout: z.number().gt(0).lt(1).optional(),
        /** Longest encoding in word pieces, specials included; longer examples are truncated (counted). */
        max_length: z.number().int().min(3).default(128),
        /** Use only the first N examples of each split after a seeded shuffle (quick runs). */
        max_train_examples: z.number().int().positive().optional(),
        max_eval_examples: z.number().int().positive().optional(),
      })
      .strict()
      .prefault({}),
    /** clean: probe terms over real word pieces only; paper: also [CLS], [SEP] and pads, as the authors' code. */
    mode: z.enum(['clean', 'paper']).default('clean'),
    seed: z.number().int().default(1),
    epochs: z.number().int().positive().default(3),
    /** Stop after this many optimizer updates (overrides epochs when reached first). */
    max_steps: z.number().int().positive().optional(),
    batch_size: z.number().int().positive().default(32),
    grad_accum: z.number().int().positive().default(1),
    optimizer: optimizerSchema({ lr: 2e-5, beta2: 0.999, eps: 1e-8 }),
    schedule: scheduleSchema({ warmupRatio: 0.1 }),
    max_grad_norm: z.number().positive().nullable().default(1.0),
    /** Override the model's dropout probabilities (null: keep the model's). */
    dropout: z.number().min(0).lt(1).nullable().default(null),
    eval: z
      .object({
        /** Also evaluate every N updates (null: only at the end of each epoch). */
        every_steps: z.number().int().positive().nullable().default(null),
        batch_size: z.number().int().positive().default(64),
      })
      .strict()
      .prefault({}),
    /** Stop when the task metric has not improved for this many evaluations (null: never). */
    early_stopping: z.number().int().positive().nullable().default(null),
    /** Group examples of similar length into batches (dynamic padding); the order stays seeded. */
    bucketing: z.boolean().default(true),
    log_every: z.number().int().positive().default(10),
    guidance: z.array(guideSchema).default([]),
    select: selectSchema.nullable().optional(),
    /**
     * Track X_ssp of these submodules: before fine-tuning and at each epoch's evaluation, a fresh X_ssp probe
     * is trained on half of a fixed set of evaluation sentences (the first `sentences`) and scored on the other half.
     */
    track: z
      .object({
        submodules: z.array(z.number().int().nonnegative()).nonempty(),
        sentences: z.number().int().min(4).default(200),
        /** The tracking probe's training epochs (over half the sentences). */
        epochs: z.number().int().positive().default(5),
        /** Track after every epoch (true), or only before fine-tuning and after the last epoch (false). */
        every_epoch: z.boolean().default(true),
      })
      .strict()
      .optional(),
    /** Written by the trainer into the run's config.yaml: the guides `select` chose, and their measured values. */
    selected: z
      .object({ from: z.string(), by: z.string(), chosen: z.array(z.object({ layer: z.number().int(), value: z.number() }).strict()) })
      .strict()
      .optional(),
    /** Save the best checkpoint (by the task's primary metric) besides the last one. */
    save_best: z.boolean().default(true),
    out_dir: z.string().default('runs'),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;
