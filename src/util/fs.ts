import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

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

/** A temporary sibling path for a folder or file that will later be renamed into place. */
export { tempPathFor };
