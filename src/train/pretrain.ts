/**
 * Masked-language-model pretraining (`topoprobe pretrain`). Reads top to bottom:
 *
 *   read corpus lines, draw the held-out split -> tokenizer (optionally a vocabulary restricted to the
 *   pieces the training lines use) -> encode -> fresh model (or `init_from`, or the checkpoint being
 *   resumed) + MLM head tied to the word embeddings -> the masked-LM objective: mask a batch, forward,
 *   MLM loss on the masked pieces; held-out MLM loss and masked-piece accuracy (next to a unigram
 *   baseline) -> the training loop (loop.ts: backward, clip, AdamW, logging, evaluation before the first
 *   update, every N updates and at the end, resume) -> model/ + results.json.
 *
 * The run folder mirrors `topoprobe train`'s: config.yaml, metrics.jsonl, log.jsonl, checkpoints/last
 * (model + MLM head + tokenizer + optimizer moments + trainer state) and results.json; `model/` is
 * the finished model, a Hugging Face BertForMaskedLM folder with its own vocab.txt and tokenizer.json.
 * Masks are drawn from (seed, epoch, batch), so a resumed run sees the same masks, data order and
 * dropout as an uninterrupted one and ends with the same numbers on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { PretrainConfig } from './pretrain-config.js';
import { maskSequence, checkMaskingOptions, type MaskingOptions, type MaskedSequence } from './masking.js';
import { AdamW, defaultNoDecay } from './optimizer.js';
import { makeSchedule } from './schedule.js';
import { runLoop, NonFiniteError, type TrainHooks } from './loop.js';
import { RESULTS_FILE, replaceCheckpoint, runFolders } from '../util/run-folder.js';
import { BertModel } from '../model/bert.js';
import { MlmHead, mlmLoss } from '../model/mlm-head.js';
import { parseBertConfig } from '../model/config.js';
import { saveCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { loadModel } from '../model/load.js';
import { readCorpus, splitHeldOut, encodeCorpus } from '../data/corpus.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { dataDir as resolveDataDir, bertUncasedVocabPath } from '../data/paths.js';
import { BertTokenizer, loadTokenizer } from '../tokenize/tokenizer.js';
import { readVocabFile } from '../tokenize/vocab.js';
import { restrictVocab } from '../tokenize/restrict.js';
import { currentBackend } from '../backend/index.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/fs.js';
import { configToYaml } from '../util/config.js';

/** The same hooks as fine-tuning's: log, progress, and stopping (as if interrupted) for Ctrl-C and tests. */
export type PretrainHooks = TrainHooks;

export interface MlmScores {
  /** Mean cross-entropy (nats) over the masked pieces. */
  loss: number;
  /** Fraction of masked pieces predicted exactly. */
  accuracy: number;
  /** Number of masked pieces scored. */
  predictions: number;
}

export interface PretrainResult {
  runDir: string;
  /** The finished model folder (absent for an interrupted run). */
  modelDir: string | null;
  status: 'completed' | 'interrupted';
  steps: number;
  epochs_completed: number;
  /** Word pieces (padding excluded) the model has been trained on. */
  pieces_seen: number;
  held_out: MlmScores;
  /** The held-out scores of the model before any update (step 0). */
  initial: MlmScores | null;
  /** A unigram model of the training pieces on the same held-out masks. */
  unigram: MlmScores;
  parameters: number;
  vocab_size: number;
  corpus: { files: Array<{ path: string; lines: number }>; train_lines: number; held_out_lines: number; train_sequences: number; cut_lines: number };
  seed: number;
  wall_time_s: number;
  backend: string;
}

/** Pretraining's own checkpointed state, beside the loop's. */
interface PretrainExtra {
  /** Word pieces (padding excluded) trained on so far. */
  piecesSeen: number;
  /** The held-out scores before the first update. */
  initial: MlmScores | null;
}

