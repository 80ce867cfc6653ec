import pino, { type Logger } from 'pino';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type { Logger };

let root: Logger | undefined;

/**
 * The process-wide logger. Console output is readable (pino-pretty on stderr); when `file` is given the
 * same records also go, as pino JSON lines, to that file (a run folder's log).
 */
export function createLogger(opts: { level?: string; file?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.TOPOPROBE_LOG_LEVEL ?? 'info';
  if (level === 'silent' && !opts.file) {
    root = pino({ level });
    return root;
  }
  const targets: pino.TransportTargetOptions[] = [];
  const pretty = opts.pretty ?? true;
  targets.push(
    pretty
      ? { target: 'pino-pretty', level, options: { destination: 2, colorize: process.stderr.isTTY ?? false, ignore: 'pid,hostname', hideObject: true, translateTime: 'SYS:HH:MM:ss' } }
      : { target: 'pino/file', level, options: { destination: 2 } },
  );
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    targets.push({ target: 'pino/file', level, options: { destination: opts.file, mkdir: true } });
  }
  root = pino({ level }, pino.transport({ targets }));
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
