/**
 * One call from a model argument to a ready model and tokenizer: a built-in name (`builtin:tiny`), a
 * local Hugging Face folder, or a hub id resolved through the Hugging Face cache (downloading if needed).
 */
import { BertModel } from './bert.js';
import { loadCheckpoint } from './checkpoint.js';
import { resolveModel, type ResolveModelOptions } from './hub.js';
import { getBuiltin, isBuiltin } from './builtin.js';
import { type BertTokenizer, loadTokenizer, tokenizerFromVocabFile } from '../tokenize/tokenizer.js';
import { getLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';

export interface LoadModelOptions {
  /** Add a sequence-classification head (loaded when the checkpoint has one, else initialised). */
  head?: boolean;
  /** Seed for anything initialised here (a fresh head, a built-in model). */
  seed?: number;
  /** Data directory (for built-in models' vocabulary). */
  dataDir?: string;
  /** Options for hub ids. */
  hub?: ResolveModelOptions;
}

export interface LoadedModel {
  model: BertModel;
  tokenizer: BertTokenizer;
  /** The folder the model came from, or the built-in name. */
  source: string;
}

export async function loadModel(arg: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const log = getLogger();
  if (isBuiltin(arg)) {
    const builtin = getBuiltin(arg, opts.dataDir);
    const tokenizer = tokenizerFromVocabFile(builtin.vocabFile);
    const model = BertModel.init(builtin.config, { head: opts.head, seed: builtin.seed });
    log.info(`model ${arg}: ${builtin.description}`);
    return { model, tokenizer, source: arg };
  }
  const dir = await resolveModel(arg, opts.hub);
  const checkpoint = loadCheckpoint(dir, { head: opts.head });
  const tokenizer = loadTokenizer(dir);
  if (tokenizer.vocabSize > checkpoint.config.vocab_size) {
    throw new TopoprobeError(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} entries but config.json's vocab_size is ${checkpoint.config.vocab_size}: they do not belong together`,
    );
  }
  const model = BertModel.fromWeights(checkpoint.config, checkpoint.weights, { head: opts.head, seed: opts.seed });
  if (opts.head && !checkpoint.headLoaded) log.info(`${dir}: no classifier in the checkpoint; initialised a fresh head`);
  log.info(`model ${arg}: ${checkpoint.config.num_hidden_layers} layers, hidden ${checkpoint.config.hidden_size}, from ${dir}`);
  return { model, tokenizer, source: dir };
}
