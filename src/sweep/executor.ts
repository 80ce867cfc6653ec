/**
 * Runs a sweep's planned runs in a local pool of worker processes (`topoprobe train` per run).
 *
 * - Resumable: a run with results.json is done and skipped; one with a complete checkpoint (canResume) is
 *   continued with `--resume`; one with neither starts over (its folder, inside `<sweep>/runs/`, emptied).
 * - A failed run is recorded with its error and tried again up to `retries` times; it never stops the others.
 * - Runs are claimed through lock files (see manifest.ts), so several `topoprobe sweep --worker` processes on
 *   one machine can work on one sweep and never train one run at once: a lock names the worker and its
 *   trainer, and stays held while either lives. Across machines a sweep runs as a Slurm job array
 *   (src/sweep/slurm.ts), each array task a worker for its one run (`only`).
 * - Stopping: SIGINT, SIGTERM or SIGHUP to the worker sends each trainer one SIGINT (finish the update,
 *   save checkpoints/last, exit), waits for them, puts their runs back to pending and returns `stoppedBy`;
 *   a second signal is passed on too (the trainers quit at once). A worker that dies without that (SIGKILL)
 *   is noticed by its trainers (src/sweep/child.ts), which stop the same way.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, constants as osc } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { canResume, isFinished } from '../util/run-folder.js';
import { addLockHolders, claimRun, heldHere, readManifest, runPaths, unlock, updateManifest, RUNS_DIR, type Claim, type ManifestRun } from './manifest.js';

export interface SweepProgress {
  total: number;
  done: number;
  running: number;
  failed: number;
  pending: number;
  /** Estimated seconds left (null until a run has finished). */
  eta: number | null;
}

export interface ExecuteOptions {
  workers?: number;
  retries: number;
  log: Logger;
  /** Extra CLI flags for every run (e.g. --backend, --data-dir). */
  runArgs?: string[];
  onProgress?: (p: SweepProgress) => void;
  /** How often to look again for runs held by other processes on this host (ms). */
  pollMs?: number;
  /** Run only the run of this name (a Slurm array task, src/sweep/slurm.ts). */
  only?: string;
  /** Threads per run (default: the machine's cores over the workers). */
  threads?: number;
  /** Signals that stop this worker (default SIGINT, SIGTERM, SIGHUP); the one that did is `stoppedBy`. */
  stopSignals?: NodeJS.Signals[];
}

export interface SweepOutcome {
  runs: ManifestRun[];
  /** The signal that stopped this worker (its runs were put back to pending), or null. */
  stoppedBy: NodeJS.Signals | null;
}

/** What the machine can hold: one run per two cores, at least one. */
export function defaultWorkers(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

const here = fileURLToPath(import.meta.url);
const ext = here.endsWith('.ts') ? 'ts' : 'js';

/** The command that runs the CLI in a child process (compiled, or TypeScript under tsx in development). */
export function cliCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [...process.execArgv, join(dirname(here), '..', 'cli', `entry.${ext}`)] };
}

/** The same for a sweep's trainer: the CLI that also stops when its worker is gone (child.ts). */
export function childCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [...process.execArgv, join(dirname(here), `child.${ext}`)] };
}

function trainArgs(run: ManifestRun, dir: string, resume: boolean, base: string, sweepDir: string, extra: string[]): string[] {
  if (resume) return ['train', '--resume', dir, '--log-level', 'warn', ...extra];
  return ['train', '--config', base, ...run.overrides.flatMap((o) => ['--set', o]), '--set', `out_dir=${join(sweepDir, RUNS_DIR)}`, '--name', run.name, '--log-level', 'warn', ...extra];
}

/** The last `max` bytes of a file from `from` on. */
function tail(path: string, from: number, max = 4000): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(from, size - max);
      const buf = Buffer.alloc(Math.max(0, size - start));
      readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

