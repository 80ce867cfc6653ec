/**
 * A Hugging Face model folder: `config.json` plus safetensors weights (one `model.safetensors`, or
 * shards listed by `model.safetensors.index.json`).
 *
 * Loading maps the names a checkpoint may use to the canonical ones of {@link bertParameterShapes}
 * (today's BertModel names, no prefix), accepting the legacy layout the hub still serves for
 * bert-base/large-uncased (`bert.` prefix, LayerNorm `gamma`/`beta`, the `cls.*` pretraining heads,
 * the `position_ids` buffer), and checks every tensor against the config. Saving writes what
 * transformers' `save_pretrained` writes, so the folder loads in Python too.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { bertParameterShapes, numLabels, HEAD_PARAMETERS, type BertConfig, readBertConfig, type WeightMap } from './config.js';
import { openSafetensors, writeSafetensors, type Float32Tensor, type SafetensorsFile, type WritableDtype } from './safetensors.js';
import { TopoprobeError } from '../util/errors.js';
import { readText, writeJsonAtomic } from '../util/fs.js';
import { getLogger } from '../util/log.js';
import { MLM_HEAD_PREFIX, mlmHeadShapes } from './mlm-head.js';

export type { Float32Tensor } from './safetensors.js';

export type { WeightMap };

export const CONFIG_FILE = 'config.json';
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

/** Weight files of other frameworks that topoprobe cannot read. */
const FOREIGN_WEIGHT_FILES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5', 'tf_model.h5.index.json', 'flax_model.msgpack', 'model.ckpt.index'];

export interface LoadCheckpointOptions {
  /** Also load the sequence-classification head (`classifier.*`) when the checkpoint has one. */
  head?: boolean;
  /** Also return the masked-LM head (`cls.predictions.*`, see mlm-head.ts) when the checkpoint has one. */
  mlmHead?: boolean;
}

export interface LoadedCheckpoint {
  config: BertConfig;
  /** Canonical name -> tensor, in `named_parameters()` order. */
  weights: WeightMap;
  /** Whether `classifier.*` came from the checkpoint (false: the caller initialises a fresh head). */
  headLoaded: boolean;
  /** The masked-LM head's tensors under their checkpoint names (only with `mlmHead`; empty when absent). */
  mlmHead: WeightMap;
  /** Names, as stored, of the tensors that were dropped (pretraining heads, buffers, an unrequested head). */
  ignored: string[];
  /** The weight files read (absolute paths). */
  sourceFiles: string[];
}

/** How a stored tensor name relates to the model. */
type NameKind = { kind: 'param'; name: string } | { kind: 'pretraining-head' } | { kind: 'buffer' };

/**
 * Maps a stored name to a canonical one: strips a `bert.` prefix and renames LayerNorm `gamma`/`beta`
 * to `weight`/`bias` (TF-era names); recognises the `cls.*` MLM/NSP heads and the non-parameter
 * `position_ids`/`token_type_ids` buffers.
 */
export function canonicalName(stored: string): NameKind {
  if (stored.startsWith('cls.')) return { kind: 'pretraining-head' };
  let name = stored.startsWith('bert.') ? stored.slice('bert.'.length) : stored;
  if (name === 'embeddings.position_ids' || name === 'embeddings.token_type_ids') return { kind: 'buffer' };
  name = name.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
  return { kind: 'param', name };
}

/**
 * The config fields that give each dimension of a parameter's shape, e.g. `["vocab_size",
 * "hidden_size"]` for the word embeddings; used to explain shape mismatches.
 */
