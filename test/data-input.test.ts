/**
 * Bad input and bad disks: text files that are not valid UTF-8 (every reader goes through readText),
 * and folders or files that cannot be written (ensureDir, writeFileAtomic), with injected faults
 * (TOPOPROBE_FAULT) and, when run as root, a real full and read-only tmpfs.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strToU8, zipSync } from 'fflate';
import { readCorpus } from '../src/data/corpus.js';
import { downloadData } from '../src/data/download.js';
import { WORDNET_DATA_FILES, readWordnetGlosses } from '../src/data/wordnet.js';
import { readVocabFile } from '../src/tokenize/vocab.js';
import { TopoprobeError } from '../src/util/errors.js';
import { decodeUtf8, ensureDir, firstInvalidUtf8, readJson, readText, writeFileAtomic } from '../src/util/fs.js';
import { createLogger } from '../src/util/log.js';
import { expectError, expectRejects } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const isRoot = process.getuid?.() === 0;

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('data input: invalid UTF-8', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-utf8-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const put = (name: string, bytes: string | Uint8Array): string => {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    return path;
  };

  it('firstInvalidUtf8 finds the first bad sequence of each kind, and agrees with the strict decoder on random bytes', () => {
    const cases: Array<[number[], number]> = [
      [[0x61, 0x80], 1], // a stray continuation byte
      [[0x61, 0xc0, 0x80], 1], // overlong (C0/C1 are never valid)
      [[0xe0, 0x80, 0x80], 0], // overlong 3-byte form
      [[0xed, 0xa0, 0x80], 0], // a surrogate
      [[0xf4, 0x90, 0x80, 0x80], 0], // above U+10FFFF
      [[0xf5, 0x80, 0x80, 0x80], 0],
      [[0x63, 0x61, 0x66, 0xe2, 0x82], 3], // truncated at the end of the file
      [[0xe2, 0x82, 0x61], 0], // truncated before an ASCII byte
      [[0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80], -1], // é € 😀
      [[], -1],
    ];
    for (const [bytes, at] of cases) expect(firstInvalidUtf8(new Uint8Array(bytes)), bytes.map((b) => b.toString(16)).join(' ')).to.equal(at);
    const next = rng(7);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const valid = strToU8('ab\ncafé € 😀 \u0100\u07ff\uffff\n');
    for (let n = 0; n < 3000; n++) {
      // Mostly valid text with a few random bytes changed, so that failures are near real ones.
      const bytes = valid.slice();
      for (let k = Math.floor(next() * 3); k > 0; k--) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      const at = firstInvalidUtf8(bytes);
      let ok = true;
      try {
        decoder.decode(bytes);
      } catch {
        ok = false;
      }
      expect(at < 0, [...bytes].join(',')).to.equal(ok);
      if (at >= 0) expect(() => decoder.decode(bytes.subarray(0, at)), `prefix before ${at} of ${[...bytes].join(',')}`).to.not.throw();
    }
  });

  it('readText names the file, the 1-based line and the column of the first invalid byte; CRLF, BOM and valid text are fine', () => {
    const path = put('notes.txt', Buffer.concat([Buffer.from('\uFEFFfirst\r\nsecond café\r\nthird '), Buffer.from([0xff, 0xfe]), Buffer.from(' x\r\n\xe9\n', 'latin1')]));
    const message = expectError(() => readText(path, 'notes file'), `notes file ${path}: invalid UTF-8 at line 3, byte 7 of the line (bytes 0xff 0xfe 0x20 0x78)`);
    expect(message.split('\n')).to.have.length(1);
    expect(readText(put('ok.txt', '\uFEFFfirst\r\nsecond café\n'))).to.equal('first\r\nsecond café\n');
    expectError(() => decodeUtf8(new Uint8Array([0x61, 0x0a, 0x0a, 0xc3]), '<bytes>'), '<bytes>: invalid UTF-8 at line 3, byte 1 of the line (bytes 0xc3)');
    // JSON files too (config.json, tokenizer files, run-folder files).
    expectError(() => readJson(put('config.json', Buffer.from('{\n"a": "\xe9"\n}', 'latin1'))), 'config.json: invalid UTF-8 at line 2, byte 7');
  });

  it('the readers refuse invalid UTF-8 the same way: vocabulary, WordNet, corpus', () => {
    const vocab = put('vocab.txt', Buffer.from('[PAD]\n[UNK]\ncaf\xe9\n', 'latin1'));
    expectError(() => readVocabFile(vocab), `vocabulary ${vocab}: invalid UTF-8 at line 3, byte 4 of the line`);

    const wordnet = join(dir, 'wordnet');
    const line = '02084071 05 n 01 dog 0 000 | a domestic animal; "the dog barked"';
    for (const f of WORDNET_DATA_FILES) put(join('wordnet', f), `  1 license\n${line}\n`);
    put(join('wordnet', 'data.verb'), Buffer.from(`  1 license\n${line}\n${line.replace('dog barked', 'na\xefve dog')}\n`, 'latin1'));
    expectError(() => readWordnetGlosses(wordnet), `${join(wordnet, 'data.verb')}: invalid UTF-8 at line 3`);

    const corpus = put('corpus.txt', Buffer.concat([Buffer.from('one line\n\n'), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from('\n')]));
    expectError(() => readCorpus([put('fine.txt', 'fine\n'), corpus]), `corpus.files[1]: ${corpus}: invalid UTF-8 at line 3, byte 1 of the line`);
  });
});

describe('disk errors: ensureDir and writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-disk-'));
  });
  afterEach(() => {
    chmodSync(dir, 0o755);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn` with TOPOPROBE_FAULT set (the fault module counts operations from each change of it). */
  function withFault<T>(spec: string, fn: () => T): T {
    const before = process.env.TOPOPROBE_FAULT;
    process.env.TOPOPROBE_FAULT = spec;
    try {
      return fn();
    } finally {
      if (before === undefined) delete process.env.TOPOPROBE_FAULT;
      else process.env.TOPOPROBE_FAULT = before;
    }
  }

  it('writeFileAtomic: an injected ENOSPC or EROFS is a one-line TopoprobeError naming the file; the old file stays, no temporary file', () => {
    const path = join(dir, 'sub', 'state.json');
    writeFileAtomic(path, 'old');
    let caught: unknown;
    withFault('1:ENOSPC', () => {
      try {
        writeFileAtomic(path, 'new contents');
      } catch (err) {
        caught = err;
      }
    });
    expect(caught).to.be.instanceOf(TopoprobeError);
    expect((caught as Error).message).to.equal(`cannot write ${path}: no space left on device (ENOSPC)`);
    expect(((caught as Error).cause as NodeJS.ErrnoException).code).to.equal('ENOSPC');
    // Operation 2 is the rename into place.
    withFault('2:EROFS', () => expectError(() => writeFileAtomic(path, [strToU8('new'), strToU8(' contents')]), `cannot write ${path}: read-only file system (EROFS)`));
    expect(readFileSync(path, 'utf8')).to.equal('old');
    expect(readdirSync(join(dir, 'sub'))).to.deep.equal(['state.json']);
    writeFileAtomic(path, 'new');
    expect(readFileSync(path, 'utf8')).to.equal('new');
  });

  it('ensureDir: a file in the way names that file', () => {
    const file = join(dir, 'log.jsonl');
    writeFileSync(file, '');
    expectError(() => ensureDir(join(file, 'a', 'b')), `cannot create folder ${join(file, 'a', 'b')}: not a folder (ENOTDIR, ${file} is a file)`);
    expectError(() => ensureDir(file), `cannot create folder ${file}: not a folder (ENOTDIR, ${file} is a file)`);
    // A writeFileAtomic into it says the same.
    expectError(() => writeFileAtomic(join(file, 'x.json'), '{}'), `cannot create folder ${file}: not a folder (ENOTDIR`);
    ensureDir(join(dir, 'fine', 'deeper'));
    ensureDir(join(dir, 'fine', 'deeper'));
    expect(existsSync(join(dir, 'fine', 'deeper'))).to.equal(true);
  });

  it('ensureDir: a folder without write permission is EACCES, at that folder (as root: in a child process run as nobody)', () => {
    chmodSync(dir, 0o755);
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    chmodSync(locked, 0o555);
    const target = join(locked, 'run', 'checkpoints');
    const expected = `cannot create folder ${target}: permission denied (EACCES, at ${locked})`;
    if (!isRoot) {
      expectError(() => ensureDir(target), expected);
      return;
    }
    const script = `import { ensureDir } from ${JSON.stringify(join(ROOT, 'src', 'util', 'fs.ts'))}; try { ensureDir(${JSON.stringify(target)}); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, HOME: tmpdir() } });
    expect(r.stderr).to.equal('');
    expect(r.stdout.trim()).to.equal(`TopoprobeError: ${expected}`);
  });

  it('createLogger: a log file whose folder cannot be made is a TopoprobeError naming it', () => {
    const file = join(dir, 'runs');
    writeFileSync(file, '');
    expectError(() => createLogger({ level: 'silent', file: join(file, 'r1', 'log.jsonl') }), `cannot create folder ${join(file, 'r1')}: not a folder (ENOTDIR, ${file} is a file)`);
  });
});

describe('disk errors on a real tmpfs: full and read-only (needs root to mount; skipped otherwise)', function () {
  let mnt = '';
  let mounted = false;
  let why = 'not root';

  const sh = (...args: string[]) => spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  /** (Re)mounts a fresh tmpfs of 64 KiB and 32 inodes at `mnt`. */
  const mount = (options = 'size=64k,nr_inodes=32'): void => {
    if (mounted) sh('umount', mnt);
    const r = sh('mount', '-t', 'tmpfs', '-o', options, 'tmpfs', mnt);
    mounted = r.status === 0;
    if (!mounted) why = `mount failed: ${r.stderr.trim()}`;
  };

  before(function () {
    mnt = mkdtempSync(join(tmpdir(), 'topoprobe-tmpfs-'));
    if (isRoot) mount();
    if (!mounted) {
      console.log(`      (tmpfs tests skipped: ${why})`);
      this.skip();
    }
  });
  after(() => {
    if (mounted) {
      const r = sh('umount', mnt);
      if (r.status !== 0) sh('umount', '-l', mnt);
    }
    rmSync(mnt, { recursive: true, force: true });
  });
  beforeEach(() => mount());

  it('a full disk: writeFileAtomic is ENOSPC naming the file, and removes its temporary file', () => {
    const path = join(mnt, 'run', 'model.safetensors');
    writeFileAtomic(path, 'old');
    expectError(() => writeFileAtomic(path, new Uint8Array(256 * 1024)), `cannot write ${path}: no space left on device (ENOSPC)`);
    expect(readdirSync(join(mnt, 'run'))).to.deep.equal(['model.safetensors']);
    expect(readFileSync(path, 'utf8')).to.equal('old');
  });

  it('no inodes left: ensureDir is ENOSPC naming the folder', () => {
    let i = 0;
    expectError(() => {
      for (; i < 100; i++) ensureDir(join(mnt, `d${i}`, 'x'));
    }, 'no space left on device (ENOSPC');
    expect(i).to.be.lessThan(32);
  });

  it('a read-only disk: ensureDir says EROFS (where mkdir itself reports ENOENT), and so does writeFileAtomic', () => {
    ensureDir(join(mnt, 'runs'));
    writeFileSync(join(mnt, 'runs', 'kept.txt'), 'kept');
    expect(sh('mount', '-o', 'remount,ro', mnt).status).to.equal(0);
    const target = join(mnt, 'runs', 'r1', 'checkpoints');
    expectError(() => ensureDir(target), `cannot create folder ${target}: read-only file system (EROFS, at ${join(mnt, 'runs')})`);
    expectError(() => writeFileAtomic(join(mnt, 'runs', 'kept.txt'), 'new'), `cannot write ${join(mnt, 'runs', 'kept.txt')}: read-only file system (EROFS)`);
    expect(readFileSync(join(mnt, 'runs', 'kept.txt'), 'utf8')).to.equal('kept');
  });

  it('data download onto a full disk: ENOSPC naming the file being unpacked; the data dir keeps nothing of it', async () => {
    const dataDir = join(mnt, 'data');
    ensureDir(dataDir);
    const big = 'index\tsentence1\tsentence2\tlabel\n' + '0\tA.\tB.\tentailment\n'.repeat(20000); // ~420 kB, deflates to ~1 kB
    const zip = zipSync({ 'RTE/train.tsv': strToU8(big), 'RTE/dev.tsv': strToU8('x'), 'RTE/test.tsv': strToU8('y') });
    const message = await expectRejects(
      downloadData(['rte'], {
        dataDir,
        mirror: '',
        items: [{ name: 'rte', description: '', sources: [{ url: 'https://example.invalid/RTE.zip', sha256: null, kind: 'zip', members: { 'rte/train.tsv': 'RTE/train.tsv', 'rte/dev.tsv': 'RTE/dev.tsv', 'rte/test.tsv': 'RTE/test.tsv' } }] }],
        fetchImpl: (async () => new Response(zip)) as typeof fetch,
      }),
      'no space left on device (ENOSPC)',
    );
    expect(message).to.match(new RegExp(`^cannot write ${dataDir}/\\.tmp-rte-[^/]+/rte/train\\.tsv: `));
    expect(readdirSync(dataDir)).to.deep.equal([]);
  });
});
