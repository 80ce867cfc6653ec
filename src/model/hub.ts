/**
 * Resolving a model argument (a local folder, or a Hugging Face hub repo id) to a local model folder.
 *
 * Hub repos live in the same cache huggingface_hub and transformers use, laid out the same way, so
 * each side finds what the other downloaded:
 *
 *     {cache}/models--{org}--{name}/
 *       blobs/{etag}                      file contents, named by their ETag (the sha256 for LFS files)
 *       snapshots/{commit}/{file}         relative symlinks into blobs/
 *       refs/{revision}                   the commit a branch or tag pointed to when downloaded
 *
 * A complete snapshot (config, safetensors weights, tokenizer) is used without touching the network.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { getLogger } from '../util/log.js';
import { CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, readSafetensorsIndex } from './checkpoint.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** Tokenizer files fetched with the model; at least one of {@link REQUIRED_TOKENIZER_FILES} must exist. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json'] as const;
const REQUIRED_TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt'] as const;

const MAX_REDIRECTS = 10;
const COMMIT_HASH = /^[0-9a-f]{40}$/;
/** A name safe to use as a single path component (blob and snapshot names come from HTTP headers). */
const SAFE_COMPONENT = /^(?!\.{1,2}$)[\w.-]+$/;

export interface ResolveModelOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** The hub cache folder (default {@link hubCacheDir}). */
  cacheDir?: string;
  /** The hub's base URL (default `HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Never use the network (default: `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set). */
  offline?: boolean;
  /** The fetch to use (default the global one). */
  fetchImpl?: typeof fetch;
  /** An access token for private or gated repos (default `HF_TOKEN`). */
  token?: string;
  /** Called as each file downloads; `total` is undefined when the server does not say. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/**
 * The Hugging Face hub cache folder, chosen as huggingface_hub does: `HF_HUB_CACHE` (or the older
 * `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub`.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return resolve(expandHome(explicit));
  const hfHome = env.HF_HOME ? expandHome(env.HF_HOME) : join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface');
  return resolve(hfHome, 'hub');
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.trim().toUpperCase());
}

/** Whether `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` asks for no network. */
export function isOfflineMode(env: NodeJS.ProcessEnv = process.env): boolean {
  return envFlag(env.HF_HUB_OFFLINE) || envFlag(env.TRANSFORMERS_OFFLINE);
}

const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?$/;

/**
 * Checks a hub repo id (`name` or `org/name`) with huggingface_hub's rules: letters, digits, `_`,
 * `-`, `.`; parts start and end with a letter, digit or `_`; no `--` or `..`; at most 96 characters.
 */
export function validateRepoId(id: string): string {
  const parts = id.split('/');
  const ok =
    id.length > 0 &&
    id.length <= 96 &&
    parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p)) &&
    !id.includes('--') &&
    !id.includes('..') &&
    !id.endsWith('.git');
  if (!ok) {
    throw new TopoprobeError(
      `"${id}" is neither an existing folder nor a valid Hugging Face repo id (expected "name" or "org/name": letters, digits, "_", "-", "."; no "--" or ".."; at most 96 characters)`,
    );
  }
  return id;
}

function validateRevision(revision: string): string {
  const ok = revision.length > 0 && !isAbsolute(revision) && revision.split('/').every((p) => SAFE_COMPONENT.test(p));
  if (!ok) throw new TopoprobeError(`invalid revision "${revision}" (a branch, tag or commit hash)`);
  return revision;
}

/** The cache folder of a model repo: `models--{org}--{name}`. */
export function repoCacheFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, `models--${repoId.split('/').join('--')}`);
}

/** What a usable snapshot lacks (empty when complete): config, safetensors weights, a tokenizer. */
function snapshotMissing(snapshot: string): string[] {
  const missing: string[] = [];
  if (!existsSync(join(snapshot, CONFIG_FILE))) missing.push(CONFIG_FILE);
  if (!existsSync(join(snapshot, SAFETENSORS_FILE))) {
    const indexPath = join(snapshot, SAFETENSORS_INDEX_FILE);
    if (!existsSync(indexPath)) missing.push(`${SAFETENSORS_FILE} (or ${SAFETENSORS_INDEX_FILE} and its shards)`);
    else {
      try {
        for (const shard of shardFiles(indexPath)) if (!existsSync(join(snapshot, shard))) missing.push(shard);
      } catch {
        missing.push(`a valid ${SAFETENSORS_INDEX_FILE}`);
      }
    }
  }
  if (!REQUIRED_TOKENIZER_FILES.some((f) => existsSync(join(snapshot, f)))) missing.push(REQUIRED_TOKENIZER_FILES.join(' or '));
  return missing;
}

