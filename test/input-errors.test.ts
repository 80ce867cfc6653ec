import { expect } from 'chai';
import { mkdtempSync, openSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TopoprobeError, describeSystemError, findSystemError, type PathProbe } from '../src/util/errors.js';
import { errorLine, failureMessage, commandWords, COMMAND_NAMES } from '../src/cli/main.js';

/** An error as Node's fs functions make them. */
function fsError(code: string, syscall: string, path?: string, dest?: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: something, ${syscall}${path ? ` '${path}'` : ''}`) as NodeJS.ErrnoException;
  return Object.assign(err, { code, errno: -1, syscall, ...(path !== undefined ? { path } : {}), ...(dest !== undefined ? { dest } : {}) });
}

/** The error a real fs call throws. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

const NO_PROBE: PathProbe = {
  nearestExisting: () => {
    throw new Error('the probe should not be asked');
  },
  writeDenied: () => {
    throw new Error('the probe should not be asked');
  },
};

describe('describeSystemError: one line for a file-system error', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-errors-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const [code, syscall, expected] of [
    ['ENOSPC', 'write', 'cannot write /x/y: no space left on device (ENOSPC)'],
    ['EDQUOT', 'write', 'cannot write /x/y: disk quota exceeded (EDQUOT)'],
    ['EROFS', 'open', 'cannot open /x/y: read-only file system (EROFS)'],
    ['EACCES', 'mkdir', 'cannot create folder /x/y: permission denied (EACCES)'],
    ['EPERM', 'unlink', 'cannot remove /x/y: operation not permitted (EPERM)'],
    ['EIO', 'read', 'cannot read /x/y: input/output error (a failing disk or a lost network mount?) (EIO)'],
    ['EMFILE', 'open', 'cannot open /x/y: too many open files in this process (EMFILE)'],
    ['ENFILE', 'open', 'cannot open /x/y: too many open files on this system (ENFILE)'],
    ['ENOSPC', 'fsync', 'cannot write /x/y: no space left on device (ENOSPC)'],
  ] as const) {
    it(`${code} from ${syscall}: "${expected}"`, () => {
      expect(describeSystemError(fsError(code, syscall, '/x/y'), NO_PROBE)).to.equal(expected);
    });
  }

  it('names both paths of a rename or copy, and says what it can when there is no path', () => {
    expect(describeSystemError(fsError('EXDEV', 'rename', '/a/tmp', '/b/out'), NO_PROBE)).to.equal('cannot rename /a/tmp to /b/out: cannot move across file systems (EXDEV)');
    expect(describeSystemError(fsError('ENOSPC', 'copyfile', '/a', '/b'), NO_PROBE)).to.equal('cannot copy /a to /b: no space left on device (ENOSPC)');
    expect(describeSystemError(fsError('ENOSPC', 'write'), NO_PROBE)).to.equal('cannot write: no space left on device (ENOSPC)');
    expect(describeSystemError(Object.assign(new Error('x'), { code: 'EIO' }), NO_PROBE)).to.equal('cannot access: input/output error (a failing disk or a lost network mount?) (EIO)');
  });

  it('describes the errors real fs calls throw, naming their path', () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    const notDir = thrownBy(() => writeFileSync(join(file, 'out.json'), '{}'));
    expect(describeSystemError(notDir)).to.equal(`cannot open ${join(file, 'out.json')}: a part of the path is not a folder (ENOTDIR)`);
    const missing = thrownBy(() => openSync(join(dir, 'none', 'x'), 'r'));
    expect(describeSystemError(missing)).to.equal(`cannot open ${join(dir, 'none', 'x')}: no such file or folder (ENOENT)`);
    const exists = thrownBy(() => mkdirSync(file));
    expect(describeSystemError(exists)).to.equal(`cannot create folder ${file}: already exists (EEXIST)`);
  });

  it('names the real cause of an ENOENT from mkdir under a read-only, unwritable or file parent', () => {
    const probe = (isDir: boolean, denied: string | null): PathProbe => ({
      nearestExisting: (p) => (expect(p).to.equal('/mnt/ro/a/b'), { path: '/mnt/ro', isDir }),
      writeDenied: (p) => (expect(p).to.equal('/mnt/ro'), denied),
    });
    const err = fsError('ENOENT', 'mkdir', '/mnt/ro/a/b');
    expect(describeSystemError(err, probe(true, 'EROFS'))).to.equal('cannot create folder /mnt/ro/a/b: read-only file system on /mnt/ro (EROFS)');
    expect(describeSystemError(err, probe(true, 'EACCES'))).to.equal('cannot create folder /mnt/ro/a/b: permission denied on /mnt/ro (EACCES)');
    expect(describeSystemError(err, probe(false, null))).to.equal('cannot create folder /mnt/ro/a/b: /mnt/ro is a file, not a folder (ENOTDIR)');
    expect(describeSystemError(err, probe(true, null))).to.equal('cannot create folder /mnt/ro/a/b: no such file or folder (ENOENT)');
    // Only mkdir's ENOENT is second-guessed.
    expect(describeSystemError(fsError('ENOENT', 'open', '/mnt/ro/a/b'), NO_PROBE)).to.equal('cannot open /mnt/ro/a/b: no such file or folder (ENOENT)');
  });

  it('finds a file in the way with the real probe', () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    const target = join(file, 'sub', 'deeper');
    expect(describeSystemError(fsError('ENOENT', 'mkdir', target))).to.equal(`cannot create folder ${target}: ${file} is a file, not a folder (ENOTDIR)`);
  });

  it('is null for anything that is not a file-system error (a bug keeps its stack)', () => {
    expect(describeSystemError(new Error('boom'))).to.equal(null);
    expect(describeSystemError(new TypeError('x is undefined'))).to.equal(null);
    expect(describeSystemError(Object.assign(new Error('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' }))).to.equal(null);
    expect(describeSystemError(Object.assign(new TopoprobeError('already said'), { code: 'ENOSPC' }))).to.equal(null);
    expect(describeSystemError('ENOSPC')).to.equal(null);
    expect(describeSystemError(null)).to.equal(null);
  });

  it('finds a file-system error among the causes, but not under a TopoprobeError', () => {
    const disk = fsError('ENOSPC', 'write', '/runs/a/log.jsonl');
    expect(findSystemError(new Error('saving the checkpoint failed', { cause: disk }))).to.equal(disk);
    expect(findSystemError(new TopoprobeError('said already', { cause: disk }))).to.equal(null);
    expect(findSystemError(new Error('no cause'))).to.equal(null);
  });
});

describe('errorLine: what the CLI prints for an error', () => {
  it('prints a TopoprobeError\'s message, a file-system error as one line, and nothing for a bug', () => {
    expect(errorLine(new TopoprobeError('x.yaml: is empty'))).to.equal('x.yaml: is empty');
    expect(errorLine(fsError('ENOSPC', 'write', '/runs/a/metrics.jsonl'))).to.equal('cannot write /runs/a/metrics.jsonl: no space left on device (ENOSPC)');
    expect(errorLine(new Error('wrapped', { cause: fsError('EROFS', 'open', '/ro/x') }))).to.equal('cannot open /ro/x: read-only file system (EROFS)');
    expect(errorLine(new Error('a bug'))).to.equal(null);
  });
});

describe('unknown commands', () => {
  it('finds the command word past global options and their values', () => {
    expect(commandWords(['--backend', 'cpu', '--threads', '2', '--log-level=silent', 'trian', '--config', 'x'])).to.deep.equal(['trian', 'x']);
    expect(commandWords(['--data-dir', 'train', 'mesure'])).to.deep.equal(['mesure']);
  });

  it('says which command was meant, or lists the commands', () => {
    expect(failureMessage('Did you mean train?', ['--backend', 'cpu', 'trian'])).to.equal('unknown command "trian": did you mean train? (see --help)');
    expect(failureMessage('Did you mean download?', ['data', 'donwload', 'cola'])).to.equal('unknown command "donwload": did you mean download? (see --help)');
    expect(failureMessage('Unknown argument: zzz', ['zzz'])).to.equal(`unknown command "zzz" (the commands are ${COMMAND_NAMES.join(', ')}; see --help)`);
    // An unknown argument of a known command is left as yargs says it.
    expect(failureMessage('Unknown argument: extra', ['train', 'extra'])).to.equal('Unknown argument: extra');
    expect(COMMAND_NAMES).to.include.members(['train', 'measure', 'pretrain', 'sweep', 'compare', 'data', 'bench', 'hidden-states']);
  });
});
