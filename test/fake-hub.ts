/** A fake Hugging Face hub on 127.0.0.1, shared by the hub and CLI tests (no test reaches the network). */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** The git blob hash the hub sends as ETag for regular (non-LFS) files. */
export const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

export interface Recorded {
  server: 'hub' | 'cdn';
  path: string;
  authorization?: string;
}

/**
 * A fake Hugging Face hub on 127.0.0.1 with the headers the real one sends: regular files answer 200
 * with a git-sha1 ETag and X-Repo-Commit; LFS files (*.safetensors) answer 302 to a separate "CDN"
 * origin with X-Linked-Etag (the sha256), X-Linked-Size and X-Repo-Commit, and the CDN answers with
 * its own, different ETag.
 */
export class FakeHub {
  readonly requests: Recorded[] = [];
  readonly repos = new Map<string, Map<string, Buffer>>();
  /** Files the CDN cuts off halfway (socket destroyed after half the body). */
  readonly truncate = new Set<string>();
  /** Answer unknown repos with 401 RepoNotFound (as the real hub does without a token) instead of 404. */
  unknownRepoStatus = 404;
  private hub!: Server;
  private cdn!: Server;
  hubUrl = '';
  cdnUrl = '';

  async start(): Promise<void> {
    this.hub = createServer((req, res) => this.serveHub(req, res));
    this.cdn = createServer((req, res) => this.serveCdn(req, res));
    this.hubUrl = await listen(this.hub);
    this.cdnUrl = await listen(this.cdn);
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((done) => s.close(() => done()));
    }
  }

  count(server?: 'hub' | 'cdn'): number {
    return this.requests.filter((r) => server === undefined || r.server === server).length;
  }

  private record(server: 'hub' | 'cdn', req: IncomingMessage): void {
    this.requests.push({ server, path: req.url ?? '', authorization: req.headers.authorization });
  }

  private serveHub(req: IncomingMessage, res: ServerResponse): void {
    this.record('hub', req);
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(400).end();
    const [, repoId, rawRevision, rawFile] = m as unknown as [string, string, string, string];
    const revision = decodeURIComponent(rawRevision);
    const file = rawFile.split('/').map(decodeURIComponent).join('/');
    const repo = this.repos.get(repoId);
    if (!repo) {
      return void res.writeHead(this.unknownRepoStatus, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' }).end('Repository not found');
    }
    if (revision !== 'main' && revision !== COMMIT) return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end('Invalid rev id');
    const content = repo.get(file);
    if (!content) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': COMMIT }).end('Entry not found');
    if (file.endsWith('.safetensors')) {
      const hash = sha256(content);
      res.writeHead(302, {
        location: `${this.cdnUrl}/repos/${hash}?filename=${encodeURIComponent(file)}`,
        'x-linked-etag': `"${hash}"`,
        'x-linked-size': String(content.byteLength),
        'x-repo-commit': COMMIT,
        etag: `"${gitSha1(Buffer.from('lfs pointer'))}"`,
      });
      return void res.end();
    }
    res.writeHead(200, { etag: `"${gitSha1(content)}"`, 'x-repo-commit': COMMIT, 'content-length': content.byteLength, 'content-type': 'text/plain' });
    res.end(content);
  }

  private serveCdn(req: IncomingMessage, res: ServerResponse): void {
    this.record('cdn', req);
    const url = new URL(req.url ?? '/', this.cdnUrl);
    const hash = url.pathname.split('/').pop();
    const file = url.searchParams.get('filename') ?? '';
    const content = [...this.repos.values()].flatMap((r) => [...r.values()]).find((c) => sha256(c) === hash);
    if (!content) return void res.writeHead(404).end();
    res.writeHead(200, { etag: `"cdn-${hash!.slice(0, 12)}"`, 'content-length': content.byteLength, 'content-type': 'application/octet-stream' });
    if (this.truncate.has(file)) {
      res.write(content.subarray(0, content.byteLength >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(content);
  }
}

export function listen(server: Server): Promise<string> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** fetch that refuses anything but the local fake servers, so no test can reach the network. */