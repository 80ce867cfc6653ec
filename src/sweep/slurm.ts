/**
 * Sweeps on a Slurm cluster: `topoprobe sweep --executor slurm` submits a sweep's runs as one job array, one
 * array task per manifest run, plus a dependent job that compares them when the array ends.
 *
 * - Submitting (`submitSweep`): the runs not completed (indices into the manifest, which only ever grows, so
 *   an index names one run for good) become `--array=<ranges>%K`. The job script (`<sweep>/slurm/job.sh`)
 *   and the comparison's (`compare.sh`) are written into the sweep folder first; every submission is
 *   recorded in the manifest (`slurm.submissions`). A sweep with tasks of an earlier submission still in the
 *   queue is refused, so a run is never queued twice.
 * - An array task (`runTask`, `topoprobe sweep --task <sweep>`) is a sweep worker for its one run: a
 *   completed run is skipped, an interrupted one resumes from its checkpoint (src/sweep/executor.ts).
 *   Slurm sends the task USR1 `signalLead` seconds before its time limit (`--signal=B:USR1@lead`): the
 *   trainer saves a checkpoint, and the task requeues itself (`scontrol requeue`; the job has `--requeue`).
 *   A requeue, a preemption or scancel from outside sends SIGTERM to every process of the job: the trainer
 *   checkpoints the same way (src/sweep/child.ts) and Slurm requeues it (or not, for scancel).
 * - `sweepStatus` joins the manifest with squeue (and sacct where accounting is on).
 *
 * The sweep folder, and topoprobe itself, must lie on a file system every compute node sees at the same
 * path (NFS, Lustre, GPFS, ...): the tasks read the manifest and write the run folders there.
 */
