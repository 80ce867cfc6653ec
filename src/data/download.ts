/**
 * `topoprobe data download`: fetching the data topoprobe reads (GLUE tasks, UD English-EWT, the
 * bert-uncased vocabulary) from their official sources into the data directory (see `dataDir`), laid out
 * as the readers expect (`src/data/glue.ts`, the CoNLL-U reader, `bertUncasedVocabPath`).
 *
 * Sources (the official ones):
 * - CoLA: the public release, https://nyu-mll.github.io/CoLA/cola_public_1.1.zip (`cola_public/raw/*.tsv`).
 * - RTE, STS-B, SST-2, QNLI, QQP, MNLI, WNLI: GLUE's zips on https://dl.fbaipublicfiles.com/glue/data/
 *   (STS-B from the zip's `original/` folder: the STS Benchmark's own 7-column files, which the STS-B
 *   reader expects).
 * - MRPC: GLUE does not host MRPC (for legal reasons); its download script fetches SentEval's copy,
 *   https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_{train,test}.txt, and so do we.
 * - UD English-EWT: the raw .conllu files of the r2.13 tag of UniversalDependencies/UD_English-EWT on GitHub.
 * - bert-uncased: `vocab.txt` of google-bert/bert-base-uncased on the Hugging Face hub.
 *
 * Pinned hashes: only bert-uncased/vocab.txt (sha256 07eced37…38a3) is pinned. Every other source has
 * `sha256: null` (its hash could not be computed when this registry was written): the download goes on,
 * and the computed sha256 is reported with the warning "not verified: no pinned hash". Pin a hash by
 * filling in its `sha256` once it is known.
 *
 * `TOPOPROBE_DATA_MIRROR` (or the `mirror` option) replaces the scheme and host of every URL, keeping its
 * path: with `TOPOPROBE_DATA_MIRROR=http://mirror.local/data`,
 * https://dl.fbaipublicfiles.com/glue/data/RTE.zip is fetched from http://mirror.local/data/glue/data/RTE.zip.
 *
 * A download streams to `<dataDir>/.downloads/<file>.<pid>-<rand>.partial` and is checked (the
 * Content-Length the server sent, the sha256 when pinned); the files wanted are then unpacked into a
 * temporary folder inside the data directory and each is renamed into place, so no half-written file is
 * ever visible. Any failure before that point leaves the data directory as it was, and no temporary file
 * stays behind.
 *
 * Unpacking is capped: an archive member may unpack to at most `TOPOPROBE_MAX_UNZIP_BYTES` (default
 * 2 GiB), and the wanted members of one archive to `TOPOPROBE_MAX_UNZIP_TOTAL_BYTES` (default 8 GiB) in
 * all; both take a byte count or a binary unit (`512M`, `4G`). A zip member's declared size is checked
 * before it is inflated, and inflation stops as soon as the output passes it (an archive that lies about
 * its sizes, as a zip bomb does); each member's CRC-32 is checked too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as zlib from 'node:zlib';
import { gunzipSync } from 'node:zlib';
import { Inflate } from 'fflate';
import { TopoprobeError } from '../util/errors.js';
import { diskError, ensureDir } from '../util/fs.js';
import { getLogger } from '../util/log.js';
import { dataDir as resolveDataDir } from './paths.js';

/** How a source is packed: a zip archive, a gzipped tar archive, or the file itself. */
export type ArchiveKind = 'zip' | 'tar.gz' | 'file';

interface SourceBase {
  /** The official URL (its scheme and host are replaced by a mirror when one is set). */
  url: string;
  /** The expected sha256 (lowercase hex) of what the URL serves; null when not pinned (then only reported). */
  sha256: string | null;
}

/** An archive: `members` maps each target path (relative to the data dir, `/`-separated) to its path in the archive. */
export interface ArchiveSource extends SourceBase {
  kind: 'zip' | 'tar.gz';
  members: Readonly<Record<string, string>>;
}

/** A plain file, saved as `target` (relative to the data dir, `/`-separated). */
export interface FileSource extends SourceBase {
  kind: 'file';
  target: string;
}

export type DataSource = ArchiveSource | FileSource;

/** Something `topoprobe data download` fetches: one or more sources, giving a set of files in the data dir. */
export interface DataItem {
  /** The name on the command line (`cola`, `rte`, `ud-ewt`, ...). */
  name: string;
  /** Other accepted names (matched case-insensitively, as `name` is). */
  aliases?: readonly string[];
  description: string;
  sources: readonly DataSource[];
}

const GLUE = 'https://dl.fbaipublicfiles.com/glue/data';
const UD_EWT = 'https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.13';

