import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import {
  DATA_ITEMS,
  dataStatus,
  downloadData,
  itemTargets,
  mirrorUrl,
  parseByteSize,
  resolveDataItems,
  unpackLimits,
  type DataItem,
  type DownloadDataOptions,
} from '../src/data/download.js';
import { GLUE_TASKS, gluePath, glueTaskInfo, readGlue, type GlueSplit } from '../src/data/glue.js';
import { bertUncasedVocabPath } from '../src/data/paths.js';
import { cli, expectRejects } from './helpers.js';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

const RTE_TRAIN = 'index\tsentence1\tsentence2\tlabel\n0\tA cat sat on the mat.\tA cat sat.\tentailment\n1\tIt rained.\tIt was sunny.\tnot_entailment\n';
const RTE_DEV = 'index\tsentence1\tsentence2\tlabel\n0\tDogs bark.\tAnimals make noise.\tentailment\n';
const RTE_TEST = 'index\tsentence1\tsentence2\n0\tBirds fly.\tBirds have wings.\n';

/** A zip in GLUE's RTE.zip layout (plus an unrelated member, which must not be unpacked). */
/** A fixed modification time, so that the same files always zip to the same bytes (fflate stamps the clock's time by default). */
const ZIP_TIME = new Date(2020, 0, 1);

function rteZip(train = RTE_TRAIN): Uint8Array {
  return zipSync({
    'RTE/train.tsv': strToU8(train),
    'RTE/dev.tsv': strToU8(RTE_DEV),
    'RTE/test.tsv': strToU8(RTE_TEST),
    'RTE/readme.txt': strToU8('not wanted'),
  }, { mtime: ZIP_TIME });
}

/**
 * `zip` with the uncompressed size of `member` rewritten to `size` in its local header and its
 * central directory entry: an archive that lies about a member's size, as a zip bomb does.
 */
function withDeclaredSize(zip: Uint8Array, member: string, size: number): Uint8Array {
  const out = Buffer.from(zip);
  let patched = 0;
  for (let i = 0; i + 46 <= out.length; i++) {
    const sig = out.readUInt32LE(i);
    const [nameAt, sizeAt] = sig === 0x04034b50 ? [30, 22] : sig === 0x02014b50 ? [46, 24] : [0, 0];
    if (nameAt === 0) continue;
    const nameLength = out.readUInt16LE(i + (sig === 0x04034b50 ? 26 : 28));
    if (out.toString('utf8', i + nameAt, i + nameAt + nameLength) !== member) continue;
    out.writeUInt32LE(size, i + sizeAt);
    patched++;
  }
  if (patched !== 2) throw new Error(`patched ${patched} headers of ${member}, expected 2`);
  return out;
}

/** A zip64 archive of stored (uncompressed) members, every size and offset in zip64 extra fields, as tools write for files over 4 GiB. */
function zip64Stored(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const nameBytes = Buffer.from(name);
    const extra = Buffer.alloc(4 + 16);
    extra.writeUInt16LE(1, 0);
    extra.writeUInt16LE(16, 2);
    extra.writeBigUInt64LE(BigInt(data.length), 4);
    extra.writeBigUInt64LE(BigInt(data.length), 12);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(0xffffffff, 18);
    local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const cdExtra = Buffer.alloc(4 + 24);
    cdExtra.writeUInt16LE(1, 0);
    cdExtra.writeUInt16LE(24, 2);
    cdExtra.writeBigUInt64LE(BigInt(data.length), 4);
    cdExtra.writeBigUInt64LE(BigInt(data.length), 12);
    cdExtra.writeBigUInt64LE(BigInt(offset), 20);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(45, 6);
    cd.writeUInt32LE(crc32(data), 16);
    cd.writeUInt32LE(0xffffffff, 20);
    cd.writeUInt32LE(0xffffffff, 24);
    cd.writeUInt16LE(nameBytes.length, 28);
    cd.writeUInt16LE(cdExtra.length, 30);
    cd.writeUInt32LE(0xffffffff, 42);
    parts.push(local, nameBytes, extra, data);
    central.push(cd, nameBytes, cdExtra);
    offset += local.length + nameBytes.length + extra.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeBigUInt64LE(BigInt(Object.keys(files).length), 24);
  record.writeBigUInt64LE(BigInt(Object.keys(files).length), 32);
  record.writeBigUInt64LE(BigInt(cdBytes.length), 40);
  record.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
  locator.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, cdBytes, record, locator, eocd]);
}

