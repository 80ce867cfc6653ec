/**
 * What Slurm's queue says, through its client commands (squeue, sacct, scontrol): the one place topoprobe
 * asks Slurm about jobs. Everything here is synchronous and fails soft where Slurm cannot answer: a caller
 * that needs an answer gets null for "cannot tell".
 */
import { spawnSync } from 'node:child_process';

/** This process's Slurm array task as `<array job>_<task>`, or null outside one. */
export function slurmTaskId(env: NodeJS.ProcessEnv = process.env): string | null {
  const job = env.SLURM_ARRAY_JOB_ID;
  const task = env.SLURM_ARRAY_TASK_ID;
  return job && task ? `${job}_${task}` : null;
}

/** Runs a Slurm client command: its stdout, or null with the reason when it is missing or fails. */
export function slurmCommand(cmd: string, args: string[], timeoutMs = 30_000): { ok: true; stdout: string } | { ok: false; reason: string; missing: boolean } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, reason: missing ? `${cmd} not found on PATH` : `${cmd}: ${r.error.message}` };
  }
  if (r.status !== 0) return { ok: false, missing: false, reason: `${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}` };
  return { ok: true, stdout: r.stdout };
}

export interface QueuedTask {
  /** `<array job>_<task>`, or the job id of a job that is not an array. */
  id: string;
  state: string;
  reason: string;
  node: string;
}

/** The non-empty lines of `|`-separated output (squeue -o '%a|%b', sacct -P), split into fields. */
const pipeRows = (text: string): string[][] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => l.split('|'));

/** Parses `squeue -h -r -o '%i|%T|%r|%N'` output (one line per array task). */
export function parseSqueue(text: string): QueuedTask[] {
  return pipeRows(text).map(([id = '', state = '', reason = '', node = '']) => ({ id, state, reason, node }));
}

/** The tasks of these jobs that Slurm still has (pending, running, completing, ...), or null if squeue cannot tell. */
export function queuedTasks(jobIds: readonly string[]): QueuedTask[] | null {
  if (jobIds.length === 0) return [];
  const out: QueuedTask[] = [];
  // One job at a time: squeue refuses the whole list when one id is no longer known.
  for (const id of jobIds) {
    const r = slurmCommand('squeue', ['-h', '-r', '-j', id, '-o', '%i|%T|%r|%N']);
    if (r.ok) out.push(...parseSqueue(r.stdout));
    else if (r.missing) return null;
    else if (!/Invalid job id/i.test(r.reason)) return null;
  }
  return out;
}

/** Whether Slurm still has this job or array task (true/false), or null if squeue cannot tell. */
export function slurmTaskQueued(id: string): boolean | null {
  const tasks = queuedTasks([id.split('_')[0]!]);
  if (tasks === null) return null;
  return tasks.some((t) => t.id === id);
}

export interface AccountedTask {
  id: string;
  state: string;
  exitCode: string;
}

/** Parses `sacct -n -P -X -o JobID,State,ExitCode` output. */
export function parseSacct(text: string): AccountedTask[] {
  // "CANCELLED by 0" is CANCELLED.
  return pipeRows(text).map(([id = '', state = '', exitCode = '']) => ({ id, state: state.split(' ')[0]!, exitCode }));
}

/** The final states that Slurm's accounting kept for these jobs, or null where accounting is off. */
export function accountedTasks(jobIds: readonly string[]): AccountedTask[] | null {
  if (jobIds.length === 0) return [];
  const r = slurmCommand('sacct', ['-n', '-P', '-X', '-j', jobIds.join(','), '-o', 'JobID,State,ExitCode']);
  return r.ok ? parseSacct(r.stdout) : null;
}
