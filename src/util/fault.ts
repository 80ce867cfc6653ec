/**
 * Fault injection for the crash-safety tests: every file operation of a save (a checkpoint, an atomic
 * write) passes through {@link faultPoint}. Outside tests nothing is set and it only counts.
 *
 *   TOPOPROBE_FAULT_LOG=<file>        appends "<n>\t<op>\t<path>" for every operation (to enumerate them)
 *   TOPOPROBE_FAULT=<n>:kill          SIGKILLs this process just before operation n (1-based)
 *   TOPOPROBE_FAULT=<n>:<ERRNO>       makes operation n fail with that error (ENOSPC, EROFS, EACCES, EIO)
 *
 * A test sets them on a child process (or, for an error, on this one); the count starts again whenever
 * they change.
 */
import { appendFileSync } from 'node:fs';

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EIO: 'i/o error',
};

let count = 0;
let plan: { at: number; action: string } | null = null;
let logFile: string | undefined;
let settings: string | undefined;

function readPlan(): void {
  count = 0;
  logFile = process.env.TOPOPROBE_FAULT_LOG || undefined;
  const spec = process.env.TOPOPROBE_FAULT;
  const m = spec ? /^(\d+):(kill|[A-Z]+)$/.exec(spec) : null;
  if (spec && (!m || (m[2] !== 'kill' && !(m[2]! in ERRNO_TEXT)))) {
    throw new Error(`TOPOPROBE_FAULT=${spec}: expected <n>:kill or <n>:<${Object.keys(ERRNO_TEXT).join('|')}>`);
  }
  plan = m ? { at: Number(m[1]), action: m[2]! } : null;
}

/** Marks one file operation (`op` on `path`) of a save: counted, logged, and where a test asks, a fault. */
export function faultPoint(op: string, path: string): void {
  const now = `${process.env.TOPOPROBE_FAULT ?? ''}|${process.env.TOPOPROBE_FAULT_LOG ?? ''}`;
  if (now !== settings) {
    settings = now;
    readPlan();
  }
  count += 1;
  if (logFile) appendFileSync(logFile, `${count}\t${op}\t${path}\n`);
  if (!plan || plan.at !== count) return;
  if (plan.action === 'kill') process.kill(process.pid, 'SIGKILL');
  const err = new Error(`${plan.action}: ${ERRNO_TEXT[plan.action]}, ${op} '${path}'`) as NodeJS.ErrnoException;
  Object.assign(err, { code: plan.action, syscall: op, path });
  throw err;
}
