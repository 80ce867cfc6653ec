// Which URLs does the library pass to the injected fetch (does it ever see the CDN URL)?
import { downloadFileToCacheDir } from '@huggingface/hub';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeHub } from './fakehub.mjs';
const hub = new FakeHub(); await hub.start();
hub.repos.set('org/m', new Map([['model.safetensors', randomBytes(2000)]]));
const seen = [];
const spy = (input, init) => { seen.push(`${init?.method ?? 'GET'} ${String(input)} redirect=${init?.redirect ?? '(default)'} signal=${init?.signal ? 'yes' : 'no'} range=${new Headers(init?.headers).get('range')}`); return fetch(input, init); };
await downloadFileToCacheDir({ repo: 'org/m', path: 'model.safetensors', hubUrl: hub.hubUrl, cacheDir: mkdtempSync(join(tmpdir(), 'hubtry3-')), fetch: spy });
console.log('fetch calls:\n' + seen.join('\n'));
console.log('server saw:\n' + hub.requests.map((r) => `${r.server} ${r.method} ${r.path} range=${r.range}`).join('\n'));
console.log('cdnUrl', hub.cdnUrl);
await hub.stop();
