import { randomBytes } from 'node:crypto';
import { TopoprobeError } from './errors.js';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** A file's text (UTF-8); an unreadable file is a TopoprobeError naming it (`what` says what it should be). */
export function readText(path: string, what?: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TopoprobeError(`cannot read ${what ? `${what} ` : ''}${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** A JSON file's value; unreadable or malformed JSON is a TopoprobeError naming the file. */
export function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TopoprobeError(`${path}: malformed JSON (${(err as Error).message})`, { cause: err });
  }
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes `data` to `path` atomically: the bytes go to a temporary file in the same folder, which is
 * flushed and then renamed over `path`. A reader never sees a half-written file, and a failure leaves
 * whatever was at `path` before untouched.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) {
      writeFileSync(tmp, data);
    } else {
      const fd = openSync(tmp, 'w');
      try {
        for (const chunk of data) {
          let off = 0;
          while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** JSON.stringify to `path` atomically, with a trailing newline. */
export function writeJsonAtomic(path: string, value: unknown, indent = 2): void {
  writeFileAtomic(path, JSON.stringify(value, null, indent) + '\n');
}

/** Writes a folder next to `dir` and renames it into place (the previous one removed after). */
export function replaceDir(dir: string, write: (tmp: string) => void): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  write(tmp);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** A temporary sibling path for a folder or file that will later be renamed into place. */
export { tempPathFor };