export const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Runs (or continues) every pending run of the sweep in `sweepDir`. Resolves when none is left to try here. */
export async function executeSweep(sweepDir: string, opts: ExecuteOptions): Promise<SweepOutcome> {
  const workers = opts.workers ?? defaultWorkers();
  const threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / workers));
  const stopSignals = opts.stopSignals ?? STOP_SIGNALS;
  const { cmd, args: baseArgs } = childCommand();
  const durations: number[] = [];
  const active = new Map<string, Promise<void>>();
  const children = new Map<string, ReturnType<typeof spawn>>();
  const pollMs = opts.pollMs ?? 1000;

  let stoppedBy: NodeJS.Signals | null = null;
  let wake: () => void = () => {};
  const onSignal = (signal: NodeJS.Signals) => {
    const again = stoppedBy !== null;
    stoppedBy ??= signal;
    process.stderr.write(
      again
        ? `\ntopoprobe sweep: ${signal} again: stopping ${children.size} run(s) at once\n`
        : `\ntopoprobe sweep: ${signal}: stopping ${children.size} run(s) after their next checkpoint (${signal} again to stop them at once)\n`,
    );
    for (const child of children.values()) child.kill('SIGINT');
    wake();
  };
  for (const s of stopSignals) process.on(s, onSignal);

  // Finished run folders are recognised (a worker killed after the trainer wrote results.json).
  updateManifest(sweepDir, (m) => {
    for (const r of m.runs) if (r.status !== 'completed' && isFinished(runPaths(sweepDir, r).dir)) r.status = 'completed';
  });

  const report = () => {
    const m = readManifest(sweepDir);
    const count = (s: string) => m.runs.filter((r) => r.status === s).length;
    const left = count('pending') + count('running');
    const avg = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : null;
    opts.onProgress?.({ total: m.runs.length, done: count('completed'), running: count('running'), failed: count('failed'), pending: count('pending'), eta: avg === null ? null : (avg * left) / workers });
  };

  const launch = ({ run, lock, takenOver }: Claim): Promise<void> => {
    const base = readManifest(sweepDir).base;
    const p = runPaths(sweepDir, run);
    const resume = canResume(p.dir);
    if (!resume && existsSync(p.dir)) {
      // Starts over; the earlier attempts' stderr stays.
      const earlier = existsSync(p.log) ? readFileSync(p.log) : null;
      rmSync(p.dir, { recursive: true, force: true });
      if (earlier) {
        mkdirSync(p.dir, { recursive: true });
        writeFileSync(p.log, earlier, { flag: 'wx' });
      }
    }
    mkdirSync(p.dir, { recursive: true });
    const fd = openSync(p.log, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o644);
    const from = fstatSync(fd).size;
    const args = [...baseArgs, ...trainArgs(run, p.dir, resume, base, sweepDir, opts.runArgs ?? [])];
    writeSync(fd, `--- attempt ${run.attempts}, ${new Date().toISOString()}, worker ${run.worker}${resume ? ', resumed' : ''}${takenOver ? ' (taken over from a worker that is gone)' : ''}\n`);
    const started = Date.now();
    opts.log.info({ run: run.name, attempt: run.attempts, resume }, `sweep: starting ${run.name} (attempt ${run.attempts}${resume ? ', resumed' : ''})`);
    return new Promise<void>((done) => {
      let child: ReturnType<typeof spawn>;
      try {
        // Its own process group (a terminal's Ctrl-C reaches only this worker, which passes it on once) and
        // an IPC channel whose closing tells the child that this worker is gone.
        child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'ignore', fd, 'ipc'], env: { ...process.env, TOPOPROBE_THREADS: String(threads) } });
      } finally {
        closeSync(fd);
      }
      if (child.pid !== undefined) addLockHolders(lock, [child.pid]);
      children.set(run.name, child);
      let spawnError: Error | null = null;
      child.on('error', (err) => {
        spawnError = err;
      });
      child.on('close', (code, signal) => {
        children.delete(run.name);
        const finished = isFinished(p.dir);
        const ok = code === 0 && finished;
        const interrupted = !finished && stoppedBy !== null && (code === 130 || signal === 'SIGINT');
        const seconds = (Date.now() - started) / 1000;
        if (ok) durations.push(seconds);
        const stderr = tail(p.log, from).trim().split('\n').filter((l) => !l.startsWith('--- attempt')).slice(-8).join('\n');
        const error = ok || interrupted ? undefined : `${spawnError ? spawnError.message : signal ? `killed by ${signal}` : `exit ${code}`}: ${stderr}`;
        updateManifest(sweepDir, (m) => {
          const r = m.runs.find((x) => x.name === run.name)!;
          r.finished = new Date().toISOString();
          r.seconds = seconds;
          if (finished) {
            r.status = 'completed';
            delete r.error;
          } else if (interrupted) {
            r.status = 'pending';
          } else {
            r.error = error;
            r.failures += 1;
            r.status = r.failures > opts.retries ? 'failed' : 'pending';
          }
          // Released under the manifest lock, so no worker sees the run free while it is still marked running.
          unlock(lock);
        });
        if (finished) opts.log.info(`sweep: ${run.name} completed in ${seconds.toFixed(0)} s`);
        else if (interrupted) opts.log.info(`sweep: ${run.name} stopped by ${stoppedBy}; it continues from its checkpoint next time`);
        else opts.log.warn({ run: run.name, error }, `sweep: ${run.name} failed (attempt ${run.attempts}): ${error}`);
        report();
        done();
      });
    });
  };

  const pause = () =>
    new Promise<void>((r) => {
      const t = setTimeout(r, pollMs);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });

  try {
    report();
    let waitingLogged = false;
    for (;;) {
      while (stoppedBy === null && active.size < workers) {
        const claim = claimRun(sweepDir, new Set(active.keys()), opts.only);
        if (!claim) break;
        active.set(claim.run.name, launch(claim).finally(() => active.delete(claim.run.name)));
        report();
      }
      if (active.size === 0) {
        if (stoppedBy !== null) break;
        // Runs held by live processes on this host (another worker, or a trainer a killed worker left saving
        // its checkpoint): wait for them, then take over what they leave. Runs held on other hosts are theirs.
        const held = heldHere(sweepDir).filter((r) => opts.only === undefined || r.name === opts.only);
        if (held.length === 0) break;
        if (!waitingLogged) opts.log.info(`sweep: waiting for ${held.length} run(s) held by other processes on this host: ${held.map((r) => r.name).join(', ')}`);
        waitingLogged = true;
        await pause();
        continue;
      }
      await Promise.race([...active.values(), pause()]);
    }
    await Promise.all(active.values());
  } finally {
    for (const s of stopSignals) process.off(s, onSignal);
  }
  return { runs: readManifest(sweepDir).runs, stoppedBy };
}

/** The exit status for a worker stopped by `signal` (128 + its number, as a shell reports it). */
export const signalExitCode = (signal: NodeJS.Signals) => 128 + (osc.signals[signal] ?? 15);
