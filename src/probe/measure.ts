/**
 * `topoprobe measure`: X_sp, X_ssp and X_essp for every selected submodule of a model.
 *
 *   1. Read the sentences: UD EWT train/dev/test with gold depths (X_sp), and the paper's pool of
 *      acceptable CoLA, MRPC, RTE and STS-B sentences split into train/dev/test (X_ssp, X_essp).
 *   2. Encode every sentence once: one encoder forward per batch yields the hidden states of all selected
 *      submodules, cached as float16 on disk (the authors re-run BERT for every epoch of every layer).
 *   3. For each submodule, train one depth probe per metric on its cached states (src/probe/train.ts),
 *      pick the epoch by dev MSE and report the MSE on the test sentences; for X_sp also Spearman and root
 *      accuracy against the gold trees, as structural-probes reports them; with the gold trees also one
 *      distance probe (src/probe/distance.ts), scored by UUAS and distance Spearman.
 *   4. Write the run folder: the resolved config, measure.csv/json, the probes (safetensors), a plot (with
 *      another measure run, the random-encoder control, beside it when `control` names one), a log.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { MeasureConfig } from './config.js';
import { trainProbe, heldOutMse, predictDepths, type ProbeExample } from './train.js';
import { measureTarget } from './objective.js';
import { depthSpearman, distanceSpearman, rootAccuracy, uuas } from './metrics.js';
import { trainDistanceProbe, distanceLoss, predictWordDistances, type DistanceExample } from './distance.js';
import { plotMeasure, type PlotOptions } from './plot.js';
import { StateCache } from './cache.js';
import { scoredPositions, rowsAt } from './positions.js';
import { loadModel } from '../model/load.js';
import { BertModel } from '../model/bert.js';
import type { BertTokenizer } from '../tokenize/tokenizer.js';
import { readConllu, goldDepths, goldDistances, goldRootIndex, isPunctuation } from '../data/conllu.js';
import { probeSentencePool } from '../data/glue.js';
import { encodeWords, spreadWordValues } from '../data/alignment.js';
import { padBatch, disposeBatch } from '../data/batch.js';
import { dataDir as resolveDataDir } from '../data/paths.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { CONFIG_FILE, LOG_FILE, MEASURE_CSV_FILE, measuredProbePath, readMeasureJson, timestampedName, writeMeasureJson, type MeasureJson, type MeasureRow } from '../util/run-folder.js';
import { configToYaml } from '../util/config.js';
import { RunEvents, measureRowScalars } from '../util/run-events.js';

/** Depth given to [CLS], [SEP] and pads in the paper's mode, as in the authors' code. */
export const SPECIAL_DEPTH = 2;

type Split = 'train' | 'dev' | 'test';
const SPLITS: Split[] = ['train', 'dev', 'test'];

/** One encoded sentence and what its probes are scored on. */
interface Item {
  ids: number[];
  /** Scored positions (indices into the padded encoding). */
  positions: number[];
  /** Gold depth per scored position (X_sp only). */
  gold?: Float32Array;
  /** Word-level data (EWT): per padded position its word (-1 for specials), gold depth per word, root, punctuation. */
  words?: { pieceWord: number[]; gold: number[]; root: number; punct: boolean[] };
  /** Gold tree distances between the kept words, row-major (EWT, when the distance probe is measured). */
  distances?: Float32Array;
}

interface Dataset {
  name: 'ewt' | 'pool';
  splits: Record<Split, Item[]>;
  /** Length every sentence is padded to in the paper's mode (the longest of the whole set). */
  padTo: number;
  skipped: number;
  truncated: number;
}

export type { MeasureRow };

export interface MeasureResult {
  runDir: string;
  rows: MeasureRow[];
  encoderPasses: number;
}

export interface MeasureHooks {
  log: Logger;
  /** Progress of the two long phases. */
  onProgress?: (phase: 'encode' | 'probes', done: number, total: number) => void;
}

function capAndShuffle<T>(items: T[], seed: number, max?: number): T[] {
  const out = new Rng(seed).shuffle([...items]);
  return max !== undefined ? out.slice(0, max) : out;
}

