import { downloadFileToCacheDir, snapshotDownload } from '@huggingface/hub';
import { execSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeHub, localFetch, scratchCaches, COMMIT, OLD_COMMIT, sha256, gitSha1 } from './fakehub.mjs';

const hub = new FakeHub();
await hub.start();
const weights = randomBytes(3000);
const files = new Map([
  ['config.json', Buffer.from(JSON.stringify({ model_type: 'bert', hidden_size: 4 }))],
  ['model.safetensors', weights],
  ['vocab.txt', Buffer.from('[PAD]\n[UNK]\nthe\n')],
]);
hub.repos.set('google-bert/tiny-bert', files);
hub.repos.set('tiny-bert', files);
const { scratch, fresh } = scratchCaches('hubtry-');
const tree = (dir) => (existsSync(dir) ? execSync(`cd ${dir} && find . -printf '%y %s %p%l\\n' | sed 's/\\(symlink\\)//' | awk '{ if ($1=="l") { print } else { print } }' | sort -k3`, { encoding: 'utf8' }) : '(no dir)\n');
const treeL = (dir) => (existsSync(dir) ? execSync(`cd ${dir} && find . \\( -type l -printf 'l %p -> %l\\n' \\) -o \\( -type f -printf 'f %s %p\\n' \\) -o \\( -type d -printf 'd %p\\n' \\) | sort -k2`, { encoding: 'utf8' }) : '(no dir)\n');
const showReqs = () => hub.requests.map((r) => `  ${r.server} ${r.method} ${r.path}${r.range ? ` [Range ${r.range}]` : ''}${r.authorization ? ` [auth ${r.authorization}]` : ''}${r.accept ? ` [accept ${r.accept}]` : ''}${r.body ? ` body=${r.body}` : ''}`).join('\n');
const withTimeout = (p, ms) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`(experiment) still pending after ${ms} ms`)), ms))]);

async function kase(title, fn) {
  hub.requests.length = 0; hub.faults.clear(); hub.honourRange = true; hub.lastCommitOf.clear();
  console.log(`\n===== ${title}`);
  try { console.log('result:', await fn()); } catch (e) { console.log('error:', e?.constructor?.name, e?.message, e?.statusCode ? `status=${e.statusCode}` : ''); }
  console.log('requests:\n' + showReqs());
  hub.faults.clear(); hub.honourRange = true;
}
const base = (cacheDir, extra = {}) => ({ repo: 'google-bert/tiny-bert', hubUrl: hub.hubUrl, cacheDir, fetch: localFetch, ...extra });

// A. normal download of a regular and an LFS file, with a token; lastCommit of one file differs from head
let c = fresh();
await kase('A. normal: config.json + model.safetensors at main, token hf_secret, lastCommit(config.json)=OLD_COMMIT', async () => {
  hub.lastCommitOf.set('config.json', OLD_COMMIT);
  const a = await downloadFileToCacheDir(base(c, { path: 'config.json', accessToken: 'hf_secret' }));
  const b = await downloadFileToCacheDir(base(c, { path: 'model.safetensors', accessToken: 'hf_secret' }));
  return [a, b];
});
console.log(treeL(c));
console.log('expected blob names: config', gitSha1(files.get('config.json')), 'weights', sha256(weights));

// A2. same cache, second call at main: any requests?
await kase('A2. second call at main, same cache (cached)', () => downloadFileToCacheDir(base(c, { path: 'model.safetensors' })));
await kase('A3. second call at commit hash, same cache (cached)', () => downloadFileToCacheDir(base(c, { path: 'model.safetensors', revision: COMMIT })));
await kase('A4. HF_HUB_OFFLINE=1, at main, cached', async () => { process.env.HF_HUB_OFFLINE = '1'; try { return await downloadFileToCacheDir(base(c, { path: 'model.safetensors' })); } finally { delete process.env.HF_HUB_OFFLINE; } });

// B. server ignores Range (as topoprobe's current fake hub does)
await kase('B. server ignores Range (200 full body, no Content-Range)', () => { hub.honourRange = false; return downloadFileToCacheDir(base(fresh(), { path: 'config.json' })); });

// C. truncated LFS body with Content-Length, connection destroyed
c = fresh();
await kase('C. truncate (Content-Length, half body, connection destroyed) on model.safetensors', () => { hub.faults.set('model.safetensors', 'truncate'); return downloadFileToCacheDir(base(c, { path: 'model.safetensors' })); });
console.log(treeL(c));
await kase('C2. retry after C, no fault', () => downloadFileToCacheDir(base(c, { path: 'model.safetensors' })));
console.log(treeL(c));

// D. clean close without Content-Length after half the body
c = fresh();
await kase('D. truncate-unframed (no Content-Length, half body, clean close) on model.safetensors', () => { hub.faults.set('model.safetensors', 'truncate-unframed'); return downloadFileToCacheDir(base(c, { path: 'model.safetensors' })); });
console.log(treeL(c));
const d2 = fresh();
await kase('D2. truncate-unframed on config.json (git-sha1 file)', () => { hub.faults.set('config.json', 'truncate-unframed'); return downloadFileToCacheDir(base(d2, { path: 'config.json' })); });
console.log(treeL(d2));

