/**
 * Built-in models, named `builtin:<name>`, that need no download.
 *
 * `builtin:tiny` is a seeded, randomly initialised 2-layer BERT (hidden 64) with the bert-uncased
 * vocabulary from the data directory. It exercises every code path quickly; it has learned nothing,
 * so its representations and any score computed from them are those of a random encoder.
 */
import { existsSync } from 'node:fs';
import { parseBertConfig, type BertConfig } from './config.js';
import { bertUncasedVocabPath } from '../data/paths.js';
import { TopoprobeError } from '../util/errors.js';

export interface BuiltinModel {
  description: string;
  config: BertConfig;
  /** Seed of the initialisation. */
  seed: number;
  /** The vocabulary file (from the data directory). */
  vocabPath: (dataDir?: string) => string;
}

export const BUILTIN_PREFIX = 'builtin:';

const BUILTINS: Record<string, BuiltinModel> = {
  tiny: {
    description: 'seeded random initialisation (no pretraining): 2 layers, hidden 64, 2 heads, bert-uncased vocabulary',
    config: parseBertConfig({
      model_type: 'bert',
      vocab_size: 30522,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      intermediate_size: 256,
      max_position_embeddings: 512,
    }, 'builtin:tiny'),
    seed: 0,
    vocabPath: bertUncasedVocabPath,
  },
};

export function isBuiltin(arg: string): boolean {
  return arg.startsWith(BUILTIN_PREFIX);
}

export function builtinNames(): string[] {
  return Object.keys(BUILTINS).map((n) => BUILTIN_PREFIX + n);
}

/** Looks up a built-in model and checks that its vocabulary is present. */
export function getBuiltin(arg: string, dataDir?: string): BuiltinModel & { vocabFile: string } {
  const name = arg.slice(BUILTIN_PREFIX.length);
  const model = BUILTINS[name];
  if (!model) throw new TopoprobeError(`unknown built-in model "${arg}" (available: ${builtinNames().join(', ')})`);
  const vocabFile = model.vocabPath(dataDir);
  if (!existsSync(vocabFile)) {
    throw new TopoprobeError(
      `${arg} needs the bert-uncased vocabulary, not found at ${vocabFile}; run \`topoprobe data download bert-uncased\` (and the tasks you use, e.g. cola), or point --data-dir or TOPOPROBE_DATA_DIR at a data directory that has bert-uncased/vocab.txt`,
    );
  }
  return { ...model, vocabFile };
}