/** Reads EWT and aligns words to pieces; gold depths per piece (specials 2). */
function readEwt(config: MeasureConfig, dir: string, tokenizer: BertTokenizer, maxLength: number, withDistances: boolean): Dataset {
  const ds: Dataset = { name: 'ewt', splits: { train: [], dev: [], test: [] }, padTo: 0, skipped: 0, truncated: 0 };
  for (const split of SPLITS) {
    const path = resolve(dir, config.data.ewt[split]);
    if (!existsSync(path)) {
      throw new TopoprobeError(`data.ewt.${split}: ${path} not found (set data.dir, --data-dir or TOPOPROBE_DATA_DIR)`);
    }
    const sentences = capAndShuffle(readConllu(path), config.seed, config.data.max_sentences);
    for (const s of sentences) {
      const forms = s.words.map((w) => w.form);
      const enc = encodeWords(tokenizer, forms, { maxLength: config.data.too_long === 'skip' ? undefined : maxLength });
      if (enc.ids.length > maxLength) {
        ds.skipped += 1;
        continue;
      }
      if (enc.wordsCut > 0) ds.truncated += 1;
      const kept = enc.wordSpans.length;
      const gold = goldDepths(s, config.root_depth).slice(0, kept);
      const perPiece = spreadWordValues(gold, enc.wordIndex, SPECIAL_DEPTH);
      const item: Item = { ids: enc.ids, positions: [], gold: Float32Array.from(perPiece) };
      const root = goldRootIndex(s);
      item.words = {
        pieceWord: enc.wordIndex.map((w) => (w === null ? -1 : w)),
        gold,
        root: root < kept ? root : -1,
        punct: s.words.slice(0, kept).map((w) => isPunctuation(w)),
      };
      if (withDistances) {
        const all = goldDistances(s);
        item.distances = new Float32Array(kept * kept);
        for (let i = 0; i < kept; i++) for (let j = 0; j < kept; j++) item.distances[i * kept + j] = all[i]![j]!;
      }
      ds.splits[split].push(item);
    }
  }
  return ds;
}

/** The paper's X_ssp pool, shuffled and split into train/dev/test. */
function readPool(config: MeasureConfig, dir: string, tokenizer: BertTokenizer, maxLength: number): Dataset {
  const ds: Dataset = { name: 'pool', splits: { train: [], dev: [], test: [] }, padTo: 0, skipped: 0, truncated: 0 };
  const pool = new Rng(config.seed).shuffle(probeSentencePool(dir).map((p) => p.text));
  const nTest = Math.round(pool.length * config.data.pool_test);
  const nDev = Math.round(pool.length * config.data.pool_dev);
  const parts: Record<Split, string[]> = { test: pool.slice(0, nTest), dev: pool.slice(nTest, nTest + nDev), train: pool.slice(nTest + nDev) };
  for (const split of SPLITS) {
    const texts = config.data.max_sentences !== undefined ? parts[split].slice(0, config.data.max_sentences) : parts[split];
    for (const text of texts) {
      const full = tokenizer.encode(text);
      if (full.ids.length > maxLength) {
        if (config.data.too_long === 'skip') {
          ds.skipped += 1;
          continue;
        }
        ds.truncated += 1;
      }
      const enc = full.ids.length > maxLength ? tokenizer.encode(text, undefined, { maxLength }) : full;
      if (enc.ids.length < 3) {
        ds.skipped += 1;
        continue;
      }
      ds.splits[split].push({ ids: enc.ids, positions: [] });
    }
  }
  return ds;
}

/** Fixes each item's scored positions (and paper-mode gold padding) once the padded length is known. */
function finishDataset(ds: Dataset, mode: MeasureConfig['mode']): void {
  const all = SPLITS.flatMap((s) => ds.splits[s]);
  ds.padTo = Math.max(0, ...all.map((i) => i.ids.length));
  for (const item of all) {
    item.positions = scoredPositions(item.ids.length, ds.padTo, mode);
    if (item.gold) {
      const g = new Float32Array(item.positions.length).fill(SPECIAL_DEPTH);
      item.positions.forEach((p, k) => {
        if (p < item.gold!.length) g[k] = item.gold![p]!;
      });
      item.gold = g;
    }
  }
}

