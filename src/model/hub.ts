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
 *
 * Nothing enters blobs/ unless it is complete and verified: its byte count against Content-Length and
 * the hub's X-Linked-Size, and its hash against its name (the sha256 for a 64-hex LFS ETag, the git
 * blob sha1 for a 40-hex one). A server that sends nothing for {@link hubTimeoutSeconds} (no response,
 * or no body bytes) is given up on.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { getLogger } from '../util/log.js';
import { CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, readSafetensorsIndex } from './checkpoint.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
/** Seconds without a response, or without a byte of the body, before a hub request is given up on. */
export const DEFAULT_HUB_TIMEOUT_SECONDS = 30;
/** The environment variable that sets {@link DEFAULT_HUB_TIMEOUT_SECONDS} otherwise. */
export const HUB_TIMEOUT_ENV = 'TOPOPROBE_HUB_TIMEOUT';

/** Tokenizer files fetched with the model; at least one of {@link REQUIRED_TOKENIZER_FILES} must exist. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json'] as const;
const REQUIRED_TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt'] as const;

const MAX_REDIRECTS = 10;
const COMMIT_HASH = /^[0-9a-f]{40}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/i;
const SHA1_HEX = /^[0-9a-f]{40}$/i;
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
  /**
   * Seconds to wait for a response, and then for each next piece of a body, before giving up
   * (default `TOPOPROBE_HUB_TIMEOUT`, else {@link DEFAULT_HUB_TIMEOUT_SECONDS}).
   */
  timeoutSeconds?: number;
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

/**
 * The hub timeout in seconds from `TOPOPROBE_HUB_TIMEOUT` (a number > 0, fractions allowed), else
 * {@link DEFAULT_HUB_TIMEOUT_SECONDS}.
 */
export function hubTimeoutSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[HUB_TIMEOUT_ENV];
  if (raw === undefined || raw.trim() === '') return DEFAULT_HUB_TIMEOUT_SECONDS;
  return checkTimeout(Number(raw.trim()), `${HUB_TIMEOUT_ENV}=${JSON.stringify(raw)}`);
}

function checkTimeout(seconds: number, what: string): number {
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new TopoprobeError(`${what}: expected a number of seconds greater than 0 (default ${DEFAULT_HUB_TIMEOUT_SECONDS})`);
  }
  return seconds;
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
  const timeoutSeconds = opts.timeoutSeconds !== undefined ? checkTimeout(opts.timeoutSeconds, `timeoutSeconds ${opts.timeoutSeconds}`) : hubTimeoutSeconds();
  const client = new HubClient(repoId, repoDir, {
    endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: opts.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN,
    fetchImpl: opts.fetchImpl ?? fetch,
    onProgress: opts.onProgress,
    timeoutSeconds,
    timeoutSetting: opts.timeoutSeconds !== undefined ? 'the timeoutSeconds option' : HUB_TIMEOUT_ENV,
  });
  return client.downloadSnapshot(revision);
}

interface ClientOptions {
  endpoint: string;
  token?: string;
  fetchImpl: typeof fetch;
  onProgress?: ResolveModelOptions['onProgress'];
  timeoutSeconds: number;
  /** What sets the timeout, for error messages. */
  timeoutSetting: string;
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

/** A byte count the server states for a body, and the header that states it. */
interface SizeClaim {
  source: string;
  bytes: number;
}

/**
 * Gives up on a request when nothing arrives for a while: armed before waiting for the response or
 * the next piece of the body, paused while topoprobe itself works. When it fires it aborts the request
 * (closing the connection) and rejects `race`, so even a fetch that ignores the signal is given up on.
 */
class Watchdog {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expire!: (reason: Error) => void;
  private readonly expired: Promise<never>;
  private readonly ms: number;
  fired = false;

  constructor(seconds: number) {
    this.ms = Math.min(Math.max(1, Math.round(seconds * 1000)), 2 ** 31 - 1);
    this.expired = new Promise<never>((_, reject) => (this.expire = reject));
    this.expired.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  arm(): void {
    this.pause();
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort();
      this.expire(new Error(`timed out after ${this.ms} ms`));
    }, this.ms);
  }

