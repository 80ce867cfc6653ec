/**
 * Built-in models, named `builtin:<name>`, that need no download.
 *
 * - `builtin:mini` is a small BERT (4 layers, hidden 256) pretrained here with `topoprobe pretrain
 *   --config configs/pretrain/mini.yaml` on the training splits of the data directory and WordNet's
 *   glosses. Its folder, models/mini, is committed with its model card (models/mini/README.md), its
 *   own restricted vocabulary and tokenizer.json; it is the default of the quickstart.
 * - `builtin:tiny` is a seeded, randomly initialised 2-layer BERT (hidden 64) with the bert-uncased
 *   vocabulary from the data directory. It exercises every code path quickly; it has learned nothing,
 *   so its representations and any score computed from them are those of a random encoder.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseBertConfig, type BertConfig } from './config.js';
import { bertUncasedVocabPath } from '../data/paths.js';
import { projectRoot } from '../util/root.js';
import { TopoprobeError } from '../util/errors.js';

/** A model initialised on the spot from a config and a seed. */
export interface RandomBuiltin {
  kind: 'random';
  description: string;
  config: BertConfig;
  /** Seed of the initialisation. */
  seed: number;
  /** The vocabulary file (from the data directory). */
  vocabPath: (dataDir?: string) => string;
}

/** A Hugging Face model folder shipped with the project. */
export interface FolderBuiltin {
  kind: 'folder';
  description: string;
  /** The folder, relative to the project root. */
  folder: string;
}

export type BuiltinModel = RandomBuiltin | FolderBuiltin;

export const BUILTIN_PREFIX = 'builtin:';

const BUILTINS: Record<string, BuiltinModel> = {
  mini: {
    kind: 'folder',
    description: 'pretrained here (masked LM, configs/pretrain/mini.yaml): 4 layers, hidden 256, 4 heads, restricted bert-uncased vocabulary; see models/mini/README.md',
    folder: 'models/mini',
  },
  tiny: {
    kind: 'random',
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

export type ResolvedBuiltin = (RandomBuiltin & { vocabFile: string }) | (FolderBuiltin & { path: string });

/** Looks up a built-in model and checks that what it needs (its folder, or its vocabulary) is present. */
export function getBuiltin(arg: string, dataDir?: string): ResolvedBuiltin {
  const name = arg.slice(BUILTIN_PREFIX.length);
  const model = BUILTINS[name];
  if (!model) throw new TopoprobeError(`unknown built-in model "${arg}" (available: ${builtinNames().join(', ')})`);
  if (model.kind === 'folder') {
    const path = join(projectRoot(), model.folder);
    if (!existsSync(join(path, 'config.json'))) throw new TopoprobeError(`${arg}: its folder ${path} is missing or incomplete (it is part of the repository; is this a full clone?)`);
    return { ...model, path };
  }
  const vocabFile = model.vocabPath(dataDir);
  if (!existsSync(vocabFile)) {
    throw new TopoprobeError(
      `${arg} needs the bert-uncased vocabulary, not found at ${vocabFile}; run \`topoprobe data download bert-uncased\` (and the tasks you use, e.g. cola), or point --data-dir or TOPOPROBE_DATA_DIR at a data directory that has bert-uncased/vocab.txt`,
    );
  }
  return { ...model, vocabFile };
}