/** One encoder pass over every sentence of `ds`, caching each selected submodule's scored states. */
async function encodeDataset(ds: Dataset, model: BertModel, padId: number, submodules: number[], cache: StateCache, config: MeasureConfig, tick: () => void): Promise<number> {
  let passes = 0;
  const hidden = model.config.hidden_size;
  for (const split of SPLITS) {
    const items = ds.splits[split];
    for (let i = 0; i < items.length; i += config.encode_batch_size) {
      const batchItems = items.slice(i, i + config.encode_batch_size);
      const batch = padBatch(batchItems.map((it) => ({ ids: it.ids })), padId, config.mode === 'paper' ? ds.padTo : 0);
      const out = model.forward(batch, { hiddenStates: submodules, pool: false });
      const width = batch.inputIds.shape[1];
      for (const sub of submodules) {
        const h = (await out.hiddenStates.get(sub)!.data()) as Float32Array;
        batchItems.forEach((it, b) => cache.append(`${ds.name}-${split}-${sub}`, rowsAt(h, hidden, width, b, it.positions)));
      }
      tf.dispose([...out.hiddenStates.values(), out.lastHiddenState]);
      disposeBatch(batch);
      passes += batchItems.length;
      tick();
    }
  }
  return passes;
}

function examplesFrom(cache: StateCache, key: string, items: Item[], hidden: number): ProbeExample[] {
  const states = cache.read(key);
  const out: ProbeExample[] = [];
  let at = 0;
  for (const it of items) {
    const n = it.positions.length;
    out.push({ states: states.subarray(at * hidden, (at + n) * hidden), n, gold: it.gold });
    at += n;
  }
  if (at * hidden !== states.length) throw new Error(`state cache ${key}: ${states.length / hidden} rows for ${at} positions`);
  return out;
}

/**
 * The distance probe's examples: the cached rows of each sentence's real word pieces (every scored
 * position in clean mode; the paper's mode also caches specials and pads, which are left out here).
 */
function distanceExamplesFrom(examples: readonly ProbeExample[], items: Item[], hidden: number): DistanceExample[] {
  return items.map((it, i) => {
    const w = it.words!;
    const rows = it.positions.flatMap((p, k) => ((w.pieceWord[p] ?? -1) >= 0 ? [k] : []));
    // Clean mode caches only real pieces: the rows are the example's own, no copy needed.
    let states = examples[i]!.states;
    if (rows.length !== it.positions.length) {
      states = new Float32Array(rows.length * hidden);
      rows.forEach((k, r) => states.set(examples[i]!.states.subarray(k * hidden, (k + 1) * hidden), r * hidden));
    }
    return { states, n: rows.length, pieceWord: Int32Array.from(rows.map((k) => w.pieceWord[it.positions[k]!]!)), words: w.gold.length, gold: it.distances };
  });
}

/** UUAS (punctuation left out of the trees) and distance Spearman of a distance probe's test predictions. */
function distanceScores(preds: number[][][], items: Item[]): { uuas: number; spearman: number } {
  const sentences = items.map((it, i) => {
    const m = it.words!.gold.length;
    const gold = Array.from({ length: m }, (_, a) => Array.from(it.distances!.subarray(a * m, (a + 1) * m)));
    return { pred: preds[i]!, gold, exclude: it.words!.punct };
  });
  return { uuas: uuas(sentences).value, spearman: distanceSpearman(sentences).value };
}

