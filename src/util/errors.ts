/**
 * A user-facing error: bad input (a file, a field, a flag) or an unusable environment.
 * The CLI prints `message` alone (no stack) and exits with status 2; anything else is a bug and
 * keeps its stack, except a file-system error (no space, read-only, permission, ...), which the CLI
 * prints as one line from `describeSystemError`.
 */
import { accessSync, constants as fsc, statSync } from 'node:fs';
import { dirname } from 'node:path';

export class TopoprobeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TopoprobeError';
  }
}

/** Throws a TopoprobeError when `cond` is false. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new TopoprobeError(typeof message === 'function' ? message() : message);
}

/** What each file-system error code means, in words (the codes Node reports from the OS). */
export const SYSTEM_ERROR_CAUSES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error (a failing disk or a lost network mount?)',
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files on this system',
  EFBIG: 'file too large for the file system',
  EBUSY: 'resource busy or locked',
  ETXTBSY: 'file busy',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many symbolic links',
  EXDEV: 'cannot move across file systems',
  ESTALE: 'stale network file handle',
};

/** What was being done, by the failing system call. */
const ACTIONS: Readonly<Record<string, string>> = {
  open: 'open',
  read: 'read',
  write: 'write',
  fsync: 'write',
  fdatasync: 'write',
  ftruncate: 'write',
  close: 'close',
  mkdir: 'create folder',
  mkdtemp: 'create folder',
  rmdir: 'remove folder',
  rm: 'remove',
  unlink: 'remove',
  rename: 'rename',
  copyfile: 'copy',
  cp: 'copy',
  link: 'link',
  symlink: 'link',
  scandir: 'list folder',
  opendir: 'list folder',
  stat: 'access',
  lstat: 'access',
  fstat: 'access',
  access: 'access',
  statfs: 'access',
  chmod: 'change the mode of',
  chown: 'change the owner of',
  utime: 'change the times of',
  readlink: 'read link',
  realpath: 'resolve',
};

export interface SystemErrorLike {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** Whether `err` is an error from the OS (a Node fs error) with a code `describeSystemError` knows. */
export function isSystemError(err: unknown): err is Error & SystemErrorLike {
  if (typeof err !== 'object' || err === null || err instanceof TopoprobeError) return false;
  const { code } = err as { code?: unknown };
  return typeof code === 'string' && Object.hasOwn(SYSTEM_ERROR_CAUSES, code);
}

/**
 * What the file system says about the nearest existing ancestor of a path: used to name the real cause
 * of the `ENOENT` that a recursive mkdir can report under an unwritable or read-only parent.
 */
export interface PathProbe {
  /** The nearest path at or above `path` that exists, with whether it is a folder; null if none. */
  nearestExisting(path: string): { path: string; isDir: boolean } | null;
  /** The error code of a write-access check on `path` (EACCES, EROFS, ...), or null when writable. */
  writeDenied(path: string): string | null;
}

export const FS_PROBE: PathProbe = {
  nearestExisting(path) {
    for (let p = dirname(path), prev = path; p !== prev; prev = p, p = dirname(p)) {
      try {
        return { path: p, isDir: statSync(p).isDirectory() };
      } catch {
        // missing: go up
      }
    }
    return null;
  },
  writeDenied(path) {
    try {
      accessSync(path, fsc.W_OK);
      return null;
    } catch (err) {
      return typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'EACCES';
    }
  },
};

/**
 * One line for a file-system error: `cannot write /x/y: no space left on device (ENOSPC)`, naming the
 * path (and the destination of a rename or copy) and the cause. Null for anything that is not such an
 * error (a bug keeps its stack). An `ENOENT` from mkdir is checked against `probe`: when the nearest
 * existing ancestor is a file or cannot be written, that is named as the cause instead.
 */
export function describeSystemError(err: unknown, probe: PathProbe = FS_PROBE): string | null {
  if (!isSystemError(err)) return null;
  let code = err.code;
  let cause = SYSTEM_ERROR_CAUSES[code]!;
  const syscall = typeof err.syscall === 'string' ? err.syscall : undefined;
  const path = typeof err.path === 'string' ? err.path : undefined;
  const dest = typeof err.dest === 'string' ? err.dest : undefined;
  if (code === 'ENOENT' && syscall === 'mkdir' && path !== undefined) {
    const ancestor = probe.nearestExisting(path);
    if (ancestor && !ancestor.isDir) {
      code = 'ENOTDIR';
      cause = `${ancestor.path} is a file, not a folder`;
    } else if (ancestor) {
      const denied = probe.writeDenied(ancestor.path);
      if (denied !== null) {
        code = denied;
        cause = `${SYSTEM_ERROR_CAUSES[denied] ?? denied} on ${ancestor.path}`;
      }
    }
  }
  const action = syscall !== undefined ? (ACTIONS[syscall] ?? syscall) : 'access';
  const target = path === undefined ? '' : dest === undefined ? ` ${path}` : ` ${path} to ${dest}`;
  return `cannot ${action}${target}: ${cause} (${code})`;
}

/** The first file-system error in `err` and its chain of causes (a wrapped one still names its path). */
export function findSystemError(err: unknown): (Error & SystemErrorLike) | null {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof TopoprobeError) return null;
    if (isSystemError(e)) return e;
  }
  return null;
}
