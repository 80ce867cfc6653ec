/**
 * A sweep folder: `manifest.json` (every planned run with its overrides, status, attempts and last error),
 * `runs/<name>/` (each run's own folder, as `topoprobe train` writes it, plus `sweep.log`: the trainer's
 * stderr, every attempt), and `runs/<name>.lock` while a worker holds a run.
 *
 * Nothing in the folder is trusted:
 * - The manifest names each run's folder relative to the sweep folder (`dir: "runs/<name>"`). An entry whose
 *   name is not one plain folder name, or whose `dir` is absolute, contains `..`, resolves outside
 *   `<sweep>/runs/` or is not `runs/<name>`, is refused (a TopoprobeError naming the manifest and the entry)
 *   before anything is touched. Manifests of earlier versions stored absolute paths: one that is exactly this
 *   sweep folder's `runs/<name>` is read as the run's name (and written back relative); any other absolute
 *   path (say, the original's, in a copied sweep folder) is refused. A run folder, `runs/` or a lock that is
 *   a symbolic link is refused too, so a copied folder never writes through a link into another.
 * - Claiming a run is an exclusive file creation (O_EXCL) of its lock, which records the host, the worker's
 *   and (once started) the trainer's process ids with their start times, and the identity (device, inode)
 *   of the folder it was made in. A lock is stale, and taken over, when it was made on this host and every
 *   process it names is gone (a reused pid is told apart by its start time), or when it was made in another
 *   folder (a copied sweep folder), or when it is unreadable and over 30 s old (its writer died between
 *   creating and writing it). A lock of another host is taken over only when a Slurm array task made it and
 *   that task is gone from Slurm's queue or is this very task, requeued (src/sweep/queue.ts); any other is
 *   never taken over: delete it by hand.
 * - Run locks are claimed and taken over only while the manifest lock is held, so two workers never both
 *   judge one lock stale and both take it. The manifest lock itself is broken (when stale) by renaming it
 *   aside and checking that the renamed file is the stale one.
 */