export function shapeFields(name: string): string[] {
  if (name === 'embeddings.word_embeddings.weight') return ['vocab_size', 'hidden_size'];
  if (name === 'embeddings.position_embeddings.weight') return ['max_position_embeddings', 'hidden_size'];
  if (name === 'embeddings.token_type_embeddings.weight') return ['type_vocab_size', 'hidden_size'];
  if (name === 'classifier.weight') return ['num_labels', 'hidden_size'];
  if (name === 'classifier.bias') return ['num_labels'];
  if (/\.intermediate\.dense\.weight$/.test(name)) return ['intermediate_size', 'hidden_size'];
  if (/\.intermediate\.dense\.bias$/.test(name)) return ['intermediate_size'];
  if (/^encoder\.layer\.\d+\.output\.dense\.weight$/.test(name)) return ['hidden_size', 'intermediate_size'];
  if (/\.weight$/.test(name) && !/LayerNorm/.test(name)) return ['hidden_size', 'hidden_size'];
  return ['hidden_size'];
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function listNames(names: readonly string[], max = 20): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown}, ... (${names.length - max} more)` : shown;
}

/** Where each stored tensor lives: stored name -> the opened file holding it. */
type TensorSources = Map<string, SafetensorsFile>;

function checkFolder(dir: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new TopoprobeError(`${abs}: model folder not found`);
  if (!statSync(abs).isDirectory()) {
    throw new TopoprobeError(`${abs}: is a file; pass the model folder that holds ${CONFIG_FILE} and ${SAFETENSORS_FILE}`);
  }
  return abs;
}

function conversionHelp(dir: string): string {
  return (
    'Convert it to safetensors once, in Python:\n' +
    `  from transformers import BertModel; BertModel.from_pretrained(${JSON.stringify(dir)}).save_pretrained(${JSON.stringify(dir)}, safe_serialization=True)\n` +
    '(use BertForSequenceClassification to keep a classifier head), or run the `convert.py` script of the safetensors project ' +
    '(https://github.com/huggingface/safetensors/blob/main/bindings/python/convert.py). ' +
    'On the hub, a "safetensors" pull request of the repo (revision refs/pr/N) often has converted weights.'
  );
}

/** Opens the weight files of a folder: the single file, or every shard of the index. */
function openWeights(dir: string): { sources: TensorSources; files: string[] } {
  const single = join(dir, SAFETENSORS_FILE);
  if (existsSync(single)) {
    const file = openSafetensors(single);
    return { sources: new Map(file.names().map((n) => [n, file])), files: [single] };
  }
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (existsSync(indexPath)) return openSharded(dir, indexPath);
  const foreign = FOREIGN_WEIGHT_FILES.filter((f) => existsSync(join(dir, f)));
  if (foreign.length > 0) {
    throw new TopoprobeError(
      `${dir}: has ${foreign.join(', ')} but no ${SAFETENSORS_FILE}; topoprobe reads safetensors weights only. ${conversionHelp(dir)}`,
    );
  }
  throw new TopoprobeError(`${dir}: no weights found (looked for ${SAFETENSORS_FILE} and ${SAFETENSORS_INDEX_FILE})`);
}

/**
 * Reads a sharded checkpoint's `model.safetensors.index.json`: shard file -> the tensors it holds.
 * Shard names must be relative paths inside the folder.
 */
export function readSafetensorsIndex(indexPath: string): Map<string, string[]> {
  const text = readText(indexPath, 'checkpoint index');
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (err) {
    throw new TopoprobeError(`${indexPath}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new TopoprobeError(`${indexPath}: no "weight_map" object (tensor name -> shard file)`);
  }
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '' || isAbsolute(shard) || normalize(shard).split(/[\\/]/).includes('..')) {
      throw new TopoprobeError(`${indexPath}: weight_map entry "${tensor}" names an invalid shard file ${JSON.stringify(shard)}`);
    }
    const names = byShard.get(shard) ?? [];
    names.push(tensor);
    byShard.set(shard, names);
  }
  return byShard;
}

/** Opens the shards of a sharded checkpoint. */
function openSharded(dir: string, indexPath: string): { sources: TensorSources; files: string[] } {
  const byShard = readSafetensorsIndex(indexPath);
  const sources: TensorSources = new Map();
  const files: string[] = [];
  for (const [shard, tensors] of [...byShard].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const path = join(dir, shard);
    if (!existsSync(path)) {
      throw new TopoprobeError(`${indexPath}: shard ${shard} (holding ${tensors.length} tensors, e.g. "${tensors[0]}") is missing: ${path} not found`);
    }
    const file = openSafetensors(path);
    for (const t of tensors) {
      if (!file.has(t)) throw new TopoprobeError(`${indexPath}: tensor "${t}" is mapped to ${shard}, but ${path} has no such tensor`);
      sources.set(t, file);
    }
    files.push(path);
  }
  return { sources, files };
}

