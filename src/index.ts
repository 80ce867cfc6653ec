/**
 * topoprobe's library API. The CLI (src/cli) is a thin layer over these exports.
 */
export { initBackend, currentBackend, parseBackendChoice, BACKEND_NAMES } from './backend/index.js';
export type { BackendChoice, BackendInfo, ConcreteBackend } from './backend/index.js';
export { registerSegmentSumKernel } from './backend/segment-sum.js';

export { BertModel, gelu } from './model/bert.js';
export type { BertInputs, BertOutput, ForwardOptions } from './model/bert.js';
export {
  type BertConfig,
  parseBertConfig,
  readBertConfig,
  bertParameterShapes,
  numLabels,
  isRegression,
  BERT_LARGE_UNCASED,
} from './model/config.js';
export { loadCheckpoint, saveCheckpoint, canonicalName } from './model/checkpoint.js';
export type { WeightMap, LoadedCheckpoint, SaveCheckpointOptions } from './model/checkpoint.js';
export { readSafetensors, writeSafetensors, openSafetensors } from './model/safetensors.js';
export { resolveModel, hubCacheDir, isOfflineMode } from './model/hub.js';
export type { ResolveModelOptions } from './model/hub.js';
export { loadModel } from './model/load.js';
export type { LoadedModel, LoadModelOptions } from './model/load.js';
export { builtinNames } from './model/builtin.js';
export { hiddenStates, checkIds } from './model/encode.js';
export type { SequenceHiddenStates } from './model/encode.js';

export { BertTokenizer, loadTokenizer, tokenizerFromVocabFile, buildBertTokenizerJson } from './tokenize/tokenizer.js';
export type { Encoding, EncodeOptions } from './tokenize/tokenizer.js';

export { encodeWords, spreadWordValues } from './data/alignment.js';
export { padBatch, disposeBatch } from './data/batch.js';
export type { PaddedBatch, EncodedSequence } from './data/batch.js';
export { dataDir } from './data/paths.js';

export { AdamW, clipByGlobalNorm, globalNorm } from './train/optimizer.js';
export { crossEntropy, regressionLoss, taskLoss } from './train/loss.js';
export { trainingStep, parameterGrads } from './train/step.js';
export { benchTrainingStep } from './train/bench.js';
export type { BenchOptions, BenchResult } from './train/bench.js';

export { TopoprobeError } from './util/errors.js';
export { Rng } from './util/random.js';
