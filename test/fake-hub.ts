/** A fake Hugging Face hub on 127.0.0.1, shared by the hub and CLI tests (no test reaches the network). */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** The git blob hash the hub sends as ETag for regular (non-LFS) files. */
export const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

/**
 * Ways the server that sends a file's body misbehaves (the hub for regular files, the CDN for LFS
 * files), except `no-answer`, which is the hub's for any file.
 */
export type Fault =
  /** Content-Length, then half the body and the connection destroyed. */
  | 'truncate'
  /** No Content-Length (chunked), half the body, the connection destroyed before the last chunk. */
  | 'truncate-chunked'
  /** No Content-Length and no chunking: half the body, then a clean close, which looks like the end. */
  | 'truncate-unframed'
  /** No Content-Length and no chunking, the whole body, then a clean close (valid, if old-fashioned). */
  | 'unframed'
  /** The right length, one byte changed. */
  | 'corrupt'
  /** Content-Length and half the body, then nothing: the connection stays open, silent. */
  | 'stall'
  /** The hub reads the request and never answers (the connection stays open). */
  | 'no-answer';

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
  /** Files whose body is served wrong (see {@link Fault}), by file name. */
  readonly faults = new Map<string, Fault>();
  /** Headers the hub adds to (or replaces in) its answer for a file, by file name: e.g. a wrong x-linked-size. */
  readonly extraHeaders = new Map<string, Record<string, string>>();
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
    if (this.faults.get(file) === 'no-answer') return; // never answered; stop() closes the connection
    const extra = this.extraHeaders.get(file) ?? {};
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
        ...extra,
      });
      return void res.end();
    }
    sendBody(res, { etag: `"${gitSha1(content)}"`, 'x-repo-commit': COMMIT, 'content-type': 'text/plain', ...extra }, content, this.faults.get(file));
  }

  private serveCdn(req: IncomingMessage, res: ServerResponse): void {
    this.record('cdn', req);
    const url = new URL(req.url ?? '/', this.cdnUrl);
    const hash = url.pathname.split('/').pop();
    const file = url.searchParams.get('filename') ?? '';
    const content = [...this.repos.values()].flatMap((r) => [...r.values()]).find((c) => sha256(c) === hash);
    if (!content) return void res.writeHead(404).end();
    sendBody(res, { etag: `"cdn-${hash!.slice(0, 12)}"`, 'content-type': 'application/octet-stream' }, content, this.faults.get(file));
  }
}

/** A 200 with `content` and `headers` (plus Content-Length, unless the fault leaves it out), served with `fault`. */
function sendBody(res: ServerResponse, headers: Record<string, string>, content: Buffer, fault: Fault | undefined): void {
  const half = content.subarray(0, content.byteLength >> 1);
  const sized = { ...headers, 'content-length': String(content.byteLength) };
  const destroySoon = (): void => void setTimeout(() => res.socket?.destroy(), 20);
  switch (fault) {
    case 'truncate':
      res.writeHead(200, sized);
      return void res.write(half, destroySoon);
    case 'truncate-chunked':
      res.writeHead(200, headers);
      return void res.write(half, destroySoon);
    case 'truncate-unframed':
    case 'unframed':
      res.useChunkedEncodingByDefault = false; // the body then ends where the connection does
      res.writeHead(200, { ...headers, connection: 'close' });
      return void res.end(fault === 'unframed' ? content : half);
    case 'corrupt': {
      const changed = Buffer.from(content);
      changed[changed.byteLength >> 1] ^= 0xff;
      res.writeHead(200, sized);
      return void res.end(changed);
    }
    case 'stall':
      res.writeHead(200, sized);
      return void res.write(half);
    default:
      res.writeHead(200, sized);
      res.end(content);
  }
}

export function listen(server: Server): Promise<string> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** fetch that refuses anything but the local fake servers, so no test can reach the network. */
export const localFetch: typeof fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== '127.0.0.1') throw new Error(`test tried to reach ${url.href}`);
  return fetch(input, init);
};
