import { expect } from 'chai';
import { Writable } from 'node:stream';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { bertParameterShapes, parseBertConfig, type BertConfig } from '../src/model/config.js';
import { loadCheckpoint, saveCheckpoint, type WeightMap } from '../src/model/checkpoint.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, openSafetensors, writeSafetensors } from '../src/model/safetensors.js';
import { DepthProbe } from '../src/probe/probe.js';
import { AdamW } from '../src/train/optimizer.js';
import { getLogger, setLogger } from '../src/util/log.js';
import { expectError } from './helpers.js';

const TINY = {
  model_type: 'bert',
  vocab_size: 50,
  hidden_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 16,
  max_position_embeddings: 16,
  num_labels: 3,
};
const config: BertConfig = parseBertConfig(TINY);

/** A small deterministic generator (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomWeights(head: boolean, seed = 1): WeightMap {
  const next = rng(seed);
  const weights: WeightMap = new Map();
  for (const [name, shape] of bertParameterShapes(config, { head })) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (next() - 0.5) * 0.2;
    weights.set(name, { shape, data });
  }
  return weights;
}

/** A tensor of a hand-assembled file. */
interface Raw {
  name: string;
  dtype: 'F32' | 'I64';
  shape: number[];
  bytes: Uint8Array;
}

const f32 = (name: string, shape: number[], data: Float32Array): Raw => ({ name, dtype: 'F32', shape, bytes: new Uint8Array(data.buffer.slice(0)) });

/** Assembles a safetensors file by hand (header not padded, tensors in the order given). */
function assemble(tensors: Raw[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    offset += t.bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.byteLength;
  }
  return out;
}

/** The name the legacy hub layout uses: `bert.` prefix and LayerNorm gamma/beta. */
function legacyName(canonical: string): string {
  if (canonical.startsWith('classifier.')) return canonical;
  return `bert.${canonical}`.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
}

/** The tensors of bert-base-uncased's model.safetensors as the hub serves it, shrunk to the tiny config. */
function legacyTensors(weights: WeightMap): Raw[] {
  const H = config.hidden_size;
  const out: Raw[] = [...weights].map(([name, t]) => f32(legacyName(name), t.shape, t.data));
  const positions = new BigInt64Array(config.max_position_embeddings).map((_, i) => BigInt(i));
  out.push({ name: 'bert.embeddings.position_ids', dtype: 'I64', shape: [1, config.max_position_embeddings], bytes: new Uint8Array(positions.buffer) });
  out.push(f32('cls.predictions.bias', [config.vocab_size], new Float32Array(config.vocab_size).fill(0.5)));
  out.push(f32('cls.predictions.transform.dense.weight', [H, H], new Float32Array(H * H)));
  out.push(f32('cls.predictions.transform.dense.bias', [H], new Float32Array(H)));
  out.push(f32('cls.predictions.transform.LayerNorm.gamma', [H], new Float32Array(H).fill(1)));
  out.push(f32('cls.predictions.transform.LayerNorm.beta', [H], new Float32Array(H)));
  out.push(f32('cls.seq_relationship.weight', [2, H], new Float32Array(2 * H)));
  out.push(f32('cls.seq_relationship.bias', [2], new Float32Array(2)));
  return out.reverse(); // any order in the file
}

function writeFolder(dir: string, tensors: Raw[], cfg: object = TINY): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  writeFileSync(join(dir, 'model.safetensors'), assemble(tensors));
  return dir;
}

function expectSameWeights(actual: WeightMap, expected: WeightMap, round: (x: number) => number = (x) => x): void {
  expect([...actual.keys()]).to.deep.equal([...expected.keys()]);
  for (const [name, t] of expected) {
    const got = actual.get(name)!;
    expect(got.shape, name).to.deep.equal(t.shape);
    for (let i = 0; i < t.data.length; i++) {
      if (got.data[i] !== round(t.data[i]!)) expect.fail(`${name}[${i}]: ${got.data[i]} !== ${round(t.data[i]!)}`);
    }
  }
}

