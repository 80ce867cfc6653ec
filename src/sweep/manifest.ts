/**
 * A sweep folder: `manifest.json` (every planned run with its overrides, status, attempts and last error),
 * `runs/<name>/` (each run's own folder, as `topoprobe train` writes it), and `runs/<name>.lock` while a
 * worker holds a run.
 *
 * Claiming is an exclusive file creation (O_EXCL), so several worker processes, also on several machines
 * sharing the folder, never take the same run; a lock whose process is gone (same host) is taken over.
 * Manifest updates are read-modify-write under a short lock of their own and written atomically.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/fs.js';
import { TopoprobeError } from '../util/errors.js';
import type { PlannedRun } from './config.js';

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed';

export interface ManifestRun extends PlannedRun {
  dir: string;
  status: RunStatus;
  attempts: number;
  error?: string;
  started?: string;
  finished?: string;
  seconds?: number;
}

export interface Manifest {
  name: string;
  config: string;
  base: string;
  created: string;
  runs: ManifestRun[];
}

export const manifestPath = (sweepDir: string) => join(sweepDir, 'manifest.json');

export function readManifest(sweepDir: string): Manifest {
  const path = manifestPath(sweepDir);
  if (!existsSync(path)) throw new TopoprobeError(`${sweepDir}: no manifest.json (not a sweep folder)`);
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `path` as a lock; false if another live process holds it. */
export function tryLock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ host: hostname(), pid: process.pid, time: new Date().toISOString() }));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: { host?: string; pid?: number } = {};
      try {
        holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
      } catch {
        // A lock being written right now, or garbage: treat as held.
        return false;
      }
      if (holder.host === hostname() && typeof holder.pid === 'number' && !alive(holder.pid)) {
        rmSync(path, { force: true });
        continue;
      }
      return false;
    }
  }
  return false;
}

export function unlock(path: string): void {
  rmSync(path, { force: true });
}

/** Applies `change` to the manifest under the manifest lock, then writes it atomically. */
export function updateManifest(sweepDir: string, change: (m: Manifest) => void): Manifest {
  const lock = join(sweepDir, 'manifest.lock');
  const deadline = Date.now() + 10_000;
  while (!tryLock(lock)) {
    if (Date.now() > deadline) throw new TopoprobeError(`${lock}: the manifest stayed locked for 10 s`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  try {
    const m = readManifest(sweepDir);
    change(m);
    writeJsonAtomic(manifestPath(sweepDir), m);
    return m;
  } finally {
    unlock(lock);
  }
}

/** Creates the manifest, or merges a re-planned sweep into an existing one (keeping statuses). */
export function initManifest(sweepDir: string, name: string, config: string, base: string, planned: readonly PlannedRun[]): Manifest {
  mkdirSync(join(sweepDir, 'runs'), { recursive: true });
  if (!existsSync(manifestPath(sweepDir))) {
    const m: Manifest = {
      name, config, base, created: new Date().toISOString(),
      runs: planned.map((r) => ({ ...r, dir: join(sweepDir, 'runs', r.name), status: 'pending', attempts: 0 })),
    };
    writeJsonAtomic(manifestPath(sweepDir), m);
    return m;
  }
  return updateManifest(sweepDir, (m) => {
    for (const r of planned) {
      if (!m.runs.some((x) => x.name === r.name)) m.runs.push({ ...r, dir: join(sweepDir, 'runs', r.name), status: 'pending', attempts: 0 });
    }
  });
}
