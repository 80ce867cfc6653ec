/**
 * `topoprobe inspect`: one sentence through a model and a measure run's probes, per submodule.
 *
 *   1. The sentence: typed text (split into words as BERT's tokenizer splits it: a word is a piece and the
 *      `##` pieces after it) or a CoNLL-U sentence, which brings its gold tree.
 *   2. One encoder forward pass gives the hidden states of every selected submodule at the real word pieces.
 *   3. Each submodule's probes from the measure run (probes/sub-<i>-<metric>.safetensors):
 *      - X_ssp: the predicted depth per piece and the tree labels of those predictions (the measure run's
 *        label operator), the picture Li, Yin & Lin (2023) draw per layer;
 *      - X_sp: the predicted depth per piece, beside the gold depths when the sentence has a tree;
 *      - distance: the word-level predicted distances (pieces merged as `measure` merges them) and their
 *        minimum spanning tree over the words that are not punctuation, scored against the gold tree.
 *   4. The pictures (inspect-plot.ts) and inspect.json with every number drawn.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DepthProbe, DistanceProbe } from './probe.js';
import { measureConfigSchema, type MeasureConfig } from './config.js';
import { measureTarget, targetLabels } from './objective.js';
import { mergeToWords } from './distance.js';
import { minimumSpanningTree, type Edge } from './tree.js';
import { mse, uuas } from './metrics.js';
import { plotInspect, type InspectSentence, type InspectSubmodule } from './inspect-plot.js';
import { loadModel } from '../model/load.js';
import type { BertTokenizer } from '../tokenize/tokenizer.js';
import { readConllu, goldDepths, goldDistances, isPunctuation, type ConlluSentence } from '../data/conllu.js';
import { encodeWords } from '../data/alignment.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { loadConfig } from '../util/config.js';
import { TopoprobeError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/fs.js';
import { CONFIG_FILE, measuredProbePath, readMeasureJson } from '../util/run-folder.js';

export const INSPECT_FILE = 'inspect.json';

export interface InspectOptions {
  model: string;
  /** A measure run folder (its probes are applied). */
  measure: string;
  text?: string;
  conllu?: string;
  /** With `conllu`: the sentence's 1-based number in the file, or its sent_id. */
  sentence?: string;
  /** Submodules to show (default: every submodule the measure run measured). */
  submodules?: number[];
  out: string;
  dataDir?: string;
  log: Logger;
}

export interface InspectResult {
  outDir: string;
  files: string[];
  submodules: number[];
}

/** A word is punctuation in typed text when it is made of punctuation characters only. */
const PUNCT_WORD = /^\p{P}+$/u;

/** Typed text as BERT splits it into words: each piece not starting with `##` begins a word. */
export function textWords(tokenizer: BertTokenizer, text: string): { words: string[]; pieces: string[]; pieceWord: number[] } {
  const pieces = tokenizer.tokenize(text);
  if (pieces.length === 0) throw new TopoprobeError(`--text "${text}" has no word pieces`);
  const words: string[] = [];
  const pieceWord: number[] = [];
  for (const piece of pieces) {
    if (piece.startsWith('##') && words.length > 0) words[words.length - 1] += piece.slice(2);
    else words.push(piece);
    pieceWord.push(words.length - 1);
  }
  return { words, pieces, pieceWord };
}

/** The sentence `which` (1-based number or sent_id) of a CoNLL-U file. */
export function pickSentence(path: string, which: string | undefined): ConlluSentence {
  if (which === undefined) throw new TopoprobeError('--conllu needs --sentence N (1-based number in the file, or a sent_id)');
  const sentences = readConllu(path);
  if (/^\d+$/.test(which)) {
    const n = Number(which);
    if (n < 1 || n > sentences.length) throw new TopoprobeError(`--sentence ${which}: ${path} has sentences 1..${sentences.length}`);
    return sentences[n - 1]!;
  }
  const found = sentences.find((s) => s.id === which);
  if (!found) throw new TopoprobeError(`--sentence ${which}: no sentence of ${path} has sent_id ${which} (or give its 1-based number)`);
  return found;
}

/**
 * The measure run's resolved config; a folder with measure.json but no config.yaml (a model card's copy,
 * models/mini) gets the defaults, which is what its measure run used unless it says otherwise.
 */
