/**
 * Runs a sweep's planned runs in a local pool of worker processes (`topoprobe train` per run).
 *
 * - Resumable: a run with results.json is done and skipped; one with checkpoints/last is continued with
 *   `--resume`; one with neither starts over.
 * - A failed run is recorded with its error and tried again up to `retries` times; it never stops the others.
 * - Runs are claimed through lock files (see manifest.ts), so several `topoprobe sweep --worker` processes,
 *   on one machine or several sharing the folder, can work on one sweep.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { checkpointDir, hasCheckpoint, isFinished } from '../util/run-folder.js';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { readManifest, tryLock, unlock, updateManifest, type ManifestRun } from './manifest.js';

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
}

/** What the machine can hold: one run per two cores, at least one. */
export function defaultWorkers(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

/** The command that runs the CLI in a child process (compiled, or TypeScript under tsx in development). */
export function cliCommand(): { cmd: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const entry = join(dirname(here), '..', 'cli', here.endsWith('.ts') ? 'entry.ts' : 'entry.js');
  return { cmd: process.execPath, args: [...process.execArgv, entry] };
}

const lockOf = (run: ManifestRun) => `${run.dir}.lock`;

function trainArgs(run: ManifestRun, base: string, sweepDir: string, extra: string[]): string[] {
  if (hasCheckpoint(checkpointDir(run.dir, 'last'))) return ['train', '--resume', run.dir, '--log-level', 'warn', ...extra];
  return ['train', '--config', base, ...run.overrides.flatMap((o) => ['--set', o]), '--set', `out_dir=${join(sweepDir, 'runs')}`, '--name', run.name, '--log-level', 'warn', ...extra];
}

/** Runs (or continues) every pending run of the sweep in `sweepDir`. Resolves when none is left to try. */
export async function executeSweep(sweepDir: string, opts: ExecuteOptions): Promise<ManifestRun[]> {
  const workers = opts.workers ?? defaultWorkers();
  const threads = Math.max(1, Math.floor(availableParallelism() / workers));
  const { cmd, args: baseArgs } = cliCommand();
  const durations: number[] = [];
  const active = new Map<string, Promise<void>>();

  // Runs marked running whose worker is gone (a killed sweep) go back to pending; finished ones are recognised.
  updateManifest(sweepDir, (m) => {
    for (const r of m.runs) {
      if (isFinished(r.dir)) r.status = 'completed';
      else if (r.status === 'running' && tryLock(lockOf(r))) {
        unlock(lockOf(r));
        r.status = 'pending';
      }
    }
  });

  const report = () => {
    const m = readManifest(sweepDir);
    const count = (s: string) => m.runs.filter((r) => r.status === s).length;
    const left = count('pending') + count('running');
    const avg = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : null;
    opts.onProgress?.({ total: m.runs.length, done: count('completed'), running: count('running'), failed: count('failed'), pending: count('pending'), eta: avg === null ? null : (avg * left) / workers });
  };

  const launch = (run: ManifestRun): Promise<void> => {
    const base = readManifest(sweepDir).base;
    if (!isFinished(run.dir) && !hasCheckpoint(checkpointDir(run.dir, 'last'))) {
      rmSync(run.dir, { recursive: true, force: true });
    }
    const args = [...baseArgs, ...trainArgs(run, base, sweepDir, opts.runArgs ?? [])];
    const started = Date.now();
    opts.log.info({ run: run.name, attempt: run.attempts }, `sweep: starting ${run.name} (attempt ${run.attempts})`);
    return new Promise<void>((done) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPOPROBE_THREADS: String(threads) } });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
      });
      child.on('close', (code, signal) => {
        const ok = code === 0 && isFinished(run.dir);
        const seconds = (Date.now() - started) / 1000;
        if (ok) durations.push(seconds);
        const error = ok ? undefined : `${signal ? `killed by ${signal}` : `exit ${code}`}: ${stderr.trim().split('\n').slice(-8).join('\n')}`;
        updateManifest(sweepDir, (m) => {
          const r = m.runs.find((x) => x.name === run.name)!;
          r.finished = new Date().toISOString();
          r.seconds = seconds;
          if (ok) {
            r.status = 'completed';
            delete r.error;
          } else {
            r.error = error;
            r.status = r.attempts > opts.retries ? 'failed' : 'pending';
          }
        });
        if (ok) opts.log.info(`sweep: ${run.name} completed in ${seconds.toFixed(0)} s`);
        else opts.log.warn({ run: run.name, error }, `sweep: ${run.name} failed (attempt ${run.attempts}): ${error}`);
        unlock(lockOf(run));
        report();
        done();
      });
    });
  };

  /** Claims the next pending run, if any. */
  const claim = (): ManifestRun | undefined => {
    for (const r of readManifest(sweepDir).runs) {
      if (r.status !== 'pending' || active.has(r.name)) continue;
      if (!tryLock(lockOf(r))) continue;
      let claimed: ManifestRun | undefined;
      updateManifest(sweepDir, (m) => {
        const x = m.runs.find((y) => y.name === r.name)!;
        if (x.status !== 'pending') return;
        x.status = 'running';
        x.attempts += 1;
        x.started = new Date().toISOString();
        claimed = { ...x };
      });
      if (claimed) return claimed;
      unlock(lockOf(r));
    }
    return undefined;
  };

  report();
  for (;;) {
    while (active.size < workers) {
      const run = claim();
      if (!run) break;
      active.set(run.name, launch(run).finally(() => active.delete(run.name)));
      report();
    }
    if (active.size === 0) break;
    await Promise.race(active.values());
  }
  return readManifest(sweepDir).runs;
}
