import { expect } from 'chai';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bertParameterShapes, parseBertConfig } from '../src/model/config.js';
import { loadCheckpoint, saveCheckpoint, type WeightMap } from '../src/model/checkpoint.js';
import { DEFAULT_HUB_TIMEOUT_SECONDS, hubCacheDir, hubTimeoutSeconds, resolveModel, type ResolveModelOptions } from '../src/model/hub.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { expectRejects } from './helpers.js';
import { COMMIT, FakeHub, localFetch, sha256, gitSha1 } from './fake-hub.js';

const TINY = { model_type: 'bert', vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8 };

function randomWeights(seed: number): WeightMap {
  const config = parseBertConfig(TINY);
  const weights: WeightMap = new Map();
  let x = seed;
  for (const [name, shape] of bertParameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5);
    weights.set(name, { shape, data });
  }
  return weights;
}

/** The files of a tiny BERT repo (config, single-file weights, WordPiece tokenizer files). */
function tinyRepo(scratch: string): Map<string, Buffer> {
  const dir = mkdtempSync(join(scratch, 'repo-'));
  saveCheckpoint(dir, parseBertConfig(TINY), randomWeights(3));
  return new Map([
    ['config.json', readFileSync(join(dir, 'config.json'))],
    ['model.safetensors', readFileSync(join(dir, 'model.safetensors'))],
    ['vocab.txt', Buffer.from(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'a'].join('\n') + '\n')],
    ['tokenizer_config.json', Buffer.from(JSON.stringify({ do_lower_case: true }))],
  ]);
}

/** The same model with its weights in two shards and an index. */
function shardedRepo(scratch: string): Map<string, Buffer> {
  const dir = mkdtempSync(join(scratch, 'sharded-'));
  const weights = [...randomWeights(5)];
  const weightMap: Record<string, string> = {};
  const halves = [weights.slice(0, 8), weights.slice(8)];
  const files = new Map<string, Buffer>([['config.json', Buffer.from(JSON.stringify(TINY))]]);
  halves.forEach((half, i) => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, name), half.map(([n, t]) => ({ name: n, shape: t.shape, data: t.data })), { metadata: { format: 'pt' } });
    files.set(name, readFileSync(join(dir, name)));
    for (const [n] of half) weightMap[n] = name;
  });
  files.set('model.safetensors.index.json', Buffer.from(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })));
  files.set('tokenizer.json', Buffer.from('{"version":"1.0"}'));
  return files;
}

