import pino, { type Logger } from 'pino';
import { dirname } from 'node:path';
import { ensureDir } from './fs.js';

export type { Logger };

let root: Logger | undefined;
let transport: ReturnType<typeof pino.transport> | undefined;

/**
 * The process-wide logger. Console output is readable (pino-pretty on stderr); when `file` is given the
 * same records also go, as pino JSON lines, to that file (a run folder's log).
 */
export function createLogger(opts: { level?: string; file?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.TOPOPROBE_LOG_LEVEL ?? 'info';
  // A previous logger's transport is ended (it flushes what it has) before this one replaces it.
  transport?.end();
  transport = undefined;
  // The run folder's log keeps debug records (per-epoch losses, ...) whatever the console shows.
  const fileLevel = 'debug';
  if (level === 'silent' && !opts.file) {
    root = pino({ level });
    return root;
  }
  const targets: pino.TransportTargetOptions[] = [];
  const pretty = opts.pretty ?? true;
  if (level !== 'silent') {
    targets.push(
      pretty
        ? { target: 'pino-pretty', level, options: { destination: 2, colorize: process.stderr.isTTY ?? false, ignore: 'pid,hostname', hideObject: true, translateTime: 'SYS:HH:MM:ss' } }
        : { target: 'pino/file', level, options: { destination: 2 } },
    );
  }
  if (opts.file) {
    ensureDir(dirname(opts.file));
    targets.push({ target: 'pino/file', level: fileLevel, options: { destination: opts.file, mkdir: true } });
  }
  const rank = (l: string) => pino.levels.values[l] ?? Infinity;
  const lowest = targets.map((t) => t.level!).reduce((a, b) => (rank(a) <= rank(b) ? a : b));
  transport = pino.transport({ targets });
  root = pino({ level: lowest }, transport);
  return root;
}

/** A silent logger unless the CLI (or a caller) installed one with createLogger/setLogger. */
export function getLogger(): Logger {
  if (!root) root = pino({ level: process.env.TOPOPROBE_LOG_LEVEL ?? 'silent' });
  return root;
}

export function setLogger(logger: Logger): void {
  root = logger;
}

/**
 * Flushes and closes the logger's transport (its worker thread writes asynchronously), so a run's log
 * file is complete when a command returns. The logger falls back to silent afterwards.
 */
export async function closeLogger(): Promise<void> {
  const t = transport;
  transport = undefined;
  root = undefined;
  if (!t) return;
  // The transport's worker thread does not keep the process alive, so hold it open (at most 5 s) until the
  // worker has written everything and closed.
  await new Promise<void>((done) => {
    const keepAlive = setTimeout(done, 5000);
    t.on('close', () => {
      clearTimeout(keepAlive);
      done();
    });
    t.end();
  });
}
