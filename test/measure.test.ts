import { expect } from 'chai';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, haveData } from './helpers.js';
import { DepthProbe, DistanceProbe } from '../src/probe/probe.js';
import { initBackend } from '../src/backend/index.js';
import { decodeFile } from './tfevents-decoder.js';

interface MeasureJson {
  encoder_passes: number;
  datasets: Record<string, { train: number; dev: number; test: number; pad_to: number }>;
  rows: Array<Record<string, number | null>>;
}


describe('topoprobe measure', function () {
  let scratch: string;
  before(function () {
    if (!haveData('ud-ewt/en_ewt-ud-train.conllu', 'bert-uncased/vocab.txt')) this.skip();
  });
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-measure-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  /** A tiny measurement of builtin:tiny (2 layers, so submodules 0..2). */
  function writeConfig(extra = ''): string {
    const path = join(scratch, 'measure.yaml');
    writeFileSync(path, `model: builtin:tiny\nout_dir: ${scratch}\ndata:\n  max_sentences: 12\nepochs: 2\nbatch_size: 4\nseed: 3\n${extra}`);
    return path;
  }

  it('writes every artifact, and the same seed gives the same numbers', async () => {
    const config = writeConfig();
    const first = await cli(['measure', '--config', config, '--name', 'a']);
    expect(first.code, first.stderr).to.equal(0);
    const second = await cli(['measure', '--config', config, '--name', 'b']);
    expect(second.code, second.stderr).to.equal(0);
    const dir = join(scratch, 'a');
    expect(readdirSync(dir).filter((f) => !f.includes('tfevents')).sort()).to.deep.equal(['config.yaml', 'log.jsonl', 'measure.csv', 'measure.json', 'measure.png', 'measure.svg', 'probes']);
    const result = JSON.parse(readFileSync(join(dir, 'measure.json'), 'utf8')) as MeasureJson;
    expect(result.rows.map((r) => r.submodule)).to.deep.equal([0, 1, 2]);
    for (const r of result.rows) {
      for (const k of ['x_sp', 'x_ssp', 'x_essp', 'spearman', 'root_acc', 'uuas', 'distance_spearman']) expect(r[k], k).to.be.a('number');
      expect(r.uuas).to.be.within(0, 1);
      expect(r.distance_spearman).to.be.within(-1, 1);
    }
    // One encoder pass per sentence: at most 12 per split (some may be skipped as too long), 3 splits, 2 data sets.
    const sentences = Object.values(result.datasets).flatMap((d) => [d.train, d.dev, d.test]);
    expect(sentences).to.have.length(6);
    for (const n of sentences) expect(n).to.be.within(10, 12);
    expect(result.encoder_passes).to.equal(sentences.reduce((a, b) => a + b, 0));
    const csv = readFileSync(join(dir, 'measure.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).to.match(/^submodule,x_sp,x_ssp,x_essp,spearman,root_acc,uuas,distance_spearman,/);
    expect(csv).to.have.length(4);
    // Per submodule the three depth probes and the distance probe.
    expect(readdirSync(join(dir, 'probes')).sort()).to.deep.equal([0, 1, 2].flatMap((s) => ['distance', 'x_essp', 'x_sp', 'x_ssp'].map((m) => `sub-${s}-${m}.safetensors`)).sort());
    const { probe: distance, metadata: distanceMeta } = DistanceProbe.load(join(dir, 'probes', 'sub-1-distance.safetensors'));
    expect(distance.rank).to.equal(32);
    expect(distanceMeta).to.include({ submodule: '1', metric: 'distance', probe: 'distance' });
    distance.dispose();
    await initBackend('cpu');
    const { probe, metadata } = DepthProbe.load(join(dir, 'probes', 'sub-2-x_ssp.safetensors'));
    expect(probe.rank).to.equal(32);
    expect(metadata).to.include({ submodule: '2', metric: 'x_ssp', mode: 'clean' });
    probe.dispose();
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).to.match(/mode: clean/);
    // The resolved config says the distance probe was on (its default with x_sp).
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).to.match(/^distance: true$/m);
    expect(readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n')[0]).to.match(/^\{"level":30/);
    // TensorBoard: each score over the submodules (step = submodule), read back by the independent decoder.
    const eventFiles = readdirSync(dir).filter((f) => f.includes('tfevents'));
    expect(eventFiles).to.have.length(1);
    const events = decodeFile(join(dir, eventFiles[0]!)).filter((e) => e.values?.some((v) => v.tag.startsWith('measure/')));
    expect(events.map((e) => Number(e.step))).to.deep.equal([0, 1, 2]);
    for (const [k, e] of events.entries()) {
      const got = Object.fromEntries(e.values!.map((v) => [v.tag, v.simpleValue]));
      for (const key of ['x_sp', 'x_ssp', 'x_essp', 'spearman', 'root_acc', 'uuas', 'distance_spearman']) {
        expect(got[`measure/${key}`], key).to.equal(Math.fround(result.rows[k]![key]!));
      }
    }
    const other = JSON.parse(readFileSync(join(scratch, 'b', 'measure.json'), 'utf8')) as MeasureJson;
    expect(other.rows).to.deep.equal(result.rows);
    expect(first.stdout).to.match(/submodule +x_sp +x_ssp +x_essp/);
  });

  it('paper mode scores every padded position, specials and pads included', async () => {
    const config = writeConfig('mode: paper\nsubmodules: [2]\nmetrics: [x_ssp]\n');
    const { code, stderr } = await cli(['measure', '--config', config, '--name', 'p']);
    expect(code, stderr).to.equal(0);
    const result = JSON.parse(readFileSync(join(scratch, 'p', 'measure.json'), 'utf8')) as MeasureJson;
    const pool = result.datasets.pool!;
    expect(result.rows[0]!.ssp_test_tokens).to.equal(pool.test * pool.pad_to);
    expect(result.rows[0]!.x_sp).to.equal(null);
    // No gold trees read, so no distance probe.
    expect(result.rows[0]!.uuas).to.equal(null);
    expect(readdirSync(join(scratch, 'p', 'probes'))).to.deep.equal(['sub-2-x_ssp.safetensors']);
  });

  it('draws the control run beside this one, and redraws a finished run with --plot', async () => {
    const config = writeConfig('submodules: [0, 2]\nmetrics: [x_sp]\n');
    const control = await cli(['measure', '--config', config, '--name', 'reinit', '--set', 'reinitialize=true']);
    expect(control.code, control.stderr).to.equal(0);
    const main = await cli(['measure', '--config', config, '--name', 'trained', '--control', join(scratch, 'reinit')]);
    expect(main.code, main.stderr).to.equal(0);
    const svg = readFileSync(join(scratch, 'trained', 'measure.svg'), 'utf8');
    expect(svg).to.contain('reinitialised');
    expect(svg).to.contain('trained');
    expect(readFileSync(join(scratch, 'trained', 'config.yaml'), 'utf8')).to.contain(`control: ${join(scratch, 'reinit')}`);
    // --plot redraws from measure.json alone: without the control the legend of weights is gone.
    const again = await cli(['measure', '--plot', join(scratch, 'trained')]);
    expect(again.code, again.stderr).to.equal(0);
    expect(readFileSync(join(scratch, 'trained', 'measure.svg'), 'utf8')).to.not.contain('reinitialised');
    // Two runs of the same trained model: the legend names their folders.
    cpSync(join(scratch, 'trained'), join(scratch, 'trained-b'), { recursive: true });
    const pair = await cli(['measure', '--plot', join(scratch, 'trained'), '--control', join(scratch, 'trained-b')]);
    expect(pair.code, pair.stderr).to.equal(0);
    expect(readFileSync(join(scratch, 'trained', 'measure.svg'), 'utf8')).to.contain('trained-b');
    const missing = await cli(['measure', '--config', config, '--name', 'x', '--control', join(scratch, 'nope')]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/control: .*nope.*measure\.json not found/);
    expect(existsSync(join(scratch, 'x'))).to.equal(false);
  });

  for (const [what, extra, sets, message] of [
    ['an unknown submodule', '', ['submodules=[0,7]'], /submodules\[1\]: 7 does not exist \(this model has submodules 0\.\.2/],
    ['an unknown key', 'epoch: 3\n', [], /measure\.yaml: \(top level\): Unrecognized key.*"epoch"/],
    ['a wrong type', '', ['epochs=many'], /measure\.yaml: epochs: .*number/],
    ['a missing data file', '', ['data.ewt.train=ud-ewt/none.conllu'], /data\.ewt\.train: .*none\.conllu not found/],
  ] as const) {
    it(`rejects ${what} before any work, naming it`, async () => {
      const config = writeConfig(extra);
      const { code, stderr } = await cli(['measure', '--config', config, '--name', 'x', ...sets.flatMap((s) => ['--set', s])]);
      expect(code).to.equal(2);
      expect(stderr).to.match(message);
      expect(existsSync(join(scratch, 'x', 'measure.json'))).to.equal(false);
    });
  }

  it('names the file and line of malformed CoNLL-U', async () => {
    const bad = join(scratch, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'bad.conllu'), '1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\n\n');
    const config = writeConfig();
    const { code, stderr } = await cli(['measure', '--config', config, '--name', 'y', '--set', `data.ewt.train=${join(bad, 'bad.conllu')}`]);
    expect(code).to.equal(2);
    expect(stderr).to.include(`${join(bad, 'bad.conllu')}:2: expected 10 tab-separated columns`);
  });

  it('refuses to overwrite an earlier run', async () => {
    const config = writeConfig('submodules: [0]\nmetrics: [x_ssp]\n');
    expect((await cli(['measure', '--config', config, '--name', 'same'])).code).to.equal(0);
    const again = await cli(['measure', '--config', config, '--name', 'same']);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.match(/already exists/);
  });
});