/**
 * Loads a model folder: `config.json` and its safetensors weights, under canonical names, checked
 * against the config (every parameter present, with the expected shape; nothing unexpected).
 */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  const log = getLogger();
  const folder = checkFolder(dir);
  const configPath = join(folder, CONFIG_FILE);
  if (!existsSync(configPath)) throw new TopoprobeError(`${configPath}: not found; ${folder} is not a Hugging Face model folder`);
  const config = readBertConfig(configPath);
  const { sources, files } = openWeights(folder);
  const fileList = files.join(', ');

  // Sort stored names into parameters (canonical name -> stored name) and dropped tensors.
  const stored = new Map<string, string>();
  const pretrainingHead: string[] = [];
  const mlmNames = new Map<string, string>(); // head parameter -> stored name
  const buffers: string[] = [];
  const unusedHead: string[] = [];
  for (const name of sources.keys()) {
    const mapped = canonicalName(name);
    if (mapped.kind === 'pretraining-head') {
      const headName = name.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
      if (opts.mlmHead && name.startsWith(MLM_HEAD_PREFIX) && mlmHeadShapes(config).has(headName)) mlmNames.set(headName, name);
      else pretrainingHead.push(name);
    } else if (mapped.kind === 'buffer') buffers.push(name);
    else if (!opts.head && mapped.name.startsWith('classifier.')) unusedHead.push(name);
    else {
      const previous = stored.get(mapped.name);
      if (previous !== undefined) {
        throw new TopoprobeError(`${fileList}: tensors "${previous}" and "${name}" both map to parameter "${mapped.name}"`);
      }
      stored.set(mapped.name, name);
    }
  }
  if (pretrainingHead.length > 0 && !opts.mlmHead) {
    log.info(`${folder}: ignored ${pretrainingHead.length} tensors of the pretraining heads (cls.*: masked-LM and next-sentence prediction), which only pretraining uses`);
  }
  if (buffers.length > 0) log.debug(`${folder}: ignored buffer(s) ${buffers.join(', ')} (not parameters)`);
  if (unusedHead.length > 0) {
    log.info(`${folder}: ignored the sequence-classification head (${unusedHead.join(', ')}) because no head was requested`);
  }

  const expected = bertParameterShapes(config, { head: opts.head === true });
  const unexpected = [...stored].filter(([canonical]) => !expected.has(canonical)).map(([, name]) => name);
  if (unexpected.length > 0) {
    const deeper = unexpected.some((n) => {
      const m = /encoder\.layer\.(\d+)\./.exec(n);
      return m !== null && Number(m[1]) >= config.num_hidden_layers;
    });
    throw new TopoprobeError(
      `${fileList}: ${unexpected.length} unexpected tensor(s) for a BERT model: ${listNames(unexpected)}` +
        (deeper ? ` (config.json has num_hidden_layers = ${config.num_hidden_layers}; does it belong to these weights?)` : ''),
    );
  }

  const headNames = HEAD_PARAMETERS.filter((n) => stored.has(n));
  const headLoaded = opts.head === true && headNames.length > 0;
  if (opts.head && headNames.length > 0 && headNames.length < HEAD_PARAMETERS.length) {
    const missing = HEAD_PARAMETERS.filter((n) => !stored.has(n));
    throw new TopoprobeError(`${fileList}: the classifier head is incomplete: has ${headNames.join(', ')} but not ${missing.join(', ')}`);
  }
  const missing = [...expected.keys()].filter((n) => !stored.has(n) && !(HEAD_PARAMETERS as readonly string[]).includes(n));
  if (missing.length > 0) {
    const layersPresent = new Set([...stored.keys()].map((n) => /^encoder\.layer\.(\d+)\./.exec(n)?.[1]).filter((l) => l !== undefined));
    const fewerLayers = layersPresent.size > 0 && layersPresent.size < config.num_hidden_layers;
    throw new TopoprobeError(
      `${fileList}: ${missing.length} required tensor(s) missing: ${listNames(missing)}` +
        (fewerLayers ? ` (the weights have ${layersPresent.size} encoder layers but ${configPath} has num_hidden_layers = ${config.num_hidden_layers}; does it belong to these weights?)` : ''),
    );
  }

  const weights: WeightMap = new Map();
  for (const [canonical, shape] of expected) {
    const name = stored.get(canonical);
    if (name === undefined) continue; // a head the checkpoint does not have
    const file = sources.get(name)!;
    const actual = file.info(name).shape;
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
      const fields = shapeFields(canonical);
      const why = canonical.startsWith('classifier.')
        ? ` (num_labels = ${numLabels(config)}, hidden_size = ${config.hidden_size} in ${configPath})`
        : ` (${fields.map((f) => `${f} = ${String(config[f as keyof BertConfig])}`).join(', ')} in ${configPath})`;
      throw new TopoprobeError(`${file.source}: tensor "${name}" has shape ${fmt(actual)}, expected ${fmt(shape)}${why}`);
    }
    weights.set(canonical, file.readFloat32(name));
  }
  const mlmHead: WeightMap = new Map();
  for (const [headName, name] of mlmNames) mlmHead.set(headName, sources.get(name)!.readFloat32(name));
  log.debug(`${folder}: loaded ${weights.size} tensors from ${files.length} file(s)${opts.head ? (headLoaded ? ', head included' : ', no head in checkpoint') : ''}`);
  return { config, weights, headLoaded, mlmHead, ignored: [...pretrainingHead, ...buffers, ...unusedHead], sourceFiles: files };
}