/** GLUE's `<Folder>/<file>` members for a local folder, file names unchanged. */
function glueMembers(local: string, folder: string, files: readonly string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [`${local}/${f}`, `${folder}/${f}`]));
}

/** The registry of downloadable data, in `data list` order. See the module comment for what is pinned. */
export const DATA_ITEMS: readonly DataItem[] = [
  {
    name: 'cola',
    description: 'CoLA (public release 1.1: in-domain train/dev, out-of-domain dev)',
    sources: [
      {
        url: 'https://nyu-mll.github.io/CoLA/cola_public_1.1.zip',
        sha256: null,
        kind: 'zip',
        members: {
          'cola/in_domain_train.tsv': 'cola_public/raw/in_domain_train.tsv',
          'cola/in_domain_dev.tsv': 'cola_public/raw/in_domain_dev.tsv',
          'cola/out_of_domain_dev.tsv': 'cola_public/raw/out_of_domain_dev.tsv',
        },
      },
    ],
  },
  {
    name: 'mrpc',
    description: "MRPC (SentEval's copy of the MSR paraphrase corpus, as GLUE's script fetches it)",
    sources: [
      { url: 'https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt', sha256: null, kind: 'file', target: 'mrpc/msr_paraphrase_train.tsv' },
      { url: 'https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt', sha256: null, kind: 'file', target: 'mrpc/msr_paraphrase_test.tsv' },
    ],
  },
  {
    name: 'rte',
    description: 'RTE (GLUE)',
    sources: [{ url: `${GLUE}/RTE.zip`, sha256: null, kind: 'zip', members: glueMembers('rte', 'RTE', ['train.tsv', 'dev.tsv', 'test.tsv']) }],
  },
  {
    name: 'stsb',
    aliases: ['sts-b'],
    description: "STS-B (GLUE's zip, the STS Benchmark's original files)",
    sources: [
      {
        url: `${GLUE}/STS-B.zip`,
        sha256: null,
        kind: 'zip',
        members: {
          'stsb/sts-train.tsv': 'STS-B/original/sts-train.tsv',
          'stsb/sts-dev.tsv': 'STS-B/original/sts-dev.tsv',
          'stsb/sts-test.tsv': 'STS-B/original/sts-test.tsv',
        },
      },
    ],
  },
  {
    name: 'sst2',
    aliases: ['sst-2'],
    description: 'SST-2 (GLUE)',
    sources: [{ url: `${GLUE}/SST-2.zip`, sha256: null, kind: 'zip', members: glueMembers('sst2', 'SST-2', ['train.tsv', 'dev.tsv', 'test.tsv']) }],
  },
  {
    name: 'qnli',
    description: 'QNLI v2 (GLUE)',
    sources: [{ url: `${GLUE}/QNLIv2.zip`, sha256: null, kind: 'zip', members: glueMembers('qnli', 'QNLI', ['train.tsv', 'dev.tsv', 'test.tsv']) }],
  },
  {
    name: 'qqp',
    description: 'QQP (GLUE, cleaned)',
    sources: [{ url: `${GLUE}/QQP-clean.zip`, sha256: null, kind: 'zip', members: glueMembers('qqp', 'QQP', ['train.tsv', 'dev.tsv', 'test.tsv']) }],
  },
  {
    name: 'mnli',
    description: 'MNLI (GLUE; matched and mismatched dev/test, read as tasks mnli and mnli-mm)',
    sources: [
      {
        url: `${GLUE}/MNLI.zip`,
        sha256: null,
        kind: 'zip',
        members: glueMembers('mnli', 'MNLI', ['train.tsv', 'dev_matched.tsv', 'dev_mismatched.tsv', 'test_matched.tsv', 'test_mismatched.tsv']),
      },
    ],
  },
  {
    name: 'wnli',
    description: 'WNLI (GLUE)',
    sources: [{ url: `${GLUE}/WNLI.zip`, sha256: null, kind: 'zip', members: glueMembers('wnli', 'WNLI', ['train.tsv', 'dev.tsv', 'test.tsv']) }],
  },
  {
    name: 'ud-ewt',
    aliases: ['ewt'],
    description: 'Universal Dependencies English-EWT r2.13 (CoNLL-U)',
    sources: (['train', 'dev', 'test'] as const).map((split) => ({
      url: `${UD_EWT}/en_ewt-ud-${split}.conllu`,
      sha256: null,
      kind: 'file' as const,
      target: `ud-ewt/en_ewt-ud-${split}.conllu`,
    })),
  },
  {
    name: 'bert-uncased',
    description: 'bert-base-uncased WordPiece vocabulary (30522 entries)',
    sources: [
      {
        url: 'https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt',
        sha256: '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3',
        kind: 'file',
        target: 'bert-uncased/vocab.txt',
      },
    ],
  },
];

