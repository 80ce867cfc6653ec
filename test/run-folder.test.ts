/** Run folders before a run begins: names that would leave out_dir, refused runs that leave no stub, finished runs. */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, expectError, haveData, nativeAvailable } from './helpers.js';
import { checkRunName, insideFolder, removeStubRun } from '../src/util/run-folder.js';

describe('run folders', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-runfolder-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('a run name is one folder name', () => {
    for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b', '/abs']) expectError(() => checkRunName(bad, '--name'), '--name', 'is not a run folder name');
    for (const good of ['cola-seed1', 'run.v2', '..x', 'x..']) expect(() => checkRunName(good, '--name')).not.to.throw();
  });

  it('insideFolder accepts paths under the base only', () => {
    expect(insideFolder('/a/runs', 'x')).to.equal('/a/runs/x');
    expect(insideFolder('/a/runs', 'x/../y')).to.equal('/a/runs/y');
    expect(insideFolder('/a/runs', '..x')).to.equal('/a/runs/..x');
    for (const bad of ['..', '../x', '/a/other', '', '.', 'x/../../b']) expect(insideFolder('/a/runs', bad), bad).to.equal(null);
  });

  it('removes a folder a refused command created when it holds only the log', () => {
    const stub = join(scratch, 'stub');
    mkdirSync(stub);
    writeFileSync(join(stub, 'log.jsonl'), '');
    removeStubRun(stub, true);
    expect(existsSync(stub), 'a folder that was there before stays').to.equal(true);
    writeFileSync(join(stub, 'config.yaml'), 'x: 1\n');
    removeStubRun(stub, false);
    expect(existsSync(stub), 'a folder holding a run stays').to.equal(true);
    rmSync(join(stub, 'config.yaml'));
    removeStubRun(stub, false);
    expect(existsSync(stub)).to.equal(false);
  });

  const config = (extra: string) => {
    const path = join(scratch, 'c.yaml');
    writeFileSync(path, `model: builtin:tiny\ntask: cola\nout_dir: ${join(scratch, 'out')}\nmax_steps: 2\nbatch_size: 8\ndata: {max_train_examples: 16, max_eval_examples: 8}\n${extra}`);
    return path;
  };

  it('refuses --name and a config name with separators or dot folders, writing nothing outside out_dir', async () => {
    const path = config('');
    for (const name of ['..', '../escape', 'a/b']) {
      const { code, stderr } = await cli(['train', '--config', path, '--name', name]);
      expect(code, name).to.equal(2);
      expect(stderr).to.include(`--name: ${JSON.stringify(name)} is not a run folder name`);
    }
    const named = config('name: ..\n');
    const { code, stderr } = await cli(['train', '--config', named]);
    expect(code).to.equal(2);
    expect(stderr).to.include(`${named}: name: ".." is not a run folder name`);
    const slashed = config('name: ../escape\n');
    const s = await cli(['train', '--config', slashed]);
    expect(s.code).to.equal(2);
    expect(s.stderr).to.include(`${slashed}: name:`);
    expect(readdirSync(scratch).sort()).to.deep.equal(['c.yaml']);
    const measure = join(scratch, 'm.yaml');
    writeFileSync(measure, `model: builtin:tiny\nout_dir: ${join(scratch, 'out')}\n`);
    const m = await cli(['measure', '--config', measure, '--name', '../up']);
    expect(m.code).to.equal(2);
    expect(m.stderr).to.include('--name: "../up" is not a run folder name');
    expect(readdirSync(scratch).sort()).to.deep.equal(['c.yaml', 'm.yaml']);
  });

  it('a run refused before it begins (a model that does not exist) leaves no run folder', async () => {
    const path = config('');
    writeFileSync(path, readFileSync(path, 'utf8').replace('builtin:tiny', join(scratch, 'no-such-model')));
    const { code, stderr } = await cli(['train', '--config', path, '--name', 'refused']);
    expect(code).to.equal(2);
    expect(stderr).to.include('no-such-model');
    expect(existsSync(join(scratch, 'out', 'refused'))).to.equal(false);
  });

  it('resuming a finished run says so and changes nothing', async function () {
    if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
    const backend = nativeAvailable() ? 'blas' : 'cpu';
    const first = await cli(['train', '--config', config(''), '--name', 'done'], {}, backend);
    expect(first.code, first.stderr).to.equal(0);
    const runDir = join(scratch, 'out', 'done');
    const before = readdirSync(runDir).map((f) => [f, statSync(join(runDir, f)).mtimeMs]);
    const again = await cli(['train', '--resume', runDir], {}, backend);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.equal(`${runDir} is a finished run (results.json is there); nothing to resume\n`);
    expect(readdirSync(runDir).map((f) => [f, statSync(join(runDir, f)).mtimeMs])).to.deep.equal(before);
    // A new run under a finished run's name is refused, and the finished run stays.
    const clash = await cli(['train', '--config', config(''), '--name', 'done'], {}, backend);
    expect(clash.code).to.equal(2);
    expect(clash.stderr).to.include('already holds a finished run');
    expect(existsSync(join(runDir, 'results.json'))).to.equal(true);
  });
});