/** Runs `fn` with environment variables set (undefined: unset), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Everything under a folder, relative, with `/` separators. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => p.split('\\').join('/')).sort();
}

const NO_OFFLINE = { HF_HUB_OFFLINE: undefined, TRANSFORMERS_OFFLINE: undefined };

describe('hub', () => {
  let scratch: string;
  let hub: FakeHub;
  let n = 0;
  const freshCache = (): string => join(scratch, `cache-${n++}`);
  const options = (cacheDir: string, extra: ResolveModelOptions = {}): ResolveModelOptions => ({ endpoint: hub.hubUrl, cacheDir, fetchImpl: localFetch, offline: false, ...extra });

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-hub-'));
    hub = new FakeHub();
    await hub.start();
    hub.repos.set('google-bert/tiny-bert', tinyRepo(scratch));
    hub.repos.set('tiny-bert', tinyRepo(scratch));
    hub.repos.set('org/sharded-bert', shardedRepo(scratch));
    const legacy = tinyRepo(scratch);
    legacy.delete('model.safetensors');
    legacy.set('pytorch_model.bin', Buffer.from('pickle'));
    hub.repos.set('org/pytorch-only', legacy);
    const untokenized = tinyRepo(scratch);
    untokenized.delete('vocab.txt');
    hub.repos.set('org/no-tokenizer', untokenized);
  });
  after(async () => {
    await hub.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  beforeEach(() => {
    hub.requests.length = 0;
    hub.faults.clear();
    hub.extraHeaders.clear();
    hub.unknownRepoStatus = 404;
  });

  it('downloads into the huggingface_hub cache layout: blobs, symlinked snapshot, refs/main', async () => {
    const cache = freshCache();
    const progress: Array<[string, number, number | undefined]> = [];
    const snapshot = await resolveModel('google-bert/tiny-bert', options(cache, { onProgress: (f, r, t) => progress.push([f, r, t]) }));
    const repoDir = join(cache, 'models--google-bert--tiny-bert');
    expect(snapshot).to.equal(join(repoDir, 'snapshots', COMMIT));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).to.equal(COMMIT);

    const files = hub.repos.get('google-bert/tiny-bert')!;
    expect(tree(snapshot)).to.deep.equal(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
    for (const [name, content] of files) {
      const link = join(snapshot, name);
      expect(lstatSync(link).isSymbolicLink(), name).to.equal(true);
      // LFS files are named by X-Linked-Etag (their sha256), not the CDN's ETag; others by their ETag.
      const etag = name.endsWith('.safetensors') ? sha256(content) : gitSha1(content);
      expect(readlinkSync(link)).to.equal(`../../blobs/${etag}`);
      expect(readFileSync(link).equals(content), name).to.equal(true);
    }
    expect(tree(join(repoDir, 'blobs'))).to.deep.equal([...files.entries()].map(([f, c]) => (f.endsWith('.safetensors') ? sha256(c) : gitSha1(c))).sort());

    // config.json at the branch, the rest pinned to the commit it reported; the weights via one redirect.
    const hubPaths = hub.requests.filter((r) => r.server === 'hub').map((r) => r.path);
    expect(hubPaths[0]).to.equal('/google-bert/tiny-bert/resolve/main/config.json');
    expect(hubPaths).to.include(`/google-bert/tiny-bert/resolve/${COMMIT}/model.safetensors`);
    expect(hub.count('cdn')).to.equal(1);

    const weightsSize = files.get('model.safetensors')!.byteLength;
    const weightProgress = progress.filter(([f]) => f === 'model.safetensors');
    expect(weightProgress.at(-1)).to.deep.equal(['model.safetensors', weightsSize, weightsSize]);

    const loaded = loadCheckpoint(snapshot);
    expect(loaded.config.hidden_size).to.equal(4);
    expect(loaded.weights.get('pooler.dense.bias')!.data).to.deep.equal(randomWeights(3).get('pooler.dense.bias')!.data);
  });

  it('a second resolve uses the cache without any request, online or offline', async () => {
    const cache = freshCache();
    const first = await resolveModel('google-bert/tiny-bert', options(cache));
    const before = hub.count();
    expect(await resolveModel('google-bert/tiny-bert', options(cache))).to.equal(first);
    expect(await resolveModel('google-bert/tiny-bert', options(cache, { offline: true }))).to.equal(first);
    expect(await resolveModel('google-bert/tiny-bert', options(cache, { revision: COMMIT, offline: true }))).to.equal(first);
    expect(hub.count()).to.equal(before);
  });

  it('does not download a blob again when the cache already has it', async () => {
    const cache = freshCache();
    await resolveModel('google-bert/tiny-bert', options(cache));
    const repoDir = join(cache, 'models--google-bert--tiny-bert');
    rmSync(join(repoDir, 'snapshots'), { recursive: true });
    rmSync(join(repoDir, 'refs'), { recursive: true });
    hub.requests.length = 0;
    const snapshot = await resolveModel('google-bert/tiny-bert', options(cache));
    expect(hub.count('hub')).to.be.greaterThan(0);
    expect(hub.count('cdn')).to.equal(0); // the redirect named a blob already present
    expect(lstatSync(join(snapshot, 'model.safetensors')).isSymbolicLink()).to.equal(true);
  });

  it('honours HF_ENDPOINT and HF_HUB_CACHE, and accepts a legacy id without an org', async () => {
    const cache = freshCache();
    await withEnv({ HF_ENDPOINT: hub.hubUrl, HF_HUB_CACHE: cache, ...NO_OFFLINE }, async () => {
      const snapshot = await resolveModel('tiny-bert', { fetchImpl: localFetch });
      expect(snapshot).to.equal(join(cache, 'models--tiny-bert', 'snapshots', COMMIT));
      expect(hub.requests[0]!.path).to.equal('/tiny-bert/resolve/main/config.json');
    });
  });

  it('sends the token to the hub but not to the storage origin it redirects to', async () => {
    await resolveModel('google-bert/tiny-bert', options(freshCache(), { token: 'hf_secret' }));
    for (const r of hub.requests) expect(r.authorization, `${r.server} ${r.path}`).to.equal(r.server === 'hub' ? 'Bearer hf_secret' : undefined);
  });

  it('offline, a repo missing from the cache is an error that says what is missing and where it looked', async () => {
    const cache = freshCache();
    await expectRejects(resolveModel('google-bert/tiny-bert', options(cache, { offline: true })), 'google-bert/tiny-bert', 'offline', join(cache, 'models--google-bert--tiny-bert', 'refs', 'main'));
    await withEnv({ HF_HUB_OFFLINE: '1' }, () =>
      expectRejects(resolveModel('google-bert/tiny-bert', { endpoint: hub.hubUrl, cacheDir: cache, fetchImpl: localFetch }), 'HF_HUB_OFFLINE'),
    );
    expect(hub.count()).to.equal(0);
    // a snapshot lacking the weights is not used either
    await resolveModel('google-bert/tiny-bert', options(cache));
    const online = hub.count();
    rmSync(join(cache, 'models--google-bert--tiny-bert', 'snapshots', COMMIT, 'model.safetensors'));
    await expectRejects(resolveModel('google-bert/tiny-bert', options(cache, { offline: true })), 'model.safetensors', join(cache, 'models--google-bert--tiny-bert', 'snapshots', COMMIT));
    expect(hub.count()).to.equal(online);
  });

  it('a repo that does not exist: the URL, the status and a hint about the id (404) or HF_TOKEN (401)', async () => {
    const url = `${hub.hubUrl}/org/no-such-model/resolve/main/config.json`;
    await expectRejects(resolveModel('org/no-such-model', options(freshCache())), url, '404', 'repo id "org/no-such-model" may be wrong');
    hub.unknownRepoStatus = 401;
    await expectRejects(resolveModel('org/no-such-model', options(freshCache())), url, '401', 'HF_TOKEN');
  });

  it('an interrupted download leaves nothing in blobs or snapshots, and a retry succeeds', async () => {
    const cache = freshCache();
    hub.faults.set('model.safetensors', 'truncate');
    const repoDir = join(cache, 'models--google-bert--tiny-bert');
    await expectRejects(resolveModel('google-bert/tiny-bert', options(cache)), `/google-bert/tiny-bert/resolve/${COMMIT}/model.safetensors`, 'download failed');
    const config = hub.repos.get('google-bert/tiny-bert')!.get('config.json')!;
    expect(tree(join(repoDir, 'blobs'))).to.deep.equal([gitSha1(config)]); // only the finished config.json
    expect(tree(join(repoDir, 'snapshots'))).to.deep.equal([COMMIT, `${COMMIT}/config.json`]);
    expect(existsSync(join(repoDir, 'refs', 'main'))).to.equal(false);

    hub.faults.clear();
    const snapshot = await resolveModel('google-bert/tiny-bert', options(cache));
    expect(existsSync(join(snapshot, 'model.safetensors'))).to.equal(true);
  });

  it('a body shorter than its Content-Length is rejected and removed', async () => {
    const cache = freshCache();
    const shortFetch: typeof fetch = async (input, init) => {
      const res = await localFetch(input, init);
      if (!String(input).startsWith(hub.cdnUrl)) return res;
      const body = new Uint8Array(await res.arrayBuffer());
      return new Response(body.subarray(0, 100), { status: 200, headers: { 'content-length': String(body.byteLength), etag: res.headers.get('etag') ?? '' } });
    };
    await expectRejects(resolveModel('google-bert/tiny-bert', options(cache, { fetchImpl: shortFetch })), 'incomplete', 'received 100 of');
    const blobs = tree(join(cache, 'models--google-bert--tiny-bert', 'blobs'));
    expect(blobs.filter((b) => b.endsWith('.incomplete'))).to.deep.equal([]);
    expect(blobs).to.have.length(1);
  });

  it('downloads a sharded repo: the index and every shard', async () => {
    const cache = freshCache();
    const snapshot = await resolveModel('org/sharded-bert', options(cache));
    expect(tree(snapshot)).to.deep.equal([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
    ]);
    for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
      expect(readlinkSync(join(snapshot, f))).to.equal(`../../blobs/${sha256(hub.repos.get('org/sharded-bert')!.get(f)!)}`);
    }
    expect(loadCheckpoint(snapshot).weights.size).to.equal(bertParameterShapes(parseBertConfig(TINY)).size);
    const before = hub.count();
    await resolveModel('org/sharded-bert', options(cache));
    expect(hub.count()).to.equal(before);
  });

  it('a repo without safetensors weights, or without a tokenizer, is an error saying so', async () => {
    const message = await expectRejects(resolveModel('org/pytorch-only', options(freshCache())), 'org/pytorch-only', 'no safetensors weights', 'safe_serialization=True');
    expect(message).not.to.include('--revision'); // no command has such a flag
    expect(message).to.include('snapshot_download("org/pytorch-only", revision="refs/pr/N")');
    await expectRejects(resolveModel('org/no-tokenizer', options(freshCache())), 'org/no-tokenizer', 'no tokenizer', 'vocab.txt');
  });

  it('local paths: a folder is used as is, a file or a missing path is an error; bad ids are named', async () => {
    const folder = mkdtempSync(join(scratch, 'local-'));
    expect(await resolveModel(folder, options(freshCache()))).to.equal(folder);
    const file = join(folder, 'config.json');
    writeFileSync(file, '{}');
    await expectRejects(resolveModel(file, options(freshCache())), file, 'is a file');
    await expectRejects(resolveModel('./no/such/folder', options(freshCache())), 'no/such/folder', 'not found');
    for (const bad of ['org/na me', 'a--b', '-start', 'x/', 'bert..large', 'org/model.git', 'org/ü']) {
      await expectRejects(resolveModel(bad, options(freshCache())), `"${bad}"`);
    }
    expect(hub.count()).to.equal(0);
  });

  it('hubCacheDir follows huggingface_hub: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/x/hub-cache', HF_HOME: '/y' })).to.equal('/x/hub-cache');
    expect(hubCacheDir({ HF_HOME: '/y', XDG_CACHE_HOME: '/z' })).to.equal('/y/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/z' })).to.equal('/z/huggingface/hub');
    expect(hubCacheDir({})).to.equal(join(homedir(), '.cache', 'huggingface', 'hub'));
    expect(hubCacheDir({ HF_HOME: '~/hf' })).to.equal(join(homedir(), 'hf', 'hub'));
  });

  describe('the cache is never poisoned', () => {
    const REPO = 'google-bert/tiny-bert';
    const repoDir = (cache: string): string => join(cache, 'models--google-bert--tiny-bert');
    const content = (file: string): Buffer => hub.repos.get(REPO)!.get(file)!;
    /** The blob name a file gets: the sha256 for LFS files, the git sha1 otherwise. */
    const blobName = (file: string): string => (file.endsWith('.safetensors') ? sha256(content(file)) : gitSha1(content(file)));
    const resolveUrl = (file: string, revision = COMMIT): string => `${hub.hubUrl}/${REPO}/resolve/${revision}/${file}`;

    /** After a failed download of `file`: no blob of that name, no temp file; then a good download puts the right bytes there. */
    async function expectCleanThenRetry(cache: string, file: string): Promise<void> {
      const blobs = tree(join(repoDir(cache), 'blobs'));
      expect(blobs, 'blobs after the failure').not.to.include(blobName(file));
      expect(blobs.filter((b) => b.includes('.incomplete')), 'temp files left').to.deep.equal([]);
      expect(existsSync(join(repoDir(cache), 'refs', 'main')), 'refs/main').to.equal(false);
      hub.faults.clear();
      hub.extraHeaders.clear();
      const snapshot = await resolveModel(REPO, options(cache));
      expect(readFileSync(join(repoDir(cache), 'blobs', blobName(file))).equals(content(file)), 'the retried blob').to.equal(true);
      expect(readFileSync(join(snapshot, file)).equals(content(file))).to.equal(true);
    }

    it('a 200 with no Content-Length whose body ends early (a clean close) is rejected: a regular file by its git sha1, an LFS file by X-Linked-Size', async () => {
      const cache = freshCache();
      hub.faults.set('config.json', 'truncate-unframed');
      const half = content('config.json').byteLength >> 1;
      await expectRejects(
        resolveModel(REPO, options(cache)),
        `${REPO}/config.json`,
        resolveUrl('config.json', 'main'),
        'does not match its ETag',
        `expected git blob sha1 ${gitSha1(content('config.json'))}`,
        `got ${gitSha1(content('config.json').subarray(0, half))} (${half} bytes)`,
        'nothing was stored',
      );
      await expectCleanThenRetry(cache, 'config.json');

      const cache2 = freshCache();
      hub.faults.set('model.safetensors', 'truncate-unframed');
      const size = content('model.safetensors').byteLength;
      await expectRejects(
        resolveModel(REPO, options(cache2)),
        `${REPO}/model.safetensors`,
        resolveUrl('model.safetensors'),
        `redirected to ${hub.cdnUrl}`,
        `received ${size >> 1} of ${size} bytes (expected by X-Linked-Size)`,
      );
      await expectCleanThenRetry(cache2, 'model.safetensors');
    });

    it('a complete body without Content-Length (close-delimited) is accepted', async () => {
      const cache = freshCache();
      hub.faults.set('config.json', 'unframed');
      hub.faults.set('model.safetensors', 'unframed');
      const snapshot = await resolveModel(REPO, options(cache));
      for (const file of ['config.json', 'model.safetensors']) expect(readFileSync(join(snapshot, file)).equals(content(file)), file).to.equal(true);
    });

    it('a body cut off before its end (connection closed early), chunked or with a Content-Length, is an error', async () => {
      for (const fault of ['truncate-chunked', 'truncate'] as const) {
        for (const file of ['config.json', 'model.safetensors']) {
          const cache = freshCache();
          hub.faults.set(file, fault);
          await expectRejects(resolveModel(REPO, options(cache)), `${REPO}/${file}`, 'download failed after', 'nothing was stored');
          await expectCleanThenRetry(cache, file);
        }
      }
    });

    it('a wrong X-Linked-Size: refused before downloading when Content-Length disagrees, after it when there is no Content-Length', async () => {
      const size = content('model.safetensors').byteLength;
      const cache = freshCache();
      hub.extraHeaders.set('model.safetensors', { 'x-linked-size': String(size + 1) });
      await expectRejects(resolveModel(REPO, options(cache)), `${REPO}/model.safetensors`, "sizes disagree", `Content-Length ${size}`, `X-Linked-Size ${size + 1}`);
      await expectCleanThenRetry(cache, 'model.safetensors');

      const cache2 = freshCache();
      hub.extraHeaders.set('model.safetensors', { 'x-linked-size': String(size - 1) });
      hub.faults.set('model.safetensors', 'unframed');
      await expectRejects(resolveModel(REPO, options(cache2)), `${REPO}/model.safetensors`, `received ${size} of ${size - 1} bytes (expected by X-Linked-Size)`);
      await expectCleanThenRetry(cache2, 'model.safetensors');
    });

    it('content that does not match its sha256 (LFS) or git sha1 ETag is rejected, expected and actual hash named', async () => {
      const cache = freshCache();
      hub.faults.set('model.safetensors', 'corrupt');
      const corrupt = Buffer.from(content('model.safetensors'));
      corrupt[corrupt.byteLength >> 1] ^= 0xff;
      await expectRejects(
        resolveModel(REPO, options(cache)),
        `${REPO}/model.safetensors`,
        resolveUrl('model.safetensors'),
        `expected sha256 ${sha256(content('model.safetensors'))}, got ${sha256(corrupt)}`,
      );
      await expectCleanThenRetry(cache, 'model.safetensors');

      // the hub names another sha256 than the content's: nothing is stored under either name
      const cache2 = freshCache();
      const wrong = 'f'.repeat(64);
      hub.extraHeaders.set('model.safetensors', { 'x-linked-etag': `"${wrong}"` });
      await expectRejects(resolveModel(REPO, options(cache2)), `expected sha256 ${wrong}, got ${sha256(content('model.safetensors'))}`);
      expect(tree(join(repoDir(cache2), 'blobs'))).not.to.include(wrong);
      await expectCleanThenRetry(cache2, 'model.safetensors');

      const cache3 = freshCache();
      hub.faults.set('vocab.txt', 'corrupt');
      await expectRejects(resolveModel(REPO, options(cache3)), `${REPO}/vocab.txt`, `expected git blob sha1 ${gitSha1(content('vocab.txt'))}`);
      await expectCleanThenRetry(cache3, 'vocab.txt');
    });

    it('a server that stalls after the headers is given up on after the timeout, naming the URL and the setting', async function () {
      this.timeout(5000);
      const cache = freshCache();
      hub.faults.set('model.safetensors', 'stall');
      const size = content('model.safetensors').byteLength;
      const started = Date.now();
      await expectRejects(
        resolveModel(REPO, options(cache, { timeoutSeconds: 0.3 })),
        `${REPO}/model.safetensors`,
        resolveUrl('model.safetensors'),
        'stalled',
        `no data for 0.3 s after ${size >> 1} of ${size} bytes`,
        'timeoutSeconds option',
      );
      expect(Date.now() - started).to.be.below(2000);
      await expectCleanThenRetry(cache, 'model.safetensors');
    });

    it('a server that never answers is given up on after TOPOPROBE_HUB_TIMEOUT seconds', async function () {
      this.timeout(5000);
      for (const file of ['config.json', 'model.safetensors']) {
        const cache = freshCache();
        hub.faults.set(file, 'no-answer');
        const started = Date.now();
        await withEnv({ TOPOPROBE_HUB_TIMEOUT: '0.3' }, () =>
          expectRejects(resolveModel(REPO, options(cache)), `${REPO}/${file}`, resolveUrl(file, file === 'config.json' ? 'main' : COMMIT), 'no response within 0.3 s', 'TOPOPROBE_HUB_TIMEOUT'),
        );
        expect(Date.now() - started).to.be.below(2000);
        await expectCleanThenRetry(cache, file);
      }
    });

    it('the timeout setting: TOPOPROBE_HUB_TIMEOUT in seconds, else the default; a bad value is an error naming it', async () => {
      expect(hubTimeoutSeconds({})).to.equal(DEFAULT_HUB_TIMEOUT_SECONDS);
      expect(hubTimeoutSeconds({ TOPOPROBE_HUB_TIMEOUT: '2.5' })).to.equal(2.5);
      for (const bad of ['abc', '0', '-1', 'Infinity']) {
        expect(() => hubTimeoutSeconds({ TOPOPROBE_HUB_TIMEOUT: bad }), bad).to.throw(`TOPOPROBE_HUB_TIMEOUT="${bad}"`);
      }
      await expectRejects(resolveModel(REPO, options(freshCache(), { timeoutSeconds: 0 })), 'timeoutSeconds 0', 'greater than 0');
      expect(hub.count()).to.equal(0);
    });

    it('a cached blob of the wrong size (left by an older version) is downloaded again, not used', async () => {
      const cache = freshCache();
      await resolveModel(REPO, options(cache));
      const blob = join(repoDir(cache), 'blobs', blobName('model.safetensors'));
      writeFileSync(blob, content('model.safetensors').subarray(0, 100));
      rmSync(join(repoDir(cache), 'refs'), { recursive: true });
      rmSync(join(repoDir(cache), 'snapshots'), { recursive: true });
      hub.requests.length = 0;
      const snapshot = await resolveModel(REPO, options(cache));
      expect(hub.count('cdn')).to.equal(1);
      expect(readFileSync(join(snapshot, 'model.safetensors')).equals(content('model.safetensors'))).to.equal(true);
    });

    it('path components in hub headers (ETag, X-Repo-Commit) are refused: nothing is written outside the repo folder', async () => {
      const cache = freshCache();
      hub.extraHeaders.set('config.json', { 'x-repo-commit': '../../../escaped-commit', etag: '"../../escaped-config"' });
      hub.extraHeaders.set('model.safetensors', { 'x-linked-etag': '"../../escaped-weights"' });
      const snapshot = await resolveModel(REPO, options(cache));
      expect(tree(scratch).filter((p) => p.includes('escaped'))).to.deep.equal([]);
      expect(snapshot).to.equal(join(repoDir(cache), 'snapshots', 'main'));
      // with no usable ETag, blobs are named by their sha256
      expect(readlinkSync(join(snapshot, 'config.json'))).to.equal(`../../blobs/${sha256(content('config.json'))}`);
      expect(readlinkSync(join(snapshot, 'model.safetensors'))).to.equal(`../../blobs/${sha256(content('model.safetensors'))}`);
    });
  });
});