import { closeSync, constants as fsc, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../util/fs.js';
import { TopoprobeError } from '../util/errors.js';
import { insideFolder, isFinished } from '../util/run-folder.js';
import type { PlannedRun } from './config.js';
import { slurmTaskId, slurmTaskQueued } from './queue.js';

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed';

export interface ManifestRun extends PlannedRun {
  /** The run folder relative to the sweep folder: always `runs/<name>`. */
  dir: string;
  status: RunStatus;
  /** How many times the run was started (resumes included). */
  attempts: number;
  /** How many of those attempts failed (an interrupted attempt is not a failure). */
  failures: number;
  error?: string;
  /** `host:pid` of the worker that last claimed it. */
  worker?: string;
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
export const RUNS_DIR = 'runs';
/** The trainer's stderr for every attempt of a run, inside its run folder. */
export const RUN_LOG = 'sweep.log';

const runEntrySchema = z
  .object({
    name: z.string(),
    dir: z.string().optional(),
    overrides: z.array(z.string()),
    baseline: z.boolean(),
    status: z.enum(['pending', 'running', 'completed', 'failed']),
    attempts: z.number().int().nonnegative(),
    failures: z.number().int().nonnegative().optional(),
    error: z.string().optional(),
    worker: z.string().optional(),
    started: z.string().optional(),
    finished: z.string().optional(),
    seconds: z.number().optional(),
  })
  .passthrough();

const manifestSchema = z
  .object({ name: z.string(), config: z.string(), base: z.string(), created: z.string(), runs: z.array(z.unknown()) })
  .passthrough();

const plainName = (name: string) => name !== '' && name !== '.' && name !== '..' && !/[\\/\0]/.test(name);

/** Throws unless `<sweep>/runs` is a real folder of the sweep folder (not a link to another place). */
function checkRunsFolder(sweepDir: string, source: string): string {
  const runs = join(resolve(sweepDir), RUNS_DIR);
  if (isLink(runs)) {
    let target = '?';
    try {
      target = realpathSync(runs);
    } catch {
      // A dangling link.
    }
    throw new TopoprobeError(`${source}: ${runs} is a symbolic link (to ${target}); a sweep's runs/ must be a folder inside the sweep folder. Nothing was changed.`);
  }
  return runs;
}

/**
 * The run folder of a manifest entry, relative to the sweep folder (`runs/<name>`), or a TopoprobeError
 * naming `source` (the manifest) and the entry.
 */
export function checkEntry(sweepDir: string, entry: { name: string; dir?: string }, where: string, source: string): string {
  const what = `${source}: ${where} ${JSON.stringify(entry.name)}`;
  const nothing = 'Nothing was changed.';
  if (!plainName(entry.name)) throw new TopoprobeError(`${what}: the name is not one run folder name (no "/", "\\", "." or ".."). ${nothing}`);
  const runs = join(resolve(sweepDir), RUNS_DIR);
  const own = join(runs, entry.name);
  const rel = `${RUNS_DIR}/${entry.name}`;
  const dir = entry.dir;
  if (dir !== undefined) {
    if (isAbsolute(dir)) {
      // Earlier versions stored absolute paths: accepted only when it is this sweep folder's own runs/<name>.
      const same = resolve(dir) === own || (existsSync(dir) && existsSync(own) && realpathSync(dir) === realpathSync(own));
      if (!same) {
        throw new TopoprobeError(
          `${what}: dir ${JSON.stringify(dir)} is an absolute path outside this sweep's runs/ folder (${runs}); run folders are named relative to the sweep folder ("${rel}"). ${nothing} (A sweep folder copied from one of an earlier topoprobe: set this entry's dir to "${rel}".)`,
        );
      }
    } else {
      if (dir.split(/[\\/]+/).includes('..')) throw new TopoprobeError(`${what}: dir ${JSON.stringify(dir)} contains ".."; a run folder is "${rel}". ${nothing}`);
      const abs = insideFolder(runs, resolve(sweepDir, dir));
      if (abs === null) throw new TopoprobeError(`${what}: dir ${JSON.stringify(dir)} resolves outside ${runs}. ${nothing}`);
      if (abs !== own) throw new TopoprobeError(`${what}: dir ${JSON.stringify(dir)} is not the run's folder "${rel}". ${nothing}`);
    }
  }
  for (const p of [own, `${own}.lock`, join(own, RUN_LOG)]) {
    if (isLink(p)) throw new TopoprobeError(`${what}: ${p} is a symbolic link; a sweep's run folders and their files must lie inside it. ${nothing}`);
  }
  return rel;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A run's paths (absolute), each checked to lie inside `<sweep>/runs/`. */
export function runPaths(sweepDir: string, run: { name: string }): { dir: string; lock: string; log: string } {
  const runs = join(resolve(sweepDir), RUNS_DIR);
  const dir = insideFolder(runs, run.name);
  const lock = insideFolder(runs, `${run.name}.lock`);
  if (!plainName(run.name) || dir === null || lock === null || dirname(dir) !== runs) {
    throw new TopoprobeError(`${manifestPath(sweepDir)}: run ${JSON.stringify(run.name)} is not a run folder name inside ${runs}`);
  }
  return { dir, lock, log: join(dir, RUN_LOG) };
}

/** Reads and checks the manifest (see the file comment); entries come back with `dir: "runs/<name>"`. */
export function readManifest(sweepDir: string): Manifest {
  const path = manifestPath(sweepDir);
  if (!existsSync(path)) throw new TopoprobeError(`${sweepDir}: no manifest.json (not a sweep folder)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TopoprobeError(`${path}: malformed JSON (${(err as Error).message})`);
  }
  const top = manifestSchema.safeParse(raw);
  if (!top.success) throw new TopoprobeError(`${path}: not a sweep manifest (${top.error.issues[0]!.path.join('.') || 'top level'}: ${top.error.issues[0]!.message})`);
  checkRunsFolder(sweepDir, path);
  const seen = new Set<string>();
  const runs = top.data.runs.map((r, i): ManifestRun => {
    const parsed = runEntrySchema.safeParse(r);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new TopoprobeError(`${path}: runs[${i}]: ${issue.path.join('.') || 'entry'}: ${issue.message}. Nothing was changed.`);
    }
    const e = parsed.data;
    const dir = checkEntry(sweepDir, e, `runs[${i}]`, path);
    if (seen.has(e.name)) throw new TopoprobeError(`${path}: runs[${i}] ${JSON.stringify(e.name)}: a second entry of that name. Nothing was changed.`);
    seen.add(e.name);
    // Manifests without `failures` (earlier versions) counted every attempt of a run that has an error.
    return { ...e, dir, failures: e.failures ?? (e.error !== undefined ? e.attempts : 0) };
  });
  return { ...top.data, runs } as Manifest;
}

// ---- locks ---------------------------------------------------------------------------------------------

interface LockInfo {
  host: string;
  /** The processes on `host` that hold the lock (the worker, then also its trainer): held while one lives. */
  pids: number[];
  /** Each pid's start time (Linux: /proc/<pid>/stat), so a pid reused by another process is not taken as the holder. */
  starts?: Record<string, number>;
  /** Device and inode of the folder the lock was made in: a lock copied into another folder is not held there. */
  folder?: { dev: number; ino: number };
  nonce: string;
  time: string;
  /** Earlier versions: one pid. */
  pid?: number;
  /** The Slurm array task that made it (`<array job>_<task>`), when made inside one. */
  slurm?: string;
}

/** A lock this process holds. */
export interface Lock {
  path: string;
  nonce: string;
}

/** A process's start time in clock ticks since boot (Linux), else null. */
function startTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = Number(fields[19]);
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}

function alive(pid: number, start?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = startTime(pid);
  return now === null || now === start;
}

function folderId(dir: string): { dev: number; ino: number } {
  const s = statSync(dir);
  return { dev: s.dev, ino: s.ino };
}

function lockInfo(path: string, pids: number[], nonce: string): LockInfo {
  const starts: Record<string, number> = {};
  for (const p of pids) {
    const t = startTime(p);
    if (t !== null) starts[String(p)] = t;
  }
  const slurm = slurmTaskId();
  return { host: hostname(), pids, starts, folder: folderId(dirname(path)), nonce, time: new Date().toISOString(), ...(slurm ? { slurm } : {}) };
}

/** What holds a lock file: 'free' (none), 'stale' (see the file comment), 'local' (a live process here), 'remote'. */
export function lockState(path: string): { state: 'free' | 'stale' | 'local' | 'remote'; text?: string; info?: LockInfo } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' };
    throw new TopoprobeError(`${path}: cannot read this lock file (${(err as Error).message}); remove whatever is there`);
  }
  let info: LockInfo;
  try {
    info = JSON.parse(text) as LockInfo;
    if (typeof info !== 'object' || info === null || typeof info.host !== 'string') throw new Error('not a lock');
  } catch {
    // Being written right now (held), or its writer died between creating and writing it (stale after 30 s).
    let age = 0;
    try {
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      return { state: 'free' };
    }
    return { state: age > 30_000 ? 'stale' : 'local', text };
  }
  if (info.host !== hostname()) {
    // Made by a Slurm array task on another node: stale when it is this task's own earlier incarnation (Slurm
    // runs one at a time; a requeued task may land elsewhere) or when Slurm no longer has that task.
    if (typeof info.slurm === 'string' && (info.slurm === slurmTaskId() || slurmTaskQueued(info.slurm) === false)) return { state: 'stale', text, info };
    return { state: 'remote', text, info };
  }
  if (info.folder) {
    const here = folderId(dirname(path));
    if (here.dev !== info.folder.dev || here.ino !== info.folder.ino) return { state: 'stale', text, info };
  }
  const pids = Array.isArray(info.pids) ? info.pids : typeof info.pid === 'number' ? [info.pid] : [];
  const live = pids.some((p) => typeof p === 'number' && alive(p, info.starts?.[String(p)]));
  return { state: live ? 'local' : 'stale', text, info };
}

/** Removes a stale lock whose text was `seen`: renamed aside, and put back if what was renamed is not it. */
function breakStale(path: string, seen: string | undefined): boolean {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
  let text: string | undefined;
  try {
    text = readFileSync(aside, 'utf8');
  } catch {
    text = undefined;
  }
  if (seen !== undefined && text !== seen) {
    // Another process made a fresh lock in between: put it back (unless a third one took the name).
    try {
      linkSync(aside, path);
    } catch {
      // EEXIST: the name is taken again; the fresh lock we moved is gone either way.
    }
    rmSync(aside, { force: true });
    return false;
  }
  rmSync(aside, { force: true });
  return true;
}

/** Takes `path` as a lock for this process (taking over a stale one); null if a live process holds it. */
export function tryLock(path: string): Lock | null {
  const nonce = randomBytes(8).toString('hex');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // O_NOFOLLOW|O_EXCL: never through a link, never an existing file.
      const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, JSON.stringify(lockInfo(path, [process.pid], nonce)));
      } finally {
        closeSync(fd);
      }
      return { path, nonce };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = lockState(path);
      if (held.state === 'local' || held.state === 'remote') return null;
      if (held.state === 'stale' && !breakStale(path, held.text)) return null;
    }
  }
  return null;
}

/** Adds processes (a worker's trainer) to a lock this process holds: it stays held while any of them lives. */
export function addLockHolders(lock: Lock, pids: number[]): void {
  const state = lockState(lock.path);
  if (state.info?.nonce !== lock.nonce) return;
  const current = state.info.pids ?? [process.pid];
  writeJsonAtomic(lock.path, lockInfo(lock.path, [...new Set([...current, ...pids])], lock.nonce), 0);
}

/** Releases a lock this process holds (not one that was taken over since). */
export function unlock(lock: Lock): void {
  let text: string;
  try {
    text = readFileSync(lock.path, 'utf8');
  } catch {
    return;
  }
  try {
    if ((JSON.parse(text) as LockInfo).nonce !== lock.nonce) return;
  } catch {
    return;
  }
  rmSync(lock.path, { force: true });
}

/** Applies `change` to the manifest under the manifest lock, then writes it atomically. */
export function updateManifest<T = void>(sweepDir: string, change: (m: Manifest) => T): { manifest: Manifest; result: T } {
  const path = join(sweepDir, 'manifest.lock');
  const deadline = Date.now() + 10_000;
  let lock: Lock | null;
  while (!(lock = tryLock(path))) {
    if (Date.now() > deadline) {
      const holder = lockState(path).info;
      throw new TopoprobeError(`${path}: the manifest stayed locked for 10 s${holder ? ` (by ${holder.host}, pids ${(holder.pids ?? [holder.pid]).join(', ')})` : ''}; if no worker holds it, delete that file`);
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  try {
    const m = readManifest(sweepDir);
    const result = change(m);
    writeJsonAtomic(manifestPath(sweepDir), m);
    return { manifest: m, result };
  } finally {
    unlock(lock);
  }
}

const newEntry = (r: PlannedRun): ManifestRun => ({ ...r, dir: `${RUNS_DIR}/${r.name}`, status: 'pending', attempts: 0, failures: 0 });

/** Creates the manifest, or merges a re-planned sweep into an existing one (keeping statuses). */
export function initManifest(sweepDir: string, name: string, config: string, base: string, planned: readonly PlannedRun[]): Manifest {
  if (existsSync(join(sweepDir, RUNS_DIR))) checkRunsFolder(sweepDir, manifestPath(sweepDir));
  for (const r of planned) checkEntry(sweepDir, r, 'run', manifestPath(sweepDir));
  mkdirSync(join(sweepDir, RUNS_DIR), { recursive: true });
  if (!existsSync(manifestPath(sweepDir))) {
    const m: Manifest = { name, config, base, created: new Date().toISOString(), runs: planned.map(newEntry) };
    writeJsonAtomic(manifestPath(sweepDir), m);
    return m;
  }
  return updateManifest(sweepDir, (m) => {
    for (const r of planned) if (!m.runs.some((x) => x.name === r.name)) m.runs.push(newEntry(r));
  }).manifest;
}

/** A claimed run: its manifest entry (as claimed), its lock, and whether it was taken over from a worker that is gone. */
export interface Claim {
  run: ManifestRun;
  lock: Lock;
  takenOver: boolean;
}

/**
 * Claims the next run to work on, under the manifest lock: a pending one, or one marked running whose lock
 * is stale (its worker and trainer are gone). Finished run folders are marked completed on the way.
 */
export function claimRun(sweepDir: string, skip: ReadonlySet<string>, only?: string): Claim | null {
  return updateManifest(sweepDir, (m): Claim | null => {
    for (const r of m.runs) {
      if (skip.has(r.name) || (only !== undefined && r.name !== only) || (r.status !== 'pending' && r.status !== 'running')) continue;
      const p = runPaths(sweepDir, r);
      const lock = tryLock(p.lock);
      if (!lock) continue;
      if (isFinished(p.dir)) {
        r.status = 'completed';
        delete r.error;
        unlock(lock);
        continue;
      }
      const takenOver = r.status === 'running';
      r.status = 'running';
      r.attempts += 1;
      r.started = new Date().toISOString();
      r.worker = `${hostname()}:${process.pid}`;
      return { run: { ...r }, lock, takenOver };
    }
    return null;
  }).result;
}

/** Runs not completed or failed whose lock a live process on this host holds (another worker, or a trainer left by a killed one). */
export function heldHere(sweepDir: string, m: Manifest = readManifest(sweepDir)): ManifestRun[] {
  return m.runs.filter((r) => (r.status === 'pending' || r.status === 'running') && lockState(runPaths(sweepDir, r).lock).state === 'local');
}
