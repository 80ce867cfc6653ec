/**
 * One call from a model argument to a ready model and tokenizer: a built-in name (`builtin:mini`), a
 * local Hugging Face folder, or a hub id resolved through the Hugging Face cache (downloading if needed).
 */
import { BertModel } from './bert.js';
import { loadCheckpoint, type WeightMap } from './checkpoint.js';
import { type BertConfig, numLabels, isRegression } from './config.js';
import { resolveModel, type ResolveModelOptions } from './hub.js';
import { getBuiltin, isBuiltin } from './builtin.js';
import { type BertTokenizer, loadTokenizer, tokenizerFromVocabFile } from '../tokenize/tokenizer.js';
import { getLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';

/** The head a task needs: its number of outputs, and whether it is a regression head. */
export interface HeadSpec {
  numLabels: number;
  regression: boolean;
}

export interface LoadModelOptions {
  /**
   * Add a sequence-classification head (loaded when the checkpoint has one, else initialised). With a
   * HeadSpec, a checkpoint head that does not fit it (e.g. another task's) is replaced by a fresh one.
   */
  head?: boolean | HeadSpec;
  /** Also read the checkpoint's masked-LM head (`LoadedModel.mlmHead`; empty when it has none). */
  mlmHead?: boolean;
  /** Override the hidden and attention dropout probabilities (null or absent: the checkpoint's). */
  dropout?: number | null;
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
  /** The masked-LM head's tensors (`cls.predictions.*`), with the `mlmHead` option; else empty. */
  mlmHead: WeightMap;
}

/** A copy of `config` with the head described by `spec` (when given) and the dropout override (when given). */
function configured(config: BertConfig, spec: HeadSpec | undefined, dropout: number | null | undefined): BertConfig {
  const out = { ...config };
  if (spec) {
    Object.assign(out, {
      num_labels: spec.numLabels,
      id2label: undefined,
      label2id: undefined,
      problem_type: spec.regression ? 'regression' : 'single_label_classification',
    });
  }
  if (dropout !== undefined && dropout !== null) Object.assign(out, { hidden_dropout_prob: dropout, attention_probs_dropout_prob: dropout });
  return out;
}

export async function loadModel(arg: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const log = getLogger();
  const head = opts.head !== undefined && opts.head !== false;
  const spec = typeof opts.head === 'object' ? opts.head : undefined;
  const builtin = isBuiltin(arg) ? getBuiltin(arg, opts.dataDir) : undefined;
  if (builtin?.kind === 'random') {
    const tokenizer = tokenizerFromVocabFile(builtin.vocabFile);
    const model = BertModel.init(configured(builtin.config, spec, opts.dropout), { head, seed: builtin.seed });
    log.info(`model ${arg}: ${builtin.description}`);
    return { model, tokenizer, source: arg, mlmHead: new Map() };
  }
  if (builtin) log.info(`model ${arg}: ${builtin.description}`);
  const dir = builtin ? builtin.path : await resolveModel(arg, opts.hub);
  const checkpoint = loadCheckpoint(dir, { head, mlmHead: opts.mlmHead });
  const tokenizer = loadTokenizer(dir);
  if (tokenizer.vocabSize > checkpoint.config.vocab_size) {
    throw new TopoprobeError(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} entries but config.json's vocab_size is ${checkpoint.config.vocab_size}: they do not belong together`,
    );
  }
  let headLoaded = checkpoint.headLoaded;
  if (spec && headLoaded && (numLabels(checkpoint.config) !== spec.numLabels || isRegression(checkpoint.config) !== spec.regression)) {
    log.info(`${dir}: the checkpoint's classifier has ${numLabels(checkpoint.config)} outputs; this task needs ${spec.numLabels}${spec.regression ? ' (regression)' : ''}: it gets a fresh head`);
    checkpoint.weights.delete('classifier.weight');
    checkpoint.weights.delete('classifier.bias');
    headLoaded = false;
  }
  const config = configured(checkpoint.config, headLoaded ? undefined : spec, opts.dropout);
  const model = BertModel.fromWeights(config, checkpoint.weights, { head, seed: opts.seed });
  if (head && !headLoaded) log.info(`${dir}: no usable classifier in the checkpoint; initialised a fresh head`);
  log.info(`model ${arg}: ${checkpoint.config.num_hidden_layers} layers, hidden ${checkpoint.config.hidden_size}, from ${dir}`);
  return { model, tokenizer, source: dir, mlmHead: checkpoint.mlmHead };
}