/** A minimal ustar archive of regular files (long names split into prefix/name). */
function tar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const header = Buffer.alloc(512);
    let name = path;
    let prefix = '';
    if (Buffer.byteLength(path) > 100) {
      const cut = path.lastIndexOf('/', 155);
      prefix = path.slice(0, cut);
      name = path.slice(cut + 1);
    }
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    header.write(prefix, 345, 155);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

interface Route {
  body: Uint8Array;
  status?: number;
  /** Announce this many more bytes than are sent, then drop the connection. */
  truncateBy?: number;
}

/** A local HTTP server serving `routes` by path, counting requests. */
class FixtureServer {
  readonly routes = new Map<string, Route>();
  readonly requests: string[] = [];
  url = '';
  private server?: Server;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      this.requests.push(path);
      const route = this.routes.get(path);
      if (!route) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      if (route.status !== undefined && route.status !== 200) {
        res.writeHead(route.status).end();
        return;
      }
      const body = Buffer.from(route.body);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length + (route.truncateBy ?? 0)) });
      if (route.truncateBy) res.write(body, () => res.socket?.destroy());
      else res.end(body);
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((done) => this.server?.close(() => done()));
  }
}

const localFetch: typeof fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== '127.0.0.1') throw new Error(`test tried to reach ${url.href}`);
  return fetch(input, init);
};

