import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunEvents, entryScalars, measureRowScalars } from '../src/util/run-events.js';
import { decodeFile, type DecodedEvent } from './tfevents-decoder.js';

const f32 = (x: number) => Math.fround(x);

/** Per event: its step and {tag: value} of its scalars (text summaries as their string). */
function scalarsOf(events: DecodedEvent[]): Array<{ step: number; values: Record<string, number | string> }> {
  return events
    .filter((e) => e.values)
    .map((e) => ({ step: Number(e.step), values: Object.fromEntries(e.values!.map((v) => [v.tag, v.simpleValue ?? v.strings?.[0] ?? NaN])) }));
}

describe('run-events: a run folder in TensorBoard', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-events-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names metrics lines as Hugging Face\'s Trainer does, keeping ours under the same prefixes', () => {
    expect(entryScalars({ type: 'train', step: 20, epoch: 1, loss: 0.9, task_loss: 0.7, guidance: { layer_4: 2 }, lr: 5e-5, grad_norm: 3.5 })).to.deep.equal({
      'train/epoch': 1, 'train/loss': 0.9, 'train/task_loss': 0.7, 'train/guidance/layer_4': 2, 'train/learning_rate': 5e-5, 'train/grad_norm': 3.5,
    });
    expect(entryScalars({ type: 'eval', step: 268, epoch: 1, eval_loss: 0.61, mcc: 0.2, constant_predictor: true, max_label: { layer_0: 2.8 }, sameness: { layer_0: 0.48 } })).to.deep.equal({
      'eval/loss': 0.61, 'eval/matthews_correlation': 0.2, 'eval/constant_predictor': 1, 'eval/max_label/layer_0': 2.8, 'eval/sameness/layer_0': 0.48,
    });
    expect(entryScalars({ type: 'eval', step: 9, epoch: 1, eval_loss: 1, pearson: 0.5, spearman: 0.4, accuracy: null })).to.deep.equal({ 'eval/loss': 1, 'eval/pearson': 0.5, 'eval/spearmanr': 0.4 });
    expect(entryScalars({ type: 'track', step: 0, epoch: 0, x_ssp: { layer_0: 1.2, layer_1: 0.9 } })).to.deep.equal({ 'track/x_ssp/layer_0': 1.2, 'track/x_ssp/layer_1': 0.9 });
    // Pretraining: the masked-LM loss is train/loss, the held-out scores eval/loss and eval/accuracy.
    expect(entryScalars({ type: 'train', step: 5, epoch: 1, mlm_loss: 7.1, lr: 1e-4, grad_norm: 2, pieces_seen: 4096 })).to.deep.equal({
      'train/epoch': 1, 'train/loss': 7.1, 'train/learning_rate': 1e-4, 'train/grad_norm': 2, 'train/pieces_seen': 4096,
    });
    expect(entryScalars({ type: 'eval', step: 0, epoch: 1, held_out_loss: 9.3, held_out_accuracy: 0 })).to.deep.equal({ 'eval/loss': 9.3, 'eval/accuracy': 0 });
  });

  it('a measure row gives its score columns, not its counts', () => {
    expect(measureRowScalars({ submodule: 3, x_sp: 2.4, x_ssp: 0.11, x_essp: null, spearman: 0.6, root_acc: 0.5, uuas: 0.4, distance_spearman: 0.6, sp_test_tokens: 100, ssp_train_sentences: 9 })).to.deep.equal({
      'measure/x_sp': 2.4, 'measure/x_ssp': 0.11, 'measure/spearman': 0.6, 'measure/root_acc': 0.5, 'measure/uuas': 0.4, 'measure/distance_spearman': 0.6,
    });
  });

  it('writes the config as text, then each entry at its step', () => {
    const events = RunEvents.open(dir, 'seed: 1\ntask: cola\n');
    events.record({ type: 'train', step: 1, epoch: 1, loss: 0.5, lr: 0 });
    events.record({ type: 'eval', step: 2, epoch: 1, eval_loss: 0.25, mcc: 0.125 });
    events.close();
    const files = readdirSync(dir);
    expect(files).to.have.length(1);
    expect(files[0]).to.match(/^events\.out\.tfevents\.\d{10}\./);
    const decoded = decodeFile(join(dir, files[0]!));
    expect(decoded[0]!.fileVersion).to.equal('brain.Event:2');
    const config = decoded[1]!.values![0]!;
    expect(config).to.include({ tag: 'config', pluginName: 'text' });
    expect(config.strings).to.deep.equal(['```yaml\nseed: 1\ntask: cola\n```']);
    expect(scalarsOf(decoded.slice(2))).to.deep.equal([
      { step: 1, values: { 'train/epoch': 1, 'train/loss': 0.5, 'train/learning_rate': 0 } },
      { step: 2, values: { 'eval/loss': 0.25, 'eval/matthews_correlation': 0.125 } },
    ]);
  });

  it('on resume, replaces the event files by one holding the kept entries, with their old wall times, and no step twice', async () => {
    const first = RunEvents.open(dir, 'a: 1\n');
    for (let step = 1; step <= 5; step++) {
      first.record({ type: 'train', step, epoch: 1, loss: step / 10 });
      await new Promise((r) => setTimeout(r, 5));
    }
    first.close();
    const [oldFile] = readdirSync(dir);
    const oldTimes = decodeFile(join(dir, oldFile!)).filter((e) => e.values?.[0]?.tag === 'train/epoch').map((e) => e.wallTime);
    // The checkpoint was at update 3: lines 4 and 5 are dropped and will be recomputed.
    const kept = [1, 2, 3].map((step) => ({ type: 'train', step, epoch: 1, loss: step / 10 }));
    const resumed = RunEvents.open(dir, 'a: 1\n', kept);
    resumed.record({ type: 'train', step: 4, epoch: 1, loss: 0.45 });
    resumed.close();
    const files = readdirSync(dir);
    expect(files).to.have.length(1);
    expect(files[0]).to.not.equal(oldFile);
    const decoded = decodeFile(join(dir, files[0]!));
    expect(decoded.filter((e) => e.values?.[0]?.tag === 'config')).to.have.length(1);
    const series = scalarsOf(decoded).filter((e) => 'train/loss' in e.values);
    expect(series.map((e) => e.step)).to.deep.equal([1, 2, 3, 4]);
    expect(series.map((e) => e.values['train/loss'])).to.deep.equal([0.1, 0.2, 0.3, 0.45].map(f32));
    const replayedTimes = decoded.filter((e) => e.values?.[0]?.tag === 'train/epoch').slice(0, 3).map((e) => e.wallTime);
    expect(replayedTimes).to.deep.equal(oldTimes.slice(0, 3));
  });
});