export interface SaveCheckpointOptions {
  /** The stored dtype of the weights (default F32). */
  dtype?: WritableDtype;
  /** Extra `__metadata__` entries (`format` is always "pt", which transformers requires). */
  metadata?: Record<string, string>;
  /** A masked-LM head to store with the encoder (`cls.predictions.*`; the model becomes BertForMaskedLM). */
  mlmHead?: ReadonlyMap<string, Float32Tensor>;
}

const TORCH_DTYPE: Record<WritableDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * Saves a model folder the way transformers' `save_pretrained` does: `model.safetensors` (metadata
 * `format: pt`) and `config.json`, each written atomically, weights first. With a head
 * (`classifier.*` among the weights) the encoder's names get the `bert.` prefix and `architectures`
 * is BertForSequenceClassification; without, names are unprefixed and it is BertModel.
 */
export function saveCheckpoint(
  dir: string,
  config: BertConfig,
  weights: ReadonlyMap<string, Float32Tensor>,
  opts: SaveCheckpointOptions = {},
): { configPath: string; weightsPath: string } {
  const folder = resolve(dir);
  const hasHead = HEAD_PARAMETERS.some((n) => weights.has(n));
  const expected = bertParameterShapes(config, { head: hasHead });
  const missing = [...expected.keys()].filter((n) => !weights.has(n));
  const extra = [...weights.keys()].filter((n) => !expected.has(n));
  if (missing.length > 0 || extra.length > 0) {
    throw new TopoprobeError(
      `${folder}: cannot save: the weights do not match the config` +
        (missing.length ? `; missing ${listNames(missing)}` : '') +
        (extra.length ? `; unexpected ${listNames(extra)}` : ''),
    );
  }
  const mlm = opts.mlmHead;
  if (mlm && hasHead) throw new TopoprobeError(`${folder}: cannot save both a classifier and a masked-LM head`);
  const mlmShapes = mlmHeadShapes(config);
  if (mlm) {
    const missingHead = [...mlmShapes.keys()].filter((n) => !mlm.has(n));
    const extraHead = [...mlm.keys()].filter((n) => !mlmShapes.has(n));
    if (missingHead.length > 0 || extraHead.length > 0) {
      throw new TopoprobeError(`${folder}: cannot save the masked-LM head` + (missingHead.length ? `; missing ${listNames(missingHead)}` : '') + (extraHead.length ? `; unexpected ${listNames(extraHead)}` : ''));
    }
  }
  const prefixed = hasHead || mlm !== undefined;
  const entries: Array<[string, number[], Float32Tensor]> = [
    ...[...expected].map(([name, shape]): [string, number[], Float32Tensor] => [name, shape, weights.get(name)!]),
    ...(mlm ? [...mlmShapes].map(([name, shape]): [string, number[], Float32Tensor] => [name, shape, mlm.get(name)!]) : []),
  ];
  const tensors = entries.map(([name, shape, t]) => {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new TopoprobeError(`${folder}: cannot save tensor "${name}": shape ${fmt(t.shape)}, expected ${fmt(shape)} from the config`);
    }
    const stored = prefixed && !name.startsWith('classifier.') && !name.startsWith(MLM_HEAD_PREFIX) ? `bert.${name}` : name;
    return { name: stored, shape: t.shape, data: t.data };
  });
  const dtype = opts.dtype ?? 'F32';
  const weightsPath = join(folder, SAFETENSORS_FILE);
  writeSafetensors(weightsPath, tensors, { dtype, metadata: { ...opts.metadata, format: 'pt' } });

  const out: Record<string, unknown> = {
    ...config,
    model_type: 'bert',
    architectures: [hasHead ? 'BertForSequenceClassification' : mlm ? 'BertForMaskedLM' : 'BertModel'],
    torch_dtype: TORCH_DTYPE[dtype],
  };
  if (hasHead && !config.id2label) {
    // What transformers writes for a head: label names rather than num_labels.
    const n = numLabels(config);
    out.id2label = Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), `LABEL_${i}`]));
    out.label2id = Object.fromEntries(Array.from({ length: n }, (_, i) => [`LABEL_${i}`, i]));
  }
  const configPath = join(folder, CONFIG_FILE);
  writeJsonAtomic(configPath, out);
  return { configPath, weightsPath };
}