/** The target paths of an item, relative to the data dir (`/`-separated), in registry order. */
export function itemTargets(item: DataItem): string[] {
  return item.sources.flatMap((s) => (s.kind === 'file' ? [s.target] : Object.keys(s.members)));
}

/**
 * The items `names` asks for, in the order given, without repeats; `all` means every item. Names and
 * aliases match case-insensitively. Throws a TopoprobeError listing the known names for any unknown one.
 */
export function resolveDataItems(names: readonly string[], items: readonly DataItem[] = DATA_ITEMS): DataItem[] {
  if (names.length === 0) throw new TopoprobeError(`name at least one data item; known: ${items.map((i) => i.name).join(', ')} (or all)`);
  const chosen: DataItem[] = [];
  const unknown: string[] = [];
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    const found = name === 'all' ? items : items.filter((i) => i.name.toLowerCase() === name || (i.aliases ?? []).some((a) => a.toLowerCase() === name));
    if (found.length === 0) unknown.push(raw);
    for (const item of found) if (!chosen.includes(item)) chosen.push(item);
  }
  if (unknown.length > 0) {
    throw new TopoprobeError(
      `unknown data item${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known: ${items.map((i) => i.name).join(', ')} (or all)`,
    );
  }
  return chosen;
}

/**
 * `url` with its scheme and host (and port) replaced by `mirror`'s, the mirror's own path (if any)
 * prefixed to the URL's path. No mirror (undefined or empty): `url` unchanged.
 */