/** The distinct shard files named by a safetensors index, sorted; each must be a safe relative path. */
function shardFiles(indexPath: string): string[] {
  const shards = [...readSafetensorsIndex(indexPath).keys()];
  for (const shard of shards) {
    if (!shard.split('/').every((p) => SAFE_COMPONENT.test(p))) {
      throw new TopoprobeError(`${indexPath}: weight_map names an invalid shard file ${JSON.stringify(shard)}`);
    }
  }
  return shards.sort();
}

/** The snapshot folder a revision points to in the cache (through refs/ unless it is a commit hash). */
function cachedSnapshot(repoDir: string, revision: string): { snapshot?: string; looked: string } {
  if (COMMIT_HASH.test(revision)) return { snapshot: join(repoDir, 'snapshots', revision), looked: join(repoDir, 'snapshots', revision) };
  const ref = join(repoDir, 'refs', revision);
  if (!existsSync(ref)) return { looked: ref };
  const commit = readFileSync(ref, 'utf8').trim();
  if (!SAFE_COMPONENT.test(commit)) return { looked: ref };
  return { snapshot: join(repoDir, 'snapshots', commit), looked: join(repoDir, 'snapshots', commit) };
}

/**
 * Resolves a model argument to a local folder: an existing path is used as is (it must be a folder);
 * anything else is a hub repo id, found in the hub cache or downloaded into it (config.json,
 * safetensors weights, tokenizer files). Returns the folder's absolute path.
 */
export async function resolveModel(arg: string, opts: ResolveModelOptions = {}): Promise<string> {
  if (existsSync(arg)) {
    const abs = resolve(arg);
    if (!statSync(abs).isDirectory()) {
      throw new TopoprobeError(`${abs}: is a file; pass the model folder that holds ${CONFIG_FILE} and the weights, or a hub repo id`);
    }
    return abs;
  }
  const looksLikePath = arg.startsWith('.') || arg.startsWith('~') || isAbsolute(arg) || arg.includes('\\') || arg.split('/').length > 2;
  if (looksLikePath) throw new TopoprobeError(`${resolve(arg)}: model folder not found`);
  const repoId = validateRepoId(arg);
  const revision = validateRevision(opts.revision ?? DEFAULT_REVISION);
  const cacheDir = resolve(opts.cacheDir ?? hubCacheDir());
  const repoDir = repoCacheFolder(cacheDir, repoId);
  const log = getLogger();

  const cached = cachedSnapshot(repoDir, revision);
  const missing = cached.snapshot ? snapshotMissing(cached.snapshot) : [`refs/${revision} (this revision was never downloaded)`];
  if (cached.snapshot && missing.length === 0) {
    log.debug(`${repoId}@${revision}: using cached snapshot ${cached.snapshot}`);
    return cached.snapshot;
  }
  const offline = opts.offline ?? isOfflineMode();
  if (offline) {
    throw new TopoprobeError(
      `${repoId} (revision ${revision}) is not fully in the Hugging Face cache and offline mode is on ` +
        `(${opts.offline ? 'offline option' : 'HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE'}): missing ${missing.join(', ')}; looked in ${cached.looked} ` +
        `(cache ${cacheDir}). Download it once with network access, or pass a local folder.`,
    );
  }
  const client = new HubClient(repoId, repoDir, {
    endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: opts.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN,
    fetchImpl: opts.fetchImpl ?? fetch,
    onProgress: opts.onProgress,
  });
  return client.downloadSnapshot(revision);
}

interface ClientOptions {
  endpoint: string;
  token?: string;
  fetchImpl: typeof fetch;
  onProgress?: ResolveModelOptions['onProgress'];
}

/** A file fetched into the blob store. */
interface Fetched {
  /** The blob's path. */
  blob: string;
  /** The X-Repo-Commit the hub reported, if any. */
  commit?: string;
}

/** Strips a weak marker and quotes from an ETag; undefined unless the result is a safe file name. */
function normalizeEtag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  const value = etag.replace(/^W\//, '').replace(/^"|"$/g, '');
  return SAFE_COMPONENT.test(value) ? value : undefined;
}