// E. corrupt body (right length, one byte changed): sha256 != lfs oid
c = fresh();
await kase('E. corrupt (sha256 differs from the LFS oid) on model.safetensors', () => { hub.faults.set('model.safetensors', 'corrupt'); return downloadFileToCacheDir(base(c, { path: 'model.safetensors' })); });
console.log(treeL(c));
console.log('blob sha256 now:', execSync(`sha256sum ${c}/models--google-bert--tiny-bert/blobs/${sha256(weights)} 2>&1 || true`, { encoding: 'utf8' }).trim(), 'name:', sha256(weights));

// F. custom fetch returns a short body with a larger Content-Length header (topoprobe's test "body shorter than its Content-Length")
c = fresh();
await kase('F. Response with content-length 3000 but 100 bytes (custom fetch) for the CDN GET', () => {
  const shortFetch = async (input, init) => {
    const res = await localFetch(input, init);
    if (!res.url.startsWith(hub.cdnUrl) || new Headers(init?.headers).has('range')) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    return new Response(body.subarray(0, 100), { status: 200, headers: { 'content-length': String(body.byteLength) } });
  };
  return downloadFileToCacheDir(base(c, { path: 'model.safetensors', fetch: shortFetch }));
});
console.log(treeL(c));

// G. stall after headers + half body: any timeout?
c = fresh();
await kase('G. stall (Content-Length, half body, then silence) — bounded at 3 s by the experiment', () => { hub.faults.set('model.safetensors', 'stall'); return withTimeout(downloadFileToCacheDir(base(c, { path: 'model.safetensors' })), 3000); });
console.log(treeL(c));

// H. a cached blob of the wrong size is reused?
c = fresh();
await downloadFileToCacheDir(base(c, { path: 'model.safetensors' }));
const blobPath = join(c, 'models--google-bert--tiny-bert', 'blobs', sha256(weights));
writeFileSync(blobPath, weights.subarray(0, 100));
execSync(`rm -r ${c}/models--google-bert--tiny-bert/snapshots`);
await kase('H. blob truncated to 100 bytes on disk, snapshots removed: downloaded again?', () => downloadFileToCacheDir(base(c, { path: 'model.safetensors' })));
console.log(treeL(c));

// I. HF_ENDPOINT without hubUrl; HF_TOKEN without accessToken
await kase('I. HF_ENDPOINT=<fake hub>, HF_TOKEN=hf_env, no hubUrl/accessToken', async () => {
  process.env.HF_ENDPOINT = hub.hubUrl; process.env.HF_TOKEN = 'hf_env';
  try { return await downloadFileToCacheDir({ repo: 'google-bert/tiny-bert', path: 'config.json', cacheDir: fresh(), fetch: localFetch }); }
  finally { delete process.env.HF_ENDPOINT; delete process.env.HF_TOKEN; }
});

// J. token without hf_ prefix
await kase('J. accessToken "api_org_x" (no hf_ prefix)', () => downloadFileToCacheDir(base(fresh(), { path: 'config.json', accessToken: 'api_org_x' })));

// K. cache dir from env
await kase('K. HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, no cacheDir', async () => {
  const out = [];
  for (const [k, v] of [['HF_HUB_CACHE', join(scratch, 'envcache')], ['HF_HOME', join(scratch, 'hfhome')], ['XDG_CACHE_HOME', join(scratch, 'xdg')], ['HF_HOME', '~/hfhome-tilde-test']]) {
    process.env[k] = v;
    const { getHFHubCachePath } = await import('@huggingface/hub');
    out.push(`${k}=${v} -> ${getHFHubCachePath()}`);
    delete process.env[k];
  }
  process.env.HF_HUB_CACHE = '';
  const { getHFHubCachePath } = await import('@huggingface/hub');
  out.push(`HF_HUB_CACHE="" -> ${JSON.stringify(getHFHubCachePath())}`);
  delete process.env.HF_HUB_CACHE;
  return out;
});

// L. unknown repo error
await kase('L. unknown repo org/no-such-model', () => downloadFileToCacheDir(base(fresh(), { repo: 'org/no-such-model', path: 'config.json' })));
await kase('L2. missing file (optional file absent): vocab2.txt', () => downloadFileToCacheDir(base(fresh(), { path: 'tokenizer.json' })));

// M. legacy id without org
c = fresh();
await kase('M. legacy id "tiny-bert"', () => downloadFileToCacheDir(base(c, { repo: 'tiny-bert', path: 'config.json' })));

// N. snapshotDownload, with a fault in one file: are refs written before everything is there?
c = fresh();
await kase('N. snapshotDownload main with model.safetensors truncated', () => { hub.faults.set('model.safetensors', 'truncate'); return snapshotDownload({ repo: 'google-bert/tiny-bert', hubUrl: hub.hubUrl, cacheDir: c, fetch: localFetch }); });
console.log(treeL(c));
console.log('refs/main:', existsSync(join(c, 'models--google-bert--tiny-bert/refs/main')) ? execSync(`cat ${c}/models--google-bert--tiny-bert/refs/main`, { encoding: 'utf8' }) : '(none)');
await kase('N2. snapshotDownload main again, no fault', () => snapshotDownload({ repo: 'google-bert/tiny-bert', hubUrl: hub.hubUrl, cacheDir: c, fetch: localFetch }));
console.log(treeL(c));
await kase('N3. snapshotDownload at commit, fully cached', () => snapshotDownload({ repo: 'google-bert/tiny-bert', revision: COMMIT, hubUrl: hub.hubUrl, cacheDir: c, fetch: localFetch }));

await hub.stop();
console.log('\nscratch:', scratch);