export function mirrorUrl(url: string, mirror: string | undefined): string {
  if (mirror === undefined || mirror.trim() === '') return url;
  let base: URL;
  try {
    base = new URL(mirror.trim());
  } catch {
    throw new TopoprobeError(`TOPOPROBE_DATA_MIRROR: ${JSON.stringify(mirror)} is not a URL (expected e.g. http://mirror.example.org or https://host/prefix)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TopoprobeError(`TOPOPROBE_DATA_MIRROR: ${JSON.stringify(mirror)} must be an http:// or https:// URL`);
  }
  const original = new URL(url);
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${base.origin}${prefix}${original.pathname}${original.search}`;
}

// ---------------------------------------------------------------------------------------------------
// Status (`data list`).

export interface DataItemStatus {
  name: string;
  description: string;
  /** Every target path of the item, relative to the data dir. */
  files: string[];
  /** The target paths not in the data dir. */
  missing: string[];
  /** All files present. */
  complete: boolean;
}

/** For each item, which of its files the data dir has. */
export function dataStatus(opts: { dataDir?: string; items?: readonly DataItem[] } = {}): { dataDir: string; items: DataItemStatus[] } {
  const dir = resolveDataDir(opts.dataDir);
  const items = (opts.items ?? DATA_ITEMS).map((item) => {
    const files = itemTargets(item);
    const missing = files.filter((f) => !existsSync(join(dir, ...f.split('/'))));
    return { name: item.name, description: item.description, files, missing, complete: missing.length === 0 };
  });
  return { dataDir: dir, items };
}

// ---------------------------------------------------------------------------------------------------
// Downloading.

export interface DownloadDataOptions {
  /** The data directory (resolved as by `--data-dir`). */
  dataDir?: string;
  /** Download even when every file of an item is already there. */
  force?: boolean;
  /** The registry to pick items from (default {@link DATA_ITEMS}); tests inject their own. */
  items?: readonly DataItem[];
  /** Replaces scheme and host of every URL (default `TOPOPROBE_DATA_MIRROR`; empty: none). */
  mirror?: string;
  /** The fetch to use (default the global one). */
  fetchImpl?: typeof fetch;
  /** Called as each file downloads (`file` is `<item>/<file name>`); `total` undefined when unknown. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
  /** The most bytes one archive member may unpack to (default `TOPOPROBE_MAX_UNZIP_BYTES`, else 2 GiB). */
  maxUnzipBytes?: number;
  /** The most bytes the wanted members of one archive may unpack to in all (default `TOPOPROBE_MAX_UNZIP_TOTAL_BYTES`, else 8 GiB). */
  maxUnzipTotalBytes?: number;
}

export interface SourceResult {
  /** The URL fetched (after the mirror). */
  url: string;
  bytes: number;
  /** The sha256 of what was downloaded. */
  sha256: string;
  /** The pinned sha256 it was checked against; null when none is pinned (then not verified). */
  pinned: string | null;
}

export interface DownloadDataResult {
  name: string;
  /** `skipped`: every file was already there (and `force` was off). */
  status: 'downloaded' | 'skipped';
  /** The absolute paths of the item's files. */
  files: string[];
  /** What was downloaded (empty when skipped). */
  sources: SourceResult[];
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A target or member path must be relative, `/`-separated, without `.`/`..` parts. */
function checkRelative(path: string, what: string, item: string): void {
  const parts = path.split('/');
  if (path === '' || path.startsWith('/') || path.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new TopoprobeError(`data item ${item}: invalid ${what} ${JSON.stringify(path)} (a relative path with / separators, no . or ..)`);
  }
}

function checkItem(item: DataItem): void {
  const seen = new Set<string>();
  for (const source of item.sources) {
    if (source.sha256 !== null && !SHA256_HEX.test(source.sha256)) {
      throw new TopoprobeError(`data item ${item.name}: ${source.url}: pinned sha256 must be 64 lowercase hex digits, got ${JSON.stringify(source.sha256)}`);
    }
    const targets = source.kind === 'file' ? [source.target] : Object.keys(source.members);
    if (source.kind !== 'file') for (const m of Object.values(source.members)) checkRelative(m, 'archive member', item.name);
    for (const t of targets) {
      checkRelative(t, 'target path', item.name);
      if (seen.has(t)) throw new TopoprobeError(`data item ${item.name}: target ${t} comes from two sources`);
      seen.add(t);
    }
  }
}

function fileNameOf(url: string): string {
  const last = new URL(url).pathname.split('/').filter((p) => p !== '').pop() ?? 'download';
  const name = decodeURIComponent(last).replace(/[^\w.-]/g, '_');
  return name === '' || name === '.' || name === '..' ? 'download' : name;
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  return cause?.message ?? cause?.code ?? (err as Error).message;
}

/**
 * Downloads the items `names` asks for (see {@link resolveDataItems}) into the data directory, one item
 * after the other; an item whose files are all there is skipped unless `force`. Throws a TopoprobeError
 * for an unknown name (before downloading anything), an HTTP error (naming URL and status), a short
 * download (Content-Length not reached), a sha256 mismatch (naming the file, expected and actual hash), or
 * an archive lacking a member it should have; the item failing keeps its previous files, and no
 * temporary file is left. Items finished before the failure stay installed.
 */
export async function downloadData(names: readonly string[], opts: DownloadDataOptions = {}): Promise<DownloadDataResult[]> {
  const items = resolveDataItems(names, opts.items ?? DATA_ITEMS);
  items.forEach(checkItem);
  const dir = resolveDataDir(opts.dataDir);
  const mirror = opts.mirror ?? process.env.TOPOPROBE_DATA_MIRROR;
  // Checked up front, so a bad mirror or size limit fails before anything is written.
  for (const item of items) for (const s of item.sources) mirrorUrl(s.url, mirror);
  const limits = unpackLimits(opts);
  const results: DownloadDataResult[] = [];
  for (const item of items) results.push(await downloadItem(item, dir, mirror, limits, opts));
  return results;
}

async function downloadItem(item: DataItem, dir: string, mirror: string | undefined, limits: UnpackLimits, opts: DownloadDataOptions): Promise<DownloadDataResult> {
  const log = getLogger();
  const targets = itemTargets(item);
  const files = targets.map((t) => join(dir, ...t.split('/')));
  if (!opts.force && files.every((f) => existsSync(f))) {
    log.info(`${item.name}: already in ${dir} (use --force to download it again)`);
    return { name: item.name, status: 'skipped', files, sources: [] };
  }
  const dirExisted = existsSync(dir);
  const downloads = join(dir, '.downloads');
  const downloadsExisted = existsSync(downloads);
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(dir, `.tmp-${item.name}-${suffix}`);
  const partials: string[] = [];
  try {
    ensureDir(downloads);
    // 1. Fetch and check every source.
    const fetched: Array<{ source: DataSource; path: string; result: SourceResult }> = [];
    for (const source of item.sources) {
      const url = mirrorUrl(source.url, mirror);
      const name = fileNameOf(source.url);
      const path = join(downloads, `${name}.${suffix}.partial`);
      partials.push(path);
      const { bytes, sha256 } = await fetchToFile(url, path, `${item.name}/${name}`, opts);
      if (source.sha256 !== null && sha256 !== source.sha256) {
        throw new TopoprobeError(`checksum mismatch for ${name} (${url}): expected sha256 ${source.sha256}, got ${sha256}`);
      }
      if (source.sha256 === null) log.warn(`${item.name}: ${name} not verified: no pinned hash; its sha256 is ${sha256}`);
      fetched.push({ source, path, result: { url, bytes, sha256, pinned: source.sha256 } });
    }
    // 2. Unpack what is wanted into a temporary folder inside the data dir.
    ensureDir(temp);
    for (const { source, path, result } of fetched) {
      if (source.kind === 'file') {
        const out = join(temp, ...source.target.split('/'));
        ensureDir(dirname(out));
        renameSync(path, out);
      } else {
        const wanted = Object.entries(source.members).map(([target, member]) => ({ target, member, out: join(temp, ...target.split('/')) }));
        if (source.kind === 'zip') unzipMembers(path, result.url, wanted, limits);
        else untarMembers(path, result.url, wanted, limits);
        rmSync(path, { force: true });
      }
    }
    // 3. Rename each file into place.
    for (const dest of files) {
      if (existsSync(dest) && statSync(dest).isDirectory()) throw new TopoprobeError(`${dest}: is a folder; expected a file (or nothing) there`);
    }
    for (const [i, target] of targets.entries()) {
      ensureDir(dirname(files[i]!));
      renameSync(join(temp, ...target.split('/')), files[i]!);
    }
    log.info(`${item.name}: ${targets.length} file(s) in ${dir}`);
    return { name: item.name, status: 'downloaded', files, sources: fetched.map((f) => f.result) };
  } finally {
    for (const p of partials) rmSync(p, { force: true });
    rmSync(temp, { recursive: true, force: true });
    if (!downloadsExisted) removeIfEmpty(downloads);
    if (!dirExisted) removeIfEmpty(dir);
  }
}

function removeIfEmpty(folder: string): void {
  try {
    if (readdirSync(folder).length === 0) rmdirSync(folder);
  } catch {
    // Gone already, or another process is using it.
  }
}

/**
 * GETs `url` into `path`, returning its size and sha256. HTTP errors name the URL and status; a body
 * shorter than the Content-Length is an error. `path` may be left behind on failure (the caller removes it).
 */
async function fetchToFile(url: string, path: string, label: string, opts: DownloadDataOptions): Promise<{ bytes: number; sha256: string }> {
  const fetchImpl = opts.fetchImpl ?? fetch;
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: { 'user-agent': 'topoprobe', 'accept-encoding': 'identity' }, redirect: 'follow' });
  } catch (err) {
    throw new TopoprobeError(`${url}: request failed (${causeOf(err)}); check the network, or set TOPOPROBE_DATA_MIRROR to a reachable mirror`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new TopoprobeError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  const encoding = res.headers.get('content-encoding');
  const lengthHeader = encoding && encoding !== 'identity' ? null : res.headers.get('content-length');
  const total = lengthHeader !== null && /^\d+$/.test(lengthHeader.trim()) ? Number(lengthHeader) : undefined;
  getLogger().info(`downloading ${url}${total !== undefined ? ` (${(total / 1e6).toFixed(1)} MB)` : ''}`);
  const hash = createHash('sha256');
  let received = 0;
  const short = (why: string) =>
    new TopoprobeError(`${url}: download incomplete: received ${received}${total !== undefined ? ` of ${total}` : ''} bytes (${why})`);
  // A full or read-only disk is named as such, not as a failed download.
  const diskFull = (err: unknown): never => {
    throw diskError(`cannot write ${path}`, err);
  };
  const handle = await open(path, 'w').catch(diskFull);
  try {
    opts.onProgress?.(label, 0, total);
    if (res.body) {
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          await handle.write(chunk).catch(diskFull);
          hash.update(chunk);
          received += chunk.byteLength;
          opts.onProgress?.(label, received, total);
        }
      } catch (err) {
        if (err instanceof TopoprobeError) throw err;
        throw short(causeOf(err));
      }
    }
    await handle.sync().catch(diskFull);
  } finally {
    await handle.close();
  }
  if (total !== undefined && received !== total) throw short('the connection closed early');
  return { bytes: received, sha256: hash.digest('hex') };
}

// ---------------------------------------------------------------------------------------------------
// Archives: only the members wanted are extracted, each straight into its file in the temporary folder.

/** The default cap on one archive member's unpacked size: 2 GiB (`TOPOPROBE_MAX_UNZIP_BYTES`). */
export const DEFAULT_MAX_UNZIP_BYTES = 2 * 1024 ** 3;
/** The default cap on what one archive unpacks to in all: 8 GiB (`TOPOPROBE_MAX_UNZIP_TOTAL_BYTES`). */
export const DEFAULT_MAX_UNZIP_TOTAL_BYTES = 8 * 1024 ** 3;

/** How much an archive may unpack to: per member, and in all. */
export interface UnpackLimits {
  memberBytes: number;
  totalBytes: number;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A byte count from an environment variable: digits, optionally with a binary unit (`64k`, `512M`, `2G`, `1.5GiB`). */
export function parseByteSize(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new TopoprobeError(`${name}: ${JSON.stringify(text)} is not a size in bytes (expected e.g. 2147483648, 512M or 2G)`);
  }
  return bytes;
}

/** The unpacking caps: the options, else `TOPOPROBE_MAX_UNZIP_BYTES` / `TOPOPROBE_MAX_UNZIP_TOTAL_BYTES`, else 2 GiB / 8 GiB. */
export function unpackLimits(opts: { maxUnzipBytes?: number; maxUnzipTotalBytes?: number } = {}, env: NodeJS.ProcessEnv = process.env): UnpackLimits {
  const pick = (given: number | undefined, name: string, fallback: number): number => {
    if (given !== undefined) {
      if (!Number.isSafeInteger(given) || given <= 0) throw new TopoprobeError(`${name}: ${given} is not a positive whole number of bytes`);
      return given;
    }
    const raw = env[name];
    return raw === undefined || raw.trim() === '' ? fallback : parseByteSize(raw, name);
  };
  return {
    memberBytes: pick(opts.maxUnzipBytes, 'TOPOPROBE_MAX_UNZIP_BYTES', DEFAULT_MAX_UNZIP_BYTES),
    totalBytes: pick(opts.maxUnzipTotalBytes, 'TOPOPROBE_MAX_UNZIP_TOTAL_BYTES', DEFAULT_MAX_UNZIP_TOTAL_BYTES),
  };
}

/** One member to extract: `member` (its path in the archive) into the file `out`, for `target`. */
interface Extraction {
  target: string;
  member: string;
  out: string;
}

const memberCapError = (url: string, member: string, size: number, limits: UnpackLimits): TopoprobeError =>
  new TopoprobeError(
    `${url}: archive member ${member} unpacks to ${size} bytes, more than the limit of ${limits.memberBytes} per member ` +
      '(raise TOPOPROBE_MAX_UNZIP_BYTES if the file is really that large)',
  );

const totalCapError = (url: string, size: number, limits: UnpackLimits): TopoprobeError =>
  new TopoprobeError(
    `${url}: the archive's wanted members unpack to ${size} bytes, more than the limit of ${limits.totalBytes} in all ` +
      '(raise TOPOPROBE_MAX_UNZIP_TOTAL_BYTES if they are really that large)',
  );

/** An entry of a zip's central directory. */
interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const ZIP_MAX16 = 0xffff;
const ZIP_MAX32 = 0xffffffff;

/** A little-endian u64 that must fit a safe integer (zip64 fields). */
function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} ${v} is out of range`);
  return Number(v);
}

/** Reads the central directory of a zip (zip64 included). Structural damage is an Error (the caller names the URL). */
function readZipDirectory(buf: Buffer): Map<string, ZipEntry> {
  const need = (at: number, length: number, what: string): void => {
    if (at < 0 || at + length > buf.length) throw new Error(`${what} lies outside the file (byte ${at}, ${buf.length} bytes in all)`);
  };
  // The end-of-central-directory record: 22 bytes plus a comment of up to 65535, at the very end.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no end-of-central-directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let dirSize = buf.readUInt32LE(eocd + 12);
  let dirOffset = buf.readUInt32LE(eocd + 16);
  if (count === ZIP_MAX16 || dirSize === ZIP_MAX32 || dirOffset === ZIP_MAX32) {
    const locator = eocd - 20;
    need(locator, 20, 'the zip64 locator');
    if (buf.readUInt32LE(locator) !== 0x07064b50) throw new Error('no zip64 end-of-central-directory locator');
    const record = u64(buf, locator + 8, 'zip64 record offset');
    need(record, 56, 'the zip64 end-of-central-directory record');
    if (buf.readUInt32LE(record) !== 0x06064b50) throw new Error('no zip64 end-of-central-directory record');
    count = u64(buf, record + 32, 'entry count');
    dirSize = u64(buf, record + 40, 'central directory size');
    dirOffset = u64(buf, record + 48, 'central directory offset');
  }
  need(dirOffset, dirSize, 'the central directory');
  const entries = new Map<string, ZipEntry>();
  let at = dirOffset;
  for (let n = 0; n < count; n++) {
    need(at, 46, 'a central directory entry');
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at byte ${at}`);
    const flags = buf.readUInt16LE(at + 8);
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    need(at + 46, nameLength + extraLength, 'a central directory entry');
    const rawName = buf.subarray(at + 46, at + 46 + nameLength);
    const name = rawName.toString(flags & 0x800 ? 'utf8' : 'latin1').replace(/^\.\//, '');
    let compressedSize = buf.readUInt32LE(at + 20);
    let size = buf.readUInt32LE(at + 24);
    let localOffset = buf.readUInt32LE(at + 42);
    if (size === ZIP_MAX32 || compressedSize === ZIP_MAX32 || localOffset === ZIP_MAX32) {
      // The zip64 extra field (id 1) holds, in this order, each field whose 32-bit value is all ones.
      const extra = buf.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
      let e = 0;
      let zip64: Buffer | undefined;
      while (e + 4 <= extra.length) {
        const id = extra.readUInt16LE(e);
        const length = extra.readUInt16LE(e + 2);
        if (id === 1) zip64 = extra.subarray(e + 4, e + 4 + length);
        e += 4 + length;
      }
      if (!zip64) throw new Error(`${name}: sizes of all ones but no zip64 extra field`);
      let z = 0;
      const next = (what: string): number => {
        if (z + 8 > zip64!.length) throw new Error(`${name}: zip64 extra field too short`);
        const v = u64(zip64!, z, `${name}: ${what}`);
        z += 8;
        return v;
      };
      if (size === ZIP_MAX32) size = next('size');
      if (compressedSize === ZIP_MAX32) compressedSize = next('compressed size');
      if (localOffset === ZIP_MAX32) localOffset = next('offset');
    }
    const entry: ZipEntry = { name, flags, method: buf.readUInt16LE(at + 10), crc: buf.readUInt32LE(at + 16), compressedSize, size, localOffset };
    if (!entries.has(name)) entries.set(name, entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** CRC-32 (IEEE), continuing from `crc`; zlib's where Node has it (20.15+), else a table. */
const crc32: (data: Uint8Array, crc: number) => number =
  (zlib as { crc32?: (data: Uint8Array, crc: number) => number }).crc32 ??
  (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return (data: Uint8Array, crc: number): number => {
      let c = ~crc >>> 0;
      for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
      return ~c >>> 0;
    };
  })();

/** Compressed bytes are inflated 16 KiB at a time, so at most about 16 MiB of output is held at once. */
const INFLATE_CHUNK = 16 * 1024;

/**
 * Extracts the wanted members of the zip at `path` into their files. Before anything is inflated,
 * each member's declared size is checked against the caps; while inflating, the output is counted
 * and inflation stops the moment it passes the declared size (an archive that lies about its sizes,
 * as a zip bomb does). The size and CRC-32 of each member are checked at the end.
 */
function unzipMembers(path: string, url: string, wanted: readonly Extraction[], limits: UnpackLimits): void {
  const buf = readFileSync(path);
  let entries: Map<string, ZipEntry>;
  try {
    entries = readZipDirectory(buf);
  } catch (err) {
    throw new TopoprobeError(`${url}: not a readable zip archive (${(err as Error).message})`, { cause: err });
  }
  let total = 0;
  for (const w of wanted) {
    const entry = entries.get(w.member);
    if (!entry) throw new TopoprobeError(`${url}: the archive has no ${w.member} (wanted for ${w.target}); is it the right file?`);
    if (entry.size > limits.memberBytes) throw memberCapError(url, w.member, entry.size, limits);
    total += entry.size;
  }
  if (total > limits.totalBytes) throw totalCapError(url, total, limits);
  for (const w of wanted) extractZipMember(buf, entries.get(w.member)!, url, w.out);
}

function extractZipMember(buf: Buffer, entry: ZipEntry, url: string, out: string): void {
  const damaged = (why: string) => new TopoprobeError(`${url}: zip member ${entry.name} is damaged (${why})`);
  if (entry.flags & 1) throw new TopoprobeError(`${url}: zip member ${entry.name} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) {
    throw new TopoprobeError(`${url}: zip member ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  }
  const local = entry.localOffset;
  if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) throw damaged(`no local header at byte ${local}`);
  const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
  if (dataStart + entry.compressedSize > buf.length) throw damaged(`its ${entry.compressedSize} compressed bytes run past the end of the file`);
  const compressed = buf.subarray(dataStart, dataStart + entry.compressedSize);
  ensureDir(dirname(out));
  let fd: number;
  try {
    fd = openSync(out, 'w');
  } catch (err) {
    throw diskError(`cannot write ${out}`, err);
  }
  let written = 0;
  let crc = 0;
  const write = (chunk: Uint8Array): void => {
    if (written + chunk.byteLength > entry.size) {
      throw new TopoprobeError(
        `${url}: zip member ${entry.name} inflates past the ${entry.size} bytes its header declares; refused ` +
          '(the archive is damaged or a zip bomb)',
      );
    }
    crc = crc32(chunk, crc);
    try {
      for (let off = 0; off < chunk.byteLength; ) off += writeSync(fd, chunk, off, chunk.byteLength - off);
    } catch (err) {
      throw diskError(`cannot write ${out}`, err);
    }
    written += chunk.byteLength;
  };
  try {
    if (entry.method === 0) {
      for (let i = 0; i < compressed.byteLength; i += INFLATE_CHUNK) write(compressed.subarray(i, i + INFLATE_CHUNK));
    } else if (compressed.byteLength > 0) {
      const inflate = new Inflate((chunk) => write(chunk));
      try {
        for (let i = 0; i < compressed.byteLength; i += INFLATE_CHUNK) {
          inflate.push(compressed.subarray(i, i + INFLATE_CHUNK), i + INFLATE_CHUNK >= compressed.byteLength);
        }
      } catch (err) {
        if (err instanceof TopoprobeError) throw err;
        throw damaged((err as Error).message);
      }
    }
  } finally {
    closeSync(fd);
  }
  if (written !== entry.size) throw damaged(`${written} bytes unpacked, ${entry.size} expected`);
  if (crc !== entry.crc) throw damaged(`CRC-32 ${crc.toString(16).padStart(8, '0')}, ${entry.crc.toString(16).padStart(8, '0')} expected`);
}

