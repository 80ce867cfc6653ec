import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { initBackend } from '../src/backend/index.js';
import { runTrain } from '../src/train/trainer.js';
import { trainConfigSchema, type TrainConfig } from '../src/train/config.js';
import { guideLoss, guidanceTerm, batchPositions, guideProbePath, fixedTargets, currentTargets, type Guide } from '../src/train/guidance.js';
import { BertModel } from '../src/model/bert.js';
import { parseBertConfig } from '../src/model/config.js';
import { parameterGrads } from '../src/train/step.js';
import { readGuideTargets, writeGuideTargets } from '../src/util/run-folder.js';
import { collapseVerdict } from '../src/train/monitor.js';
import { isTreeConsistent } from '../src/probe/labels.js';
import { makeSchedule } from '../src/train/schedule.js';
import { clipFactor } from '../src/train/optimizer.js';
import { DepthProbe } from '../src/probe/probe.js';
import { treeLabels } from '../src/probe/labels.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { cli, nativeAvailable, FIXTURES, haveData, expectError, expectRejects } from './helpers.js';
import { spawn } from 'node:child_process';
import { cliCommand } from '../src/sweep/executor.js';
import { decodeFile } from './tfevents-decoder.js';

const silent = pino({ level: 'silent' });

interface Line { type: string; step: number; lr?: number; task_loss?: number; guidance?: Record<string, number>; grad_norm?: number; mcc?: number; loss?: number; eval_loss?: number; constant_predictor?: boolean }
/** The scalars of a run folder's one event file, in file order (asserting there is exactly one). */
function tensorboardScalars(dir: string): Array<{ step: number; tag: string; value: number }> {
  const files = readdirSync(dir).filter((f) => f.includes('tfevents'));
  expect(files, `event files in ${dir}`).to.have.length(1);
  return decodeFile(join(dir, files[0]!)).flatMap((e) => (e.values ?? []).filter((v) => v.simpleValue !== undefined).map((v) => ({ step: Number(e.step), tag: v.tag, value: v.simpleValue! })));
}
const lines = (dir: string): Line[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

describe('probe guidance (unit)', () => {
  before(async () => {
    await initBackend('cpu');
  });

  it('scores real word pieces in clean mode and every padded position in paper mode', () => {
    expect(batchPositions([4, 3], 5, 'clean')).to.deep.equal([[1, 2], [6]]);
    expect(batchPositions([4, 3], 5, 'paper')).to.deep.equal([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
  });

  it('takes only positive examples with examples: positive, and equals a hand computation of MSE against tree labels', () => {
    const probe = new DepthProbe({ hidden: 2, rank: 1, weights: Float32Array.from([1, 0]) });
    // Two sentences of 3 positions; the probe reads x^2 of the first coordinate.
    const h = tf.tensor3d([[[1, 0], [2, 0], [0.5, 0]], [[3, 0], [1, 0], [2, 0]]]);
    const positions = [[0, 1, 2], [3, 4, 5]];
    const guide = (examples: 'positive' | 'all'): Guide => ({ probe, config: { layer: 0, weight: 1, labels: 'ssp', probe: 'fresh', trainable: true, examples, targets: 'current', schedule: 'constant' } });
    const mseOf = (pred: number[]) => {
      const labels = treeLabels(pred);
      return pred.reduce((s, p, i) => s + (p - labels[i]!) ** 2, 0);
    };
    const positiveOnly = guideLoss(guide('positive'), h, positions, [0, 1])!.dataSync()[0]!;
    expect(positiveOnly).to.be.closeTo(mseOf([9, 1, 4]) / 3, 1e-6);
    const all = guideLoss(guide('all'), h, positions, [0, 1])!.dataSync()[0]!;
    expect(all).to.be.closeTo((mseOf([1, 4, 0.25]) + mseOf([9, 1, 4])) / 6, 1e-6);
    expect(guideLoss(guide('positive'), h, positions, [0, 0])).to.equal(null);
    probe.dispose();
    h.dispose();
  });

  it('targets: current labels read before the tape (the webgpu path) give the loss and gradients computed inside it, exactly', async () => {
    const config = parseBertConfig({ vocab_size: 40, hidden_size: 16, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16, num_labels: 2, hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.2 });
    const model = BertModel.init(config, { head: true, seed: 4 });
    const probe = new DepthProbe({ hidden: 16, seed: 5 });
    const guide: Guide = { probe, config: { layer: 2, weight: 1, labels: 'ssp', probe: 'fresh', trainable: false, examples: 'all', targets: 'current', schedule: 'constant' } };
    const inputs = { inputIds: tf.tensor2d([[2, 5, 9, 13, 3, 0], [2, 7, 8, 3, 0, 0]], undefined, 'int32'), attentionMask: tf.tensor2d([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], undefined, 'int32') };
    const positions = batchPositions([5, 4], 6, 'clean');
    const start = model.rng.getState();
    const lossWith = (current?: Array<Float32Array | null>) =>
      parameterGrads(model.params, () => {
        const out = model.forward(inputs, { training: true, hiddenStates: [2] });
        return guideLoss(guide, out.hiddenStates.get(2)!, positions, [1, 0], undefined, current?.[0])!;
      });
    const inside = lossWith();
    model.rng.setState(start);
    // The pre-pass stops at the guided layer and draws from a copy of the dropout stream.
    const pre = model.forward(inputs, { training: true, hiddenStates: [2], upTo: 2, rng: model.rng.clone() });
    expect(model.rng.getState()).to.deep.equal(start);
    expect(pre.logits).to.equal(undefined);
    const current = await currentTargets([guide], pre.hiddenStates, positions, [1, 0]);
    // One flat array, sentence by sentence (3 and 2 scored positions), each a tree's labels.
    expect(current[0]!.length).to.equal(5);
    expect(isTreeConsistent(current[0]!.slice(0, 3))).to.equal(true);
    expect(isTreeConsistent(current[0]!.slice(3))).to.equal(true);
    const before = lossWith(current);
    expect(before.value.dataSync()[0]).to.equal(inside.value.dataSync()[0]);
    for (const [name, g] of Object.entries(inside.grads)) expect(Array.from(before.grads[name]!.dataSync()), name).to.deep.equal(Array.from(g.dataSync()));
    tf.dispose([inside.value, before.value, ...Object.values(inside.grads), ...Object.values(before.grads), ...pre.hiddenStates.values(), pre.lastHiddenState, inputs.inputIds, inputs.attentionMask]);
    probe.dispose();
    model.dispose();
  });

  it('fixed targets (targets: pretrained): the MSE against the stored labels of the batch\'s examples, whatever the current predictions', () => {
    const probe = new DepthProbe({ hidden: 2, rank: 1, weights: Float32Array.from([1, 0]) });
    const h = tf.tensor3d([[[1, 0], [2, 0], [0.5, 0]], [[3, 0], [1, 0], [2, 0]]]);
    const positions = [[0, 1, 2], [3, 4, 5]];
    const config = { layer: 0, weight: 1, labels: 'ssp' as const, probe: 'fresh', trainable: true, examples: 'all' as const, targets: 'pretrained' as const, schedule: 'constant' as const };
    // The labels were computed from other norms: example 7 from [0, 5, 9] -> 1, 2, 3; example 2 from [1.6, 2.2, 0] -> 2, 2, 1.
    const fixed = fixedTargets({ config, probe }, [{ index: 7, norms: [0, 5, 9] }, { index: 2, norms: [1.6, 2.2, 0] }]);
    expect(Array.from(fixed.get(7)!)).to.deep.equal([1, 2, 3]);
    expect(Array.from(fixed.get(2)!)).to.deep.equal([2, 2, 1]);
    const guide: Guide = { config, probe, fixed };
    // Batch rows are examples 7 and 2; predictions x^2: [1, 4, 0.25] and [9, 1, 4].
    const got = guideLoss(guide, h, positions, [0, 1], [7, 2])!.dataSync()[0]!;
    const sq = [1 - 1, 4 - 2, 0.25 - 3, 9 - 2, 1 - 2, 4 - 1].map((d) => d * d);
    expect(got).to.be.closeTo(sq.reduce((a, b) => a + b, 0) / 6, 1e-5);
    // A batch row whose example has no stored labels is an error naming it.
    expectError(() => guideLoss(guide, h, positions, [0, 1], [7, 3]), 'training example 3');
    // Written and read back the same; a file of another layer is refused.
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-targets-'));
    try {
      writeGuideTargets(join(dir, 't.json'), 0, fixed);
      const back = readGuideTargets(join(dir, 't.json'), 0);
      expect([...back.keys()].sort()).to.deep.equal([2, 7]);
      expect(Array.from(back.get(2)!)).to.deep.equal([2, 2, 1]);
      expectError(() => readGuideTargets(join(dir, 't.json'), 3), 't.json', 'submodule 0', 'at 3');
      expectError(() => readGuideTargets(join(dir, 'none.json'), 0), 'none.json', 'not found', 'targets: pretrained');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    probe.dispose();
    h.dispose();
  });

  it('guidanceTerm weights each guide by its schedule at the batch\'s epoch (halving: 4, then 2; none from epoch 5)', () => {
    const probe = new DepthProbe({ hidden: 2, rank: 1, weights: Float32Array.from([1, 0]) });
    const h = tf.tensor3d([[[1, 0], [2, 0], [0.5, 0]]]);
    const guide: Guide = { probe, config: { layer: 0, weight: 4, labels: 'ssp', probe: 'fresh', trainable: true, examples: 'all', targets: 'current', schedule: 'halving' } };
    const at = (epoch: number) => guidanceTerm([guide], new Map([[0, h]]), [[0, 1, 2]], [1], { step: 3, totalSteps: 10, epoch });
    const first = at(1);
    const term = first.values.layer_0!.dataSync()[0]!;
    expect(term).to.be.above(0);
    expect(first.total!.dataSync()[0]).to.be.closeTo(4 * term, 1e-5);
    expect(at(2).total!.dataSync()[0]).to.be.closeTo(2 * term, 1e-5);
    const late = at(5);
    expect(late.total).to.equal(null);
    expect(late.values.layer_0!.dataSync()[0]).to.be.closeTo(term, 1e-6); // still logged, unweighted
    probe.dispose();
    h.dispose();
  });

  it('learning-rate schedule and clipping follow their formulas', () => {
    const lr = makeSchedule({ kind: 'linear', peak: 1, warmupRatio: 0.2, totalSteps: 10 });
    expect([0, 1, 2, 3, 9, 10].map(lr)).to.deep.equal([0, 0.5, 1, 7 / 8, 1 / 8, 0]);
    expect(clipFactor(4, 1)).to.be.closeTo(1 / (4 + 1e-6), 1e-12);
    expect(clipFactor(0.5, 1)).to.equal(1);
  });

  it('a guide\'s probe may be a measure run folder: its probe of the guided layer and label kind', () => {
    const run = mkdtempSync(join(tmpdir(), 'topoprobe-probes-'));
    try {
      mkdirSync(join(run, 'probes'));
      for (const f of ['sub-2-x_ssp', 'sub-2-x_essp', 'sub-3-x_ssp']) writeFileSync(join(run, 'probes', `${f}.safetensors`), '');
      const g = (layer: number, labels: 'ssp' | 'essp' | 'ssp-exact' | 'essp-exact', probe = run) => ({ layer, weight: 10, labels, probe, trainable: true, examples: 'positive' as const, targets: 'current' as const, schedule: 'constant' as const });
      expect(guideProbePath(g(2, 'ssp'), 0)).to.equal(join(run, 'probes', 'sub-2-x_ssp.safetensors'));
      expect(guideProbePath(g(2, 'essp'), 0)).to.equal(join(run, 'probes', 'sub-2-x_essp.safetensors'));
      expect(guideProbePath(g(3, 'ssp-exact'), 0)).to.equal(join(run, 'probes', 'sub-3-x_ssp.safetensors'));
      expect(guideProbePath(g(2, 'essp-exact'), 0)).to.equal(join(run, 'probes', 'sub-2-x_essp.safetensors'));
      const file = join(run, 'probes', 'sub-3-x_ssp.safetensors');
      expect(guideProbePath(g(7, 'ssp', file), 1)).to.equal(file);
      expectError(() => guideProbePath(g(4, 'ssp'), 1), 'guidance[1].probe', 'sub-4-x_ssp.safetensors', 'submodule 4');
      expectError(() => guideProbePath(g(4, 'ssp', join(run, 'nope')), 0), 'guidance[0].probe', 'not found');
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});

describe('topoprobe train', function () {
  let scratch: string;
  before(async function () {
    if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
    // The native backend when built (much faster); runs repeat exactly on either.
    await initBackend(nativeAvailable() ? 'blas' : 'cpu');
  });
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-train-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const base = (over: Record<string, unknown>): TrainConfig =>
    trainConfigSchema.parse({
      model: 'builtin:tiny', task: 'cola', out_dir: scratch, seed: 3, epochs: 2, batch_size: 16, log_every: 1, bucketing: true,
      data: { max_train_examples: 64, max_eval_examples: 48 }, optimizer: { lr: 1e-3 }, ...over,
    });

  it('guidance (weight > 0) lowers its probe loss faster than weight 0; a frozen probe does not change; the lr follows the schedule', async () => {
    const guide = { layer: 1, labels: 'ssp', examples: 'positive' };
    await runTrain(base({ name: 'w10', guidance: [{ ...guide, weight: 10 }] }), { log: silent });
    await runTrain(base({ name: 'w0', guidance: [{ ...guide, weight: 0 }] }), { log: silent });
    const drop = (name: string) => {
      const g = lines(join(scratch, name)).filter((l) => l.type === 'train').map((l) => l.guidance!.layer_1!);
      return g[0]! - g[g.length - 1]!;
    };
    expect(drop('w10')).to.be.above(drop('w0'));
    expect(drop('w10')).to.be.above(0);

    await runTrain(base({ name: 'frozen', guidance: [{ ...guide, weight: 10, trainable: false }] }), { log: silent });
    const fresh = new DepthProbe({ hidden: 64, seed: 3 + 1000 });
    const { probe } = DepthProbe.load(join(scratch, 'frozen', 'checkpoints', 'last', 'probe-0.safetensors'));
    expect(Array.from(await probe.weights())).to.deep.equal(Array.from(await fresh.weights()));
    probe.dispose();
    fresh.dispose();

    const train = lines(join(scratch, 'w10')).filter((l) => l.type === 'train');
    const total = 8; // 64 examples / 16 per batch x 2 epochs
    const lr = makeSchedule({ kind: 'linear', peak: 1e-3, warmupRatio: 0.1, totalSteps: total });
    for (const l of train) expect(l.lr).to.be.closeTo(lr(l.step - 1), 1e-12);
    const results = JSON.parse(readFileSync(join(scratch, 'w10', 'results.json'), 'utf8')) as { metric: string; steps: number; status: string };
    expect(results).to.include({ metric: 'mcc', steps: total, status: 'completed' });
  });

  it('holds no more tensors after each update than after the first (guided, with gradient accumulation)', async () => {
    const counts: number[] = [];
    await runTrain(base({ name: 'leak', grad_accum: 2, guidance: [{ layer: 1, weight: 10 }] }), {
      log: silent,
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).to.have.length(4); // 64 examples / 16 per batch / 2 accumulated x 2 epochs
    for (const c of counts) expect(c).to.equal(counts[0]);
  });

  it('tracks X_ssp of chosen submodules at every epoch when asked', async () => {
    await runTrain(base({ name: 'track', track: { submodules: [0, 2], sentences: 24, epochs: 2 } }), { log: silent });
    const track = lines(join(scratch, 'track')).filter((l) => l.type === 'track') as unknown as Array<{ epoch: number; x_ssp: Record<string, number> }>;
    // Before fine-tuning (epoch 0), then after each epoch.
    expect(track.map((t) => t.epoch)).to.deep.equal([0, 1, 2]);
    for (const t of track) {
      expect(Object.keys(t.x_ssp)).to.deep.equal(['layer_0', 'layer_2']);
      for (const v of Object.values(t.x_ssp)) expect(v).to.be.a('number').and.to.be.at.least(0);
    }
  });

  it('records the collapse monitors at every evaluation; results.json\'s collapsed is the verdict of the last one', async () => {
    const res = await runTrain(base({ name: 'mon', guidance: [{ layer: 1, weight: 10 }], eval: { every_steps: 2 } }), { log: silent });
    type Eval = { type: string; step: number; mcc: number; constant_predictor: boolean; max_label: Record<string, number>; sameness: Record<string, number> };
    const evals = lines(join(scratch, 'mon')).filter((l) => l.type === 'eval') as unknown as Eval[];
    expect(evals.map((e) => e.step)).to.deep.equal([2, 4, 6, 8]);
    for (const e of evals) {
      expect(e.constant_predictor).to.be.a('boolean');
      // A constant predictor's MCC is 0, so a non-zero MCC rules it out.
      if (e.mcc !== 0) expect(e.constant_predictor).to.equal(false);
      expect(Object.keys(e.max_label)).to.deep.equal(['layer_1']);
      // Mean largest label of sentences with at least one piece: at least 1.
      expect(e.max_label.layer_1).to.be.at.least(1);
      expect(e.sameness.layer_1).to.be.within(0, 1 + 1e-9);
    }
    const last = evals[evals.length - 1]!;
    const verdict = collapseVerdict(last.constant_predictor, { layer_1: { max_label: last.max_label.layer_1!, sameness: last.sameness.layer_1! } });
    expect(res.collapsed).to.equal(verdict.collapsed);
    expect(res.collapse!.monitors.layer_1!.max_label).to.equal(last.max_label.layer_1);
    const first = evals.find((e) => collapseVerdict(e.constant_predictor, { layer_1: { max_label: e.max_label.layer_1!, sameness: null } }).collapsed);
    expect(res.collapse!.first_step).to.equal(first ? first.step : null);
    const saved = JSON.parse(readFileSync(join(scratch, 'mon', 'results.json'), 'utf8')) as { collapsed: boolean };
    expect(saved.collapsed).to.equal(verdict.collapsed);
    // A baseline has no guides: only the constant-predictor figure.
    await runTrain(base({ name: 'plain' }), { log: silent });
    const plain = lines(join(scratch, 'plain')).filter((l) => l.type === 'eval') as unknown as Eval[];
    expect(plain[0]).to.have.property('constant_predictor');
    expect(plain[0]).to.not.have.property('max_label');
  });

  it('targets: pretrained fixes tree-consistent labels for every seen training sentence once; a resumed run reads them back and ends the same', async () => {
    const cfg = (name: string) => base({ name, guidance: [{ layer: 1, weight: 10, targets: 'pretrained', examples: 'positive' }], eval: { every_steps: 3 } });
    const full = await runTrain(cfg('fixed-full'), { log: silent });
    const file = join(scratch, 'fixed-full', 'targets-0.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { layer: number; examples: Record<string, number[]> };
    expect(stored.layer).to.equal(1);
    const n = Object.keys(stored.examples).length;
    // Positive examples only: more than none, fewer than the 64 training examples.
    expect(n).to.be.above(0).and.below(64);
    for (const labels of Object.values(stored.examples)) expect(isTreeConsistent(labels), JSON.stringify(labels)).to.equal(true);
    // The file is written before training and not touched after.
    const before = readFileSync(file, 'utf8');
    await runTrain(cfg('fixed-part'), { log: silent, stopAfter: 4 });
    expect(readFileSync(join(scratch, 'fixed-part', 'targets-0.json'), 'utf8')).to.equal(before);
    const resumed = await runTrain(cfg('fixed-part'), { log: silent }, { resume: join(scratch, 'fixed-part') });
    expect(resumed.final_metrics).to.deep.equal(full.final_metrics);
    const linesOf = (d: string) => lines(join(scratch, d)).map((l) => JSON.stringify(l));
    expect(linesOf('fixed-part')).to.deep.equal(linesOf('fixed-full'));
    // Without its labels file the run cannot resume, and says why.
    const part2 = await runTrain(cfg('fixed-gone'), { log: silent, stopAfter: 2 });
    expect(part2.status).to.equal('interrupted');
    rmSync(join(scratch, 'fixed-gone', 'targets-0.json'));
    await expectRejects(runTrain(cfg('fixed-gone'), { log: silent }, { resume: join(scratch, 'fixed-gone') }), 'targets-0.json', 'not found');
  });

  it('train --baseline prints both scores and whether each run collapsed, as results.json records it', async () => {
    const path = join(scratch, 'b.yaml');
    writeFileSync(path, `model: builtin:tiny\ntask: cola\nout_dir: ${scratch}\nname: both\nepochs: 1\nbatch_size: 16\nlog_every: 1\noptimizer: {lr: 1.0e-3}\ndata: {max_train_examples: 64, max_eval_examples: 48}\nguidance: [{layer: 1, weight: 10}]\n`);
    const res = await cli(['train', '--config', path, '--baseline']);
    expect(res.code, res.stderr).to.equal(0);
    const out = res.stdout.trim().split('\n');
    expect(out).to.have.length(2);
    for (const [line, dir] of [[out[0]!, 'both'], [out[1]!, 'both-baseline']] as const) {
      const r = JSON.parse(readFileSync(join(scratch, dir, 'results.json'), 'utf8')) as { collapsed: boolean };
      expect(line).to.include(r.collapsed ? ', COLLAPSED (' : ', not collapsed');
    }
    expect(out[0]).to.match(/^guided /);
    expect(out[1]).to.match(/^baseline \(no guidance\) /);
  });

  it('evaluates on a held-out part of the training split; holdout and fixed-target misconfigurations are refused by field', async () => {
    const res = await runTrain(base({ name: 'held', data: { holdout: 0.2, eval_split: 'holdout', max_train_examples: 64, max_eval_examples: 40 } }), { log: silent });
    expect(res.status).to.equal('completed');
    await expectRejects(runTrain(base({ name: 'bad1', data: { eval_split: 'holdout' } }), { log: silent }), 'data.eval_split', 'data.holdout');
    await expectRejects(runTrain(base({ name: 'bad2', mode: 'paper', guidance: [{ layer: 1, targets: 'pretrained' }] }), { log: silent }), 'guidance[0].targets', 'mode: clean');
    expect(existsSync(join(scratch, 'bad1'))).to.equal(false);
  });

  it('a resumed run ends with the same metrics and weights as an uninterrupted one', async () => {
    const cfg = (name: string) => base({ name, guidance: [{ layer: 2, weight: 10 }], eval: { every_steps: 3 } });
    const full = await runTrain(cfg('full'), { log: silent });
    const part = await runTrain(cfg('part'), { log: silent, stopAfter: 5 });
    expect(part.status).to.equal('interrupted');
    expect(existsSync(join(scratch, 'part', 'results.json'))).to.equal(false);
    const resumed = await runTrain(cfg('part'), { log: silent }, { resume: join(scratch, 'part') });
    expect(resumed.final_metrics).to.deep.equal(full.final_metrics);
    expect(resumed.steps).to.equal(full.steps);
    const a = loadCheckpoint(join(scratch, 'full', 'checkpoints', 'last'), { head: true }).weights;
    const b = loadCheckpoint(join(scratch, 'part', 'checkpoints', 'last'), { head: true }).weights;
    for (const [name, t] of a) expect(Array.from(b.get(name)!.data), name).to.deep.equal(Array.from(t.data));
    const linesOf = (d: string) => lines(join(scratch, d)).map((l) => JSON.stringify({ ...l }));
    expect(linesOf('part')).to.deep.equal(linesOf('full'));
    // TensorBoard: one event file, rebuilt on resume, with every step once: the uninterrupted run's scalars.
    expect(tensorboardScalars(join(scratch, 'part'))).to.deep.equal(tensorboardScalars(join(scratch, 'full')));
  });

  it('writes TensorBoard events under Hugging Face Trainer\'s names, one per metrics line, read back by an independent decoder', async () => {
    const res = await runTrain(base({ name: 'tb', guidance: [{ layer: 2, weight: 10 }], eval: { every_steps: 3 } }), { log: silent });
    const dir = join(scratch, 'tb');
    const scalars = tensorboardScalars(dir);
    const metrics = lines(dir);
    const train = metrics.filter((l) => l.type === 'train');
    const evals = metrics.filter((l) => l.type === 'eval');
    const series = (tag: string) => scalars.filter((s) => s.tag === tag).map((s) => [s.step, s.value]);
    const f32 = (x: unknown) => Math.fround(x as number);
    expect(series('train/loss')).to.deep.equal(train.map((l) => [l.step, f32(l.loss)]));
    expect(series('train/task_loss')).to.deep.equal(train.map((l) => [l.step, f32(l.task_loss)]));
    expect(series('train/learning_rate')).to.deep.equal(train.map((l) => [l.step, f32(l.lr)]));
    expect(series('train/grad_norm')).to.deep.equal(train.map((l) => [l.step, f32(l.grad_norm)]));
    expect(series('train/guidance/layer_2')).to.deep.equal(train.map((l) => [l.step, f32((l.guidance as Record<string, number>).layer_2)]));
    // The total is the task loss plus the weighted guidance term.
    for (const l of train) expect(l.loss as number).to.be.above(l.task_loss as number);
    expect(series('eval/loss')).to.deep.equal(evals.map((l) => [l.step, f32(l.eval_loss)]));
    expect(series('eval/matthews_correlation')).to.deep.equal(evals.map((l) => [l.step, f32(l.mcc)]));
    expect(series('eval/constant_predictor')).to.deep.equal(evals.map((l) => [l.step, l.constant_predictor ? 1 : 0]));
    expect(series('eval/sameness/layer_2')).to.have.length(evals.length);
    expect(res.status).to.equal('completed');
    const config = decodeFile(join(dir, readdirSync(dir).find((f) => f.includes('tfevents'))!)).find((e) => e.values?.[0]?.tag === 'config')!;
    expect(config.values![0]!.strings![0]).to.equal('```yaml\n' + readFileSync(join(dir, 'config.yaml'), 'utf8').trimEnd() + '\n```');
  });

  it('resumes exactly on the plain cpu backend too (a small fixture model)', async () => {
    await initBackend('cpu');
    try {
      const cfg = (name: string) => base({ name, model: join(FIXTURES, 'tiny-bert-cls'), guidance: [{ layer: 1, weight: 10 }], eval: { every_steps: 3 } });
      const full = await runTrain(cfg('cpu-full'), { log: silent });
      await runTrain(cfg('cpu-part'), { log: silent, stopAfter: 4 });
      const resumed = await runTrain(cfg('cpu-part'), { log: silent }, { resume: join(scratch, 'cpu-part') });
      expect(resumed.final_metrics).to.deep.equal(full.final_metrics);
      const a = loadCheckpoint(join(scratch, 'cpu-full', 'checkpoints', 'last'), { head: true }).weights;
      const b = loadCheckpoint(join(scratch, 'cpu-part', 'checkpoints', 'last'), { head: true }).weights;
      for (const [name, t] of a) expect(Array.from(b.get(name)!.data), name).to.deep.equal(Array.from(t.data));
    } finally {
      await initBackend(nativeAvailable() ? 'blas' : 'cpu');
    }
  });

  it('stops on a non-finite loss with a message naming the update, keeping the last good checkpoint', async () => {
    const failing = async (over: Record<string, unknown>) => {
      try {
        await runTrain(base({ model: join(FIXTURES, 'tiny-bert-cls'), max_grad_norm: null, ...over }), { log: silent });
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    // lr 1e30 from the first update: no checkpoint yet.
    expect(await failing({ name: 'nan0', optimizer: { lr: 1e30 }, schedule: { warmup_ratio: 0 } })).to.match(/non-finite loss at update \d+ .*stopped: no checkpoint had been saved yet/);
    // The first update uses lr 0 (warm-up) and is checkpointed by an evaluation; the blow-up comes later.
    const message = await failing({ name: 'nan1', optimizer: { lr: 1e30 }, schedule: { warmup_ratio: 0.5 }, eval: { every_steps: 1 } });
    const update = Number(/(?:non-finite loss at update|after update) (\d+)/.exec(message)?.[1]);
    expect(message).to.match(/^non-finite/);
    expect(message).to.include(`the last good checkpoint is ${join(scratch, 'nan1', 'checkpoints', 'last')}`);
    const state = JSON.parse(readFileSync(join(scratch, 'nan1', 'checkpoints', 'last', 'trainer_state.json'), 'utf8')) as { step: number };
    expect(state.step).to.be.at.least(1).and.below(update);
    expect(existsSync(join(scratch, 'nan1', 'results.json'))).to.equal(false);
  });

  it('Ctrl-C saves a checkpoint and stops with status 130; --resume then finishes the run', async () => {
    const path = join(scratch, 'c.yaml');
    writeFileSync(path, `model: builtin:tiny\ntask: cola\nout_dir: ${scratch}\nepochs: 2\nbatch_size: 8\nlog_every: 1\ndata: {max_train_examples: 400, max_eval_examples: 16}\n`);
    const { cmd, args } = cliCommand();
    const child = spawn(cmd, [...args, '--log-level', 'silent', '--backend', nativeAvailable() ? 'blas' : 'cpu', 'train', '--config', path, '--name', 'sig'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const metrics = join(scratch, 'sig', 'metrics.jsonl');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 4)) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(code, stdout).to.equal(130);
    expect(stdout).to.match(/interrupted after \d+ updates; continue with: topoprobe train --resume/);
    const state = JSON.parse(readFileSync(join(scratch, 'sig', 'checkpoints', 'last', 'trainer_state.json'), 'utf8')) as { step: number };
    expect(state.step).to.be.above(0).and.below(100);
    const resumed = await cli(['train', '--resume', join(scratch, 'sig')], {}, nativeAvailable() ? 'blas' : 'cpu');
    expect(resumed.code, resumed.stderr).to.equal(0);
    const results = JSON.parse(readFileSync(join(scratch, 'sig', 'results.json'), 'utf8')) as { steps: number; status: string };
    expect(results).to.include({ steps: 100, status: 'completed' });
  });

  for (const [what, yaml, sets, message] of [
    ['an unknown key', 'task: cola\nepoch: 3\n', [], /\(top level\): Unrecognized key.*"epoch"/],
    ['a wrong type', 'task: cola\n', ['batch_size=big'], /batch_size: .*number/],
    ['an out-of-range value', 'task: cola\n', ['optimizer.lr=-1'], /optimizer\.lr: Too small/],
    ['an unknown task', 'task: squad\n', [], /task: Invalid option/],
    ['a guided layer the model lacks', 'task: cola\nguidance: [{layer: 9}]\n', [], /guidance\[0\]\.layer: 9 does not exist/],
    ['a missing measure run', 'task: cola\nselect: {from: nowhere}\n', [], /select\.from: .*nowhere\/measure\.json not found/],
  ] as const) {
    it(`rejects ${what} with a message naming it`, async () => {
      const path = join(scratch, 'c.yaml');
      writeFileSync(path, `model: builtin:tiny\nout_dir: ${scratch}\n${yaml}`);
      const { code, stderr } = await cli(['train', '--config', path, ...sets.flatMap((s) => ['--set', s])]);
      expect(code).to.equal(2);
      expect(stderr).to.match(message);
    });
  }
});
