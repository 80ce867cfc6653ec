/**
 * topoprobe's library API. The CLI (src/cli) is a thin layer over these exports.
 */
export { initBackend, currentBackend, parseBackendChoice, BACKEND_NAMES } from './backend/index.js';
export type { BackendChoice, BackendInfo, ConcreteBackend } from './backend/index.js';
export { registerSegmentSumKernel } from './backend/segment-sum.js';

export { BertModel } from './model/bert.js';
export { gelu, layerNorm, dropout } from './backend/fused.js';
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

export { AdamW, clipFactor, globalNorm } from './train/optimizer.js';
export { crossEntropy, regressionLoss, taskLoss } from './train/loss.js';
export { trainingStep, parameterGrads } from './train/step.js';
export { benchTrainingStep } from './train/bench.js';
export type { BenchOptions, BenchResult } from './train/bench.js';

export { DepthProbe, DistanceProbe } from './probe/probe.js';
export type { ProbeOptions } from './probe/probe.js';
export { treeLabels, treeLabelsBatch, isTreeConsistent, squaredError, greedyGap } from './probe/labels.js';
export type { LabelVariant } from './probe/labels.js';
export { mse, depthSpearman, rootAccuracy, uuas, distanceSpearman } from './probe/metrics.js';
export { minimumSpanningTree } from './probe/tree.js';
export type { Edge } from './probe/tree.js';
export { rank, pearson, spearman, mean, std } from './util/stats.js';
export { trainProbe, heldOutMse, predictDepths } from './probe/train.js';
export type { ProbeExample, ProbeTrainOptions, Target } from './probe/train.js';
export { trainDistanceProbe, predictWordDistances, distanceLoss, mergeToWords } from './probe/distance.js';
export type { DistanceExample } from './probe/distance.js';
export { runInspect } from './probe/inspect.js';
export { plotInspect, inspectSubmoduleSpec, inspectPanelSpec } from './probe/inspect-plot.js';
export type { InspectSentence, InspectSubmodule } from './probe/inspect-plot.js';
export { runMeasure } from './probe/measure.js';
export type { MeasureRow, MeasureResult } from './probe/measure.js';
export { measureConfigSchema, METRICS } from './probe/config.js';
export type { MeasureConfig, Metric } from './probe/config.js';
export { plotMeasure, measureChartSpec } from './probe/plot.js';
export { parseConllu, readConllu, goldDepths, goldDistances, goldRootIndex, isPunctuation } from './data/conllu.js';
export type { ConlluSentence, ConlluWord } from './data/conllu.js';
export { readGlue, parseGlue, probeSentencePool, GLUE_TASKS } from './data/glue.js';
export type { GlueTask, GlueExample, GlueSplit } from './data/glue.js';
export { loadConfig, readConfigChain, applySet, mergeConfig } from './util/config.js';

export { TopoprobeError } from './util/errors.js';
export { Rng } from './util/random.js';