import { existsSync, mkdirSync, realpathSync, statfsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { LOG_FILE } from '../util/run-folder.js';
import { cliCommand, executeSweep, signalExitCode, STOP_SIGNALS } from './executor.js';
import { readManifest, runPaths, updateManifest, type Manifest, type ManifestRun } from './manifest.js';
import { accountedTasks, queuedTasks, slurmCommand, type AccountedTask, type QueuedTask } from './queue.js';

/** Slurm's `--array` value for these manifest indices: sorted, runs of consecutive indices as ranges, then `%K`. */
export function arraySpec(indices: readonly number[], parallelism?: number): string {
  if (indices.length === 0) throw new Error('arraySpec: no runs to submit');
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  for (const i of sorted) if (!Number.isInteger(i) || i < 0) throw new Error(`arraySpec: ${i} is not a run index`);
  const parts: string[] = [];
  let start = sorted[0]!;
  let prev = start;
  for (const i of [...sorted.slice(1), Number.NaN]) {
    if (i === prev + 1) {
      prev = i;
      continue;
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`);
    start = prev = i;
  }
  return parts.join(',') + (parallelism !== undefined ? `%${parallelism}` : '');
}

export interface SlurmOptions {
  partition?: string;
  /** Any time Slurm's --time takes (HH:MM:SS, D-HH:MM, minutes). */
  time?: string;
  cpusPerTask?: number;
  gpusPerTask?: number;
  arrayParallelism?: number;
  /** Extra sbatch arguments, each one word (`--account=lab`). */
  sbatchArgs?: string[];
  /** Seconds before the time limit at which a task is told to checkpoint and requeue (default 300). */
  signalLead?: number;
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function resourceLines(opts: SlurmOptions, gpus: boolean): string[] {
  return [
    ...(opts.partition ? [`#SBATCH --partition=${shellQuote(opts.partition)}`] : []),
    ...(opts.time ? [`#SBATCH --time=${shellQuote(opts.time)}`] : []),
    ...(opts.cpusPerTask ? [`#SBATCH --cpus-per-task=${opts.cpusPerTask}`] : []),
    ...(gpus && opts.gpusPerTask ? [`#SBATCH --gpus-per-task=${opts.gpusPerTask}`] : []),
    ...(opts.sbatchArgs ?? []).map((a) => `#SBATCH ${shellQuote(a)}`),
  ];
}

/**
 * The array job's script: #SBATCH lines from `opts`, then the task command. `cli` is the command that runs
 * topoprobe (node and its entry point, absolute paths: the compute node runs it from the shared file system).
 */
export function jobScript(p: { name: string; sweepDir: string; cli: string[]; opts: SlurmOptions; runArgs?: string[] }): string {
  const lead = p.opts.signalLead ?? 300;
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${shellQuote(`topoprobe-${p.name}`)}`,
    `#SBATCH --output=${shellQuote(`${p.sweepDir}/slurm/%A_%a.out`)}`,
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    `#SBATCH --signal=B:USR1@${lead}`,
    ...resourceLines(p.opts, true),
    '# One array task per manifest run (SLURM_ARRAY_TASK_ID is its index): topoprobe sweep --task runs it,',
    '# resuming its checkpoint; on USR1 (the time limit is near) it checkpoints and requeues the task.',
    `exec ${[...p.cli, 'sweep', '--task', p.sweepDir, ...(p.runArgs ?? [])].map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** The dependent job's script: `topoprobe compare` on the sweep folder once the array has ended. */
export function compareScript(p: { name: string; sweepDir: string; cli: string[]; opts: SlurmOptions; compareArgs?: string[] }): string {
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${shellQuote(`topoprobe-${p.name}-compare`)}`,
    `#SBATCH --output=${shellQuote(`${p.sweepDir}/slurm/compare_%j.out`)}`,
    ...resourceLines({ ...p.opts, cpusPerTask: 1 }, false),
    '# Runs when every task of the sweep\'s job array has ended (afterany), whatever their outcome.',
    `exec ${[...p.cli, 'compare', p.sweepDir, ...(p.compareArgs ?? [])].map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** The job id in `sbatch --parsable` output (`<id>` or `<id>;<cluster>`). */
export function parseJobId(stdout: string): string {
  const id = stdout.trim().split(';')[0]!;
  if (!/^\d+$/.test(id)) throw new TopoprobeError(`sbatch --parsable printed ${JSON.stringify(stdout.trim())}, not a job id`);
  return id;
}

/** What a refused submission's message points at: the flag (and sweep YAML key) to look at, if one is clear. */
export function refusalHint(stderr: string): string | null {
  if (/invalid partition|partition.*(not|does not) exist/i.test(stderr)) return '--partition (slurm.partition in the sweep YAML)';
  if (/time limit|invalid (--)?time/i.test(stderr)) return '--time (slurm.time)';
  if (/gres|gpu/i.test(stderr)) return '--gpus-per-task (slurm.gpus_per_task)';
  if (/cpu|node configuration is not available/i.test(stderr)) return '--cpus-per-task (slurm.cpus_per_task) and --gpus-per-task (slurm.gpus_per_task)';
  if (/array/i.test(stderr)) return '--array-parallelism (slurm.array_parallelism), and the cluster\'s MaxArraySize';
  return null;
}

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const NODE_LOCAL = ['/tmp', '/var/tmp', '/dev/shm', '/run'];

/**
 * Why `path` is not where every compute node can see it, or null: a path in node-local places (/tmp,
 * /var/tmp, /dev/shm, /run) or on a memory file system is not, unless every node of the partition is this
 * machine (`nodes` from sinfo, `host` this machine's short name).
 */
export function sharedPathProblem(path: string, p: { nodes: readonly string[]; host: string; fsType?: number }): string | null {
  if (p.nodes.length > 0 && p.nodes.every((n) => n === p.host)) return null;
  const local = NODE_LOCAL.find((d) => path === d || path.startsWith(`${d}/`));
  if (local) return `${path} is under ${local}, which is local to each machine`;
  if (p.fsType === TMPFS_MAGIC || p.fsType === RAMFS_MAGIC) return `${path} is on a memory file system (tmpfs), local to this machine`;
  return null;
}

function fsTypeOf(path: string): number | undefined {
  try {
    return Number(statfsSync(path).type);
  } catch {
    return undefined;
  }
}

/** The nodes of a partition (or of the default one), short names; [] if sinfo cannot say. */
function partitionNodes(partition?: string): string[] {
  const r = slurmCommand('sinfo', ['-h', '-N', '-o', '%N', ...(partition ? ['-p', partition] : [])]);
  return r.ok ? [...new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean))] : [];
}

export interface Submission {
  /** The array job's id. */
  array: string;
  /** The comparison job's id. */
  compare: string;
  /** The `--array` value submitted. */
  tasks: string;
  submitted: string;
}

/** The submissions recorded in a manifest (none for a sweep never submitted to Slurm). */
export function submissions(m: Manifest): Submission[] {
  const s = (m as Manifest & { slurm?: { submissions?: Submission[] } }).slurm?.submissions;
  return Array.isArray(s) ? s : [];
}

/** What a run records about its Slurm task (in its manifest entry). */
interface RunSlurm {
  task: string;
  node: string;
  restarts: number;
  requeued?: number;
}
const runSlurm = (r: ManifestRun): RunSlurm | undefined => (r as ManifestRun & { slurm?: RunSlurm }).slurm;

const sbatchMissing = 'sbatch not found on PATH: --executor slurm needs Slurm\'s client commands (run on the cluster\'s login node, or load its module); without a cluster, use the local worker pool (--executor local)';

/**
 * Submits the sweep's runs not completed as one job array and the dependent comparison job; returns the
 * submission. Failed runs are submitted again (their failure count reset). Throws a TopoprobeError when
 * sbatch is missing or refuses, when an earlier submission still has tasks queued, or when the sweep folder
 * is not on a path the compute nodes see; nothing is submitted then.
 */
export function submitSweep(sweepDir: string, p: { opts: SlurmOptions; retries: number; runArgs?: string[]; log: Logger }): Submission & { runs: number } {
  sweepDir = resolve(sweepDir);
  const sbatch = slurmCommand('sbatch', ['--version']);
  if (!sbatch.ok) throw new TopoprobeError(sbatch.missing ? sbatchMissing : `sbatch does not run: ${sbatch.reason}`);
  const before = readManifest(sweepDir);
  const earlier = submissions(before);
  const queued = queuedTasks(earlier.map((s) => s.array));
  if (queued === null) throw new TopoprobeError('squeue cannot list the queue; the sweep\'s earlier submissions cannot be checked, so nothing was submitted');
  if (queued.length > 0) {
    const jobs = [...new Set(queued.map((t) => t.id.split('_')[0]))].join(', ');
    throw new TopoprobeError(`${sweepDir}: ${queued.length} task(s) of an earlier submission (job ${jobs}) are still queued or running; wait for them (topoprobe sweep --status ${sweepDir}) or cancel them (scancel ${jobs}) before submitting again`);
  }
  const { cmd, args } = cliCommand();
  const cli = [cmd, ...args];
  const host = hostname().split('.')[0]!;
  const nodes = partitionNodes(p.opts.partition);
  // A partition sinfo does not know has no nodes to judge by: sbatch refuses it below, with its own words.
  if (nodes.length > 0 || !p.opts.partition) for (const [what, path] of [['the sweep folder', sweepDir], ['topoprobe', args.at(-1)!], ['node', cmd]] as const) {
    const real = existsSync(path) ? realpathSync(path) : path;
    const problem = sharedPathProblem(real, { nodes, host, fsType: fsTypeOf(real) });
    if (problem) {
      throw new TopoprobeError(
        `${what}: ${problem}; the compute nodes (${nodes.length > 0 ? nodes.join(', ') : 'sinfo lists none: is slurmctld running?'}) cannot see it. A Slurm sweep needs the sweep folder (out_dir in the sweep YAML) and topoprobe on a file system every node mounts at the same path (NFS, Lustre, GPFS, ...). Nothing was submitted.`,
      );
    }
  }
  const todo = before.runs.map((r, i) => ({ r, i })).filter(({ r }) => r.status !== 'completed');
  if (todo.length === 0) throw new TopoprobeError(`${sweepDir}: every run is completed; nothing to submit`);
  const slurmDir = join(sweepDir, 'slurm');
  mkdirSync(slurmDir, { recursive: true });
  const jobPath = join(slurmDir, 'job.sh');
  const comparePath = join(slurmDir, 'compare.sh');
  writeFileAtomic(jobPath, jobScript({ name: before.name, sweepDir, cli, opts: p.opts, runArgs: ['--retries', String(p.retries), ...(p.runArgs ?? [])] }));
  writeFileAtomic(comparePath, compareScript({ name: before.name, sweepDir, cli, opts: p.opts }));
  // Failed runs get their tries again; what is in the queue from here on is this submission's.
  const reset = new Map<string, ManifestRun>();
  updateManifest(sweepDir, (m) => {
    for (const r of m.runs) {
      if (r.status === 'failed') {
        reset.set(r.name, { ...r });
        r.status = 'pending';
        r.failures = 0;
      }
    }
  });
  // A refused submission leaves the failed runs as they were.
  const undo = () =>
    updateManifest(sweepDir, (m) => {
      for (const r of m.runs) {
        const was = reset.get(r.name);
        if (was && r.status === 'pending') Object.assign(r, { status: was.status, failures: was.failures });
      }
    });
  const tasks = arraySpec(todo.map((t) => t.i), p.opts.arrayParallelism);
  const submit = (script: string, extra: string[], what: string): string => {
    const r = slurmCommand('sbatch', ['--parsable', ...extra, script]);
    if (!r.ok) {
      if (r.missing) throw new TopoprobeError(sbatchMissing);
      const hint = refusalHint(r.reason);
      throw new TopoprobeError(`sbatch refused the ${what}: ${r.reason}${hint ? `; check ${hint}` : ''}. Nothing was submitted.`);
    }
    return parseJobId(r.stdout);
  };
  let array: string;
  try {
    array = submit(jobPath, [`--array=${tasks}`], `sweep's job array (${jobPath})`);
  } catch (err) {
    undo();
    throw err;
  }
  let compare: string;
  try {
    compare = submit(comparePath, [`--dependency=afterany:${array}`, '--kill-on-invalid-dep=yes'], `comparison job (${comparePath})`);
  } catch (err) {
    // Not half-submitted: the array goes too.
    slurmCommand('scancel', [array]);
    undo();
    throw err;
  }
  const submission: Submission = { array, compare, tasks, submitted: new Date().toISOString() };
  updateManifest(sweepDir, (m) => {
    const rec = ((m as Manifest & { slurm?: { submissions: Submission[] } }).slurm ??= { submissions: [] });
    rec.submissions = [...(Array.isArray(rec.submissions) ? rec.submissions : []), submission];
  });
  p.log.info({ ...submission, runs: todo.length }, `sweep: submitted ${todo.length} run(s) as Slurm job array ${array} (${tasks}); comparison job ${compare}`);
  return { ...submission, runs: todo.length };
}

/**
 * One array task: trains the manifest run its index names (SLURM_ARRAY_TASK_ID, or `index`), as a sweep
 * worker for that run only. Returns the exit status: 0 completed (or already), 1 failed, 128+n stopped by
 * a signal (after USR1 the task has asked Slurm to requeue it).
 */
export async function runTask(sweepDir: string, p: { index?: number; retries: number; runArgs?: string[]; log: Logger }): Promise<number> {
  sweepDir = resolve(sweepDir);
  const raw = p.index !== undefined ? String(p.index) : process.env.SLURM_ARRAY_TASK_ID;
  if (raw === undefined) throw new TopoprobeError('sweep --task: no SLURM_ARRAY_TASK_ID (not inside a Slurm array task); give --index N to run manifest run N');
  const index = Number(raw);
  const m = readManifest(sweepDir);
  if (!Number.isInteger(index) || index < 0 || index >= m.runs.length) throw new TopoprobeError(`sweep --task: task ${raw} names no run of ${sweepDir} (it has runs 0-${m.runs.length - 1})`);
  const run = m.runs[index]!;
  const job = process.env.SLURM_ARRAY_JOB_ID;
  const task = job ? `${job}_${raw}` : null;
  const restarts = Number(process.env.SLURM_RESTART_COUNT ?? 0) || 0;
  const say = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  say(`topoprobe: task ${task ?? raw} on ${hostname()}: run ${run.name}${restarts ? ` (restart ${restarts})` : ''}`);
  if (task) {
    updateManifest(sweepDir, (mm) => {
      const r = mm.runs[index] as ManifestRun & { slurm?: RunSlurm };
      r.slurm = { ...r.slurm, task, node: hostname(), restarts };
    });
  }
  if (run.status === 'completed') {
    say(`topoprobe: ${run.name} is completed; nothing to do`);
    return 0;
  }
  // The CPUs Slurm gave the task (one unless --cpus-per-task), not the node's: with task/none nothing else
  // stops a run from using every core of a shared node.
  const cpus = Number(process.env.SLURM_CPUS_PER_TASK ?? 1);
  const { runs, stoppedBy } = await executeSweep(sweepDir, {
    workers: 1, retries: p.retries, log: p.log, runArgs: p.runArgs, only: run.name,
    threads: Number.isInteger(cpus) && cpus > 0 ? cpus : 1,
    stopSignals: [...STOP_SIGNALS, 'SIGUSR1'],
  });
  const after = runs.find((r) => r.name === run.name)!;
  if (stoppedBy === 'SIGUSR1' && task) {
    updateManifest(sweepDir, (mm) => {
      const r = mm.runs[index] as ManifestRun & { slurm?: RunSlurm };
      r.slurm = { ...r.slurm!, requeued: (r.slurm?.requeued ?? 0) + 1 };
    });
    say(`topoprobe: ${run.name} checkpointed before the time limit; requeueing task ${task}`);
    const r = slurmCommand('scontrol', ['requeue', task]);
    if (!r.ok) say(`topoprobe: could not requeue (${r.reason}); submit the sweep again to continue it`);
    return signalExitCode(stoppedBy);
  }
  if (stoppedBy) {
    say(`topoprobe: ${run.name} stopped by ${stoppedBy} at a checkpoint; a requeued or resubmitted task resumes it`);
    return signalExitCode(stoppedBy);
  }
  if (after.status === 'completed') {
    say(`topoprobe: ${run.name} completed`);
    return 0;
  }
  const paths = runPaths(sweepDir, after);
  say(`topoprobe: ${run.name} ${after.status} after ${after.attempts} attempt(s): ${(after.error ?? '').split('\n').pop()}\n  logs: ${[paths.log, join(paths.dir, LOG_FILE)].filter(existsSync).join(', ')}`);
  return 1;
}

export type RunState = 'pending' | 'running' | 'completed' | 'failed' | 'requeued' | 'stopped';

export interface RunStatusLine {
  index: number;
  name: string;
  state: RunState;
  /** The Slurm task (`<array job>_<index>`), when it was submitted. */
  task?: string;
  /** The queue's reason (pending), the node (running), the error (failed), what to do (stopped). */
  detail: string;
  /** The run's logs (failed runs). */
  logs?: string[];
  attempts: number;
  restarts: number;
}

/**
 * Each run's state from its manifest entry and Slurm's view of its task (pure; see sweepStatus):
 * completed and failed come from the manifest; a run Slurm has queued is pending, or requeued when it was
 * started before; one Slurm runs is running; one Slurm no longer has but that did not finish is stopped
 * (cancelled, or lost with its node: submitting again resumes it).
 */
export function runStates(m: Manifest, queue: readonly QueuedTask[], accounted: readonly AccountedTask[] | null, sweepDir: string): RunStatusLine[] {
  const subs = submissions(m);
  const last = subs.at(-1);
  const byId = new Map(queue.map((t) => [t.id, t]));
  const acct = new Map((accounted ?? []).map((t) => [t.id, t]));
  return m.runs.map((r, index): RunStatusLine => {
    const s = runSlurm(r);
    const restarts = Math.max(s?.restarts ?? 0, s?.requeued ?? 0);
    // The run's task in the latest submission that included it.
    const sub = [...subs].reverse().find((x) => expandSpec(x.tasks).has(index));
    const task = sub ? `${sub.array}_${index}` : undefined;
    const base = { index, name: r.name, task, attempts: r.attempts, restarts };
    if (r.status === 'completed') return { ...base, state: 'completed', detail: r.seconds !== undefined ? `${Math.round(r.seconds)} s` : '' };
    if (r.status === 'failed') {
      const p = runPaths(sweepDir, r);
      return { ...base, state: 'failed', detail: (r.error ?? '').split('\n').filter(Boolean).pop() ?? '', logs: [p.log, join(p.dir, LOG_FILE), ...(task ? [join(sweepDir, 'slurm', `${task}.out`)] : [])].filter(existsSync) };
    }
    const q = task ? byId.get(task) : undefined;
    if (q && (q.state === 'RUNNING' || q.state === 'COMPLETING')) return { ...base, state: 'running', detail: `on ${q.node}${restarts ? ` (requeued ${restarts}x)` : ''}` };
    if (q) return { ...base, state: r.attempts > 0 || restarts > 0 ? 'requeued' : 'pending', detail: `${q.state.toLowerCase()} (${q.reason})` };
    if (!sub || sub !== last) return { ...base, state: 'pending', detail: sub ? 'not in the queue: submit the sweep again' : 'not submitted' };
    const a = task ? acct.get(task) : undefined;
    return { ...base, state: 'stopped', detail: `not in the queue${a ? ` (Slurm: ${a.state}, exit ${a.exitCode})` : ''} and not finished: submit the sweep again to resume it` };
  });
}

/** The indices an `--array` value names (`0-3,5%2`). */
export function expandSpec(spec: string): Set<number> {
  const out = new Set<number>();
  for (const part of spec.split('%')[0]!.split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

export interface SweepStatus {
  sweep: string;
  runs: RunStatusLine[];
  submissions: Submission[];
  /** The latest comparison job: queued (its state), or done (comparison.json there), or neither. */
  compare: { job: string; state: string } | null;
  /** Whether Slurm's queue could be read (false: states come from the manifest alone). */
  queueRead: boolean;
  accounting: boolean;
}

/** `topoprobe sweep --status`: the manifest joined with squeue (and sacct where accounting is on). */
export function sweepStatus(sweepDir: string): SweepStatus {
  sweepDir = resolve(sweepDir);
  const m = readManifest(sweepDir);
  const subs = submissions(m);
  const ids = [...new Set(subs.flatMap((s) => [s.array, s.compare]))];
  const queue = queuedTasks(ids);
  const accounted = subs.length ? accountedTasks(subs.map((s) => s.array)) : null;
  const last = subs.at(-1);
  let compare: SweepStatus['compare'] = null;
  if (last) {
    const q = queue?.find((t) => t.id === last.compare);
    compare = { job: last.compare, state: q ? `${q.state.toLowerCase()} (${q.reason})` : existsSync(join(sweepDir, 'comparison.json')) ? 'done' : 'ended without a comparison (see its output in slurm/)' };
  }
  return { sweep: sweepDir, runs: runStates(m, queue ?? [], accounted, sweepDir), submissions: subs, compare, queueRead: queue !== null, accounting: accounted !== null };
}
