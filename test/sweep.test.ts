import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRuns, expandAxis, sweepConfigSchema } from '../src/sweep/config.js';
import { cliCommand } from '../src/sweep/executor.js';
import type { Manifest } from '../src/sweep/manifest.js';
import { cli, expectError, nativeAvailable, haveData } from './helpers.js';


describe('sweep expansion', () => {
  it('expands ranges and arithmetic progressions', () => {
    expect(expandAxis('a', ['0..3'])).to.deep.equal([0, 1, 2, 3]);
    expect(expandAxis('seed', [1, 5, '...', 37])).to.deep.equal([1, 5, 9, 13, 17, 21, 25, 29, 33, 37]);
    expect(expandAxis('x', [0.1, 'adam', true])).to.deep.equal([0.1, 'adam', true]);
    expectError(() => expandAxis('seed', [1, '...', 9]), 'axes.seed: "..." needs two numbers');
    expectError(() => expandAxis('seed', [1, 5, '...', 10]), 'axes.seed: 10 is not reached from 5 in steps of 4');
  });

  it('makes one run per combination plus a baseline per value of the other axes, with readable names', () => {
    const config = sweepConfigSchema.parse({
      name: 's', base: 'b.yaml', set: { epochs: 1, data: { max_length: 64 } },
      axes: { 'guidance[0].layer': ['0..1'], 'guidance[0].weight': [1, 10], seed: [1, 5] },
    });
    const runs = planRuns(config);
    expect(runs).to.have.length(2 * 2 * 2 + 2);
    // Each baseline comes just before the first guided run of its seed.
    expect(runs.map((r) => r.name).slice(0, 3)).to.deep.equal(['baseline_seed-1', 'layer-0_weight-1_seed-1', 'baseline_seed-5']);
    expect(runs[1]).to.deep.equal({ name: 'layer-0_weight-1_seed-1', overrides: ['epochs=1', 'data.max_length=64', 'guidance[0].layer=0', 'guidance[0].weight=1', 'seed=1'], baseline: false });
    expect(runs.filter((r) => r.baseline).map((r) => r.name)).to.deep.equal(['baseline_seed-1', 'baseline_seed-5']);
    // With the seed first, each seed's block starts with its baseline.
    const bySeed = planRuns(sweepConfigSchema.parse({ ...config, axes: { seed: [1, 5], 'guidance[0].layer': ['0..1'] } })).map((r) => r.name);
    expect(bySeed).to.deep.equal(['baseline_seed-1', 'seed-1_layer-0', 'seed-1_layer-1', 'baseline_seed-5', 'seed-5_layer-0', 'seed-5_layer-1']);
    expect(runs.find((r) => r.baseline)!.overrides).to.include.members(['guidance=[]', 'select=null']);
    const noBaseline = planRuns({ ...config, baseline: false });
    expect(noBaseline).to.have.length(8);
  });
});

describe('topoprobe sweep', function () {
  let scratch: string;
  before(function () {
    if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
  });
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-sweep-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const backend = () => (nativeAvailable() ? 'blas' : 'cpu');

  function writeConfigs(): string {
    writeFileSync(join(scratch, 'base.yaml'), 'model: builtin:tiny\ntask: cola\nepochs: 1\nbatch_size: 16\ndata: {max_train_examples: 32, max_eval_examples: 16}\nguidance: [{layer: 1, weight: 10}]\n');
    // Layer 9 does not exist in the 2-layer built-in model: those runs fail, every try.
    writeFileSync(join(scratch, 'sweep.yaml'), `name: tiny\nbase: base.yaml\naxes:\n  guidance[0].layer: [1, 9]\n  seed: [1, 2]\nbaseline: true\nworkers: 1\nretries: 1\nout_dir: ${scratch}\n`);
    return join(scratch, 'sweep.yaml');
  }

  it('--dry-run prints the expanded runs and runs nothing', async () => {
    const { code, stdout } = await cli(['sweep', '--config', writeConfigs(), '--dry-run']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/^6 runs/);
    expect(stdout).to.include('layer-9_seed-2');
    expect(stdout).to.include('baseline_seed-1');
    expect(existsSync(join(scratch, 'tiny'))).to.equal(false);
  });

  it('survives being killed mid-way: no run is done twice or lost, and a failing run is recorded without stopping the others', async () => {
    const config = writeConfigs();
    const sweepDir = join(scratch, 'tiny');
    const { cmd, args } = cliCommand();
    const child = spawn(cmd, [...args, '--log-level', 'silent', '--backend', backend(), 'sweep', '--config', config], { detached: true, stdio: 'ignore' });
    const manifest = () => JSON.parse(readFileSync(join(sweepDir, 'manifest.json'), 'utf8')) as Manifest;
    // Kill the whole process group once the first run has completed.
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (existsSync(join(sweepDir, 'manifest.json')) && manifest().runs.some((r) => r.status === 'completed')) break;
    }
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const before = manifest();
    const done = before.runs.filter((r) => r.status === 'completed');
    expect(done.length).to.be.at.least(1);
    expect(done.length).to.be.below(6);
    const stamps = new Map(done.map((r) => [r.name, statSync(join(sweepDir, r.dir, 'results.json')).mtimeMs]));

    const again = await cli(['sweep', '--config', config], {}, backend());
    expect(again.code, again.stderr).to.equal(1);
    const after = manifest();
    const byName = new Map(after.runs.map((r) => [r.name, r]));
    for (const name of ['layer-1_seed-1', 'layer-1_seed-2', 'baseline_seed-1', 'baseline_seed-2']) {
      expect(byName.get(name)!.status, name).to.equal('completed');
      expect(existsSync(join(sweepDir, byName.get(name)!.dir, 'results.json')), name).to.equal(true);
    }
    for (const [name, mtime] of stamps) expect(statSync(join(sweepDir, byName.get(name)!.dir, 'results.json')).mtimeMs, `${name} ran twice`).to.equal(mtime);
    for (const name of ['layer-9_seed-1', 'layer-9_seed-2']) {
      const r = byName.get(name)!;
      expect(r.status).to.equal('failed');
      expect(r.attempts).to.equal(2);
      expect(r.error).to.match(/guidance\[0\]\.layer: 9 does not exist/);
    }
    expect(again.stdout).to.match(/4\/6 runs completed, 2 failed/);
    // A sweep with failed runs reports them, with their logs, and exits 1 (above).
    for (const name of ['layer-9_seed-1', 'layer-9_seed-2']) {
      expect(again.stdout).to.include(`failed: ${name} after 2 attempts`);
      expect(again.stdout).to.include(`logs: ${join(sweepDir, 'runs', name, 'sweep.log')}`);
      expect(readFileSync(join(sweepDir, 'runs', name, 'sweep.log'), 'utf8')).to.match(/guidance\[0\]\.layer: 9 does not exist/);
    }
    expect(readdirSync(join(sweepDir, 'runs')).filter((f) => f.endsWith('.lock'))).to.deep.equal([]);
  });
});
