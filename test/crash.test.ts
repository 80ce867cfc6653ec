/**
 * Crash safety of checkpoints: a real `topoprobe train` / `pretrain` process is killed (SIGKILL, injected
 * through the TOPOPROBE_FAULT hook of src/util/fault.ts, not by timing) just before each file operation of
 * a checkpoint save, then resumed; it must end with the metrics and weights of an uninterrupted run, and
 * leave no stale checkpoint folders behind. Also: torn metrics.jsonl lines, failed saves (full disk) that
 * leave nothing half-written, and recovery of a checkpoint left beside its place.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, appendFileSync, rmSync, writeFileSync, cpSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliCommand } from '../src/sweep/executor.js';
import { canResume, checkpointStep, recoverCheckpoint, replaceCheckpoint } from '../src/util/run-folder.js';
import { trimMetrics } from '../src/train/loop.js';
import { haveData, nativeAvailable, expectError } from './helpers.js';
import { decodeFile } from './tfevents-decoder.js';
import { dataDir } from '../src/data/paths.js';

interface Proc { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs the CLI in a child process with extra environment. */
function topoprobe(args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const { cmd, args: pre } = cliCommand();
  const backend = nativeAvailable() ? 'blas' : 'cpu';
  const child = spawn(cmd, [...pre, '--log-level', 'warn', '--backend', backend, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
}

/** Runs `jobs` two at a time (the machine has two cores; each is a separate process). */
async function pool<T>(jobs: Array<() => Promise<T>>, width = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

interface Op { n: number; op: string; path: string }
const readOps = (file: string): Op[] =>
  readFileSync(file, 'utf8').trim().split('\n').map((l) => {
    const [n, op, path] = l.split('\t');
    return { n: Number(n), op: op!, path: path! };
  });

/** What must match between an interrupted-and-resumed run and an uninterrupted one. */
function outcome(runDir: string) {
  const ckpt = join(runDir, 'checkpoints');
  return {
    metrics: readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'),
    weights: ['last', 'best'].flatMap((w) => ['model.safetensors', 'probe-0.safetensors', 'optimizer.safetensors'].map((f) => readFileSync(join(ckpt, w, f)).toString('base64'))),
    results: (({ best, final, final_metrics, steps, status }) => ({ best, final, final_metrics, steps, status }))(JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8')) as Record<string, unknown>),
  };
}

const staleSiblings = (runDir: string) => readdirSync(join(runDir, 'checkpoints')).filter((f) => f !== 'last' && f !== 'best');

describe('crash safety of checkpoints (killed processes)', function () {
  this.timeout(600_000);
  let scratch: string;
  before(function () {
    if (!haveData('cola/in_domain_train.tsv', 'bert-uncased/vocab.txt')) this.skip();
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-crash-'));
  });
  after(() => scratch && rmSync(scratch, { recursive: true, force: true }));

  const trainYaml = (out: string) =>
    'model: builtin:tiny\ntask: cola\nseed: 3\nmax_steps: 3\nbatch_size: 8\nlog_every: 1\neval: {every_steps: 1}\n' +
    `guidance: [{layer: 1, weight: 10}]\ndata: {max_train_examples: 24, max_eval_examples: 16}\nout_dir: ${out}\n`;

  it('a train run killed before any file operation of a checkpoint save resumes to the uninterrupted result, with no stale folders', async () => {
    const config = join(scratch, 'train.yaml');
    writeFileSync(config, trainYaml(join(scratch, 'runs')));
    const opsFile = join(scratch, 'ops.tsv');
    const ref = await topoprobe(['train', '--config', config, '--name', 'ref'], { TOPOPROBE_FAULT_LOG: opsFile });
    expect(ref.code, ref.stderr).to.equal(0);
    const expected = outcome(join(scratch, 'runs', 'ref'));
    const ops = readOps(opsFile);
    // The saves of checkpoints/last: each begins with the mkdir of its temporary folder.
    const lastSaves = ops.filter((o) => o.op === 'mkdir' && /checkpoints\/last\.tmp-/.test(o.path)).map((o) => o.n);
    expect(lastSaves.length, 'checkpoints/last saved after each of 3 updates').to.equal(3);
    // Every operation of the second save of last (a complete one is already on disk), through its clean-up,
    // and the final rename of the first save (where no complete checkpoints/last existed yet).
    const window = ops.filter((o) => o.n >= lastSaves[1]! && o.n < lastSaves[2]!).map((o) => o.n);
    const swapIn = ops.find((o) => o.n < lastSaves[1]! && o.op === 'rename' && /checkpoints\/last\.tmp-[^/]*$/.test(o.path))!.n;
    const points = [swapIn, ...window];
    expect(window.length, 'the save has its write/rename pairs, two swap renames and a clean-up').to.be.at.least(20);
    let sawNoLast = false;
    let sawTorn = false;
    const results = await pool(points.map((k) => async () => {
      const name = `kill-${k}`;
      const runDir = join(scratch, 'runs', name);
      const killed = await topoprobe(['train', '--config', config, '--name', name], { TOPOPROBE_FAULT: `${k}:kill` });
      const checks = { k, signal: killed.signal, resumable: canResume(runDir), noLast: !existsSync(join(runDir, 'checkpoints', 'last')), torn: false };
      if (k === window[3]) {
        // A kill or full disk in the middle of an append: a torn last line.
        appendFileSync(join(runDir, 'metrics.jsonl'), '{"type":"train","step":3,"ep');
        checks.torn = true;
      }
      const resumed = await topoprobe(['train', '--resume', runDir]);
      return { ...checks, resumed, runDir };
    }));
    for (const r of results) {
      expect(r.signal, `killed at operation ${r.k}`).to.equal('SIGKILL');
      expect(r.resumable, `a complete checkpoint survives a kill at operation ${r.k}`).to.equal(true);
      expect(r.resumed.code, `resume after a kill at operation ${r.k}: ${r.resumed.stderr}`).to.equal(0);
      expect(outcome(r.runDir), `kill at operation ${r.k}`).to.deep.equal(expected);
      expect(staleSiblings(r.runDir), `kill at operation ${r.k}`).to.deep.equal([]);
      const listing = readdirSync(r.runDir).sort();
      const eventFiles = listing.filter((f) => f.startsWith('events.out.tfevents.'));
      expect(listing.filter((f) => !eventFiles.includes(f)), `kill at operation ${r.k}`).to.deep.equal(['checkpoints', 'config.yaml', 'log.jsonl', 'metrics.jsonl', 'results.json']);
      // One TensorBoard file, rebuilt on resume: one event per metrics line, in the same order, no step twice.
      expect(eventFiles, `kill at operation ${r.k}`).to.have.length(1);
      const steps = decodeFile(join(r.runDir, eventFiles[0]!)).filter((e) => e.values && e.values[0]!.tag !== 'config').map((e) => Number(e.step));
      const lineSteps = readFileSync(join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
      expect(steps, `kill at operation ${r.k}`).to.deep.equal(lineSteps);
      if (r.noLast) sawNoLast = true;
      if (r.torn) {
        sawTorn = true;
        expect(r.resumed.stderr).to.match(/metrics\.jsonl: dropped .*a last line cut short/);
      }
    }
    // The kill between the swap's two renames left no checkpoints/last, and resume still found one.
    expect(sawNoLast).to.equal(true);
    expect(sawTorn).to.equal(true);
  });

  it('a pretrain run killed between the two renames of a swap resumes to the uninterrupted result', async function () {
    const corpus = join(scratch, 'corpus.txt');
    const lines = readFileSync(join(dataDir(), 'cola', 'in_domain_train.tsv'), 'utf8').split('\n').filter(Boolean).slice(0, 200).map((l) => l.split('\t')[3]!);
    writeFileSync(corpus, lines.join('\n') + '\n');
    const config = join(scratch, 'pretrain.yaml');
    writeFileSync(config, [
      `out_dir: ${join(scratch, 'pre')}`, 'seed: 5', 'max_steps: 6', 'batch_size: 16', 'log_every: 1',
      'model: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 32}',
      `tokenizer: {vocab: ${join(dataDir(), 'bert-uncased', 'vocab.txt')}, restrict: true}`,
      `corpus: {files: [${corpus}], held_out: 40, max_length: 32}`, 'optimizer: {lr: 0.005}', 'eval: {every_steps: 2, batch_size: 64}', '',
    ].join('\n'));
    const opsFile = join(scratch, 'pre-ops.tsv');
    const ref = await topoprobe(['pretrain', '--config', config, '--name', 'ref'], { TOPOPROBE_FAULT_LOG: opsFile });
    expect(ref.code, ref.stderr).to.equal(0);
    const ops = readOps(opsFile);
    // The second swap of checkpoints/last: the rename of the old folder aside, before the new one is moved in.
    const aside = ops.filter((o) => o.op === 'rename' && /checkpoints\/last$/.test(o.path)).map((o) => o.n);
    expect(aside.length).to.be.at.least(2);
    const k = aside[0]! + 1; // the rename of last.tmp-* into place, after last was moved aside
    const runDir = join(scratch, 'pre', 'cut');
    const killed = await topoprobe(['pretrain', '--config', config, '--name', 'cut'], { TOPOPROBE_FAULT: `${k}:kill` });
    expect(killed.signal).to.equal('SIGKILL');
    expect(existsSync(join(runDir, 'checkpoints', 'last'))).to.equal(false);
    const resumed = await topoprobe(['pretrain', '--resume', runDir]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    const same = (d: string) => ({
      metrics: readFileSync(join(d, 'metrics.jsonl'), 'utf8'),
      model: readFileSync(join(d, 'model', 'model.safetensors')).toString('base64'),
      last: readFileSync(join(d, 'checkpoints', 'last', 'model.safetensors')).toString('base64'),
    });
    expect(same(runDir)).to.deep.equal(same(join(scratch, 'pre', 'ref')));
    expect(staleSiblings(runDir)).to.deep.equal([]);
    // Resuming the finished run says so and changes nothing.
    const again = await topoprobe(['pretrain', '--resume', runDir]);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.include('is a finished run (results.json is there); nothing to resume');
    expect(same(runDir)).to.deep.equal(same(join(scratch, 'pre', 'ref')));
  });

  it('a save that fails (full disk) removes its partial folder and keeps the previous checkpoint; a resume then finishes', async () => {
    const config = join(scratch, 'train.yaml');
    writeFileSync(config, trainYaml(join(scratch, 'runs')));
    const opsFile = join(scratch, 'ops-full.tsv');
    await topoprobe(['train', '--config', config, '--name', 'ref-full'], { TOPOPROBE_FAULT_LOG: opsFile });
    const ops = readOps(opsFile);
    const lastSaves = ops.filter((o) => o.op === 'mkdir' && /checkpoints\/last\.tmp-/.test(o.path)).map((o) => o.n);
    // The write of the model file in the second save of last fails with ENOSPC.
    const k = ops.find((o) => o.n > lastSaves[1]! && o.op === 'write' && o.path.includes('model.safetensors'))!.n;
    const runDir = join(scratch, 'runs', 'full');
    const failed = await topoprobe(['train', '--config', config, '--name', 'full'], { TOPOPROBE_FAULT: `${k}:ENOSPC` });
    expect(failed.code).to.equal(2);
    expect(failed.stderr).to.match(/no space left on device \(ENOSPC\)/);
    expect(failed.stderr).to.include(join(runDir, 'checkpoints', 'last.tmp-'));
    expect(failed.stderr).not.to.match(/\n\s+at /); // no stack trace
    expect(staleSiblings(runDir)).to.deep.equal([]);
    expect(checkpointStep(join(runDir, 'checkpoints', 'last'))).to.equal(1);
    const resumed = await topoprobe(['train', '--resume', runDir]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    expect(outcome(runDir)).to.deep.equal(outcome(join(scratch, 'runs', 'ref-full')));
  });
});

describe('checkpoint folders (replace, recover, trim)', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-ckpt-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const write = (text: string) => (tmp: string) => {
    writeFileSync(join(tmp, 'weights.bin'), text);
    mkdirSync(join(tmp, 'sub'));
    writeFileSync(join(tmp, 'sub', 'x.txt'), 'x');
  };

  it('marks a replaced folder complete with its update and file sizes; a changed size makes it incomplete', async () => {
    const dir = join(scratch, 'checkpoints', 'last');
    await replaceCheckpoint(dir, 7, write('seven'));
    expect(checkpointStep(dir)).to.equal(7);
    const marker = JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8')) as { files: Record<string, number> };
    expect(marker.files).to.deep.equal({ 'weights.bin': 5, 'sub/x.txt': 1 });
    writeFileSync(join(dir, 'weights.bin'), 'sev');
    expect(checkpointStep(dir)).to.equal(null);
    rmSync(join(dir, 'sub', 'x.txt'));
    expect(checkpointStep(dir)).to.equal(null);
  });

  it('recovers the newest complete checkpoint from beside its place, ignoring incomplete ones, and removes the rest', async () => {
    const ck = join(scratch, 'checkpoints');
    const dir = join(ck, 'best');
    await replaceCheckpoint(dir, 4, write('four'));
    // A crash between the swap's renames: the old folder aside, the new complete one not yet in place.
    renameSync(dir, join(ck, 'best.old-1-aaaaaa'));
    await replaceCheckpoint(join(ck, 'elsewhere'), 9, write('nine'));
    renameSync(join(ck, 'elsewhere'), join(ck, 'best.tmp-1-bbbbbb'));
    // A newer but incomplete one (no marker) must not win.
    mkdirSync(join(ck, 'best.tmp-2-cccccc'));
    writeFileSync(join(ck, 'best.tmp-2-cccccc', 'weights.bin'), 'partial');
    expect(recoverCheckpoint(dir)).to.equal(9);
    expect(readFileSync(join(dir, 'weights.bin'), 'utf8')).to.equal('nine');
    expect(readdirSync(ck)).to.deep.equal(['best']);
    expect(recoverCheckpoint(join(ck, 'last'))).to.equal(null);
  });

  it('a checkpoint of an earlier topoprobe (trainer state, no complete.json) counts only at its own name', () => {
    const dir = join(scratch, 'last');
    mkdirSync(dir);
    writeFileSync(join(dir, 'trainer_state.json'), '{"step": 12}');
    expect(checkpointStep(dir)).to.equal(12);
    cpSync(dir, join(scratch, 'last.tmp-5-abcdef'), { recursive: true });
    expect(checkpointStep(join(scratch, 'last.tmp-5-abcdef'))).to.equal(null);
  });

  it('a failed write removes the partial folder and leaves the previous checkpoint in place', async () => {
    const dir = join(scratch, 'last');
    await replaceCheckpoint(dir, 1, write('one'));
    let caught: unknown;
    try {
      await replaceCheckpoint(dir, 2, async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      });
    } catch (err) {
      caught = err;
    }
    expect((caught as Error | undefined)?.message).to.include('ENOSPC');
    expect(readdirSync(scratch)).to.deep.equal(['last']);
    expect(checkpointStep(dir)).to.equal(1);
  });

  it('trims metrics.jsonl to the checkpoint: later lines and a torn last line go; a torn line inside is an error naming it', () => {
    const path = join(scratch, 'metrics.jsonl');
    writeFileSync(path, '{"step":1}\n{"step":2}\n{"step":3}\n{"step":4,"lo');
    expect(trimMetrics(path, 2)).to.deep.equal({ later: 1, torn: true });
    expect(readFileSync(path, 'utf8')).to.equal('{"step":1}\n{"step":2}\n');
    expect(trimMetrics(path, 2)).to.deep.equal({ later: 0, torn: false });
    writeFileSync(path, '{"step":1}\n{"st\n{"step":2}\n');
    expectError(() => trimMetrics(path, 2), `${path}:2: not a JSON line`);
  });
});
