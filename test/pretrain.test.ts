import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { initBackend } from '../src/backend/index.js';
import { runPretrain, unigramScores, type PretrainResult } from '../src/train/pretrain.js';
import { pretrainConfigSchema, type PretrainConfig } from '../src/train/pretrain-config.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { loadModel } from '../src/model/load.js';
import { mlmHeadShapes } from '../src/model/mlm-head.js';
import { readVocabFile } from '../src/tokenize/vocab.js';
import { bertUncasedVocabPath, dataDir } from '../src/data/paths.js';
import { Rng } from '../src/util/random.js';
import { cli, expectRejects, haveData, nativeAvailable } from './helpers.js';
import { decodeFile } from './tfevents-decoder.js';

const silent = pino({ level: 'silent' });

interface Line { type: 'train' | 'eval'; step: number; mlm_loss?: number; held_out_loss?: number; lr?: number }
const metrics = (dir: string): Line[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

/** Simple English-like sentences from a small grammar, for when the data directory is absent. */
function grammarSentences(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  const pick = (xs: string[]) => xs[rng.int(xs.length)]!;
  const det = ['the', 'a', 'every', 'some'];
  const adj = ['big', 'small', 'red', 'old', 'happy', 'quiet'];
  const noun = ['cat', 'dog', 'bird', 'child', 'teacher', 'farmer', 'horse'];
  const verb = ['sees', 'likes', 'chases', 'helps', 'finds', 'follows'];
  const prep = ['near', 'under', 'with'];
  const np = () => [pick(det), ...(rng.uniform() < 0.5 ? [pick(adj)] : []), pick(noun)];
  return Array.from({ length: n }, () => {
    const words = [...np(), pick(verb), ...np(), ...(rng.uniform() < 0.3 ? [pick(prep), ...np()] : [])];
    return `${words.join(' ')} .`;
  });
}

/** A vocab.txt for the grammar: specials, placeholders, its words, unused words and ASCII letters. */
function grammarVocab(): string[] {
  const words = 'the a every some big small red old happy quiet cat dog bird child teacher farmer horse sees likes chases helps finds follows near under with .'.split(' ');
  const unused = ['zebra', 'house', 'river', 'green', 'runs', 'slowly', 'ocean', 'mountain'];
  const letters = 'abcdefghijklmnopqrstuvwxyz'.split('');
  const base = [...new Set([...words, ...letters])];
  return ['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...base, ...unused, ...letters.map((l) => `##${l}`)];
}

describe('topoprobe pretrain', function () {
  let scratch: string;
  let corpusPath: string;
  let vocabPath: string;
  let sourceVocab: string[];
  let backend: 'blas' | 'cpu';
  let a: PretrainResult;

  const config = (name: string, over: Record<string, unknown> = {}): PretrainConfig =>
    pretrainConfigSchema.parse({
      name, out_dir: scratch, seed: 5, max_steps: 40, batch_size: 16, log_every: 5,
      model: { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 32 },
      tokenizer: { vocab: vocabPath, restrict: true },
      corpus: { files: [corpusPath], held_out: 40, max_length: 32 },
      optimizer: { lr: 5e-3 }, eval: { every_steps: 20, batch_size: 64 },
      ...over,
    });

  before(async function () {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-pretrain-'));
    let lines: string[];
    if (haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) {
      lines = readFileSync(join(dataDir(), 'cola', 'in_domain_train.tsv'), 'utf8').split('\n').filter(Boolean).slice(0, 300).map((l) => l.split('\t')[3]!);
      vocabPath = bertUncasedVocabPath();
    } else {
      lines = grammarSentences(300, 1);
      vocabPath = join(scratch, 'vocab.txt');
      writeFileSync(vocabPath, grammarVocab().join('\n') + '\n');
    }
    sourceVocab = readVocabFile(vocabPath);
    corpusPath = join(scratch, 'corpus.txt');
    writeFileSync(corpusPath, lines.join('\n') + '\n');
    backend = nativeAvailable() ? 'blas' : 'cpu';
    await initBackend(backend);
    a = await runPretrain(config('a'), { log: silent });
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('a short run lowers the held-out and training MLM loss, from ln(vocabulary) at the start', () => {
    expect(a.status).to.equal('completed');
    expect(a.steps).to.equal(40);
    // A fresh model's logits are near zero: the initial loss is that of a uniform guess.
    expect(a.initial!.loss).to.be.closeTo(Math.log(a.vocab_size), 0.1);
    expect(a.held_out.loss).to.be.below(a.initial!.loss - 0.6);
    expect(a.held_out.accuracy).to.be.above(a.initial!.accuracy);
    expect(a.held_out.predictions).to.equal(a.initial!.predictions);
    expect(a.unigram.predictions).to.equal(a.held_out.predictions);
    // About 15% of the held-out pieces are scored.
    expect(a.held_out.predictions).to.be.above(40);

    const lines = metrics(a.runDir);
    const evals = lines.filter((l) => l.type === 'eval');
    expect(evals.map((l) => l.step)).to.deep.equal([0, 20, 40]);
    expect(evals[0]!.held_out_loss).to.equal(a.initial!.loss);
    expect(evals[2]!.held_out_loss).to.equal(a.held_out.loss);
    expect(evals[1]!.held_out_loss!).to.be.below(evals[0]!.held_out_loss!);
    const train = lines.filter((l) => l.type === 'train');
    expect(train.map((l) => l.step)).to.deep.equal([1, 5, 10, 15, 20, 25, 30, 35, 40]);
    // Batches differ, so average the last four logged losses.
    const tail = train.slice(-4).reduce((s, l) => s + l.mlm_loss!, 0) / 4;
    expect(tail).to.be.below(train[0]!.mlm_loss! - 0.3);
    // TensorBoard: the masked-LM loss as train/loss, the held-out loss and accuracy as eval/loss and eval/accuracy.
    const files = readdirSync(a.runDir).filter((f) => f.includes('tfevents'));
    expect(files).to.have.length(1);
    const scalars = decodeFile(join(a.runDir, files[0]!)).flatMap((e) => (e.values ?? []).map((v) => ({ step: Number(e.step), tag: v.tag, value: v.simpleValue })));
    const series = (tag: string) => scalars.filter((s) => s.tag === tag).map((s) => [s.step, s.value]);
    expect(series('train/loss')).to.deep.equal(train.map((l) => [l.step, Math.fround(l.mlm_loss!)]));
    expect(series('eval/loss')).to.deep.equal(evals.map((l) => [l.step, Math.fround(l.held_out_loss!)]));
    expect(series('eval/accuracy').map(([step]) => step)).to.deep.equal([0, 20, 40]);
  });

  it('writes results.json and a model folder that loads, with its restricted vocabulary', async () => {
    const results = JSON.parse(readFileSync(join(a.runDir, 'results.json'), 'utf8')) as PretrainResult;
    expect(results).to.deep.equal(JSON.parse(JSON.stringify(a)));
    expect(results).to.include({ status: 'completed', steps: 40, seed: 5, backend });
    expect(results.corpus).to.deep.include({ train_lines: 260, held_out_lines: 40, files: [{ path: corpusPath, lines: 300 }] });
    expect(results.corpus.train_sequences).to.be.at.least(260);
    expect(results.pieces_seen).to.be.within(40 * 16 * 3, 40 * 16 * 32);
    expect(results.epochs_completed).to.equal(Math.floor(40 / Math.ceil(results.corpus.train_sequences / 16)));
    expect(readdirSync(a.runDir).sort()).to.include.members(['checkpoints', 'config.yaml', 'metrics.jsonl', 'model', 'results.json']);

    const modelDir = join(a.runDir, 'model');
    expect(a.modelDir).to.equal(modelDir);
    expect(readdirSync(modelDir).sort()).to.deep.equal(['complete.json', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'vocab_map.json']);
    const { model, tokenizer } = await loadModel(modelDir);
    expect(model.config.vocab_size).to.equal(a.vocab_size);
    expect(tokenizer.vocabSize).to.equal(a.vocab_size);
    expect(a.vocab_size).to.be.below(sourceVocab.length);
    expect(model.config).to.include({ hidden_size: 32, num_hidden_layers: 2, max_position_embeddings: 32 });
    const headSize = [...mlmHeadShapes(model.config).values()].reduce((n, s) => n + s.reduce((x, y) => x * y, 1), 0);
    expect(a.parameters).to.equal(model.parameterCount() + headSize);
    // The vocabulary map points into the source vocabulary.
    const map = JSON.parse(readFileSync(join(modelDir, 'vocab_map.json'), 'utf8')) as { source: string; original_ids: number[] };
    expect(map.source).to.equal(vocabPath);
    const kept = readVocabFile(join(modelDir, 'vocab.txt'));
    expect(kept).to.have.length(a.vocab_size);
    expect(map.original_ids.map((id) => sourceVocab[id])).to.deep.equal(kept);
    // The model and its masked-LM head are what checkpoints/last holds.
    const final = loadCheckpoint(modelDir, { mlmHead: true });
    const last = loadCheckpoint(join(a.runDir, 'checkpoints', 'last'), { mlmHead: true });
    expect(final.mlmHead.size).to.equal(5);
    expect(final.weights).to.deep.equal(last.weights);
    expect(final.mlmHead).to.deep.equal(last.mlmHead);
    expect(JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')).architectures).to.deep.equal(['BertForMaskedLM']);
    model.dispose();
  });

  it('the same seed gives identical numbers', async () => {
    const b = await runPretrain(config('b'), { log: silent });
    for (const k of ['held_out', 'initial', 'unigram', 'pieces_seen', 'steps', 'parameters', 'vocab_size'] as const) expect(b[k], k).to.deep.equal(a[k]);
    expect(metrics(b.runDir)).to.deep.equal(metrics(a.runDir));
  });

  it('a resumed run ends with the same numbers and weights as an uninterrupted one', async () => {
    const part = await runPretrain(config('part'), { log: silent, stopAfter: 20 });
    expect(part.status).to.equal('interrupted');
    expect(part.modelDir).to.equal(null);
    expect(part.steps).to.equal(20);
    expect(existsSync(join(part.runDir, 'results.json'))).to.equal(false);
    const state = JSON.parse(readFileSync(join(part.runDir, 'checkpoints', 'last', 'trainer_state.json'), 'utf8')) as { step: number };
    expect(state.step).to.equal(20);
    const resumed = await runPretrain(config('part'), { log: silent }, { resume: part.runDir });
    expect(resumed.status).to.equal('completed');
    expect(resumed.steps).to.equal(40);
    expect(resumed.held_out).to.deep.equal(a.held_out);
    expect(resumed.initial).to.deep.equal(a.initial);
    expect(resumed.pieces_seen).to.equal(a.pieces_seen);
    expect(metrics(resumed.runDir)).to.deep.equal(metrics(a.runDir));
    const x = loadCheckpoint(join(a.runDir, 'model'), { mlmHead: true });
    const y = loadCheckpoint(join(resumed.runDir, 'model'), { mlmHead: true });
    for (const [name, t] of x.weights) expect(Array.from(y.weights.get(name)!.data), name).to.deep.equal(Array.from(t.data));
    for (const [name, t] of x.mlmHead) expect(Array.from(y.mlmHead.get(name)!.data), name).to.deep.equal(Array.from(t.data));
  });

  it('init_from a finished model starts where it ended (its masked-LM head included)', async () => {
    const c = await runPretrain(config('c', { init_from: join(a.runDir, 'model'), tokenizer: { restrict: false }, max_steps: 1 }), { log: silent });
    expect(c.vocab_size).to.equal(a.vocab_size);
    expect(c.initial!.predictions).to.equal(a.held_out.predictions);
    expect(c.initial!.loss).to.be.closeTo(a.held_out.loss, 1e-5);
  });

  it('refuses to overwrite a finished run, to resume a folder without a checkpoint, and init_from with restrict', async () => {
    await expectRejects(runPretrain(config('a'), { log: silent }), 'already holds a finished run');
    await expectRejects(runPretrain(config('x'), { log: silent }, { resume: join(scratch, 'nothing') }), 'no complete checkpoint in checkpoints/ to resume from');
    await expectRejects(runPretrain(config('y', { init_from: 'builtin:tiny' }), { log: silent }), 'tokenizer.restrict', 'init_from');
  });

  describe('the CLI', () => {
    const yaml = (extra = '') =>
      `out_dir: ${scratch}\nseed: 2\nbatch_size: 16\nmodel: {hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 32}\n` +
      `tokenizer: {vocab: ${vocabPath}}\ncorpus: {files: [${corpusPath}], held_out: 20, max_length: 32}\neval: {every_steps: 100}\n${extra}`;

    it('runs, stops as if interrupted, and resumes (the full vocabulary: no vocab_map.json)', async () => {
      const path = join(scratch, 'cli.yaml');
      writeFileSync(path, yaml('max_steps: 2\n'));
      const stopped = await cli(['pretrain', '--config', path, '--name', 'cli', '--stop-after', '1'], {}, backend);
      expect(stopped.code, stopped.stderr).to.equal(130);
      expect(stopped.stdout).to.include(`interrupted after 1 updates; continue with: topoprobe pretrain --resume ${join(scratch, 'cli')}`);
      const resumed = await cli(['pretrain', '--resume', join(scratch, 'cli')], {}, backend);
      expect(resumed.code, resumed.stderr).to.equal(0);
      expect(resumed.stdout).to.match(/held-out after 2 updates: MLM loss \d+\.\d{4}, masked accuracy/);
      expect(resumed.stdout).to.match(/unigram baseline: +MLM loss/);
      const results = JSON.parse(readFileSync(join(scratch, 'cli', 'results.json'), 'utf8')) as PretrainResult;
      expect(results).to.include({ steps: 2, status: 'completed', vocab_size: sourceVocab.length });
      expect(existsSync(join(scratch, 'cli', 'model', 'vocab.txt'))).to.equal(true);
      expect(existsSync(join(scratch, 'cli', 'model', 'vocab_map.json'))).to.equal(false);
      expect(existsSync(join(scratch, 'cli', 'log.jsonl'))).to.equal(true);
    });

    it('without --config errors clearly', async () => {
      const { code, stderr } = await cli(['pretrain']);
      expect(code).to.equal(2);
      expect(stderr).to.include('give --config (a new run) or --resume');
    });

    for (const [what, extra, sets, message] of [
      ['mask + random over 1', 'mlm: {mask: 0.95, random: 0.1}\n', [], /bad\.yaml: mlm: mask \+ random must be at most 1/],
      ['an out-of-range probability', '', ['mlm.probability=1.5'], /bad\.yaml: mlm\.probability: Too big/],
      ['an unknown key', 'epoch: 3\n', [], /bad\.yaml: \(top level\): Unrecognized key.*"epoch"/],
      ['a misspelt nested key', '', ['tokenizer.restricted=true'], /bad\.yaml: tokenizer: Unrecognized key.*"restricted"/],
      ['a missing corpus file', '', ['corpus.files=[nowhere.txt]'], /corpus\.files\[0\]: .*nowhere\.txt does not exist/],
    ] as const) {
      it(`rejects ${what}, naming the field`, async () => {
        const path = join(scratch, 'bad.yaml');
        writeFileSync(path, yaml(extra));
        const { code, stderr } = await cli(['pretrain', '--config', path, '--name', 'bad', ...sets.flatMap((s) => ['--set', s])]);
        expect(code).to.equal(2);
        expect(stderr).to.match(message);
        expect(existsSync(join(scratch, 'bad', 'results.json'))).to.equal(false);
      });
    }
  });
});

describe('pretraining unigram baseline', () => {
  it('scores add-one smoothed training frequencies over the non-special pieces, predicting the most frequent', () => {
    // Vocabulary of 8: 0-2 special; pieces 3..7. Training counts (specials ignored): 3 x2, 4 x3, 5 x1.
    const specials = new Set([0, 1, 2]);
    const train = [[1, 3, 4, 4, 2], [1, 4, 3, 5, 2, 0]];
    const masked = [
      { inputIds: [], positions: [1, 2], labels: [4, 7] },
      { inputIds: [], positions: [3], labels: [3] },
    ];
    const s = unigramScores(train, masked, 8, specials);
    // Sum of counts 6, 5 candidates: p(v) = (count + 1) / 11.
    const want = -(Math.log(4 / 11) + Math.log(1 / 11) + Math.log(3 / 11)) / 3;
    expect(s.loss).to.be.closeTo(want, 1e-12);
    expect(s.accuracy).to.equal(1 / 3); // predicts 4
    expect(s.predictions).to.equal(3);
  });
});