/** A seed for the masks of one batch, from the run's seed, the epoch and the batch's index. */
function batchSeed(seed: number, epoch: number, batch: number): number {
  return (Math.imul(seed, 0x9e3779b1) ^ Math.imul(epoch, 0x85ebca6b) ^ Math.imul(batch + 1, 0xc2b2ae35)) >>> 0;
}

/** The tokenizer a fresh run uses: the configured vocabulary, restricted to the training lines' pieces if asked. */
function buildTokenizer(config: PretrainConfig, trainLines: readonly string[], dataDir: string, log: Logger): { tokenizer: BertTokenizer; originalIds: number[] | null; vocabPath: string } {
  const vocabPath = config.tokenizer.vocab === 'bert-uncased' ? bertUncasedVocabPath(dataDir) : resolve(config.tokenizer.vocab);
  if (!existsSync(vocabPath)) {
    throw new TopoprobeError(`tokenizer.vocab: ${vocabPath} not found${config.tokenizer.vocab === 'bert-uncased' ? '; run `topoprobe data download bert-uncased` or set --data-dir' : ''}`);
  }
  const full = readVocabFile(vocabPath);
  const fullTokenizer = BertTokenizer.fromVocab(full, { source: vocabPath });
  if (!config.tokenizer.restrict) return { tokenizer: fullTokenizer, originalIds: null, vocabPath };
  const counts = new Uint32Array(full.length);
  for (const line of trainLines) for (const id of fullTokenizer.tokensToIds(fullTokenizer.tokenize(line))) counts[id]! += 1;
  const restricted = restrictVocab(full, counts, { minCount: config.tokenizer.min_count });
  log.info(`vocabulary restricted to ${restricted.vocab.length} of ${full.length} pieces (used at least ${config.tokenizer.min_count} times, plus single characters and specials)`);
  return { tokenizer: BertTokenizer.fromVocab(restricted.vocab, { source: `${vocabPath} (restricted)` }), originalIds: restricted.originalIds, vocabPath };
}

/** Masks every sequence once with one generator: the fixed held-out masks. */
function maskAll(sequences: readonly number[][], continues: readonly boolean[], seed: number, opts: MaskingOptions): MaskedSequence[] {
  const rng = new Rng(seed);
  return sequences.map((ids) => maskSequence(ids, ids.map((id) => continues[id]!), rng, opts));
}

/** Pads masked sequences into a batch, with the masked positions flattened as row * seq + position. */
function maskedBatch(masked: readonly MaskedSequence[], padId: number) {
  const batch = padBatch(masked.map((m) => ({ ids: m.inputIds })), padId);
  const seq = batch.inputIds.shape[1];
  const flat: number[] = [];
  const labels: number[] = [];
  masked.forEach((m, b) => {
    m.positions.forEach((p, k) => {
      flat.push(b * seq + p);
      labels.push(m.labels[k]!);
    });
  });
  return { batch, flat: tf.tensor1d(flat, 'int32'), labels: tf.tensor1d(labels, 'int32'), count: labels.length };
}

/** Held-out MLM loss and accuracy of the model on fixed masks. */
export async function evaluateMlm(model: BertModel, head: MlmHead, masked: readonly MaskedSequence[], padId: number, batchSize: number): Promise<MlmScores> {
  let lossSum = 0;
  let correct = 0;
  let total = 0;
  for (let i = 0; i < masked.length; i += batchSize) {
    const part = masked.slice(i, i + batchSize).filter((m) => m.positions.length > 0);
    if (part.length === 0) continue;
    const { batch, flat, labels, count } = maskedBatch(part, padId);
    const out = model.forward(batch, { hiddenStates: 'none', pool: false });
    const { loss, predictions } = mlmLoss(head, out.lastHiddenState, flat, labels);
    const l = (await loss.data())[0]!;
    const pred = await predictions.data();
    const gold = await labels.data();
    for (let k = 0; k < count; k++) if (pred[k] === gold[k]) correct += 1;
    lossSum += l * count;
    total += count;
    tf.dispose([out.lastHiddenState, loss, predictions, flat, labels]);
    disposeBatch(batch);
  }
  if (!Number.isFinite(lossSum)) throw new NonFiniteError('non-finite MLM loss on the held-out lines');
  return { loss: lossSum / Math.max(1, total), accuracy: correct / Math.max(1, total), predictions: total };
}