function readMeasureConfig(runDir: string, log: Logger): MeasureConfig {
  const path = join(resolve(runDir), CONFIG_FILE);
  if (existsSync(path)) return loadConfig(path, measureConfigSchema);
  log.info(`${runDir} has no ${CONFIG_FILE}: taking the default root_depth (1) for gold depths`);
  return measureConfigSchema.parse({});
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

export async function runInspect(opts: InspectOptions): Promise<InspectResult> {
  if ((opts.text === undefined) === (opts.conllu === undefined)) throw new TopoprobeError('give exactly one of --text and --conllu');
  const measured = readMeasureJson(opts.measure, '--measure');
  const measureConfig = { ...readMeasureConfig(opts.measure, opts.log), labels: measured.labels };
  const available = measured.rows.map((r) => r.submodule);
  const submodules = opts.submodules ?? available;
  submodules.forEach((s, i) => {
    if (!available.includes(s)) throw new TopoprobeError(`--submodules[${i}]: ${s} was not measured in ${opts.measure} (it has ${available.join(', ')})`);
  });
  const conllu = opts.conllu !== undefined ? pickSentence(opts.conllu, opts.sentence) : undefined;

  const { model, tokenizer } = await loadModel(opts.model, { dataDir: opts.dataDir });
  try {
    if (model.config.hidden_size !== measured.hidden_size) {
      throw new TopoprobeError(`--measure: its probes are for hidden size ${measured.hidden_size}, but ${opts.model} has ${model.config.hidden_size}`);
    }
    if (opts.model !== measured.model) opts.log.info(`the probes were trained on ${measured.model}${measured.reinitialized ? ' (reinitialised)' : ''}; applying them to ${opts.model}`);
    const maxLength = model.config.max_position_embeddings;

    // 1. The sentence.
    let sentence: InspectSentence;
    let ids: number[];
    if (conllu) {
      const forms = conllu.words.map((w) => w.form);
      const enc = encodeWords(tokenizer, forms, { maxLength, truncation: false });
      const real = enc.wordIndex.flatMap((w, p) => (w === null ? [] : [p]));
      const edges = minimumSpanningTree(goldDistances(conllu), conllu.words.map((w) => !isPunctuation(w)));
      sentence = {
        words: forms,
        pieces: real.map((p) => enc.tokens[p]!),
        pieceWord: real.map((p) => enc.wordIndex[p]!),
        punct: conllu.words.map((w) => isPunctuation(w)),
        gold: { depths: goldDepths(conllu, measureConfig.root_depth), distances: goldDistances(conllu), edges },
      };
      ids = enc.ids;
    } else {
      const split = textWords(tokenizer, opts.text!);
      const enc = tokenizer.assemble(split.pieces);
      if (enc.ids.length > maxLength) throw new TopoprobeError(`--text makes ${enc.ids.length} pieces, more than the model's ${maxLength} positions`);
      sentence = { words: split.words, pieces: split.pieces, pieceWord: split.pieceWord, punct: split.words.map((w) => PUNCT_WORD.test(w)) };
      ids = enc.ids;
    }
    // Real pieces sit between [CLS] and [SEP].
    const positions = sentence.pieces.map((_, k) => k + 1);

    // 2. One forward pass.
    const batch = padBatch([{ ids }], tokenizer.padId);
    const out = model.forward(batch, { hiddenStates: submodules, pool: false });
    const hidden = model.config.hidden_size;
    const states = new Map<number, Float32Array>();
    for (const sub of submodules) {
      const h = (await out.hiddenStates.get(sub)!.data()) as Float32Array;
      const rows = new Float32Array(positions.length * hidden);
      positions.forEach((p, k) => rows.set(h.subarray(p * hidden, (p + 1) * hidden), k * hidden));
      states.set(sub, rows);
    }
    tf.dispose([...out.hiddenStates.values(), out.lastHiddenState]);
    disposeBatch(batch);

    // 3. The probes.
    const goldPerPiece = sentence.gold ? sentence.pieceWord.map((w) => sentence.gold!.depths[w]!) : undefined;
    const results: Array<InspectSubmodule & { scores: Record<string, number | null> }> = [];
    const n = positions.length;
    for (const sub of submodules) {
      const x = tf.tensor2d(states.get(sub)!, [n, hidden]);
      const item: InspectSubmodule & { scores: Record<string, number | null> } = { submodule: sub, scores: {} };
      try {
        const depth = async (metric: 'x_ssp' | 'x_sp'): Promise<number[] | undefined> => {
          const path = measuredProbePath(opts.measure, sub, metric);
          if (!existsSync(path)) return undefined;
          const { probe } = DepthProbe.load(path);
          const pred = probe.predict(x);
          const values = Array.from(await pred.data()).map(round);
          tf.dispose([pred]);
          probe.dispose();
          return values;
        };
        const ssp = await depth('x_ssp');
        if (ssp) {
          const labels = Array.from(targetLabels(measureTarget('x_ssp', measureConfig.labels), ssp));
          item.ssp = { pred: ssp, labels };
          item.scores.x_ssp = round(mse(ssp, labels));
        }
        const sp = await depth('x_sp');
        if (sp) {
          item.sp = { pred: sp };
          item.scores.x_sp = goldPerPiece ? round(mse(sp, goldPerPiece)) : null;
        }
        const distancePath = measuredProbePath(opts.measure, sub, 'distance');
        if (existsSync(distancePath)) {
          const { probe } = DistanceProbe.load(distancePath);
          const pred = probe.predict(x);
          const words = mergeToWords(await pred.data(), n, sentence.pieceWord, sentence.words.length).map((row) => row.map(round));
          tf.dispose([pred]);
          probe.dispose();
          const keep = sentence.punct.map((p) => !p);
          const edges: Edge[] = minimumSpanningTree(words, keep);
          item.distance = { pred: words, edges };
          item.scores.uuas = sentence.gold ? uuas([{ pred: words, gold: sentence.gold.distances, exclude: sentence.punct }]).value : null;
          if (item.scores.uuas !== null && !Number.isFinite(item.scores.uuas)) item.scores.uuas = null;
        }
      } finally {
        x.dispose();
      }
      results.push(item);
    }
    if (results.every((r) => !r.ssp && !r.sp && !r.distance)) {
      throw new TopoprobeError(`--measure: ${opts.measure} has no probes for submodules ${submodules.join(', ')} (probes/sub-<i>-<metric>.safetensors)`);
    }

    // 4. The pictures and the numbers.
    const outDir = resolve(opts.out);
    mkdirSync(outDir, { recursive: true });
    const { files } = await plotInspect(sentence, results, outDir);
    writeJsonAtomic(join(outDir, INSPECT_FILE), {
      model: opts.model,
      measure: resolve(opts.measure),
      probes_trained_on: measured.model,
      labels: measureConfig.labels,
      root_depth: measureConfig.root_depth,
      sentence: { ...(conllu ? { conllu: resolve(opts.conllu!), sent_id: conllu.id ?? null, text: conllu.text ?? null } : { text: opts.text }), ...sentence },
      submodules: results,
    });
    files.push(join(outDir, INSPECT_FILE));
    return { outDir, files, submodules };
  } finally {
    model.dispose();
  }
}
