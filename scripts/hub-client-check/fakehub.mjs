// A fake hub serving what @huggingface/hub 2.17.5 calls (paths-info, revision, tree, resolve with Range),
// plus a separate "CDN" origin for LFS files. Written for this experiment; ideas from topoprobe's test/fake-hub.ts.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fetch that refuses every host but this machine's loopback: the experiments never reach the network. */
export const localFetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== '127.0.0.1') throw new Error(`tried to reach ${url.href}`);
  return fetch(input, init);
};

/** A scratch folder and a function giving a fresh cache folder in it per call. */
export function scratchCaches(prefix) {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return { scratch, fresh: () => join(scratch, `cache-${n++}`) };
}

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';
export const OLD_COMMIT = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
export const sha256 = (b) => createHash('sha256').update(b).digest('hex');
export const gitSha1 = (b) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');
const isLfs = (f) => f.endsWith('.safetensors');

export class FakeHub {
  requests = [];
  repos = new Map();
  faults = new Map(); // file -> 'truncate' | 'truncate-unframed' | 'corrupt' | 'stall'
  honourRange = true;
  lastCommitOf = new Map(); // file -> commit id reported as lastCommit in paths-info

  async start() {
    this.hub = createServer((q, s) => this.serveHub(q, s));
    this.cdn = createServer((q, s) => this.serveCdn(q, s));
    this.hubUrl = await listen(this.hub);
    this.cdnUrl = await listen(this.cdn);
  }
  async stop() {
    for (const s of [this.hub, this.cdn]) { s.closeAllConnections(); await new Promise((d) => s.close(d)); }
  }
  record(server, req, body) {
    this.requests.push({ server, method: req.method, path: req.url, range: req.headers.range, accept: req.headers.accept,
      authorization: req.headers.authorization, body });
  }
  serveHub(req, res) {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => this.serveHub2(req, res, body));
  }
  info(repoId, file, content) {
    const e = { type: 'file', path: file, oid: isLfs(file) ? gitSha1(Buffer.from('lfs pointer')) : gitSha1(content), size: content.byteLength,
      lastCommit: { id: this.lastCommitOf.get(file) ?? COMMIT, title: 't', date: '2024-01-01T00:00:00Z' } };
    if (isLfs(file)) e.lfs = { oid: sha256(content), size: content.byteLength, pointerSize: 134 };
    return e;
  }
  serveHub2(req, res, body) {
    this.record('hub', req, body || undefined);
    const url = new URL(req.url, this.hubUrl);
    let m;
    if ((m = /^\/api\/models\/(.+?)\/paths-info\/([^/]+)$/.exec(url.pathname)) && req.method === 'POST') {
      const repo = this.repos.get(m[1]);
      if (!repo) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound', 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
      const { paths } = JSON.parse(body);
      const out = paths.filter((p) => repo.has(p)).map((p) => this.info(m[1], p, repo.get(p)));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    }
    if ((m = /^\/api\/models\/(.+?)\/revision\/([^/]+)$/.exec(url.pathname))) {
      if (!this.repos.get(m[1])) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ _id: 'x', id: m[1], sha: COMMIT, lastModified: '2024-01-01T00:00:00Z' }));
    }
    if ((m = /^\/api\/models\/(.+?)\/tree\/([^/]+)$/.exec(url.pathname))) {
      const repo = this.repos.get(m[1]);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([...repo].map(([f, c]) => this.info(m[1], f, c))));
    }
    m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return void res.writeHead(400).end();
    const [, repoId, , file] = m;
    const repo = this.repos.get(repoId);
    if (!repo) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
    const content = repo.get(decodeURIComponent(file));
    if (!content) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': COMMIT }).end('Entry not found');
    if (isLfs(file)) {
      const hash = sha256(content);
      return void res.writeHead(302, { location: `${this.cdnUrl}/repos/${hash}?filename=${encodeURIComponent(file)}`, 'x-linked-etag': `"${hash}"`,
        'x-linked-size': String(content.byteLength), 'x-repo-commit': COMMIT, etag: `"${gitSha1(Buffer.from('lfs pointer'))}"` }).end();
    }
    this.send(req, res, { etag: `"${gitSha1(content)}"`, 'x-repo-commit': COMMIT, 'content-type': 'text/plain' }, content, this.faults.get(file));
  }
  serveCdn(req, res) {
    this.record('cdn', req);
    const url = new URL(req.url, this.cdnUrl);
    const hash = url.pathname.split('/').pop();
    const file = url.searchParams.get('filename');
    const content = [...this.repos.values()].flatMap((r) => [...r.values()]).find((c) => sha256(c) === hash);
    if (!content) return void res.writeHead(404).end();
    this.send(req, res, { etag: `"cdn-${hash.slice(0, 12)}"`, 'content-type': 'application/octet-stream' }, content, this.faults.get(file));
  }
  send(req, res, headers, content, fault) {
    const range = req.headers.range;
    if (range && this.honourRange) {
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(range);
      const part = content.subarray(+a, +b + 1);
      return void res.writeHead(206, { ...headers, 'content-range': `bytes ${a}-${b}/${content.byteLength}`, 'content-length': String(part.byteLength) }).end(part);
    }
    const half = content.subarray(0, content.byteLength >> 1);
    const sized = { ...headers, 'content-length': String(content.byteLength) };
    switch (fault) {
      case 'truncate': res.writeHead(200, sized); return void res.write(half, () => setTimeout(() => res.socket?.destroy(), 20));
      case 'truncate-unframed': res.useChunkedEncodingByDefault = false; res.writeHead(200, { ...headers, connection: 'close' }); return void res.end(half);
      case 'corrupt': { const c = Buffer.from(content); c[c.byteLength >> 1] ^= 0xff; res.writeHead(200, sized); return void res.end(c); }
      case 'stall': res.writeHead(200, sized); return void res.write(half);
      default: res.writeHead(200, sized); res.end(content);
    }
  }
}
function listen(server) {
  return new Promise((d) => server.listen(0, '127.0.0.1', () => d(`http://127.0.0.1:${server.address().port}`)));
}