/**
 * A unigram model's scores on the held-out masks: it always predicts the most frequent training
 * piece, and gives each piece its add-one smoothed training frequency (over the non-special pieces).
 */
export function unigramScores(trainSequences: readonly number[][], masked: readonly MaskedSequence[], vocabSize: number, specialIds: ReadonlySet<number>): MlmScores {
  const counts = new Float64Array(vocabSize);
  for (const seq of trainSequences) for (const id of seq) if (!specialIds.has(id)) counts[id]! += 1;
  let best = 0;
  let sum = 0;
  let candidates = 0;
  for (let id = 0; id < vocabSize; id++) {
    if (specialIds.has(id)) continue;
    candidates += 1;
    sum += counts[id]!;
    if (counts[id]! > counts[best]! || specialIds.has(best)) best = id;
  }
  let lossSum = 0;
  let correct = 0;
  let total = 0;
  for (const m of masked) {
    for (const label of m.labels) {
      lossSum -= Math.log((counts[label]! + 1) / (sum + candidates));
      if (label === best) correct += 1;
      total += 1;
    }
  }
  return { loss: lossSum / Math.max(1, total), accuracy: correct / Math.max(1, total), predictions: total };
}

async function saveModelFolder(dir: string, model: BertModel, head: MlmHead, tokenizer: BertTokenizer, originalIds: number[] | null, vocabPath: string | null, dtype: 'F32' | 'F16'): Promise<void> {
  saveCheckpoint(dir, model.config, await model.weights(), { mlmHead: await head.weights(), dtype });
  tokenizer.save(dir);
  if (originalIds) writeJsonAtomic(join(dir, 'vocab_map.json'), { source: vocabPath, note: 'original_ids[i] is the id piece i has in the source vocabulary', original_ids: originalIds });
}