/** Word-level Spearman and root accuracy of an X_sp probe's test predictions. */
function wordLevel(preds: Float32Array[], items: Item[]): { spearman: number; rootAcc: number } {
  const sentences: Array<{ pred: number[]; gold: number[] }> = [];
  const roots: Array<{ pred: number[]; goldRoot: number; exclude: boolean[] }> = [];
  items.forEach((it, i) => {
    const w = it.words!;
    const sum = new Array<number>(w.gold.length).fill(0);
    const count = new Array<number>(w.gold.length).fill(0);
    it.positions.forEach((p, k) => {
      const word = w.pieceWord[p] ?? -1;
      if (word >= 0) {
        sum[word] += preds[i]![k]!;
        count[word] += 1;
      }
    });
    const pred = sum.map((s, j) => (count[j]! > 0 ? s / count[j]! : NaN));
    if (pred.some(Number.isNaN)) return;
    sentences.push({ pred, gold: w.gold });
    if (w.root >= 0) roots.push({ pred, goldRoot: w.root, exclude: w.punct });
  });
  return { spearman: depthSpearman(sentences).value, rootAcc: rootAccuracy(roots) };
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

const weightsLabel = (run: Pick<MeasureJson, 'model' | 'reinitialized'>, other?: Pick<MeasureJson, 'model'>): string =>
  run.reinitialized ? 'reinitialised' : other !== undefined && other.model !== run.model ? run.model : 'trained';

/**
 * The measure plot's title and labels for a run and, optionally, the run drawn beside it (its control):
 * "trained" / "reinitialised", the models' names when they differ, else the run folders' names.
 */
export function measurePlotOptions(run: Pick<MeasureJson, 'model' | 'reinitialized' | 'mode'>, control?: MeasureJson, folders?: { run: string; control: string }): PlotOptions {
  const title = `${run.model}${run.reinitialized ? ' (reinitialised)' : ''}: structural probes per submodule (${run.mode} mode)`;
  if (control === undefined) return { title };
  let labels = [weightsLabel(run, control), weightsLabel(control, run)];
  if (labels[0] === labels[1]) labels = folders && basename(folders.run) !== basename(folders.control) ? [basename(folders.run), basename(folders.control)] : ['this run', 'control'];
  return { title, label: labels[0], control: { rows: control.rows, label: labels[1]! } };
}

/** Redraws a measure run's plot (measure.svg/png), with another measure run beside it when given. */
export async function replotMeasure(runDir: string, controlDir?: string): Promise<string> {
  const run = readMeasureJson(runDir, '--plot');
  const control = controlDir !== undefined ? readMeasureJson(controlDir, '--control') : undefined;
  const files = await plotMeasure(run.rows, join(resolve(runDir), 'measure'), measurePlotOptions(run, control, controlDir !== undefined ? { run: resolve(runDir), control: resolve(controlDir) } : undefined));
  return files.svg;
}

export async function runMeasure(config: MeasureConfig, hooks: MeasureHooks, opts: { dataDir?: string; name?: string } = {}): Promise<MeasureResult> {
  const { log } = hooks;
  config = { ...config, distance: config.distance ?? config.metrics.includes('x_sp') };
  const control = config.control !== undefined ? readMeasureJson(config.control, 'control') : undefined;
  const dir = resolveDataDir(config.data.dir ?? opts.dataDir);
  const runName = config.name ?? opts.name ?? timestampedName('measure');
  const runDir = resolve(config.out_dir, runName);
  if (existsSync(runDir) && readdirSync(runDir).some((f) => f !== LOG_FILE)) {
    throw new TopoprobeError(`${runDir} already exists; choose another name (config key "name") or remove it`);
  }

  const loaded = await loadModel(config.model, { dataDir: dir });
  const { tokenizer } = loaded;
  let model = loaded.model;
  if (config.reinitialize) {
    model = BertModel.init(loaded.model.config, { seed: config.seed });
    loaded.model.dispose();
    log.info(`reinitialize: measuring ${config.model}'s architecture with fresh weights (seed ${config.seed}), not its trained ones`);
  }
  const n = model.config.num_hidden_layers;
  if (config.submodules !== 'all') {
    config.submodules.forEach((s, i) => {
      if (s > n) {
        model.dispose();
        throw new TopoprobeError(`submodules[${i}]: ${s} does not exist (this model has submodules 0..${n}: embeddings and ${n} layers)`);
      }
    });
  }
  if (config.data.max_length > model.config.max_position_embeddings) {
    model.dispose();
    throw new TopoprobeError(`data.max_length: ${config.data.max_length} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`);
  }
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, CONFIG_FILE), configToYaml(config));
  const cacheDir = join(runDir, 'cache');
  const cache = new StateCache(cacheDir, model.config.hidden_size);
  try {
    const submodules = config.submodules === 'all' ? Array.from({ length: n + 1 }, (_, i) => i) : [...new Set(config.submodules)].sort((a, b) => a - b);
    const maxLength = config.data.max_length;
    const wantSp = config.metrics.includes('x_sp');
    const wantDistance = config.distance!;
    const wantPool = config.metrics.includes('x_ssp') || config.metrics.includes('x_essp');
    const datasets: Dataset[] = [];
    if (wantSp || wantDistance) datasets.push(readEwt(config, dir, tokenizer, maxLength, wantDistance));
    if (wantPool) datasets.push(readPool(config, dir, tokenizer, maxLength));
    for (const ds of datasets) {
      finishDataset(ds, config.mode);
      const counts = SPLITS.map((s) => `${s} ${ds.splits[s].length}`).join(', ');
      log.info({ dataset: ds.name, skipped: ds.skipped, truncated: ds.truncated }, `${ds.name}: ${counts} sentences; ${ds.skipped} skipped and ${ds.truncated} truncated (longer than ${maxLength} pieces)`);
      for (const s of SPLITS) {
        if (ds.splits[s].length === 0) throw new TopoprobeError(`${ds.name} ${s} split is empty (check data.max_sentences, data.max_length and the data files)`);
      }
    }

    // 2. One encoder pass over every sentence.
    const totalSentences = datasets.reduce((s, ds) => s + SPLITS.reduce((t, sp) => t + ds.splits[sp].length, 0), 0);
    let encoded = 0;
    let passes = 0;
    for (const ds of datasets) {
      passes += await encodeDataset(ds, model, tokenizer.padId, submodules, cache, config, () => {
        encoded = Math.min(totalSentences, encoded + config.encode_batch_size);
        hooks.onProgress?.('encode', encoded, totalSentences);
      });
    }
    cache.finish();
    log.info(`encoded ${passes} sentences once each (${submodules.length} submodules cached as float16)`);

    // 3. Probes per submodule and metric.
    const hidden = model.config.hidden_size;
    const ewt = datasets.find((d) => d.name === 'ewt');
    const pool = datasets.find((d) => d.name === 'pool');
    const rows: MeasureRow[] = [];
    mkdirSync(dirname(measuredProbePath(runDir, 0, 'x_ssp')), { recursive: true });
    const jobs = submodules.length * (config.metrics.length + (wantDistance ? 1 : 0));
    let done = 0;
    for (const sub of submodules) {
      const row: MeasureRow = {
        submodule: sub, x_sp: null, x_ssp: null, x_essp: null, spearman: null, root_acc: null, uuas: null, distance_spearman: null,
        sp_train_sentences: ewt?.splits.train.length ?? 0, sp_test_sentences: ewt?.splits.test.length ?? 0, sp_test_tokens: 0,
        ssp_train_sentences: pool?.splits.train.length ?? 0, ssp_test_sentences: pool?.splits.test.length ?? 0, ssp_test_tokens: 0,
      };
      for (const metric of config.metrics) {
        const ds = metric === 'x_sp' ? ewt! : pool!;
        const [train, dev, test] = SPLITS.map((s) => examplesFrom(cache, `${ds.name}-${s}-${sub}`, ds.splits[s], hidden)) as [ProbeExample[], ProbeExample[], ProbeExample[]];
        const target = measureTarget(metric, config.labels);
        const trained = await trainProbe(target, train, dev, {
          hidden, rank: config.probe.rank, initRange: config.probe.init_range, lr: config.optimizer.lr,
          epochs: config.epochs, batchSize: config.batch_size, seed: config.seed + sub,
          onEpoch: ({ epoch, trainLoss, devMse }) => log.debug({ submodule: sub, metric, epoch, trainLoss, devMse }, `submodule ${sub} ${metric} epoch ${epoch}: train ${trainLoss.toFixed(4)} dev ${devMse.toFixed(4)}`),
        });
        const scored = await heldOutMse(trained.probe, test, target);
        row[metric] = finite(scored.mse);
        if (metric === 'x_sp') {
          row.sp_test_tokens = scored.tokens;
          const wl = wordLevel(await predictDepths(trained.probe, test), ds.splits.test);
          row.spearman = finite(wl.spearman);
          row.root_acc = finite(wl.rootAcc);
        } else {
          row.ssp_test_tokens = scored.tokens;
        }
        await trained.probe.save(measuredProbePath(runDir, sub, metric), {
          submodule: String(sub), metric, mode: config.mode, model: config.model, best_epoch: String(trained.bestEpoch), test_mse: String(scored.mse),
        });
        trained.probe.dispose();
        log.info({ submodule: sub, metric, mse: scored.mse, bestEpoch: trained.bestEpoch }, `submodule ${sub}: ${metric} = ${scored.mse.toFixed(4)} (epoch ${trained.bestEpoch})`);
        hooks.onProgress?.('probes', ++done, jobs);
      }
      if (wantDistance) {
        const [train, dev, test] = SPLITS.map((s) => distanceExamplesFrom(examplesFrom(cache, `ewt-${s}-${sub}`, ewt!.splits[s], hidden), ewt!.splits[s], hidden)) as [DistanceExample[], DistanceExample[], DistanceExample[]];
        const trained = await trainDistanceProbe(train, dev, {
          hidden, rank: config.probe.rank, initRange: config.probe.init_range, lr: config.optimizer.lr,
          epochs: config.epochs, batchSize: config.batch_size, seed: config.seed + sub,
          onEpoch: ({ epoch, trainLoss, devMse }) => log.debug({ submodule: sub, metric: 'distance', epoch, trainLoss, devLoss: devMse }, `submodule ${sub} distance epoch ${epoch}: train ${trainLoss.toFixed(4)} dev ${devMse.toFixed(4)}`),
        });
        const testLoss = await distanceLoss(trained.probe, test);
        const scores = distanceScores(await predictWordDistances(trained.probe, test), ewt!.splits.test);
        row.uuas = finite(scores.uuas);
        row.distance_spearman = finite(scores.spearman);
        if (!wantSp) row.sp_test_tokens = test.reduce((a, e) => a + e.n, 0);
        await trained.probe.save(measuredProbePath(runDir, sub, 'distance'), {
          submodule: String(sub), metric: 'distance', mode: config.mode, model: config.model, best_epoch: String(trained.bestEpoch), test_loss: String(testLoss),
        });
        trained.probe.dispose();
        log.info({ submodule: sub, metric: 'distance', loss: testLoss, uuas: scores.uuas, distanceSpearman: scores.spearman, bestEpoch: trained.bestEpoch }, `submodule ${sub}: distance probe UUAS ${scores.uuas.toFixed(4)}, Spearman ${scores.spearman.toFixed(4)} (L1 ${testLoss.toFixed(4)}, epoch ${trained.bestEpoch})`);
        hooks.onProgress?.('probes', ++done, jobs);
      }
      rows.push(row);
    }

    // 4. Results.
    const columns = Object.keys(rows[0]!) as Array<keyof MeasureRow>;
    const csv = [columns.join(','), ...rows.map((r) => columns.map((c) => (r[c] === null ? '' : String(r[c]))).join(','))].join('\n') + '\n';
    writeFileAtomic(join(runDir, MEASURE_CSV_FILE), csv);
    writeMeasureJson(runDir, {
      model: config.model,
      reinitialized: config.reinitialize,
      mode: config.mode,
      labels: config.labels,
      num_hidden_layers: n,
      hidden_size: hidden,
      encoder_passes: passes,
      datasets: Object.fromEntries(datasets.map((d) => [d.name, { train: d.splits.train.length, dev: d.splits.dev.length, test: d.splits.test.length, pad_to: d.padTo, skipped: d.skipped, truncated: d.truncated }])),
      rows,
    });
    // TensorBoard: each score column over the submodules (step = submodule).
    const events = RunEvents.open(runDir, configToYaml(config));
    try {
      for (const r of rows) events.scalars(measureRowScalars(r), r.submodule);
    } finally {
      events.close();
    }
    await plotMeasure(rows, join(runDir, 'measure'), measurePlotOptions({ model: config.model, reinitialized: config.reinitialize, mode: config.mode }, control, config.control !== undefined ? { run: runDir, control: resolve(config.control) } : undefined));
    log.info(`results in ${runDir}`);
    return { runDir, rows, encoderPasses: passes };
  } finally {
    model.dispose();
    cache.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
