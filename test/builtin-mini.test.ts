/**
 * The committed built-in model `builtin:mini` (models/mini): self-contained, within its size budget, and
 * actually pretrained: on CoLA dev sentences, which its corpus excludes, its masked-LM head beats every
 * constant predictor by a wide margin.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel } from '../src/model/load.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { openSafetensors } from '../src/model/safetensors.js';
import { MlmHead, mlmLoss } from '../src/model/mlm-head.js';
import { BertModel } from '../src/model/bert.js';
import { padBatch, disposeBatch } from '../src/data/batch.js';
import { readGlue } from '../src/data/glue.js';
import { bertUncasedVocabPath } from '../src/data/paths.js';
import { projectRoot } from '../src/util/root.js';
import { readVocabFile } from '../src/tokenize/vocab.js';
import { loadTokenizer } from '../src/tokenize/tokenizer.js';
import { maskSequence } from '../src/train/masking.js';
import { Rng } from '../src/util/random.js';
import { haveData, nativeAvailable } from './helpers.js';

const folder = join(projectRoot(), 'models', 'mini');

describe('builtin:mini', function () {
  this.timeout(60_000);
  before(async () => {
    await initBackend(nativeAvailable() ? 'blas' : 'cpu');
  });

  it('is an fp16 BertForMaskedLM folder of at most 16 MB with its own tokenizer and a model card', () => {
    const weights = join(folder, 'model.safetensors');
    expect(statSync(weights).size).to.be.at.most(16 * 1024 * 1024);
    const file = openSafetensors(weights);
    for (const name of file.names()) expect(file.info(name).dtype, name).to.equal('F16');
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as { architectures: string[]; vocab_size: number };
    expect(config.architectures).to.deep.equal(['BertForMaskedLM']);
    for (const f of ['vocab.txt', 'tokenizer.json', 'README.md', 'measure.png', 'pretrain_config.yaml']) expect(existsSync(join(folder, f)), f).to.equal(true);
    expect(readFileSync(join(folder, 'vocab.txt'), 'utf8').trimEnd().split('\n')).to.have.length(config.vocab_size);
  });

  it('loads without a data directory', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'topoprobe-nodata-'));
    try {
      const { model, tokenizer } = await loadModel('builtin:mini', { dataDir: empty });
      expect(model.config.num_hidden_layers).to.equal(4);
      expect(tokenizer.vocabSize).to.equal(model.config.vocab_size);
      expect(tokenizer.tokenize('The cat sat on the mat.')).to.deep.equal(['the', 'cat', 'sat', 'on', 'the', 'mat', '.']);
      model.dispose();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('maps its pieces to the bert-uncased pieces of the same spelling', function () {
    if (!existsSync(bertUncasedVocabPath())) this.skip();
    const full = readVocabFile(bertUncasedVocabPath());
    const own = readVocabFile(join(folder, 'vocab.txt'));
    const { original_ids: ids } = JSON.parse(readFileSync(join(folder, 'vocab_map.json'), 'utf8')) as { original_ids: number[] };
    expect(ids).to.have.length(own.length);
    ids.forEach((old, i) => {
      if (i > 0) expect(old).to.be.greaterThan(ids[i - 1]!);
      expect(full[old]).to.equal(own[i]);
    });
  });

  it('predicts masked pieces of unseen sentences far better than any constant guess', function () {
    if (!haveData('cola/in_domain_dev.tsv')) this.skip();
    const ckpt = loadCheckpoint(folder, { mlmHead: true });
    const model = BertModel.fromWeights(ckpt.config, ckpt.weights);
    const head = MlmHead.create(model, ckpt.mlmHead);
    expect([...head.params.keys()].sort()).to.deep.equal([...ckpt.mlmHead.keys()].sort());
    const tok = loadTokenizer(folder);
    const sentences = readGlue('cola', 'dev').map((e) => e.sentence1).slice(0, 150);
    const rng = new Rng(7);
    const masked = sentences.map((s) => {
      const ids = tok.encode(s).ids;
      return maskSequence(ids, ids.map(() => false), rng, { probability: 0.15, maskRatio: 1, randomRatio: 0, wholeWord: false, maskId: tok.maskId!, specialIds: tok.specialIds, randomIds: [] });
    });
    const batch = padBatch(masked.map((m) => ({ ids: m.inputIds })), tok.padId);
    const seq = batch.inputIds.shape[1];
    const flat = tf.tensor1d(masked.flatMap((m, b) => m.positions.map((p) => b * seq + p)), 'int32');
    const labels = masked.flatMap((m) => m.labels);
    const gold = tf.tensor1d(labels, 'int32');
    const out = model.forward(batch, { hiddenStates: 'none', pool: false });
    const { loss, predictions } = mlmLoss(head, out.lastHiddenState, flat, gold);
    const pred = predictions.dataSync();
    const accuracy = labels.filter((l, k) => pred[k] === l).length / labels.length;
    // The best constant predictor guesses the most frequent masked piece.
    const freq = new Map<number, number>();
    for (const l of labels) freq.set(l, (freq.get(l) ?? 0) + 1);
    const bestConstant = Math.max(...freq.values()) / labels.length;
    expect(labels.length).to.be.greaterThan(150);
    expect(accuracy, `accuracy ${accuracy} vs best constant ${bestConstant}`).to.be.greaterThan(bestConstant + 0.1);
    expect(loss.dataSync()[0]).to.be.lessThan(Math.log(model.config.vocab_size) - 2);
    tf.dispose([out.lastHiddenState, loss, predictions, flat, gold]);
    disposeBatch(batch);
    head.dispose();
    model.dispose();
  });
});