function encodePath(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

/** Downloads the files of one repo into the cache. */
class HubClient {
  private readonly log = getLogger();

  constructor(
    private readonly repoId: string,
    private readonly repoDir: string,
    private readonly opts: ClientOptions,
  ) {}

  private url(revision: string, file: string): string {
    return `${this.opts.endpoint}/${this.repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  }

  /**
   * Downloads what a model folder needs, links it into `snapshots/{commit}` and points
   * `refs/{revision}` at it once everything is there. After config.json tells the commit, the other
   * files are fetched at that commit, so a branch moving meanwhile cannot mix two versions.
   */
  async downloadSnapshot(revision: string): Promise<string> {
    const config = await this.fetch(revision, CONFIG_FILE, 'required');
    const commit = config.commit !== undefined && SAFE_COMPONENT.test(config.commit) ? config.commit : revision.replaceAll('/', '--');
    const pinned = config.commit !== undefined && COMMIT_HASH.test(config.commit) ? config.commit : revision;
    const snapshot = join(this.repoDir, 'snapshots', commit);
    this.link(snapshot, CONFIG_FILE, config.blob);

    const weights = await this.fetch(pinned, SAFETENSORS_FILE, 'optional');
    if (weights) this.link(snapshot, SAFETENSORS_FILE, weights.blob);
    else {
      const index = await this.fetch(pinned, SAFETENSORS_INDEX_FILE, 'optional');
      if (!index) {
        throw new TopoprobeError(
          `${this.repoId} (revision ${revision}) has no safetensors weights (neither ${SAFETENSORS_FILE} nor ${SAFETENSORS_INDEX_FILE}); ` +
            'topoprobe reads safetensors only. The repo may have only pytorch_model.bin or tf_model.h5: look for a revision with ' +
            'converted weights (a "safetensors" pull request, e.g. --revision refs/pr/1), or convert a local copy in Python with ' +
            'BertModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).',
        );
      }
      this.link(snapshot, SAFETENSORS_INDEX_FILE, index.blob);
      for (const shard of shardFiles(index.blob)) {
        const fetched = await this.fetch(pinned, shard, 'required', `listed in ${SAFETENSORS_INDEX_FILE}`);
        this.link(snapshot, shard, fetched.blob);
      }
    }

    for (const file of TOKENIZER_FILES) {
      const fetched = await this.fetch(pinned, file, 'optional');
      if (fetched) this.link(snapshot, file, fetched.blob);
    }
    if (!REQUIRED_TOKENIZER_FILES.some((f) => existsSync(join(snapshot, f)))) {
      throw new TopoprobeError(`${this.repoId} (revision ${revision}) has no tokenizer (neither ${REQUIRED_TOKENIZER_FILES.join(' nor ')})`);
    }
    if (!COMMIT_HASH.test(revision)) writeFileAtomic(join(this.repoDir, 'refs', revision), commit);
    this.log.info(`${this.repoId}@${revision}: snapshot ${snapshot}`);
    return snapshot;
  }

  /**
   * GETs a file of the repo into `blobs/`. A 404 for a missing file gives null when `optional`; the
   * blob is not downloaded again when one with the same ETag is already there.
   */
  private async fetch(revision: string, file: string, need: 'required', why?: string): Promise<Fetched>;
  private async fetch(revision: string, file: string, need: 'optional'): Promise<Fetched | null>;
  private async fetch(revision: string, file: string, need: 'required' | 'optional', why?: string): Promise<Fetched | null> {
    const url = this.url(revision, file);
    const blobs = join(this.repoDir, 'blobs');
    const { res, commit, linkedEtag, linkedSize, cachedBlob } = await this.get(url, (etag) => existsSync(join(blobs, etag)));
    if (cachedBlob !== undefined) {
      this.log.debug(`${this.repoId}: ${file} already in the cache (blob ${cachedBlob})`);
      return { blob: join(blobs, cachedBlob), commit };
    }
    if (!res.ok) {
      await res.body?.cancel();
      const code = res.headers.get('x-error-code');
      const entryMissing = res.status === 404 && (code === null || code === 'EntryNotFound');
      if (entryMissing && need === 'optional') return null;
      throw this.httpError(url, res, file, revision, why);
    }
    const etag = normalizeEtag(linkedEtag ?? res.headers.get('etag'));
    if (etag && existsSync(join(blobs, etag))) {
      await res.body?.cancel();
      this.log.debug(`${this.repoId}: ${file} already in the cache (blob ${etag})`);
      return { blob: join(blobs, etag), commit };
    }
    const encoding = res.headers.get('content-encoding');
    const contentLength = encoding && encoding !== 'identity' ? null : res.headers.get('content-length');
    const total = contentLength !== null ? Number(contentLength) : linkedSize !== null ? Number(linkedSize) : undefined;
    const blob = await this.saveBody(url, file, res, blobs, etag, total !== undefined && Number.isSafeInteger(total) ? total : undefined);
    return { blob, commit };
  }

  /**
   * GET with redirects followed by hand, to read the hub's own headers (X-Repo-Commit,
   * X-Linked-Etag) on the redirect to the LFS storage, which an automatic redirect would hide. The
   * token is not sent to another origin. When a redirect names (by X-Linked-Etag) a blob that `haveBlob`
   * says is already cached, it is not followed and `cachedBlob` names that blob.
   */
  private async get(
    url: string,
    haveBlob: (etag: string) => boolean,
  ): Promise<{ res: Response; commit?: string; linkedEtag?: string; linkedSize: string | null; cachedBlob?: string }> {
    let current = url;
    let commit: string | undefined;
    let linkedEtag: string | undefined;
    let linkedSize: string | null = null;
    let sendToken = this.opts.token !== undefined && this.opts.token !== '';
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'topoprobe (huggingface_hub-compatible cache)' };
      if (sendToken) headers.authorization = `Bearer ${this.opts.token}`;
      let res: Response;
      try {
        res = await this.opts.fetchImpl(current, { headers, redirect: 'manual' });
      } catch (err) {
        const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
        throw new TopoprobeError(`${current}: request failed (${cause}). Check the network, or set HF_HUB_OFFLINE=1 to use only the local cache.`, {
          cause: err,
        });
      }
      commit ??= res.headers.get('x-repo-commit') ?? undefined;
      linkedEtag ??= res.headers.get('x-linked-etag') ?? undefined;
      linkedSize ??= res.headers.get('x-linked-size');
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const linked = normalizeEtag(linkedEtag);
        if (linked !== undefined && haveBlob(linked)) return { res, commit, linkedEtag, linkedSize, cachedBlob: linked };
        const next = new URL(location, current);
        if (next.origin !== new URL(current).origin) sendToken = false;
        current = next.href;
        continue;
      }
      return { res, commit, linkedEtag, linkedSize };
    }
    throw new TopoprobeError(`${url}: more than ${MAX_REDIRECTS} redirects`);
  }

  private httpError(url: string, res: Response, file: string, revision: string, why?: string): TopoprobeError {
    const code = res.headers.get('x-error-code');
    const serverMessage = res.headers.get('x-error-message');
    let message = `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${serverMessage ? ` (${serverMessage})` : ''}`;
    if (res.status === 401 || res.status === 403) {
      message +=
        `: the repo "${this.repoId}" may not exist, or be private or gated. ` +
        (this.opts.token ? 'The token given (HF_TOKEN) has no access to it.' : 'For a private or gated repo, set HF_TOKEN to an access token (https://huggingface.co/settings/tokens).');
    } else if (code === 'RepoNotFound' || (res.status === 404 && file === CONFIG_FILE && code !== 'RevisionNotFound')) {
      message += `: no ${file} found; the repo id "${this.repoId}" may be wrong (and there is no local folder of that name)`;
    } else if (code === 'RevisionNotFound') {
      message += `: revision "${revision}" does not exist in ${this.repoId}`;
    } else if (res.status === 404) {
      message += `: ${file}${why ? ` (${why})` : ''} does not exist in ${this.repoId} at revision ${revision}`;
    }
    return new TopoprobeError(message);
  }

  /**
   * Streams a response body to `blobs/{…}.incomplete`, checks its length, and renames it to
   * `blobs/{etag}` (or its sha256 when the server sent no usable ETag). On any failure the partial
   * file is removed.
   */
  private async saveBody(url: string, file: string, res: Response, blobs: string, etag: string | undefined, total: number | undefined): Promise<string> {
    mkdirSync(blobs, { recursive: true });
    const temp = join(blobs, `${etag ?? 'download'}.${process.pid}-${randomBytes(4).toString('hex')}.incomplete`);
    const hash = createHash('sha256');
    let received = 0;
    this.log.info(`downloading ${this.repoId}/${file}${total !== undefined ? ` (${(total / 1e6).toFixed(1)} MB)` : ''}`);
    try {
      const handle = await open(temp, 'w');
      try {
        this.opts.onProgress?.(file, 0, total);
        if (res.body) {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            await handle.write(chunk);
            if (!etag) hash.update(chunk);
            received += chunk.byteLength;
            this.opts.onProgress?.(file, received, total);
          }
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (total !== undefined && received !== total) {
        throw new TopoprobeError(`${url}: download incomplete: received ${received} of ${total} bytes`);
      }
      const blob = join(blobs, etag ?? hash.digest('hex'));
      renameSync(temp, blob);
      return blob;
    } catch (err) {
      rmSync(temp, { force: true });
      if (err instanceof TopoprobeError) throw err;
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new TopoprobeError(`${url}: download failed after ${received}${total !== undefined ? ` of ${total}` : ''} bytes (${cause})`, { cause: err });
    }
  }

  /**
   * Points `snapshot/file` at `blob` with a relative symlink, replacing what was there atomically;
   * where symlinks are not allowed, copies the blob instead (as huggingface_hub does).
   */
  private link(snapshot: string, file: string, blob: string): void {
    const target = join(snapshot, file);
    mkdirSync(dirname(target), { recursive: true });
    const temp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      try {
        symlinkSync(relative(dirname(target), blob), temp);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EACCES') throw err;
        copyFileSync(blob, temp);
      }
      renameSync(temp, target);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
  }
}
