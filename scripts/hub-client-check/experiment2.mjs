import { downloadFileToCacheDir, pathsInfo } from '@huggingface/hub';
import { execSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHub, localFetch, scratchCaches, COMMIT, sha256 } from './fakehub.mjs';

const hub = new FakeHub();
await hub.start();
const weights = randomBytes(3000);
const files = new Map([['config.json', Buffer.from('{"model_type":"bert"}')], ['model.safetensors', weights]]);
hub.repos.set('google-bert/tiny-bert', files);
const { scratch, fresh } = scratchCaches('hubtry2-');
const treeL = (dir) => (existsSync(dir) ? execSync(`cd ${dir} && find . \\( -type l -printf 'l %p -> %l\\n' \\) -o \\( -type f -printf 'f %s %p\\n' \\) | sort -k2`, { encoding: 'utf8' }) : '(no dir)\n');

// 1. names taken from the paths-info JSON unchecked?
{
  const c = join(scratch, 'trav', 'cache');
  const orig = hub.info.bind(hub);
  hub.info = (repoId, file, content) => {
    const e = orig(repoId, file, content);
    if (e.lfs) e.lfs.oid = '../../escaped-weights';
    e.lastCommit.id = '../../../escaped-commit';
    return e;
  };
  try { console.log('1. result', await downloadFileToCacheDir({ repo: 'google-bert/tiny-bert', path: 'model.safetensors', hubUrl: hub.hubUrl, cacheDir: c, fetch: localFetch })); }
  catch (e) { console.log('1. error', e.message); }
  hub.info = orig;
  console.log(execSync(`cd ${join(scratch, 'trav')} && find . \\( -type l -printf 'l %p -> %l\\n' \\) -o \\( -type f -printf 'f %s %p\\n' \\) | sort -k2`, { encoding: 'utf8' }));
}

/**
 * 2. Our checks added from outside, through the `fetch` parameter: for the full-body GET (no Range header) the
 * wrapper re-streams the body through a TransformStream that counts bytes (progress), re-arms a stall timer per
 * chunk, and at the end compares byte count with the size and sha256 with the hash expected from paths-info
 * (given to the wrapper by the caller). An error in the stream makes the library's pipeline reject before
 * rename(); the caller then removes blobs/{etag}.incomplete.
 */
function checkingFetch({ expectSize, expectSha256, timeoutMs, onProgress }) {
  return async (input, init = {}) => {
    const ctrl = new AbortController();
    let timer = setTimeout(() => ctrl.abort(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    const res = await localFetch(input, { ...init, signal: ctrl.signal });
    clearTimeout(timer);
    if (new Headers(init.headers).has('range') || String(input).includes('/api/') || !res.ok || !res.body) return res;
    const hash = createHash('sha256');
    let received = 0;
    const arm = (c) => { clearTimeout(timer); timer = setTimeout(() => { ctrl.abort(); c.error(new Error(`stalled: no data for ${timeoutMs} ms after ${received} bytes`)); }, timeoutMs); };
    const body = res.body.pipeThrough(new TransformStream({
      start(c) { arm(c); },
      transform(chunk, c) { arm(c); hash.update(chunk); received += chunk.byteLength; onProgress?.(received, expectSize); c.enqueue(chunk); },
      flush(c) {
        clearTimeout(timer);
        if (received !== expectSize) c.error(new Error(`incomplete: received ${received} of ${expectSize}`));
        else if (expectSha256 && hash.digest('hex') !== expectSha256) c.error(new Error('sha256 mismatch'));
      },
    }));
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

for (const fault of [undefined, 'truncate', 'truncate-unframed', 'corrupt', 'stall']) {
  const c = fresh();
  hub.faults.clear();
  if (fault) hub.faults.set('model.safetensors', fault);
  hub.requests.length = 0;
  const [info] = await pathsInfo({ repo: 'google-bert/tiny-bert', paths: ['model.safetensors'], revision: COMMIT, hubUrl: hub.hubUrl, fetch: localFetch });
  const progress = [];
  const t0 = Date.now();
  try {
    const p = await downloadFileToCacheDir({ repo: 'google-bert/tiny-bert', path: 'model.safetensors', revision: COMMIT, hubUrl: hub.hubUrl, cacheDir: c,
      fetch: checkingFetch({ expectSize: info.lfs.size, expectSha256: info.lfs.oid, timeoutMs: 500, onProgress: (r, t) => progress.push(r) }) });
    console.log(`2. fault=${fault}: ok ${p}; progress ${progress.join(',')}`);
  } catch (e) {
    console.log(`2. fault=${fault}: error after ${Date.now() - t0} ms: ${e?.constructor?.name}: ${e?.message ?? e}`);
  }
  console.log(treeL(c));
}
hub.faults.clear();
await hub.stop();
