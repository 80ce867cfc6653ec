import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arraySpec, compareScript, expandSpec, jobScript, parseJobId, refusalHint, runStates, sharedPathProblem, shellQuote, type SweepStatus } from '../src/sweep/slurm.js';
import { parseSacct, parseSqueue } from '../src/sweep/queue.js';
import { lockState, type Manifest } from '../src/sweep/manifest.js';
import { cli, haveData, nativeAvailable } from './helpers.js';

describe('Slurm job arrays (pure parts)', () => {
  it('compresses run indices into Slurm array ranges with the parallelism limit, and reads them back', () => {
    expect(arraySpec([0, 1, 2, 3], 2)).to.equal('0-3%2');
    expect(arraySpec([9, 7, 8, 5, 0, 1, 3])).to.equal('0-1,3,5,7-9');
    expect(arraySpec([4])).to.equal('4');
    expect(arraySpec([2, 2, 3])).to.equal('2-3');
    expect(() => arraySpec([])).to.throw('no runs');
    expect(() => arraySpec([-1])).to.throw('not a run index');
    // Property: expandSpec(arraySpec(s)) is the set s, for random subsets of 0..39.
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 200; trial++) {
      const s = [...Array(40).keys()].filter(() => rand() < 0.5);
      if (s.length === 0) continue;
      expect([...expandSpec(arraySpec(s, 3))].sort((a, b) => a - b)).to.deep.equal(s);
    }
  });

  it('quotes shell words only where needed', () => {
    expect(shellQuote('/a/b-c_d.e')).to.equal('/a/b-c_d.e');
    expect(shellQuote('a b')).to.equal("'a b'");
    expect(shellQuote("it's")).to.equal("'it'\\''s'");
    // What the shell reads back is the word.
    const r = spawnSync('bash', ['-c', `printf %s ${shellQuote("it's a $HOME `x`")}`], { encoding: 'utf8' });
    expect(r.stdout).to.equal("it's a $HOME `x`");
  });

  it('writes a job script that requeues on a warning signal and runs the task from the sweep folder, and a comparison script', () => {
    const cliCmd = ['/usr/bin/node', '/shared/topoprobe/bin/topoprobe.js'];
    const opts = { partition: 'gpu', time: '02:00:00', gpusPerTask: 1, cpusPerTask: 8, signalLead: 120, sbatchArgs: ['--account=nlp lab'] };
    const lines = jobScript({ name: 'cola', sweepDir: '/shared/runs/sweeps/cola', cli: cliCmd, opts, runArgs: ['--retries', '1'] }).split('\n');
    expect(lines[0]).to.equal('#!/bin/bash');
    for (const l of ['#SBATCH --requeue', '#SBATCH --signal=B:USR1@120', '#SBATCH --partition=gpu', '#SBATCH --time=02:00:00', '#SBATCH --gpus-per-task=1', '#SBATCH --cpus-per-task=8', "#SBATCH '--account=nlp lab'", '#SBATCH --output=/shared/runs/sweeps/cola/slurm/%A_%a.out']) {
      expect(lines).to.include(l);
    }
    expect(lines.at(-2)).to.equal('exec /usr/bin/node /shared/topoprobe/bin/topoprobe.js sweep --task /shared/runs/sweeps/cola --retries 1');
    const cmp = compareScript({ name: 'cola', sweepDir: '/shared/runs/sweeps/cola', cli: cliCmd, opts }).split('\n');
    expect(cmp).to.include('#SBATCH --partition=gpu');
    expect(cmp).to.include('#SBATCH --cpus-per-task=1');
    expect(cmp.some((l) => l.includes('gpus'))).to.equal(false);
    expect(cmp.at(-2)).to.equal('exec /usr/bin/node /shared/topoprobe/bin/topoprobe.js compare /shared/runs/sweeps/cola');
  });

  it('reads sbatch, squeue and sacct output, and points a refusal at its flag', () => {
    expect(parseJobId('4242\n')).to.equal('4242');
    expect(parseJobId('4242;cluster\n')).to.equal('4242');
    expect(() => parseJobId('Submitted batch job 4242')).to.throw('not a job id');
    expect(parseSqueue('12_0|RUNNING|None|node3\n12_1|PENDING|Resources|\n')).to.deep.equal([
      { id: '12_0', state: 'RUNNING', reason: 'None', node: 'node3' },
      { id: '12_1', state: 'PENDING', reason: 'Resources', node: '' },
    ]);
    expect(parseSacct('12_0|COMPLETED|0:0\n12_1|CANCELLED by 0|0:15\n')).to.deep.equal([
      { id: '12_0', state: 'COMPLETED', exitCode: '0:0' },
      { id: '12_1', state: 'CANCELLED', exitCode: '0:15' },
    ]);
    expect(refusalHint('sbatch: error: invalid partition specified: nope')).to.match(/^--partition/);
    expect(refusalHint('sbatch: error: Invalid --time specification')).to.match(/^--time/);
    expect(refusalHint('sbatch: error: Requested time limit is invalid (missing or exceeds some limit)')).to.match(/^--time/);
    expect(refusalHint('sbatch: error: Invalid generic resource (gres) specification')).to.match(/^--gpus-per-task/);
    expect(refusalHint('sbatch: error: something else')).to.equal(null);
  });

  it('knows which paths the compute nodes cannot see', () => {
    const cluster = { nodes: ['node1', 'node2'], host: 'login1' };
    expect(sharedPathProblem('/tmp/sweeps/a', cluster)).to.match(/under \/tmp/);
    expect(sharedPathProblem('/dev/shm/a', cluster)).to.match(/under \/dev\/shm/);
    expect(sharedPathProblem('/scratch/a', { ...cluster, fsType: 0x01021994 })).to.match(/tmpfs/);
    expect(sharedPathProblem('/home/me/sweeps/a', { ...cluster, fsType: 0x6969 })).to.equal(null);
    expect(sharedPathProblem('/tmpfoo/a', cluster)).to.equal(null);
    // A cluster of this one machine sees everything this machine does.
    expect(sharedPathProblem('/tmp/sweeps/a', { nodes: ['login1'], host: 'login1' })).to.equal(null);
  });

  it('joins the manifest with the queue into run states', () => {
    const run = (name: string, status: string, extra: Record<string, unknown> = {}) => ({ name, dir: `runs/${name}`, overrides: [], baseline: false, status, attempts: 1, failures: 0, ...extra });
    const m = {
      name: 's', config: 'c', base: 'b', created: '',
      runs: [
        run('a', 'completed', { seconds: 12.4 }),
        run('b', 'failed', { error: 'exit 2: topoprobe: bad\nlast line', failures: 1 }),
        run('c', 'running'),
        run('d', 'pending', { attempts: 0 }),
        run('e', 'pending', { attempts: 1, slurm: { task: '7_4', node: 'n1', restarts: 0, requeued: 1 } }),
        run('f', 'running'),
        run('g', 'pending', { attempts: 0 }),
      ],
      slurm: { submissions: [{ array: '7', compare: '8', tasks: '0-5%2', submitted: '' }] },
    } as unknown as Manifest;
    const queue = parseSqueue('7_2|RUNNING|None|n2\n7_3|PENDING|JobArrayTaskLimit|\n7_4|PENDING|BeginTime|\n');
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-states-'));
    try {
      mkdirSync(join(dir, 'runs'));
      const st = runStates(m, queue, null, dir);
      expect(st.map((r) => [r.name, r.state, r.task ?? null])).to.deep.equal([
        ['a', 'completed', '7_0'], ['b', 'failed', '7_1'], ['c', 'running', '7_2'], ['d', 'pending', '7_3'],
        ['e', 'requeued', '7_4'], ['f', 'stopped', '7_5'], ['g', 'pending', null],
      ]);
      expect(st[0]!.detail).to.equal('12 s');
      expect(st[1]!.detail).to.equal('last line');
      expect(st[2]!.detail).to.equal('on n2');
      expect(st[3]!.detail).to.equal('pending (JobArrayTaskLimit)');
      expect(st[5]!.detail).to.match(/submit the sweep again/);
      expect(st[6]!.detail).to.equal('not submitted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const sbatchThere = spawnSync('sbatch', ['--version']).status === 0;

describe('sweeps on a real Slurm cluster', function () {
  this.timeout(900_000);
  let scratch: string;
  const backend = () => (nativeAvailable() ? 'blas' : 'cpu');

  before(function () {
    if (!sbatchThere) {
      if (process.env.TOPOPROBE_REQUIRE_SLURM === '1') throw new Error('TOPOPROBE_REQUIRE_SLURM=1 but sbatch does not run (start a cluster: scripts/slurm-local.sh)');
      console.log('      (skipped: sbatch is not on PATH; scripts/slurm-local.sh starts a one-node cluster)');
      this.skip();
    }
    if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
  });
  beforeEach(() => {
    // Under /tmp: the test cluster is this one machine, so its node sees it (sharedPathProblem).
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-slurm-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  function sweep(name: string, base: string, axes: string, extra = ''): string {
    writeFileSync(join(scratch, `${name}-base.yaml`), base);
    writeFileSync(join(scratch, `${name}.yaml`), `name: ${name}\nbase: ${name}-base.yaml\naxes:\n${axes}\nretries: 0\nout_dir: ${scratch}\n${extra}`);
    return join(scratch, `${name}.yaml`);
  }
  const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest & { slurm?: { submissions: Array<{ array: string; compare: string; tasks: string }> } };
  const queued = (jobs: string[]) => spawnSync('squeue', ['-h', '-j', jobs.join(','), '-o', '%i'], { encoding: 'utf8' }).stdout.trim();
  async function until(what: string, ok: () => boolean, ms = 600_000) {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const submitted = (stdout: string) => {
    const m = /job array (\d+) \(--array=([^)]*)\); comparison job (\d+)/.exec(stdout);
    expect(m, stdout).to.not.equal(null);
    return { array: m![1]!, tasks: m![2]!, compare: m![3]! };
  };

  it('runs every run through Slurm, the dependent job writes the comparison, a failing run is reported with its log, and resubmitting sends only what is not completed', async () => {
    // Layer 9 does not exist in the 2-layer built-in model: that run fails.
    const config = sweep('tiny', 'model: builtin:tiny\ntask: cola\nepochs: 1\nbatch_size: 16\ndata: {max_train_examples: 32, max_eval_examples: 16}\nguidance: [{layer: 1, weight: 10}]\n', '  guidance[0].layer: [1, 9]', 'baseline: true\nexecutor: slurm\n');
    const dir = join(scratch, 'tiny');
    const first = await cli(['sweep', '--config', config], {}, backend());
    expect(first.code, first.stderr).to.equal(0);
    const job = submitted(first.stdout);
    expect(job.tasks).to.equal('0-2');
    // While its tasks are queued, the same sweep is not submitted twice.
    const twice = await cli(['sweep', '--config', config], {}, backend());
    expect(twice.code).to.equal(2);
    expect(twice.stderr).to.include(`still queued or running; wait for them (topoprobe sweep --status ${dir}) or cancel them (scancel ${job.array})`);
    await until('the array and the comparison to end', () => queued([job.array, job.compare]) === '');

    const m = manifest(dir);
    expect(m.runs.map((r) => [r.name, r.status])).to.deep.equal([['baseline', 'completed'], ['layer-1', 'completed'], ['layer-9', 'failed']]);
    expect(m.slurm!.submissions).to.have.length(1);
    const comparison = JSON.parse(readFileSync(join(dir, 'comparison.json'), 'utf8')) as { conditions: Array<{ n: number }>; missing: Array<{ name: string }> };
    expect(comparison.conditions.map((c) => c.n)).to.deep.equal([1, 1]);
    expect(readFileSync(join(dir, 'slurm', `compare_${job.compare}.out`), 'utf8')).to.include('written:');
    for (const name of ['baseline', 'layer-1']) expect(existsSync(join(dir, 'runs', name, 'results.json')), name).to.equal(true);

    const status = await cli(['sweep', '--status', dir]);
    expect(status.code).to.equal(0);
    expect(status.stdout).to.include(`${dir}: 3 runs: 2 completed, 1 failed`);
    expect(status.stdout).to.include(`comparison job ${job.compare}: done`);
    expect(status.stdout).to.match(new RegExp(`layer-9 +failed +${job.array}_2 +exit 2: topoprobe: guidance\\[0\\]\\.layer: 9 does not exist`));
    expect(status.stdout).to.include(`logs: ${join(dir, 'runs', 'layer-9', 'sweep.log')}, `);
    expect(status.stdout).to.include(join(dir, 'slurm', `${job.array}_2.out`));
    const json = JSON.parse((await cli(['sweep', '--status', dir, '--json'])).stdout) as SweepStatus;
    expect(json.runs.map((r) => r.state)).to.deep.equal(['completed', 'completed', 'failed']);
    expect(json.queueRead).to.equal(true);
    expect(readFileSync(join(dir, 'slurm', `${job.array}_2.out`), 'utf8')).to.include('layer-9 failed after 1 attempt(s)');

    // Again: only the failed run is submitted (it fails again).
    const again = await cli(['sweep', '--config', config], {}, backend());
    expect(again.code, again.stderr).to.equal(0);
    const second = submitted(again.stdout);
    expect(second.tasks).to.equal('2');
    await until('the second array to end', () => queued([second.array, second.compare]) === '');
    const m2 = manifest(dir);
    expect(m2.runs.map((r) => r.status)).to.deep.equal(['completed', 'completed', 'failed']);
    expect(m2.slurm!.submissions.map((s) => s.tasks)).to.deep.equal(['0-2', '2']);
  });

  it('a task requeued mid-run (scontrol requeue) and one warned of its time limit (USR1) resume and end as an uninterrupted run does', async () => {
    const base = 'model: builtin:tiny\ntask: cola\nepochs: 2\nbatch_size: 8\ndata: {max_train_examples: 800, max_eval_examples: 32}\nguidance: [{layer: 1, weight: 1}]\n';
    const config = sweep('rq', base, '  seed: [3, 4]', 'baseline: false\n');
    const dir = join(scratch, 'rq');
    const sub = await cli(['sweep', '--config', config, '--executor', 'slurm', '--cpus-per-task', '1'], {}, backend());
    expect(sub.code, sub.stderr).to.equal(0);
    const job = submitted(sub.stdout);
    const trainLines = (run: string) => {
      const f = join(dir, 'runs', run, 'metrics.jsonl');
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"type":"train"')).length : 0;
    };
    await until('both runs to be under way', () => trainLines('seed-3') >= 3 && trainLines('seed-4') >= 3, 300_000);
    expect(spawnSync('scontrol', ['requeue', `${job.array}_0`], { encoding: 'utf8' }).status).to.equal(0);
    expect(spawnSync('scancel', ['--batch', '--signal=USR1', `${job.array}_1`], { encoding: 'utf8' }).status).to.equal(0);
    await until('both tasks to be requeued', () => {
      const out = (n: number) => (existsSync(join(dir, 'slurm', `${job.array}_${n}.out`)) ? readFileSync(join(dir, 'slurm', `${job.array}_${n}.out`), 'utf8') : '');
      return out(0).includes('stopped by SIGTERM at a checkpoint') && out(1).includes('requeueing task');
    }, 120_000);
    const during = await cli(['sweep', '--status', dir]);
    expect(during.stdout).to.match(/seed-3 +(requeued|running) /);
    expect(during.stdout).to.match(/seed-4 +(requeued|running) /);
    await until('the array to end', () => queued([job.array, job.compare]) === '');
    const m = manifest(dir) as Manifest;
    for (const r of m.runs) {
      expect(r.status, r.name).to.equal('completed');
      // Really interrupted: a second attempt, which resumed.
      expect(r.attempts, r.name).to.equal(2);
      expect(readFileSync(join(dir, 'runs', r.name, 'sweep.log'), 'utf8')).to.include(', resumed');
    }
    expect((m.runs[1] as unknown as { slurm: { requeued: number } }).slurm.requeued).to.equal(1);
    const status = await cli(['sweep', '--status', dir]);
    expect(status.stdout).to.include(`${dir}: 2 runs: 2 completed`);

    // The same runs, uninterrupted, in the local pool (one thread each, as the tasks had: --cpus-per-task 1).
    const local = sweep('rq-local', base, '  seed: [3, 4]', 'baseline: false\nworkers: 2\n');
    writeFileSync(local, readFileSync(local, 'utf8').replace(`out_dir: ${scratch}`, `out_dir: ${join(scratch, 'local')}`).replace('name: rq-local', 'name: rq'));
    const r = await cli(['sweep', '--config', local, '--threads', '1'], {}, backend());
    expect(r.code, r.stderr).to.equal(0);
    const evals = (d: string, run: string) =>
      readFileSync(join(d, 'runs', run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"eval"')).map((l) => {
        const e = JSON.parse(l) as Record<string, unknown>;
        delete e.time;
        delete e.elapsed_s;
        return e;
      });
    const results = (d: string, run: string) => {
      const x = JSON.parse(readFileSync(join(d, 'runs', run, 'results.json'), 'utf8')) as Record<string, unknown>;
      for (const k of ['runDir', 'wall_time_s']) delete x[k];
      return x;
    };
    for (const run of ['seed-3', 'seed-4']) {
      expect(evals(dir, run), run).to.have.length.greaterThan(0);
      expect(evals(dir, run), run).to.deep.equal(evals(join(scratch, 'local', 'rq'), run));
      expect(results(dir, run), run).to.deep.equal(results(join(scratch, 'local', 'rq'), run));
    }
  });

  it('refuses clearly: sbatch missing, a partition Slurm does not have, nothing submitted either time; a foreign lock is taken over only from a task Slurm no longer has', async () => {
    const config = sweep('bad', 'model: builtin:tiny\ntask: cola\nepochs: 1\ndata: {max_train_examples: 16, max_eval_examples: 16}\n', '  seed: [1]', 'baseline: false\n');
    const noSlurm = await cli(['sweep', '--config', config, '--executor', 'slurm'], { PATH: '/nonexistent' });
    expect(noSlurm.code).to.equal(2);
    expect(noSlurm.stderr).to.include('sbatch not found on PATH: --executor slurm needs Slurm\'s client commands');
    const badPart = await cli(['sweep', '--config', config, '--executor', 'slurm', '--partition', 'no-such-partition']);
    expect(badPart.code).to.equal(2);
    expect(badPart.stderr).to.match(/sbatch refused the sweep's job array \(.*job\.sh\): [\s\S]*invalid partition[\s\S]*; check --partition \(slurm\.partition in the sweep YAML\)\. Nothing was submitted\./i);
    expect(manifest(join(scratch, 'bad')).slurm).to.equal(undefined);

    // Locks left by a Slurm task on another node.
    const lock = join(scratch, 'x.lock');
    const write = (info: Record<string, unknown>) => writeFileSync(lock, JSON.stringify({ host: 'some-other-node', pids: [1], nonce: 'n', time: '', ...info }));
    write({});
    expect(lockState(lock).state).to.equal('remote');
    write({ slurm: '999999_0' });
    expect(lockState(lock).state).to.equal('stale');
    const saved = { j: process.env.SLURM_ARRAY_JOB_ID, t: process.env.SLURM_ARRAY_TASK_ID };
    try {
      // This task's own earlier incarnation (requeued onto another node).
      process.env.SLURM_ARRAY_JOB_ID = '999999';
      process.env.SLURM_ARRAY_TASK_ID = '0';
      expect(lockState(lock).state).to.equal('stale');
    } finally {
      for (const [k, v] of [['SLURM_ARRAY_JOB_ID', saved.j], ['SLURM_ARRAY_TASK_ID', saved.t]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    // A queued task's lock is held: this test's own job, submitted and still in the queue.
    const r = spawnSync('sbatch', ['--parsable', '--array=0', '--output=/dev/null', '--wrap', 'sleep 30'], { encoding: 'utf8' });
    const id = r.stdout.trim();
    try {
      await until('the job to be listed', () => queued([id]) !== '', 30_000);
      write({ slurm: `${id}_0` });
      expect(lockState(lock).state).to.equal('remote');
    } finally {
      spawnSync('scancel', [id]);
    }
    expect(hostname()).to.not.equal('some-other-node');
  });
});