/** A NUL-terminated string field of a tar header. */
function tarString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return Buffer.from(end < 0 ? field : field.subarray(0, end)).toString('utf8');
}

/** A numeric field of a tar header: octal text, or GNU base-256 when the high bit is set. */
function tarNumber(block: Uint8Array, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = tarString(block, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * Extracts the wanted members of a gzipped tar (ustar, GNU long names, pax `path`) into their files.
 * Decompression stops at the total cap; a member above the per-member cap is refused.
 */
function untarMembers(path: string, url: string, wanted: readonly Extraction[], limits: UnpackLimits): void {
  const entries = readTarGz(path, url, new Set(wanted.map((w) => w.member)), limits);
  for (const w of wanted) {
    const data = entries.get(w.member);
    if (data === undefined) throw new TopoprobeError(`${url}: the archive has no ${w.member} (wanted for ${w.target}); is it the right file?`);
    if (data.byteLength > limits.memberBytes) throw memberCapError(url, w.member, data.byteLength, limits);
  }
  for (const w of wanted) {
    ensureDir(dirname(w.out));
    try {
      writeFileSync(w.out, entries.get(w.member)!);
    } catch (err) {
      throw diskError(`cannot write ${w.out}`, err);
    }
  }
}

/** The regular files of a gzipped tar that `wanted` names, as views of the unpacked archive. */
function readTarGz(path: string, url: string, wanted: ReadonlySet<string>, limits: UnpackLimits): Map<string, Uint8Array> {
  let tar: Buffer;
  // A Buffer holds at most buffer.constants.MAX_LENGTH bytes; a larger archive could not be unpacked in memory anyway.
  const cap = Math.min(limits.totalBytes, bufferConstants.MAX_LENGTH);
  try {
    tar = gunzipSync(readFileSync(path), { maxOutputLength: cap });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new TopoprobeError(
        `${url}: the archive unpacks to more than ${cap} bytes, ` +
          (cap < limits.totalBytes ? 'more than one buffer can hold' : 'the limit in all (raise TOPOPROBE_MAX_UNZIP_TOTAL_BYTES if it is really that large)'),
        { cause: err },
      );
    }
    throw new TopoprobeError(`${url}: not a readable gzip archive (${(err as Error).message})`, { cause: err });
  }
  const out = new Map<string, Uint8Array>();
  let longName: string | undefined;
  let paxPath: string | undefined;
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    if (sum !== tarNumber(header, 148, 8)) throw new TopoprobeError(`${url}: damaged tar archive (bad header checksum at byte ${offset})`);
    const size = tarNumber(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const dataStart = offset + 512;
    if (dataStart + size > tar.length) throw new TopoprobeError(`${url}: tar archive truncated (an entry needs ${size} bytes at byte ${dataStart})`);
    const data = tar.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = tarString(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      for (const record of data.toString('utf8').split('\n')) {
        const m = /^\d+ path=(.*)$/.exec(record);
        if (m) paxPath = m[1];
      }
      continue;
    }
    let name = tarString(header, 0, 100);
    const magic = tarString(header, 257, 6);
    if (magic.startsWith('ustar')) {
      const prefix = tarString(header, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    name = (paxPath ?? longName ?? name).replace(/^\.\//, '');
    longName = undefined;
    paxPath = undefined;
    if ((type === '0' || type === '\0' || type === '7') && wanted.has(name)) out.set(name, data);
  }
  return out;
}