/** Captures log records written while `fn` runs. */
function captureLogs<T>(fn: () => T): { result: T; records: Array<{ level: number; msg: string }> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const previous = getLogger();
  setLogger(pino({ level: 'debug' }, sink));
  try {
    const result = fn();
    return { result, records: lines.map((l) => JSON.parse(l) as { level: number; msg: string }) };
  } finally {
    setLogger(previous);
  }
}

describe('checkpoint', () => {
  let root: string;
  let n = 0;
  const fresh = (): string => join(root, `case-${n++}`);
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'topoprobe-checkpoint-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('loading the legacy hub layout', () => {
    it('maps bert.-prefixed gamma/beta names to canonical ones, exactly', () => {
      const weights = randomWeights(false);
      const dir = writeFolder(fresh(), legacyTensors(weights));
      const { result, records } = captureLogs(() => loadCheckpoint(dir));
      expectSameWeights(result.weights, weights);
      expect(result.headLoaded).to.equal(false);
      expect(result.config.hidden_size).to.equal(8);
      expect(result.sourceFiles).to.deep.equal([join(dir, 'model.safetensors')]);
      expect(result.ignored).to.have.members([
        'bert.embeddings.position_ids',
        'cls.predictions.bias',
        'cls.predictions.transform.dense.weight',
        'cls.predictions.transform.dense.bias',
        'cls.predictions.transform.LayerNorm.gamma',
        'cls.predictions.transform.LayerNorm.beta',
        'cls.seq_relationship.weight',
        'cls.seq_relationship.bias',
      ]);
      const info = records.filter((r) => r.level === 30);
      expect(info).to.have.length(1);
      expect(info[0]!.msg).to.include('ignored 7 tensors').and.include('cls.*');
    });

    it('without a classifier in the checkpoint, a requested head is reported as not loaded', () => {
      const weights = randomWeights(false);
      const dir = writeFolder(fresh(), legacyTensors(weights));
      const loaded = loadCheckpoint(dir, { head: true });
      expect(loaded.headLoaded).to.equal(false);
      expect(loaded.weights.has('classifier.weight')).to.equal(false);
      expectSameWeights(loaded.weights, weights);
    });

    it('keeps classifier.* when a head is requested and ignores it otherwise', () => {
      const weights = randomWeights(true);
      const dir = writeFolder(fresh(), legacyTensors(weights));
      const withHead = loadCheckpoint(dir, { head: true });
      expect(withHead.headLoaded).to.equal(true);
      expectSameWeights(withHead.weights, weights);
      const { result, records } = captureLogs(() => loadCheckpoint(dir));
      expect(result.weights.has('classifier.weight')).to.equal(false);
      expect(result.ignored).to.include.members(['classifier.weight', 'classifier.bias']);
      expect(records.some((r) => r.level === 30 && r.msg.includes('classifier.weight'))).to.equal(true);
    });

    it('accepts unprefixed, current names too', () => {
      const weights = randomWeights(false);
      const dir = writeFolder(fresh(), [...weights].map(([name, t]) => f32(name, t.shape, t.data)));
      expectSameWeights(loadCheckpoint(dir).weights, weights);
    });
  });

  describe('sharded checkpoints', () => {
    function writeSharded(dir: string, weights: WeightMap): void {
      const tensors = legacyTensors(weights);
      const shards = [tensors.slice(0, 20), tensors.slice(20)];
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
      const weightMap: Record<string, string> = {};
      shards.forEach((shard, i) => {
        const file = `model-0000${i + 1}-of-00002.safetensors`;
        writeFileSync(join(dir, file), assemble(shard));
        for (const t of shard) weightMap[t.name] = file;
      });
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    }

    it('loads the tensors of every shard listed in the index', () => {
      const weights = randomWeights(true);
      const dir = fresh();
      writeSharded(dir, weights);
      const loaded = loadCheckpoint(dir, { head: true });
      expectSameWeights(loaded.weights, weights);
      expect(loaded.sourceFiles).to.deep.equal([join(dir, 'model-00001-of-00002.safetensors'), join(dir, 'model-00002-of-00002.safetensors')]);
    });

    it('names the index file and the shard when a shard is missing', () => {
      const dir = fresh();
      writeSharded(dir, randomWeights(false));
      rmSync(join(dir, 'model-00002-of-00002.safetensors'));
      expectError(() => loadCheckpoint(dir), join(dir, 'model.safetensors.index.json'), 'model-00002-of-00002.safetensors', 'missing');
    });

    it('names the index file when a shard lacks a tensor mapped to it', () => {
      const dir = fresh();
      writeSharded(dir, randomWeights(false));
      const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
      index.weight_map['bert.extra.weight'] = 'model-00001-of-00002.safetensors';
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
      expectError(() => loadCheckpoint(dir), 'model.safetensors.index.json', '"bert.extra.weight"');
    });
  });

  describe('save and load', () => {
    it('round-trips an encoder exactly, with unprefixed names and BertModel', () => {
      const weights = randomWeights(false);
      const dir = fresh();
      saveCheckpoint(dir, config, weights, { metadata: { topoprobe: 'test' } });
      const file = openSafetensors(join(dir, 'model.safetensors'));
      expect(file.metadata).to.deep.equal({ topoprobe: 'test', format: 'pt' });
      expect(file.has('embeddings.word_embeddings.weight')).to.equal(true);
      const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(written.architectures).to.deep.equal(['BertModel']);
      expect(written.model_type).to.equal('bert');
      const loaded = loadCheckpoint(dir);
      expectSameWeights(loaded.weights, weights);
      expect(loaded.config.vocab_size).to.equal(50);
      expect(loaded.ignored).to.deep.equal([]);
    });

    it('writes a head model with the names of BertForSequenceClassification.save_pretrained', () => {
      const weights = randomWeights(true);
      const dir = fresh();
      saveCheckpoint(dir, config, weights);
      const file = openSafetensors(join(dir, 'model.safetensors'));
      const expectedNames = [...bertParameterShapes(config, { head: true }).keys()].map((n) => (n.startsWith('classifier.') ? n : `bert.${n}`));
      expect(file.names().slice().sort()).to.deep.equal(expectedNames.slice().sort());
      expect(file.has('bert.encoder.layer.1.attention.self.query.weight')).to.equal(true);
      expect(file.has('bert.embeddings.LayerNorm.weight')).to.equal(true);
      expect(file.has('classifier.weight')).to.equal(true);
      expect(file.metadata.format).to.equal('pt');
      const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(written.architectures).to.deep.equal(['BertForSequenceClassification']);
      expect(Object.keys(written.id2label as object)).to.have.length(3);
      const loaded = loadCheckpoint(dir, { head: true });
      expect(loaded.headLoaded).to.equal(true);
      expectSameWeights(loaded.weights, weights);
    });

    it('round-trips F16 and BF16 within rounding', () => {
      const weights = randomWeights(true, 7);
      for (const [dtype, round] of [
        ['F16', (x: number) => f16ToF32(f32ToF16(x))],
        ['BF16', (x: number) => bf16ToF32(f32ToBf16(x))],
      ] as const) {
        const dir = fresh();
        saveCheckpoint(dir, config, weights, { dtype });
        expect(openSafetensors(join(dir, 'model.safetensors')).info('classifier.weight').dtype).to.equal(dtype);
        const loaded = loadCheckpoint(dir, { head: true });
        expectSameWeights(loaded.weights, weights, round);
        // and within the format's precision of the originals
        const tolerance = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
        const w = weights.get('pooler.dense.weight')!.data;
        loaded.weights.get('pooler.dense.weight')!.data.forEach((v, i) => expect(Math.abs(v - w[i]!)).to.be.at.most(Math.abs(w[i]!) * tolerance + 1e-12));
      }
    });

    it('refuses weights that do not match the config', () => {
      const weights = randomWeights(false);
      weights.delete('pooler.dense.bias');
      expectError(() => saveCheckpoint(fresh(), config, weights), 'pooler.dense.bias');
    });
  });

  describe('errors', () => {
    it('a missing required tensor names it and the file', () => {
      const weights = randomWeights(false);
      const tensors = legacyTensors(weights).filter((t) => t.name !== 'bert.encoder.layer.1.output.LayerNorm.gamma');
      const dir = writeFolder(fresh(), tensors);
      expectError(() => loadCheckpoint(dir), 'encoder.layer.1.output.LayerNorm.weight', join(dir, 'model.safetensors'), 'missing');
    });

    it('missing layers hint at a config that does not belong to the weights', () => {
      const dir = writeFolder(fresh(), legacyTensors(randomWeights(false)), { ...TINY, num_hidden_layers: 3 });
      expectError(() => loadCheckpoint(dir), 'encoder.layer.2.attention.self.query.weight', 'the weights have 2 encoder layers', 'num_hidden_layers = 3');
    });

    it('a wrong shape names the tensor, file, expected shape, config field and actual shape', () => {
      const weights = randomWeights(false);
      weights.set('embeddings.word_embeddings.weight', { shape: [49, 8], data: new Float32Array(49 * 8) });
      const dir = writeFolder(fresh(), legacyTensors(weights));
      expectError(
        () => loadCheckpoint(dir),
        join(dir, 'model.safetensors'),
        '"bert.embeddings.word_embeddings.weight"',
        '[49, 8]',
        'expected [50, 8]',
        'vocab_size = 50',
        'hidden_size = 8',
      );
    });

    it('a classifier that does not match num_labels', () => {
      const weights = randomWeights(true);
      weights.set('classifier.weight', { shape: [2, 8], data: new Float32Array(16) });
      weights.set('classifier.bias', { shape: [2], data: new Float32Array(2) });
      const dir = writeFolder(fresh(), legacyTensors(weights));
      expectError(() => loadCheckpoint(dir, { head: true }), '"classifier.weight"', 'expected [3, 8]', 'num_labels = 3');
    });

    it('unexpected tensors are listed, with a hint when the config has fewer layers', () => {
      const weights = randomWeights(false);
      const tensors = legacyTensors(weights);
      tensors.push(f32('bert.encoder.layer.2.output.dense.bias', [8], new Float32Array(8)));
      tensors.push(f32('qa_outputs.weight', [2, 8], new Float32Array(16)));
      const dir = writeFolder(fresh(), tensors);
      expectError(() => loadCheckpoint(dir), 'unexpected', 'bert.encoder.layer.2.output.dense.bias', 'qa_outputs.weight', 'num_hidden_layers = 2');
    });

    it('a folder with only pytorch_model.bin explains how to convert', () => {
      const dir = fresh();
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
      writeFileSync(join(dir, 'pytorch_model.bin'), 'not really');
      expectError(() => loadCheckpoint(dir), dir, 'pytorch_model.bin', 'model.safetensors', 'save_pretrained', 'safe_serialization=True');
    });

    it('a folder with no weights at all', () => {
      const dir = fresh();
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
      expectError(() => loadCheckpoint(dir), dir, 'no weights');
    });

    it('a missing config.json names the path', () => {
      const dir = fresh();
      mkdirSync(dir);
      writeFileSync(join(dir, 'model.safetensors'), assemble([]));
      expectError(() => loadCheckpoint(dir), join(dir, 'config.json'), 'not found');
    });

    it('a missing folder, or a file instead of a folder, names the path', () => {
      const missing = join(root, 'no-such-model');
      expectError(() => loadCheckpoint(missing), missing, 'not found');
      const file = join(root, 'a-file');
      writeFileSync(file, '');
      expectError(() => loadCheckpoint(file), file, 'is a file');
    });

    it('an integer tensor where a weight belongs', () => {
      const weights = randomWeights(false);
      const tensors = legacyTensors(weights).filter((t) => t.name !== 'bert.pooler.dense.bias');
      tensors.push({ name: 'bert.pooler.dense.bias', dtype: 'I64', shape: [8], bytes: new Uint8Array(64) });
      const dir = writeFolder(fresh(), tensors);
      expectError(() => loadCheckpoint(dir), '"bert.pooler.dense.bias"', 'I64');
    });
  });

  describe('non-finite values', () => {
    const QUERY = 'encoder.layer.0.attention.self.query.weight';

    it('a NaN weight: loading refuses, naming the file, the tensor and the count', () => {
      const weights = randomWeights(false);
      const q = weights.get(QUERY)!;
      q.data[5] = NaN;
      q.data[9] = NaN;
      q.data[60] = NaN;
      const dir = fresh();
      saveCheckpoint(dir, config, weights);
      const message = expectError(() => loadCheckpoint(dir), `${join(dir, 'model.safetensors')}: tensor "${QUERY}" has 3 NaN values (first at [0, 5])`);
      expect(message.split('\n')).to.have.length(1);
    });

    it('an infinity, in a legacy-named tensor of one shard of a sharded checkpoint, names that shard', () => {
      const weights = randomWeights(false);
      const tensors = legacyTensors(weights);
      const bias = tensors.find((t) => t.name === 'bert.pooler.dense.bias')!;
      const data = new Float32Array(bias.bytes.buffer.slice(0));
      data[7] = -Infinity;
      bias.bytes = new Uint8Array(data.buffer);
      const dir = fresh();
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
      const weightMap: Record<string, string> = {};
      const shards = [tensors.filter((t) => t !== bias), [bias]];
      shards.forEach((shard, i) => {
        writeFileSync(join(dir, `shard-${i}.safetensors`), assemble(shard));
        for (const t of shard) weightMap[t.name] = `shard-${i}.safetensors`;
      });
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
      expectError(() => loadCheckpoint(dir), `${join(dir, 'shard-1.safetensors')}: tensor "bert.pooler.dense.bias" has 1 infinite value (first at [7])`);
    });

    it('a weight that overflows float16 when saved as F16 becomes infinite, and the load names it', () => {
      const weights = randomWeights(false);
      weights.get('pooler.dense.weight')!.data[3] = 7e4; // above float16's largest, 65504
      const dir = fresh();
      saveCheckpoint(dir, config, weights, { dtype: 'F16' });
      expectError(() => loadCheckpoint(dir), 'model.safetensors: tensor "pooler.dense.weight" has 1 infinite value (first at [0, 3])');
    });

    it('a probe file and an optimizer state with non-finite values are refused, naming them', () => {
      const dir = fresh();
      mkdirSync(dir, { recursive: true });
      const probePath = join(dir, 'probe-3.safetensors');
      const B = new Float32Array(4 * 8).fill(0.1);
      B[17] = NaN;
      writeSafetensors(probePath, [{ name: 'B', shape: [4, 8], data: B }], { metadata: { probe: 'depth', rank: '4', hidden: '8' } });
      expectError(() => DepthProbe.load(probePath), `${probePath}: tensor "B" has 1 NaN value (first at [2, 1])`);

      const optimizerPath = join(dir, 'optimizer.safetensors');
      const v = new Float32Array([0.5, Infinity, 0.25]);
      writeSafetensors(optimizerPath, [
        { name: `m.${QUERY}`, shape: [3], data: new Float32Array(3) },
        { name: `v.${QUERY}`, shape: [3], data: v },
      ], { metadata: { step: '4' } });
      const adam = new AdamW();
      expectError(() => adam.restore(optimizerPath), `${optimizerPath}: tensor "v.${QUERY}" has 1 infinite value (first at [1])`);
      adam.dispose();
    });
  });
});