  pause(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.expired]);
  }
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
            'topoprobe reads safetensors only. The repo may have only pytorch_model.bin or tf_model.h5. Convert a local copy in Python ' +
            'with BertModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True) and pass that folder as the model; or, ' +
            'when the repo has a revision with converted weights (often a "safetensors" pull request, refs/pr/N), download it with ' +
            `huggingface_hub.snapshot_download(${JSON.stringify(this.repoId)}, revision="refs/pr/N") in Python and pass the folder it returns.`,
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
   * blob is not downloaded again when one with the same ETag (and the size the hub states) is already
   * there.
   */
  private async fetch(revision: string, file: string, need: 'required', why?: string): Promise<Fetched>;
  private async fetch(revision: string, file: string, need: 'optional'): Promise<Fetched | null>;
  private async fetch(revision: string, file: string, need: 'required' | 'optional', why?: string): Promise<Fetched | null> {
    const url = this.url(revision, file);
    const blobs = join(this.repoDir, 'blobs');
    const usable = (etag: string, size: number | undefined): boolean => this.blobUsable(join(blobs, etag), size);
    const { res, commit, linkedEtag, linkedSize, cachedBlob, watchdog, finalUrl } = await this.get(url, file, usable);
    if (cachedBlob !== undefined) {
      this.log.debug(`${this.repoId}: ${file} already in the cache (blob ${cachedBlob})`);
      return { blob: join(blobs, cachedBlob), commit };
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const code = res.headers.get('x-error-code');
      const entryMissing = res.status === 404 && (code === null || code === 'EntryNotFound');
      if (entryMissing && need === 'optional') return null;
      throw this.httpError(url, res, file, revision, why);
    }
    const etag = normalizeEtag(linkedEtag ?? res.headers.get('etag'));
    let sizes: SizeClaim[];
    try {
      sizes = this.expectedSizes(this.source(file, url, finalUrl), res, linkedSize);
    } catch (err) {
      await res.body?.cancel().catch(() => undefined);
      throw err;
    }
    if (etag && usable(etag, sizes[0]?.bytes)) {
      await res.body?.cancel().catch(() => undefined);
      this.log.debug(`${this.repoId}: ${file} already in the cache (blob ${etag})`);
      return { blob: join(blobs, etag), commit };
    }
    const blob = await this.saveBody(this.source(file, url, finalUrl), file, res, watchdog, blobs, etag, sizes);
    return { blob, commit };
  }

  /** Whether a cached blob can be used: it exists and, when the hub states a size, has that size. */
  private blobUsable(path: string, size: number | undefined): boolean {
    if (!existsSync(path)) return false;
    if (size === undefined) return true;
    const actual = statSync(path).size;
    if (actual !== size) this.log.warn(`${path}: the cached blob has ${actual} bytes, the hub says ${size}: downloading it again`);
    return actual === size;
  }

  /**
   * The sizes the server states for a body: Content-Length (unless the body is content-encoded) and
   * X-Linked-Size. Both, when both are there, must agree.
   */
  private expectedSizes(what: string, res: Response, linkedSize: string | null): SizeClaim[] {
    const encoding = res.headers.get('content-encoding');
    const claims: Array<[string, string | null]> = [
      ['Content-Length', encoding && encoding !== 'identity' ? null : res.headers.get('content-length')],
      ['X-Linked-Size', linkedSize],
    ];
    const sizes: SizeClaim[] = [];
    for (const [source, value] of claims) {
      if (value === null) continue;
      const bytes = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
      if (Number.isSafeInteger(bytes)) sizes.push({ source, bytes });
      else this.log.debug(`${what}: ignoring ${source} ${JSON.stringify(value)} (not a byte count)`);
    }
    if (sizes.length === 2 && sizes[0]!.bytes !== sizes[1]!.bytes) {
      throw new TopoprobeError(
        `${what}: the server's sizes disagree: ${sizes.map((c) => `${c.source} ${c.bytes}`).join(', ')}; ` +
          'nothing was downloaded or stored in the cache. Try again later; if it persists, a proxy or mirror (HF_ENDPOINT) is at fault.',
      );
    }
    return sizes;
  }

  /**
   * GET with redirects followed by hand, to read the hub's own headers (X-Repo-Commit,
   * X-Linked-Etag, X-Linked-Size) on the redirect to the LFS storage, which an automatic redirect
   * would hide. The token is not sent to another origin. When a redirect names (by X-Linked-Etag) a
   * blob that `haveBlob` says is usable, it is not followed and `cachedBlob` names that blob. Each
   * request is given up on when no response comes within the timeout; the returned `watchdog` is the
   * final response's, for its body.
   */
  private async get(
    url: string,
    file: string,
    haveBlob: (etag: string, size: number | undefined) => boolean,
  ): Promise<{ res: Response; finalUrl: string; watchdog: Watchdog; commit?: string; linkedEtag?: string; linkedSize: string | null; cachedBlob?: string }> {
    let current = url;
    let commit: string | undefined;
    let linkedEtag: string | undefined;
    let linkedSize: string | null = null;
    let sendToken = this.opts.token !== undefined && this.opts.token !== '';
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      // identity: Content-Length is then the size of the file itself, as huggingface_hub asks too.
      const headers: Record<string, string> = { 'user-agent': 'topoprobe (huggingface_hub-compatible cache)', 'accept-encoding': 'identity' };
      if (sendToken) headers.authorization = `Bearer ${this.opts.token}`;
      const watchdog = new Watchdog(this.opts.timeoutSeconds);
      let res: Response;
      try {
        watchdog.arm();
        res = await watchdog.race(this.opts.fetchImpl(current, { headers, redirect: 'manual', signal: watchdog.signal }));
      } catch (err) {
        if (watchdog.fired) {
          throw new TopoprobeError(
            `${this.source(file, url, current)}: no response within ${this.opts.timeoutSeconds} s; nothing was stored in the cache. ${this.timeoutHint()}`,
            { cause: err },
          );
        }
        const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
        throw new TopoprobeError(`${this.source(file, url, current)}: request failed (${cause}). Check the network, or set HF_HUB_OFFLINE=1 to use only the local cache.`, {
          cause: err,
        });
      } finally {
        watchdog.pause();
      }
      commit ??= res.headers.get('x-repo-commit') ?? undefined;
      linkedEtag ??= res.headers.get('x-linked-etag') ?? undefined;
      linkedSize ??= res.headers.get('x-linked-size');
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel().catch(() => undefined);
        const linked = normalizeEtag(linkedEtag);
        const size = linkedSize !== null && /^\s*\d+\s*$/.test(linkedSize) ? Number(linkedSize) : undefined;
        if (linked !== undefined && haveBlob(linked, size)) return { res, finalUrl: current, watchdog, commit, linkedEtag, linkedSize, cachedBlob: linked };
        const next = new URL(location, current);
        if (next.origin !== new URL(current).origin) sendToken = false;
        current = next.href;
        continue;
      }
      return { res, finalUrl: current, watchdog, commit, linkedEtag, linkedSize };
    }
    throw new TopoprobeError(`${url}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** A file and where it came from, for messages: the hub URL, and the origin it redirected to (whose URLs are long and signed). */
  private source(file: string, url: string, finalUrl: string): string {
    return `${this.repoId}/${file} (${url}${finalUrl !== url ? `, redirected to ${new URL(finalUrl).origin}` : ''})`;
  }

  private timeoutHint(): string {
    const setting = this.opts.timeoutSetting === HUB_TIMEOUT_ENV ? `set ${HUB_TIMEOUT_ENV} to more seconds` : `raise ${this.opts.timeoutSetting}`;
    return `Check the network; for a slow connection or server, ${setting} (now ${this.opts.timeoutSeconds}, default ${DEFAULT_HUB_TIMEOUT_SECONDS}).`;
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
   * Streams a response body to `blobs/{…}.incomplete`, verifies it, and renames it to `blobs/{etag}`
   * (or its sha256 when the server sent no usable ETag). Verified: the byte count against every size
   * the server stated, and the content against its name: the sha256 for a 64-hex ETag (LFS files),
   * the git blob sha1 (or, as some mirrors send, the plain sha1) for a 40-hex one. A body that stalls
   * for the timeout is given up on. On any failure the partial file is removed, so nothing
   * unverified ever has a blob's name.
   */
  private async saveBody(
    what: string,
    file: string,
    res: Response,
    watchdog: Watchdog,
    blobs: string,
    etag: string | undefined,
    sizes: SizeClaim[],
  ): Promise<string> {
    mkdirSync(blobs, { recursive: true });
    const total = sizes[0]?.bytes;
    const temp = join(blobs, `${etag ?? 'download'}.${process.pid}-${randomBytes(4).toString('hex')}.incomplete`);
    const hash = createHash('sha256');
    let received = 0;
    this.log.info(`downloading ${this.repoId}/${file}${total !== undefined ? ` (${(total / 1e6).toFixed(1)} MB)` : ''}`);
    try {
      const handle = await open(temp, 'w');
      try {
        this.opts.onProgress?.(file, 0, total);
        const reader = res.body?.getReader();
        let done = reader === undefined;
        try {
          while (!done) {
            watchdog.arm();
            const next = await watchdog.race(reader!.read());
            watchdog.pause();
            if (next.done) done = true;
            else {
              await handle.write(next.value);
              hash.update(next.value);
              received += next.value.byteLength;
              this.opts.onProgress?.(file, received, total);
            }
          }
        } finally {
          watchdog.pause();
          if (!done) void reader!.cancel().catch(() => undefined);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      for (const { source, bytes } of sizes) {
        if (received !== bytes) {
          throw new TopoprobeError(
            `${what}: download incomplete: received ${received} of ${bytes} bytes (expected by ${source}); nothing was stored in the cache. ` +
              'Try again; if it persists, the server or a proxy between is cutting the file short.',
          );
        }
      }
      const sha256 = hash.digest('hex');
      if (etag !== undefined) await this.verifyContent(what, temp, etag, sha256, received);
      const blob = join(blobs, etag ?? sha256);
      renameSync(temp, blob);
      return blob;
    } catch (err) {
      rmSync(temp, { force: true });
      if (err instanceof TopoprobeError) throw err;
      if (watchdog.fired) {
        throw new TopoprobeError(
          `${what}: the download stalled: no data for ${this.opts.timeoutSeconds} s after ${received}${total !== undefined ? ` of ${total}` : ''} bytes; ` +
            `nothing was stored in the cache. ${this.timeoutHint()}`,
          { cause: err },
        );
      }
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new TopoprobeError(`${what}: download failed after ${received}${total !== undefined ? ` of ${total}` : ''} bytes (${cause}); nothing was stored in the cache`, {
        cause: err,
      });
    }
  }

  /** Checks a downloaded file against the hash its ETag names (see saveBody); other ETags are not hashes and are not checked. */
  private async verifyContent(what: string, path: string, etag: string, sha256: string, size: number): Promise<void> {
    const expected = etag.toLowerCase();
    let got: string;
    let kind: string;
    if (SHA256_HEX.test(expected)) {
      if (sha256 === expected) return;
      [got, kind] = [sha256, 'sha256'];
    } else if (SHA1_HEX.test(expected)) {
      const git = createHash('sha1').update(`blob ${size}\0`);
      const plain = createHash('sha1');
      for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
        git.update(chunk);
        plain.update(chunk);
      }
      const gitSha1 = git.digest('hex');
      if (gitSha1 === expected || plain.digest('hex') === expected) return;
      [got, kind] = [gitSha1, 'git blob sha1'];
    } else {
      this.log.debug(`${what}: ETag ${etag} is not a content hash; only the size was checked`);
      return;
    }
    throw new TopoprobeError(
      `${what}: the content does not match its ETag: expected ${kind} ${expected}, got ${got} (${size} bytes); nothing was stored in the cache. ` +
        'Try again; if it persists, the server or a proxy between is altering the file or cutting it short.',
    );
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
