/**
 * Sweep folders trust nothing: manifest paths, copied folders, run locks, killed workers, invalid axes,
 * failed runs. Real processes and real files; the training runs are the built-in random model's, a few
 * updates each.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliCommand } from '../src/sweep/executor.js';
import { claimRun, initManifest, lockState, readManifest, tryLock, unlock, updateManifest, type Manifest } from '../src/sweep/manifest.js';
import { canResume, isFinished } from '../src/util/run-folder.js';
import { projectRoot } from '../src/util/root.js';
import { cli, expectError, haveData, nativeAvailable } from './helpers.js';

const TINY = 'model: builtin:tiny\ntask: cola\nepochs: 1\nbatch_size: 16\ndata: {max_train_examples: 32, max_eval_examples: 16}\nguidance: [{layer: 1, weight: 10}]\n';
/** About 32 updates (several seconds): long enough to be stopped in the middle. */
const LONG = 'model: builtin:tiny\ntask: cola\nepochs: 8\nbatch_size: 16\nlog_every: 1\ndata: {max_train_examples: 64, max_eval_examples: 16}\nguidance: [{layer: 1, weight: 10}]\n';

const backend = () => (nativeAvailable() ? 'blas' : 'cpu');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A pid that no process has now. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

/** Every file under `dir` with a hash of its bytes (and links as links): what a copy must leave alone. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = e.isSymbolicLink() ? 'link' : `${statSync(p).mtimeMs} ${createHash('sha1').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(dir);
  return out;
}

function writeManifest(sweep: string, base: string, runs: Array<Record<string, unknown>>): void {
  mkdirSync(join(sweep, 'runs'), { recursive: true });
  const full = runs.map((r) => ({ overrides: ['seed=1'], baseline: false, status: 'pending', attempts: 0, ...r }));
  writeFileSync(join(sweep, 'manifest.json'), JSON.stringify({ name: 's', config: join(sweep, 'sweep.yaml'), base, created: 'now', runs: full }));
}

const readM = (sweep: string) => JSON.parse(readFileSync(join(sweep, 'manifest.json'), 'utf8')) as Manifest;

/** Starts `topoprobe sweep ...` as its own process (its own group), collecting its output. */
function startSweep(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const { cmd, args: pre } = cliCommand();
  const child = spawn(cmd, [...pre, '--log-level', 'silent', '--backend', backend(), 'sweep', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, out: () => out, exit };
}

/** The pids a run's lock names (the worker, then its trainer), [] when there is no lock. */
function lockPids(sweep: string, run: string): number[] {
  try {
    return (JSON.parse(readFileSync(join(sweep, 'runs', `${run}.lock`), 'utf8')) as { pids: number[] }).pids;
  } catch {
    return [];
  }
}

const trainLines = (runDir: string) => (existsSync(join(runDir, 'metrics.jsonl')) ? readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"train"')).length : 0);

describe('sweep reliability', function () {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-sweep-rel-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  describe('the manifest', () => {
    it('refuses entries whose folder is absolute, has "..", lies outside runs/ or is a link, naming the file and entry, and deletes nothing', async () => {
      const base = join(scratch, 'base.yaml');
      writeFileSync(base, TINY);
      // What a worker of earlier versions deleted: a folder that looks like an unfinished run.
      const victim = join(scratch, 'victim');
      mkdirSync(victim);
      writeFileSync(join(victim, 'keep.txt'), 'precious');
      const sweep = join(scratch, 'sweep');
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: 'victim', dir: victim }, 'is an absolute path outside'],
        [{ name: 'victim', dir: 'runs/../../victim' }, 'contains ".."'],
        [{ name: '../victim', dir: 'runs/../victim' }, 'is not one run folder name'],
        [{ name: 'a', dir: 'elsewhere/a' }, 'resolves outside'],
        [{ name: 'a', dir: 'runs/b' }, 'is not the run\'s folder "runs/a"'],
      ];
      for (const [entry, fragment] of cases) {
        writeManifest(sweep, base, [{ name: 'ok', dir: 'runs/ok' }, entry]);
        const res = await cli(['sweep', '--worker', sweep]);
        expect(res.code, JSON.stringify(entry)).to.equal(2);
        expect(res.stderr).to.include(join(sweep, 'manifest.json'));
        expect(res.stderr).to.include(`runs[1] ${JSON.stringify(entry.name)}`);
        expect(res.stderr).to.include(fragment);
        expect(readFileSync(join(victim, 'keep.txt'), 'utf8')).to.equal('precious');
        expect(readdirSync(join(sweep, 'runs'))).to.deep.equal([]);
      }
      // A run folder that is a link to another place.
      writeManifest(sweep, base, [{ name: 'victim', dir: 'runs/victim' }]);
      symlinkSync(victim, join(sweep, 'runs', 'victim'));
      const linked = await cli(['sweep', '--worker', sweep]);
      expect(linked.code).to.equal(2);
      expect(linked.stderr).to.include('runs[0] "victim"').and.include('is a symbolic link');
      expect(readFileSync(join(victim, 'keep.txt'), 'utf8')).to.equal('precious');
      rmSync(join(sweep, 'runs'), { recursive: true });
      // runs/ itself a link.
      symlinkSync(scratch, join(sweep, 'runs'));
      writeManifest(sweep, base, [{ name: 'victim', dir: 'runs/victim' }]);
      expectError(() => readManifest(sweep), `${join(sweep, 'runs')} is a symbolic link`);
      expect(readFileSync(join(victim, 'keep.txt'), 'utf8')).to.equal('precious');
    });

    it('reads an earlier manifest\'s absolute path into its own runs/ as the run\'s name and writes it back relative', () => {
      const sweep = join(scratch, 'sweep');
      writeManifest(sweep, join(scratch, 'base.yaml'), [{ name: 'a', dir: join(sweep, 'runs', 'a'), status: 'completed', attempts: 1 }]);
      expect(readManifest(sweep).runs[0]!.dir).to.equal('runs/a');
      updateManifest(sweep, () => {});
      expect(readM(sweep).runs[0]!.dir).to.equal('runs/a');
    });
  });

  describe('run locks', () => {
    it('are held by live processes, taken over from dead ones, copied folders and unreadable old ones, never from other hosts', () => {
      const dir = join(scratch, 'a');
      mkdirSync(dir);
      const path = join(dir, 'r.lock');
      const mine = tryLock(path)!;
      expect(mine).to.not.equal(null);
      expect(tryLock(path), 'a live holder').to.equal(null);
      expect(lockState(path).state).to.equal('local');
      unlock({ path, nonce: 'someone-else' });
      expect(existsSync(path), 'unlock of another holder\'s lock').to.equal(true);
      // Copied into another folder (cp -r of a sweep while a worker held the run): not held there.
      spawnSync('cp', ['-r', dir, join(scratch, 'b')]);
      expect(tryLock(join(scratch, 'b', 'r.lock')), 'a copied lock').to.not.equal(null);
      expect(tryLock(path), 'the original stays held').to.equal(null);
      unlock(mine);
      expect(existsSync(path)).to.equal(false);
      // A dead holder on this host; this process's pid with another start time (a reused pid).
      for (const holder of [{ pids: [deadPid()] }, { pids: [process.pid], starts: { [String(process.pid)]: 1 } }]) {
        writeFileSync(path, JSON.stringify({ host: hostname(), nonce: 'x', time: 'then', ...holder }));
        const taken = tryLock(path);
        expect(taken, JSON.stringify(holder)).to.not.equal(null);
        unlock(taken!);
      }
      // Another host: never taken over (its pids mean nothing here).
      writeFileSync(path, JSON.stringify({ host: `not-${hostname()}`, pids: [deadPid()], nonce: 'x', time: 'then' }));
      expect(tryLock(path)).to.equal(null);
      // Unreadable: being written (held), or left by a writer that died (stale after 30 s).
      writeFileSync(path, '');
      expect(tryLock(path)).to.equal(null);
      utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      expect(tryLock(path)).to.not.equal(null);
    });

    it('give every run to exactly one of several processes claiming at once, also when taking over stale locks', async () => {
      const sweep = join(scratch, 'sweep');
      const names = Array.from({ length: 30 }, (_, i) => `r${i}`);
      initManifest(sweep, 's', 'sweep.yaml', 'base.yaml', names.map((name) => ({ name, overrides: [], baseline: false })));
      // Half the runs marked running with the lock of a worker that is gone.
      const dead = deadPid();
      updateManifest(sweep, (m) => {
        for (const r of m.runs.slice(0, 15)) r.status = 'running';
      });
      for (const n of names.slice(0, 15)) writeFileSync(join(sweep, 'runs', `${n}.lock`), JSON.stringify({ host: hostname(), pids: [dead], nonce: 'x', time: 'then' }));
      const script = join(scratch, 'claim.mts');
      const manifestModule = pathToFileURL(join(projectRoot(), 'src', 'sweep', 'manifest.ts')).href;
      // Each claims until nothing is left, then stays alive (holding its locks) until all have finished.
      writeFileSync(script, `import { claimRun } from ${JSON.stringify(manifestModule)};
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
const [dir, barrier, n] = process.argv.slice(2);
const got = [];
for (let c; (c = claimRun(dir, new Set())); ) got.push(c.run.name);
writeFileSync(barrier + '/' + process.pid, '');
while (readdirSync(barrier).length < Number(n)) await new Promise((r) => setTimeout(r, 20));
process.stdout.write(JSON.stringify(got));
`);
      const barrier = join(scratch, 'barrier');
      mkdirSync(barrier);
      const procs = Array.from({ length: 4 }, () =>
        new Promise<string[]>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', script, sweep, barrier, '4'], { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (c: Buffer) => (out += c.toString()));
          p.stderr.on('data', (c: Buffer) => (err += c.toString()));
          p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as string[]) : reject(new Error(`claimer exit ${code}: ${err}`))));
        }),
      );
      const claims = (await Promise.all(procs)).flat();
      expect([...claims].sort()).to.deep.equal([...names].sort());
      const m = readM(sweep);
      expect(m.runs.every((r) => r.status === 'running' && r.attempts === 1)).to.equal(true);
    });
  });

  describe('validation', () => {
    it('refuses an axis over an unknown key, and a sweep setting out_dir, before anything is created or started (exit 2)', async () => {
      writeFileSync(join(scratch, 'base.yaml'), TINY);
      const sweepYaml = join(scratch, 'sweep.yaml');
      writeFileSync(sweepYaml, `name: bad\nbase: base.yaml\naxes:\n  seed: [1, 2]\n  optimizer.lrr: [0.001, 0.01]\nbaseline: true\nout_dir: ${scratch}\n`);
      const started = Date.now();
      const res = await cli(['sweep', '--config', sweepYaml]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include(`${sweepYaml}: axes.optimizer.lrr: run "baseline_seed-1_lrr-0.001"`).and.include('nothing was started').and.include('lrr');
      expect(Date.now() - started).to.be.below(5000);
      expect(existsSync(join(scratch, 'bad')), 'the sweep folder').to.equal(false);
      const dry = await cli(['sweep', '--config', sweepYaml, '--dry-run']);
      expect(dry.code).to.equal(2);
      writeFileSync(sweepYaml, `name: bad\nbase: base.yaml\nset: {out_dir: /somewhere}\naxes:\n  seed: [1, 2]\nout_dir: ${scratch}\n`);
      const out = await cli(['sweep', '--config', sweepYaml]);
      expect(out.code).to.equal(2);
      expect(out.stderr).to.include('set.out_dir: a sweep names each run\'s folder itself');
      // Joining a sweep whose manifest holds an invalid run: refused the same way.
      const sweep = join(scratch, 'joined');
      writeManifest(sweep, join(scratch, 'base.yaml'), [{ name: 'a', dir: 'runs/a' }, { name: 'b', dir: 'runs/b', overrides: ['batch_size=zero'] }]);
      const joined = await cli(['sweep', '--worker', sweep]);
      expect(joined.code).to.equal(2);
      expect(joined.stderr).to.include(`${join(sweep, 'manifest.json')}: runs' override batch_size: run "b"`);
      expect(readdirSync(join(sweep, 'runs'))).to.deep.equal([]);
    });
  });

  describe('workers', function () {
    before(function () {
      if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
    });

    it('two workers on one sweep folder train every run once', async () => {
      writeFileSync(join(scratch, 'base.yaml'), TINY);
      const sweepYaml = join(scratch, 'sweep.yaml');
      writeFileSync(sweepYaml, `name: two\nbase: base.yaml\naxes:\n  seed: [1, 2, 3]\nbaseline: false\nworkers: 1\nout_dir: ${scratch}\n`);
      const sweep = join(scratch, 'two');
      const first = startSweep(['--config', sweepYaml]);
      await waitFor(() => existsSync(join(sweep, 'manifest.json')), 30_000, 'the manifest');
      const second = startSweep(['--worker', sweep]);
      const [a, b] = await Promise.all([first.exit, second.exit]);
      expect(a, first.out()).to.equal(0);
      expect(b, second.out()).to.equal(0);
      const m = readM(sweep);
      for (const r of m.runs) {
        expect(r.status, r.name).to.equal('completed');
        expect(r.attempts, r.name).to.equal(1);
        expect(readFileSync(join(sweep, r.dir, 'sweep.log'), 'utf8').match(/^--- attempt/gm), r.name).to.have.length(1);
      }
      expect(readdirSync(join(sweep, 'runs')).filter((f) => f.endsWith('.lock'))).to.deep.equal([]);
    });

    it('a copied sweep folder works on its own copy only; one copied from an earlier version is refused', async () => {
      writeFileSync(join(scratch, 'base.yaml'), TINY);
      const a = join(scratch, 'A');
      const planned = [1, 2, 3].map((s) => ({ name: `seed-${s}`, overrides: [`seed=${s}`], baseline: false }));
      initManifest(a, 'A', join(scratch, 'sweep.yaml'), join(scratch, 'base.yaml'), planned);
      // seed-1 finished; seed-2 interrupted with a checkpoint, its lock held by a live worker (this process);
      // seed-3 started but without a checkpoint (a worker starts it over, emptying its folder).
      const train = (name: string, extra: string[]) => cli(['train', '--config', join(scratch, 'base.yaml'), '--set', `out_dir=${join(a, 'runs')}`, '--name', name, ...extra], {}, backend());
      expect((await train('seed-1', ['--set', 'seed=1'])).code).to.equal(0);
      expect((await train('seed-2', ['--set', 'seed=2', '--stop-after', '1'])).code).to.equal(130);
      expect(canResume(join(a, 'runs', 'seed-2'))).to.equal(true);
      const held = tryLock(join(a, 'runs', 'seed-2.lock'))!;
      mkdirSync(join(a, 'runs', 'seed-3'));
      writeFileSync(join(a, 'runs', 'seed-3', 'partial.txt'), 'x');
      updateManifest(a, (m) => {
        m.runs[0]!.status = 'completed';
        m.runs[1]!.status = 'running';
      });
      const before = snapshot(a);

      // A copy whose manifest has the absolute paths of earlier versions (into A): refused, nothing touched.
      const old = join(scratch, 'old');
      spawnSync('cp', ['-r', a, old]);
      const m = readM(old);
      writeFileSync(join(old, 'manifest.json'), JSON.stringify({ ...m, runs: m.runs.map((r) => ({ ...r, dir: join(a, r.dir) })) }));
      const refused = await cli(['sweep', '--worker', old], {}, backend());
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.include(`${join(old, 'manifest.json')}: runs[0] "seed-1": dir ${JSON.stringify(join(a, 'runs', 'seed-1'))} is an absolute path outside`);

      const b = join(scratch, 'B');
      spawnSync('cp', ['-r', a, b]);
      const res = await cli(['sweep', '--worker', b], {}, backend());
      expect(res.code, res.stderr + res.stdout).to.equal(0);
      expect(res.stdout).to.include('3/3 runs completed, 0 failed');
      expect(snapshot(a), 'the original sweep folder').to.deep.equal(before);
      for (const s of [1, 2, 3]) expect(isFinished(join(b, 'runs', `seed-${s}`))).to.equal(true);
      expect(readFileSync(join(b, 'runs', 'seed-2', 'sweep.log'), 'utf8')).to.include('resumed');
      expect(existsSync(join(b, 'runs', 'seed-3', 'partial.txt'))).to.equal(false);
      expect(existsSync(join(a, 'runs', 'seed-2.lock'))).to.equal(true);
      unlock(held);
    });

    it('a stopped or killed worker stops its trainer at a checkpoint, and no one trains the run while the trainer lives', async () => {
      writeFileSync(join(scratch, 'base.yaml'), LONG);
      const sweepYaml = join(scratch, 'sweep.yaml');
      writeFileSync(sweepYaml, `name: long\nbase: base.yaml\naxes:\n  seed: [1]\nbaseline: false\nworkers: 1\nout_dir: ${scratch}\n`);
      const sweep = join(scratch, 'long');
      const runDir = join(sweep, 'runs', 'seed-1');

      // SIGTERM: the trainer saves and exits, the run goes back to pending (not a failure), exit 143.
      const w1 = startSweep(['--config', sweepYaml]);
      await waitFor(() => trainLines(runDir) >= 1, 60_000, 'training to start');
      const trainer1 = lockPids(sweep, 'seed-1')[1]!;
      expect(alive(trainer1)).to.equal(true);
      w1.child.kill('SIGTERM');
      expect(await w1.exit, w1.out()).to.equal(143);
      expect(w1.out()).to.include('stopped by SIGTERM');
      expect(alive(trainer1), 'the trainer after the worker exited').to.equal(false);
      expect(isFinished(runDir), 'stopped before the end').to.equal(false);
      expect(canResume(runDir)).to.equal(true);
      let r = readM(sweep).runs[0]!;
      expect([r.status, r.failures]).to.deep.equal(['pending', 0]);
      expect(existsSync(join(sweep, 'runs', 'seed-1.lock'))).to.equal(false);

      // SIGKILL of the worker: its trainer (held still here with SIGSTOP, so it surely outlives the worker)
      // keeps the run's lock, so no worker claims the run; let go, it notices, saves and exits.
      const lines = trainLines(runDir);
      const w2 = startSweep(['--worker', sweep]);
      await waitFor(() => lockPids(sweep, 'seed-1').length === 2 && trainLines(runDir) > lines, 60_000, 'the resumed training');
      const trainer2 = lockPids(sweep, 'seed-1')[1]!;
      process.kill(trainer2, 'SIGSTOP');
      w2.child.kill('SIGKILL');
      await w2.exit;
      expect(alive(trainer2)).to.equal(true);
      expect(claimRun(sweep, new Set()), 'a claim while the trainer lives').to.equal(null);
      process.kill(trainer2, 'SIGCONT');
      await waitFor(() => !alive(trainer2), 15_000, 'the orphaned trainer to stop');
      expect(isFinished(runDir)).to.equal(false);
      expect(canResume(runDir)).to.equal(true);
      expect(readFileSync(join(runDir, 'sweep.log'), 'utf8')).to.include('interrupted; saving a checkpoint');
      r = readM(sweep).runs[0]!;
      expect(r.status).to.equal('running');

      // Now the run is free: the next claim takes it over (and resumes it, as the copied folder's seed-2 above).
      const claim = claimRun(sweep, new Set());
      expect(claim?.run.name).to.equal('seed-1');
      expect([claim!.takenOver, claim!.run.attempts]).to.deep.equal([true, 3]);
      unlock(claim!.lock);
    });
  });
});