export async function runPretrain(config: PretrainConfig, hooks: PretrainHooks, opts: { dataDir?: string; resume?: string } = {}): Promise<PretrainResult> {
  const { log } = hooks;
  const started = Date.now();
  const { runDir, lastDir } = runFolders(config.out_dir, config.name, 'pretrain', opts.resume);
  if (config.init_from && config.tokenizer.restrict) {
    throw new TopoprobeError('tokenizer.restrict: a model given by init_from keeps its own vocabulary; drop one of the two');
  }

  // Corpus and tokenizer.
  const corpus = readCorpus(config.corpus.files);
  const split = splitHeldOut(corpus.lines.length, config.corpus.held_out, config.seed);
  const trainLines = split.train.map((i) => corpus.lines[i]!);
  const heldOutLines = split.heldOut.map((i) => corpus.lines[i]!);
  log.info(`corpus: ${corpus.lines.length} lines in ${corpus.files.length} file(s); ${heldOutLines.length} held out`);

  let model: BertModel;
  let head: MlmHead;
  let tokenizer: BertTokenizer;
  let originalIds: number[] | null = null;
  let vocabPath: string | null = null;
  if (opts.resume) {
    tokenizer = loadTokenizer(lastDir);
    const ckpt = loadCheckpoint(lastDir, { mlmHead: true });
    model = BertModel.fromWeights(ckpt.config, ckpt.weights, { seed: config.seed });
    head = MlmHead.create(model, ckpt.mlmHead, config.seed);
    const mapPath = join(lastDir, 'vocab_map.json');
    if (existsSync(mapPath)) ({ original_ids: originalIds, source: vocabPath } = JSON.parse(readFileSync(mapPath, 'utf8')) as { original_ids: number[]; source: string });
  } else if (config.init_from) {
    const loaded = await loadModel(config.init_from, { seed: config.seed, dataDir: opts.dataDir, mlmHead: true });
    model = loaded.model;
    tokenizer = loaded.tokenizer;
    head = MlmHead.create(model, loaded.mlmHead, config.seed);
    log.info(`init_from ${config.init_from}: ${loaded.mlmHead.size > 0 ? 'its masked-LM head too' : 'a fresh masked-LM head'}`);
  } else {
    const built = buildTokenizer(config, trainLines, resolveDataDir(opts.dataDir), log);
    tokenizer = built.tokenizer;
    originalIds = built.originalIds;
    vocabPath = built.vocabPath;
    const bertConfig = parseBertConfig({ model_type: 'bert', ...config.model, vocab_size: tokenizer.vocabSize, pad_token_id: tokenizer.padId }, 'model');
    model = BertModel.init(bertConfig, { seed: config.seed });
    head = MlmHead.create(model, new Map(), config.seed);
  }
  if (tokenizer.maskId === undefined) throw new TopoprobeError('the tokenizer has no [MASK] token: masked-LM pretraining needs one');
  const maxLength = Math.min(config.corpus.max_length, model.config.max_position_embeddings);
  const train = encodeCorpus(trainLines, tokenizer, maxLength);
  const heldOut = encodeCorpus(heldOutLines, tokenizer, maxLength);
  if (train.sequences.length === 0) throw new TopoprobeError(`corpus.files: the training lines hold no word pieces`);
  log.info(`${train.sequences.length} training and ${heldOut.sequences.length} held-out sequences (${train.cut + heldOut.cut} lines cut into chunks of ${maxLength} pieces, ${train.skipped + heldOut.skipped} without a piece to predict skipped); vocabulary ${tokenizer.vocabSize}; ${model.parameterCount() + [...head.params.values()].reduce((n, v) => n + v.size, 0)} parameters`);

  const allTokens = tokenizer.idsToTokens(Array.from({ length: tokenizer.vocabSize }, (_, i) => i));
  const continues = allTokens.map((t) => t.startsWith(tokenizer.continuingSubwordPrefix) && t.length > tokenizer.continuingSubwordPrefix.length);
  const randomIds = allTokens.map((t, id) => (tokenizer.specialIds.has(id) || /^\[[^\]]+\]$/.test(t) ? -1 : id)).filter((id) => id >= 0);
  const masking: MaskingOptions = {
    probability: config.mlm.probability, maskRatio: config.mlm.mask, randomRatio: config.mlm.random, wholeWord: config.mlm.whole_word,
    maskId: tokenizer.maskId, specialIds: tokenizer.specialIds, randomIds,
  };
  checkMaskingOptions(masking);
  const heldOutMasks = maskAll(heldOut.sequences, continues, config.seed ^ 0xe7a1, masking);
  const unigram = unigramScores(train.sequences, heldOutMasks, tokenizer.vocabSize, tokenizer.specialIds);

  const params = new Map<string, tf.Variable>([...model.params, ...head.params]);
  const optimizer = new AdamW({
    beta1: config.optimizer.beta1, beta2: config.optimizer.beta2, epsilon: config.optimizer.eps, weightDecay: config.optimizer.weight_decay,
    noDecay: defaultNoDecay,
  });
  const batchesPerEpoch = Math.ceil(train.sequences.length / config.batch_size);
  const totalSteps = config.max_steps ?? batchesPerEpoch * config.epochs;
  const saveModel = (dir: string, dtype: 'F32' | 'F16') => saveModelFolder(dir, model, head, tokenizer, originalIds, vocabPath, dtype);
  let lastEval: MlmScores | null = null;
  try {
    const { status, state } = await runLoop<PretrainExtra>({
      runDir, resume: Boolean(opts.resume), hooks, started, params, optimizer, rng: model.rng, configYaml: configToYaml(config),
      lrAt: makeSchedule({ kind: config.schedule.kind, peak: config.optimizer.lr, warmupRatio: config.schedule.warmup_ratio, totalSteps }),
      lengths: train.sequences.map((s) => s.length),
      seed: config.seed, epochs: config.max_steps === undefined ? config.epochs : null, totalSteps, batchSize: config.batch_size, gradAccum: 1,
      bucketing: config.bucketing, logEvery: config.log_every, maxGradNorm: config.max_grad_norm,
      evaluate: { everySteps: config.eval.every_steps, eachEpoch: false, atStart: true }, earlyStopping: null, saveBest: false,
      extra: { piecesSeen: 0, initial: null },
      objective: {
        progressTerm: 'mlm_loss',
        hint: 'Try a lower learning rate',
        // Masks come from (seed, epoch, batch), so a resumed run masks every batch as an uninterrupted one.
        loss: (idx, at) => () => {
          const rng = new Rng(batchSeed(config.seed, at.epoch, at.index));
          const masked = idx.map((i) => {
            const ids = train.sequences[i]!;
            return maskSequence(ids, ids.map((id) => continues[id]!), rng, masking);
          });
          const { batch, flat, labels, count } = maskedBatch(masked, tokenizer.padId);
          at.state.piecesSeen += batch.lengths.reduce((a, n) => a + n, 0);
          const out = model.forward(batch, { training: true, hiddenStates: 'none', pool: false });
          const { loss, predictions } = mlmLoss(head, out.lastHiddenState, flat, labels);
          const accuracy = tf.div(tf.sum(tf.cast(tf.equal(predictions, labels), 'float32')), Math.max(1, count)) as tf.Scalar;
          return { loss, terms: { mlm_loss: loss, mlm_accuracy: accuracy } };
        },
        trainExtra: (s) => ({ pieces_seen: s.piecesSeen }),
        nonFinite: (_terms, update) => `non-finite MLM loss at update ${update}`,
        evaluate: async (_epoch, s) => {
          const scores = await evaluateMlm(model, head, heldOutMasks, tokenizer.padId, config.eval.batch_size);
          log.info(`held-out at update ${s.step}: MLM loss ${scores.loss.toFixed(4)}, masked accuracy ${scores.accuracy.toFixed(4)} (unigram: ${unigram.loss.toFixed(4)}, ${unigram.accuracy.toFixed(4)})`);
          if (s.step === 0 && s.initial === null) s.initial = scores;
          lastEval = scores;
          return { record: { held_out_loss: scores.loss, held_out_accuracy: scores.accuracy } };
        },
        save: (tmp) => saveModel(tmp, 'F32'),
      },
    });
    let modelDir: string | null = null;
    if (status !== 'interrupted') {
      modelDir = join(runDir, 'model');
      await replaceCheckpoint(modelDir, state.step, (tmp) => saveModel(tmp, config.save_dtype));
    }
    const held: MlmScores = lastEval ?? state.initial!;
    const res: PretrainResult = {
      runDir, modelDir, status: status === 'interrupted' ? 'interrupted' : 'completed', steps: state.step, epochs_completed: state.epoch - 1, pieces_seen: state.piecesSeen,
      held_out: held, initial: state.initial, unigram,
      parameters: model.parameterCount() + [...head.params.values()].reduce((n, v) => n + v.size, 0), vocab_size: tokenizer.vocabSize,
      corpus: { files: corpus.files, train_lines: trainLines.length, held_out_lines: heldOutLines.length, train_sequences: train.sequences.length, cut_lines: train.cut },
      seed: config.seed, wall_time_s: state.wallTime, backend: currentBackend()?.name ?? tf.getBackend(),
    };
    if (res.status === 'completed') writeJsonAtomic(join(runDir, RESULTS_FILE), res);
    return res;
  } finally {
    optimizer.dispose();
    head.dispose();
    model.dispose();
  }
}
