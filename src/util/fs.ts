import { randomBytes } from 'node:crypto';
import { TopoprobeError } from './errors.js';
import { faultPoint } from './fault.js';
import { accessSync, constants as fsc, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, statfsSync, writeFileSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';

/**
 * A file's text, strictly UTF-8 (a leading byte-order mark is dropped). An unreadable file, or one
 * that is not valid UTF-8, is a TopoprobeError naming it (`what` says what it should be); invalid
 * UTF-8 is reported with the line (1-based) of the first invalid byte sequence.
 */
export function readText(path: string, what?: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TopoprobeError(`cannot read ${what ? `${what} ` : ''}${path}: ${(err as Error).message}`, { cause: err });
  }
  return decodeUtf8(bytes, `${what ? `${what} ` : ''}${path}`);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes strict UTF-8 (a leading BOM dropped); invalid bytes are a TopoprobeError `<source>: invalid UTF-8 at line N ...`. */
export function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // e.g. a string too long for the engine, not an encoding error
    const at = firstInvalidUtf8(bytes);
    if (at < 0) throw new TopoprobeError(`${source}: not valid UTF-8 (${(err as Error).message})`, { cause: err });
    let line = 1;
    let lineStart = 0;
    for (let i = bytes.indexOf(0x0a); i >= 0 && i < at; i = bytes.indexOf(0x0a, i + 1)) {
      line += 1;
      lineStart = i + 1;
    }
    const shown = Array.from(bytes.subarray(at, Math.min(at + 4, bytes.length)), (b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
    throw new TopoprobeError(
      `${source}: invalid UTF-8 at line ${line}, byte ${at - lineStart + 1} of the line (bytes ${shown}); ` +
        'the file is damaged or in another encoding (convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8`)',
      { cause: err },
    );
  }
}

/**
 * The offset of the first byte of the first invalid UTF-8 sequence in `bytes`, or -1 when there is
 * none. Invalid: a stray continuation byte, a lead byte not followed by enough continuation bytes, an
 * overlong form, a surrogate (U+D800..DFFF), or a code point above U+10FFFF (the WHATWG decoder's rules).
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i; // a continuation byte, C0/C1 (overlong) or F5..FF
    for (let k = 1; k <= need; k++) {
      const c = i + k < n ? bytes[i + k]! : -1;
      if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
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
  ensureDir(dirname(path));
  const tmp = tempPathFor(path);
  try {
    faultPoint('write', tmp);
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
    faultPoint('rename', path);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw diskError(`cannot write ${path}`, err);
  }
}

/** What each error code of a disk failure means, as a message says it. */
const DISK_ERRORS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'i/o error',
};

/**
 * `err` as a TopoprobeError `<what>: no space left on device (ENOSPC)` when it is a disk failure
 * (full, read-only, not permitted, i/o error); any other error unchanged. The cause is kept.
 */
export function diskError(what: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof TopoprobeError || code === undefined || !(code in DISK_ERRORS)) return err;
  return new TopoprobeError(`${what}: ${DISK_ERRORS[code]} (${code})`, { cause: err });
}

const DIR_ERRORS: Readonly<Record<string, string>> = { ...DISK_ERRORS, ENOTDIR: 'not a folder', ENOENT: 'no such file or folder' };

/**
 * Creates folder `path` and its parents (as `mkdir -p`). A failure is a TopoprobeError naming the
 * path and the real cause: `cannot create folder <path>: read-only file system (EROFS, at <ancestor>)`.
 * Where mkdir reports a misleading ENOENT (a parent that cannot be written), the nearest existing
 * ancestor is examined: not a folder (ENOTDIR), not writable (EACCES or EROFS), or full (ENOSPC).
 */
export function ensureDir(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    const reported = (err as NodeJS.ErrnoException).code;
    // Where mkdir failed: the nearest ancestor that exists. Its own report may mislead (ENOENT under a
    // read-only mount, EEXIST for a file in the way), so then the ancestor itself is examined.
    const clear = reported !== undefined && reported in DISK_ERRORS;
    const found = diagnoseDir(resolve(path), clear);
    const code = clear ? reported : (found?.[0] ?? reported);
    const at = found?.[1];
    const text = (code !== undefined && DIR_ERRORS[code]) || (err as Error).message;
    const where = at === undefined ? '' : code === 'ENOTDIR' ? `, ${at} is a file` : found?.[2] ? `, ${at} ${found[2]}` : `, at ${at}`;
    throw new TopoprobeError(`cannot create folder ${path}: ${text}${code ? ` (${code}${where})` : ''}`, { cause: err });
  }
}

/**
 * Where and why a folder cannot be made at `path`: [code, nearest existing ancestor, what is wrong
 * with it], or null when nothing is found. With `locateOnly` only the ancestor is wanted (the code is
 * already clear).
 */
function diagnoseDir(path: string, locateOnly: boolean): [string | undefined, string, string?] | null {
  let ancestor = path;
  for (;;) {
    let isLink = false;
    try {
      isLink = lstatSync(ancestor).isSymbolicLink();
    } catch {
      // not there: look further up
    }
    if (existsSync(ancestor)) break;
    if (isLink) return ['ENOENT', ancestor, 'is a symbolic link to nothing'];
    const up = dirname(ancestor);
    if (up === ancestor) return null;
    ancestor = up;
  }
  if (locateOnly) return [undefined, ancestor];
  try {
    if (!statSync(ancestor).isDirectory()) return ['ENOTDIR', ancestor];
    accessSync(ancestor, fsc.W_OK | fsc.X_OK);
  } catch (err) {
    return [(err as NodeJS.ErrnoException).code, ancestor];
  }
  try {
    const fs = statfsSync(ancestor);
    if (fs.bavail === 0) return ['ENOSPC', ancestor];
    if (fs.ffree === 0 && fs.files > 0) return ['ENOSPC', ancestor, 'has no free inodes'];
  } catch {
    // statfs is not available here: no more to say
  }
  return [undefined, ancestor];
}

/** JSON.stringify to `path` atomically, with a trailing newline. */
export function writeJsonAtomic(path: string, value: unknown, indent = 2): void {
  writeFileAtomic(path, JSON.stringify(value, null, indent) + '\n');
}

/** A temporary sibling path for a folder or file that will later be renamed into place. */
export { tempPathFor };