/** Everything under a folder (dot-files included), relative, with `/` separators. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => p.split('\\').join('/')).sort();
}

/** Each file under a folder with its content. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    tree(dir)
      .filter((p) => {
        try {
          readFileSync(join(dir, p));
          return true;
        } catch {
          return false;
        }
      })
      .map((p) => [p, readFileSync(join(dir, p), 'utf8')]),
  );
}

const RTE_FILES = ['rte/dev.tsv', 'rte/test.tsv', 'rte/train.tsv'];

describe('data download', () => {
  let scratch: string;
  let server: FixtureServer;
  let items: DataItem[];
  let n = 0;
  const freshDir = (): string => mkdtempSync(join(scratch, `data-${n++}-`));
  const options = (dataDir: string, extra: DownloadDataOptions = {}): DownloadDataOptions => ({ dataDir, items, mirror: '', fetchImpl: localFetch, ...extra });

  const vocab = strToU8('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n');
  const ewtTar = gzipSync(
    tar({
      'UD_English-EWT-r2.13/en_ewt-ud-dev.conllu': '# text = Hi\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n\n',
      [`UD_English-EWT-r2.13/${'deep/'.repeat(22)}en_ewt-ud-test.conllu`]: '# text = Yo\n1\tYo\tyo\tINTJ\tUH\t_\t0\troot\t0:root\t_\n\n',
      'UD_English-EWT-r2.13/README.md': 'not wanted',
    }),
  );

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-download-'));
    server = new FixtureServer();
    await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  beforeEach(() => {
    server.routes.clear();
    server.requests.length = 0;
    server.routes.set('/glue/data/RTE.zip', { body: rteZip() });
    server.routes.set('/vocab.txt', { body: vocab });
    server.routes.set('/ud/ewt.tgz', { body: ewtTar });
    items = [
      {
        name: 'rte',
        description: 'RTE fixture',
        sources: [
          {
            url: `${server.url}/glue/data/RTE.zip`,
            sha256: sha256(rteZip()),
            kind: 'zip',
            members: { 'rte/train.tsv': 'RTE/train.tsv', 'rte/dev.tsv': 'RTE/dev.tsv', 'rte/test.tsv': 'RTE/test.tsv' },
          },
        ],
      },
      { name: 'bert-uncased', description: 'vocab fixture', sources: [{ url: `${server.url}/vocab.txt`, sha256: sha256(vocab), kind: 'file', target: 'bert-uncased/vocab.txt' }] },
      {
        name: 'ud-ewt',
        description: 'tar.gz fixture, hash not pinned',
        sources: [
          {
            url: `${server.url}/ud/ewt.tgz`,
            sha256: null,
            kind: 'tar.gz',
            members: {
              'ud-ewt/en_ewt-ud-dev.conllu': 'UD_English-EWT-r2.13/en_ewt-ud-dev.conllu',
              'ud-ewt/en_ewt-ud-test.conllu': `UD_English-EWT-r2.13/${'deep/'.repeat(22)}en_ewt-ud-test.conllu`,
            },
          },
        ],
      },
    ];
  });

  it('downloads a zip, verifies it and unpacks the wanted members into the reader layout', async () => {
    const dir = freshDir();
    const progress: Array<[string, number, number | undefined]> = [];
    const [result] = await downloadData(['rte'], options(dir, { onProgress: (f, r, t) => progress.push([f, r, t]) }));
    expect(result!.status).to.equal('downloaded');
    expect(result!.files).to.deep.equal(['train.tsv', 'dev.tsv', 'test.tsv'].map((f) => join(dir, 'rte', f)));
    expect(result!.sources).to.deep.equal([{ url: `${server.url}/glue/data/RTE.zip`, bytes: rteZip().byteLength, sha256: sha256(rteZip()), pinned: sha256(rteZip()) }]);
    // Only the mapped files: no readme, no .downloads, no temporary folder.
    expect(tree(dir)).to.deep.equal(['rte', ...RTE_FILES]);
    expect(readFileSync(join(dir, 'rte', 'dev.tsv'), 'utf8')).to.equal(RTE_DEV);
    const train = readGlue('rte', 'train', dir);
    expect(train.map((e) => [e.id, e.label])).to.deep.equal([['0', 0], ['1', 1]]);
    expect(readGlue('rte', 'test', dir)[0]!.sentence2).to.equal('Birds have wings.');
    expect(progress[0]).to.deep.equal(['rte/RTE.zip', 0, rteZip().byteLength]);
    expect(progress.at(-1)).to.deep.equal(['rte/RTE.zip', rteZip().byteLength, rteZip().byteLength]);
  });

  it('saves a plain file under its target name', async () => {
    const dir = freshDir();
    await downloadData(['bert-uncased'], options(dir));
    expect(tree(dir)).to.deep.equal(['bert-uncased', 'bert-uncased/vocab.txt']);
    expect(readFileSync(bertUncasedVocabPath(dir), 'utf8')).to.equal('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n');
  });

  it('unpacks a tar.gz (ustar long names too) and reports an unpinned hash as not verified', async () => {
    const dir = freshDir();
    const [result] = await downloadData(['ud-ewt'], options(dir));
    expect(result!.sources[0]).to.include({ sha256: sha256(ewtTar), pinned: null });
    expect(tree(dir)).to.deep.equal(['ud-ewt', 'ud-ewt/en_ewt-ud-dev.conllu', 'ud-ewt/en_ewt-ud-test.conllu']);
    expect(readFileSync(join(dir, 'ud-ewt', 'en_ewt-ud-test.conllu'), 'utf8')).to.include('# text = Yo');
  });

  it('skips an item whose files are all there, and downloads it again with force', async () => {
    const dir = freshDir();
    await downloadData(['rte'], options(dir));
    expect(server.requests).to.deep.equal(['/glue/data/RTE.zip']);
    const [skipped] = await downloadData(['rte'], options(dir));
    expect(skipped!.status).to.equal('skipped');
    expect(skipped!.sources).to.deep.equal([]);
    expect(server.requests).to.have.length(1);

    // A changed upstream file (new pinned hash) reaches the data dir only with force.
    const newTrain = RTE_TRAIN + '2\tNew.\tNewer.\tentailment\n';
    server.routes.set('/glue/data/RTE.zip', { body: rteZip(newTrain) });
    const source = items[0]!.sources[0]!;
    items[0] = { ...items[0]!, sources: [{ ...source, sha256: sha256(rteZip(newTrain)) }] };
    const [forced] = await downloadData(['rte'], options(dir, { force: true }));
    expect(forced!.status).to.equal('downloaded');
    expect(server.requests).to.have.length(2);
    expect(readGlue('rte', 'train', dir)).to.have.length(3);
    expect(tree(dir)).to.deep.equal(['rte', ...RTE_FILES]);
  });

  it('downloads an item again when one of its files is missing', async () => {
    const dir = freshDir();
    await downloadData(['rte'], options(dir));
    rmSync(join(dir, 'rte', 'dev.tsv'));
    const [result] = await downloadData(['rte'], options(dir));
    expect(result!.status).to.equal('downloaded');
    expect(tree(dir)).to.deep.equal(['rte', ...RTE_FILES]);
  });

  it('rejects a corrupted archive (sha256 mismatch) and leaves the data dir as it was', async () => {
    // Into an empty data dir.
    const empty = freshDir();
    const corrupted = Buffer.from(rteZip());
    corrupted[corrupted.length >> 1] ^= 0xff;
    server.routes.set('/glue/data/RTE.zip', { body: corrupted });
    await expectRejects(downloadData(['rte'], options(empty)), 'checksum mismatch for RTE.zip', `expected sha256 ${sha256(rteZip())}`, `got ${sha256(corrupted)}`);
    expect(tree(empty)).to.deep.equal([]);

    // Over a previous download, with force: the old files stay, untouched.
    const dir = freshDir();
    server.routes.set('/glue/data/RTE.zip', { body: rteZip() });
    await downloadData(['rte'], options(dir));
    const before = snapshot(dir);
    server.routes.set('/glue/data/RTE.zip', { body: corrupted });
    await expectRejects(downloadData(['rte'], options(dir, { force: true })), 'RTE.zip', sha256(rteZip()), sha256(corrupted));
    expect(snapshot(dir)).to.deep.equal(before);
    expect(tree(dir)).to.deep.equal(['rte', ...RTE_FILES]);
  });

  it('names the URL and status of an HTTP error, and leaves nothing behind', async () => {
    const dir = freshDir();
    server.routes.delete('/glue/data/RTE.zip');
    await expectRejects(downloadData(['rte'], options(dir)), `${server.url}/glue/data/RTE.zip`, 'HTTP 404');
    server.routes.set('/glue/data/RTE.zip', { body: rteZip(), status: 503 });
    await expectRejects(downloadData(['rte'], options(dir)), `${server.url}/glue/data/RTE.zip: HTTP 503`);
    expect(tree(dir)).to.deep.equal([]);
  });

  it('rejects a truncated response (Content-Length larger than the body)', async () => {
    const dir = freshDir();
    await downloadData(['bert-uncased'], options(dir));
    const before = snapshot(dir);
    server.routes.set('/vocab.txt', { body: vocab.subarray(0, 10), truncateBy: 100 });
    const message = await expectRejects(downloadData(['bert-uncased'], options(dir, { force: true })), `${server.url}/vocab.txt`, 'download incomplete: received');
    // The 10 bytes sent may or may not have been read before the connection drop was noticed.
    expect(message).to.match(/received (0|10) of 110 bytes/);
    expect(message).to.not.include('checksum');
    expect(snapshot(dir)).to.deep.equal(before);
    expect(tree(dir)).to.deep.equal(['bert-uncased', 'bert-uncased/vocab.txt']);
  });

  it('rejects an archive that lacks a member it should have, changing nothing', async () => {
    const dir = freshDir();
    const zip = zipSync({ 'RTE/train.tsv': strToU8(RTE_TRAIN) }, { mtime: ZIP_TIME });
    server.routes.set('/glue/data/RTE.zip', { body: zip });
    items[0] = { ...items[0]!, sources: [{ ...items[0]!.sources[0]!, sha256: null }] };
    await expectRejects(downloadData(['rte'], options(dir)), 'the archive has no RTE/dev.tsv (wanted for rte/dev.tsv)');
    expect(tree(dir)).to.deep.equal([]);
  });

  it('rejects something that is not a zip at all', async () => {
    const dir = freshDir();
    server.routes.set('/glue/data/RTE.zip', { body: strToU8('<html>not a zip</html>') });
    items[0] = { ...items[0]!, sources: [{ ...items[0]!.sources[0]!, sha256: null }] };
    await expectRejects(downloadData(['rte'], options(dir)), `${server.url}/glue/data/RTE.zip: not a readable zip archive`);
    expect(tree(dir)).to.deep.equal([]);
  });

  it('rejects unknown names, listing the known ones, before downloading anything', async () => {
    const dir = freshDir();
    await expectRejects(downloadData(['rte', 'nope'], options(dir)), 'unknown data item "nope"', 'known: rte, bert-uncased, ud-ewt (or all)');
    expect(server.requests).to.deep.equal([]);
    expect(tree(dir)).to.deep.equal([]);
    await expectRejects(Promise.resolve().then(() => resolveDataItems(['cola', 'glue'])), 'unknown data item "glue"', 'known: cola, mrpc, rte, stsb');
  });

  it('refuses registry entries whose paths leave the data dir', async () => {
    const dir = freshDir();
    items[1] = { ...items[1]!, sources: [{ url: `${server.url}/vocab.txt`, sha256: null, kind: 'file', target: '../escape.txt' }] };
    await expectRejects(downloadData(['bert-uncased'], options(dir)), 'invalid target path "../escape.txt"');
    expect(server.requests).to.deep.equal([]);
  });

  it('resolves all, aliases and case; drops repeats', () => {
    expect(resolveDataItems(['all']).map((i) => i.name)).to.deep.equal(DATA_ITEMS.map((i) => i.name));
    expect(resolveDataItems(['STS-B', 'rte', 'stsb', 'sst-2']).map((i) => i.name)).to.deep.equal(['stsb', 'rte', 'sst2']);
  });

  it('mirrorUrl replaces scheme and host, keeping the path (and a mirror prefix)', () => {
    const url = 'https://dl.fbaipublicfiles.com/glue/data/RTE.zip';
    expect(mirrorUrl(url, undefined)).to.equal(url);
    expect(mirrorUrl(url, '')).to.equal(url);
    expect(mirrorUrl(url, 'http://127.0.0.1:8080')).to.equal('http://127.0.0.1:8080/glue/data/RTE.zip');
    expect(mirrorUrl(url, 'http://mirror.local/data/')).to.equal('http://mirror.local/data/glue/data/RTE.zip');
    expect(() => mirrorUrl(url, 'ftp://mirror.local')).to.throw('TOPOPROBE_DATA_MIRROR');
  });

  it('the registry covers the files the readers expect, with well-formed sources', () => {
    const byName = new Map(DATA_ITEMS.map((i) => [i.name, i]));
    for (const task of GLUE_TASKS) {
      const item = byName.get(glueTaskInfo(task).dataItem);
      expect(item, task).to.not.equal(undefined);
      const targets = itemTargets(item!);
      for (const split of Object.keys(glueTaskInfo(task).files) as GlueSplit[]) {
        expect(targets, `${task} ${split}`).to.include(gluePath(task, split, '/d').slice('/d/'.length));
      }
    }
    expect(itemTargets(byName.get('ud-ewt')!)).to.deep.equal(['train', 'dev', 'test'].map((s) => `ud-ewt/en_ewt-ud-${s}.conllu`));
    expect(itemTargets(byName.get('bert-uncased')!)).to.deep.equal(['bert-uncased/vocab.txt']);
    for (const item of DATA_ITEMS) {
      for (const s of item.sources) {
        expect(new URL(s.url).protocol, s.url).to.equal('https:');
        if (s.sha256 !== null) expect(s.sha256).to.match(/^[0-9a-f]{64}$/);
      }
    }
    const pinned = DATA_ITEMS.flatMap((i) => i.sources.filter((s) => s.sha256 !== null).map((s) => s.url));
    expect(pinned).to.deep.equal(['https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt']);
    expect(byName.get('bert-uncased')!.sources[0]!.sha256).to.equal('07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3');
  });

  it('dataStatus tells which files are present and missing', async () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'rte'));
    writeFileSync(join(dir, 'rte', 'train.tsv'), RTE_TRAIN);
    const status = dataStatus({ dataDir: dir, items });
    expect(status.dataDir).to.equal(dir);
    expect(status.items.map((i) => [i.name, i.complete, i.missing])).to.deep.equal([
      ['rte', false, ['rte/dev.tsv', 'rte/test.tsv']],
      ['bert-uncased', false, ['bert-uncased/vocab.txt']],
      ['ud-ewt', false, ['ud-ewt/en_ewt-ud-dev.conllu', 'ud-ewt/en_ewt-ud-test.conllu']],
    ]);
    await downloadData(['rte'], options(dir));
    expect(dataStatus({ dataDir: dir, items }).items[0]).to.include({ complete: true });
  });

  describe('unpacking limits', () => {
    /** Serves `zip` as the RTE archive (hash not pinned). */
    const serve = (zip: Uint8Array): void => {
      server.routes.set('/glue/data/RTE.zip', { body: zip });
      items[0] = { ...items[0]!, sources: [{ ...items[0]!.sources[0]!, sha256: null }] };
    };
    const bigDev = 'index\tsentence1\tsentence2\tlabel\n' + '0\tDogs bark.\tAnimals make noise.\tentailment\n'.repeat(20000); // ~900 kB, deflates to a few kB
    const rteFiles = (dev: string): Record<string, Uint8Array> => ({ 'RTE/train.tsv': strToU8(RTE_TRAIN), 'RTE/dev.tsv': strToU8(dev), 'RTE/test.tsv': strToU8(RTE_TEST) });

    it('refuses a member that inflates past the size its header declares (a zip bomb), leaving nothing behind', async () => {
      const dir = freshDir();
      // dev.tsv comes after train.tsv, which is already unpacked into the temporary folder when dev.tsv is refused.
      serve(withDeclaredSize(zipSync(rteFiles(bigDev), { mtime: ZIP_TIME }), 'RTE/dev.tsv', 1000));
      await expectRejects(
        downloadData(['rte'], options(dir)),
        `${server.url}/glue/data/RTE.zip: zip member RTE/dev.tsv inflates past the 1000 bytes its header declares`,
        'zip bomb',
      );
      expect(tree(dir)).to.deep.equal([]);
    });

    it('refuses a member whose declared size is above the per-member cap, before inflating it', async () => {
      const dir = freshDir();
      serve(zipSync(rteFiles(bigDev), { mtime: ZIP_TIME }));
      const size = strToU8(bigDev).byteLength;
      await expectRejects(
        downloadData(['rte'], options(dir, { maxUnzipBytes: 64 * 1024 })),
        `archive member RTE/dev.tsv unpacks to ${size} bytes, more than the limit of 65536 per member`,
        'TOPOPROBE_MAX_UNZIP_BYTES',
      );
      expect(tree(dir)).to.deep.equal([]);
      // A lying header that claims more than the cap is refused as well, however little it holds.
      serve(withDeclaredSize(rteZip(), 'RTE/test.tsv', 0xfffffff0));
      await expectRejects(downloadData(['rte'], options(dir)), 'archive member RTE/test.tsv unpacks to 4294967280 bytes, more than the limit of 2147483648 per member');
      expect(tree(dir)).to.deep.equal([]);
    });

    it('refuses members that together pass the total cap; the env vars set both caps', async () => {
      const dir = freshDir();
      serve(zipSync(rteFiles(bigDev), { mtime: ZIP_TIME }));
      const total = [RTE_TRAIN, bigDev, RTE_TEST].reduce((n, t) => n + strToU8(t).byteLength, 0);
      await expectRejects(downloadData(['rte'], options(dir, { maxUnzipTotalBytes: total - 1 })), `unpack to ${total} bytes, more than the limit of ${total - 1} in all`, 'TOPOPROBE_MAX_UNZIP_TOTAL_BYTES');
      expect(tree(dir)).to.deep.equal([]);
      const saved = { ...process.env };
      try {
        process.env.TOPOPROBE_MAX_UNZIP_BYTES = '512k';
        await expectRejects(downloadData(['rte'], options(dir)), 'more than the limit of 524288 per member');
        process.env.TOPOPROBE_MAX_UNZIP_BYTES = '2G';
        process.env.TOPOPROBE_MAX_UNZIP_TOTAL_BYTES = '100k';
        await expectRejects(downloadData(['rte'], options(dir)), 'more than the limit of 102400 in all');
        // A malformed value is refused before anything is fetched.
        server.requests.length = 0;
        process.env.TOPOPROBE_MAX_UNZIP_TOTAL_BYTES = 'lots';
        await expectRejects(downloadData(['rte'], options(dir)), 'TOPOPROBE_MAX_UNZIP_TOTAL_BYTES: "lots" is not a size in bytes');
        expect(server.requests).to.deep.equal([]);
        delete process.env.TOPOPROBE_MAX_UNZIP_TOTAL_BYTES;
        const [ok] = await downloadData(['rte'], options(dir));
        expect(ok!.status).to.equal('downloaded');
        expect(readFileSync(join(dir, 'rte', 'dev.tsv'), 'utf8')).to.equal(bigDev);
      } finally {
        for (const k of ['TOPOPROBE_MAX_UNZIP_BYTES', 'TOPOPROBE_MAX_UNZIP_TOTAL_BYTES']) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    });

    it('parses sizes with binary units, and the defaults are 2 GiB per member and 8 GiB in all', () => {
      expect(parseByteSize('1048576', 'X')).to.equal(1048576);
      expect(parseByteSize('64k', 'X')).to.equal(65536);
      expect(parseByteSize('1.5G', 'X')).to.equal(1.5 * 2 ** 30);
      expect(parseByteSize('512MiB', 'X')).to.equal(2 ** 29);
      for (const bad of ['', '0', '-5', '2X', 'k']) expect(() => parseByteSize(bad, 'X'), bad).to.throw(`X: ${JSON.stringify(bad)} is not a size`);
      expect(unpackLimits({}, {})).to.deep.equal({ memberBytes: 2 ** 31, totalBytes: 2 ** 33 });
      expect(unpackLimits({ maxUnzipBytes: 10 }, { TOPOPROBE_MAX_UNZIP_BYTES: '1G', TOPOPROBE_MAX_UNZIP_TOTAL_BYTES: '3G' })).to.deep.equal({ memberBytes: 10, totalBytes: 3 * 2 ** 30 });
    });

    it('refuses a member whose CRC-32 does not match, and reads a zip64 archive', async () => {
      const dir = freshDir();
      const stored = Buffer.from(zipSync(rteFiles(RTE_DEV), { mtime: ZIP_TIME, level: 0 }));
      stored[stored.indexOf('Dogs bark.')] = 'H'.charCodeAt(0);
      serve(stored);
      await expectRejects(downloadData(['rte'], options(dir)), 'zip member RTE/dev.tsv is damaged (CRC-32');
      expect(tree(dir)).to.deep.equal([]);
      serve(zip64Stored({ 'RTE/readme.txt': 'x', 'RTE/train.tsv': RTE_TRAIN, 'RTE/dev.tsv': RTE_DEV, 'RTE/test.tsv': RTE_TEST }));
      await downloadData(['rte'], options(dir));
      expect(snapshot(dir)).to.deep.equal({ 'rte/dev.tsv': RTE_DEV, 'rte/test.tsv': RTE_TEST, 'rte/train.tsv': RTE_TRAIN });
    });

    it('a tar.gz that unpacks past the total cap is refused, and so is a member above the per-member cap', async () => {
      const dir = freshDir();
      await expectRejects(downloadData(['ud-ewt'], options(dir, { maxUnzipTotalBytes: 2048 })), `${server.url}/ud/ewt.tgz: the archive unpacks to more than 2048 bytes`);
      await expectRejects(downloadData(['ud-ewt'], options(dir, { maxUnzipBytes: 40 })), 'archive member UD_English-EWT-r2.13/en_ewt-ud-dev.conllu unpacks to', 'limit of 40 per member');
      expect(tree(dir)).to.deep.equal([]);
    });
  });

  describe('CLI', () => {
    const env = () => ({ TOPOPROBE_DATA_MIRROR: server.url, TOPOPROBE_DATA_DIR: undefined });

    it('data list, data download (unpinned: warns with the hash), skip, --force, list again', async () => {
      const dir = freshDir();
      const before = await cli(['data', 'list', '--data-dir', dir], env());
      expect(before.code, before.stderr).to.equal(0);
      expect(before.stdout).to.include(`data directory: ${dir}`);
      expect(before.stdout).to.match(/^rte +missing +RTE/m);
      expect(before.stdout).to.include('missing: rte/train.tsv, rte/dev.tsv, rte/test.tsv');
      expect(before.stdout).to.match(/^cola +missing/m);

      // The real registry's RTE source, fetched from the mirror (the local server).
      const got = await cli(['data', 'download', 'rte', '--data-dir', dir], env());
      expect(got.code, got.stderr).to.equal(0);
      expect(got.stdout).to.include('rte: downloaded 3 file(s)');
      expect(got.stdout).to.include(`${server.url}/glue/data/RTE.zip: ${rteZip().byteLength} bytes, sha256 ${sha256(rteZip())} (WARNING: not verified: no pinned hash)`);
      expect(server.requests).to.deep.equal(['/glue/data/RTE.zip']);
      expect(tree(dir)).to.deep.equal(['rte', ...RTE_FILES]);
      expect(readGlue('rte', 'dev', dir)).to.have.length(1);

      const after = await cli(['data', 'list', '--data-dir', dir], env());
      expect(after.stdout).to.match(/^rte +present +RTE/m);
      expect(after.stdout).to.not.include('missing: rte/');
      expect(after.stdout).to.match(/^stsb +missing/m);

      const again = await cli(['data', 'download', 'rte', '--data-dir', dir], env());
      expect(again.code).to.equal(0);
      expect(again.stdout).to.include('rte: already present, skipped');
      expect(server.requests).to.have.length(1);

      const forced = await cli(['data', 'download', 'rte', '--force', '--data-dir', dir], env());
      expect(forced.code, forced.stderr).to.equal(0);
      expect(forced.stdout).to.include('rte: downloaded 3 file(s)');
      expect(server.requests).to.have.length(2);
    });

    it('data download: a pinned hash that does not match, an HTTP error, an unknown name', async () => {
      const dir = freshDir();
      // bert-uncased/vocab.txt is pinned to the real file's hash; the fixture vocab is something else.
      server.routes.set('/google-bert/bert-base-uncased/resolve/main/vocab.txt', { body: vocab });
      const bad = await cli(['data', 'download', 'bert-uncased', '--data-dir', dir], env());
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.include('checksum mismatch for vocab.txt');
      expect(bad.stderr).to.include('expected sha256 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3');
      expect(bad.stderr).to.include(`got ${sha256(vocab)}`);
      expect(tree(dir)).to.deep.equal([]);

      const missing = await cli(['data', 'download', 'stsb', '--data-dir', dir], env());
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.include(`${server.url}/glue/data/STS-B.zip: HTTP 404`);
      expect(tree(dir)).to.deep.equal([]);

      const unknown = await cli(['data', 'download', 'rte', 'squad', '--data-dir', dir], env());
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.include('unknown data item "squad"; known: cola, mrpc, rte, stsb, sst2, qnli, qqp, mnli, wnli, ud-ewt, bert-uncased (or all)');
      expect(server.requests.filter((p) => p.includes('RTE'))).to.deep.equal([]);
    });
  });
});
