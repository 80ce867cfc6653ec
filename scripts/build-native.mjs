#!/usr/bin/env node
// Builds the optional native kernels (native/topoprobe_native.c, a Node-API addon over OpenBLAS) into
// native/build/topoprobe_native.node. Run by `npm install` (through `prepare`) and `npm run build:native`.
// Without a C compiler or OpenBLAS it prints one line saying how to enable it and exits 0: topoprobe then
// runs on plain TensorFlow.js.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'topoprobe_native.c');
const outDir = join(root, 'native', 'build');
const out = join(outDir, 'topoprobe_native.node');
const hint = 'for Debian/Ubuntu: apt-get install libopenblas-dev, then npm run build:native (or reinstall)';

if (process.env.TOPOPROBE_SKIP_NATIVE === '1') {
  console.log('topoprobe: native kernels skipped (TOPOPROBE_SKIP_NATIVE=1)');
  process.exit(0);
}

// Node's headers: <prefix>/include/node next to the running node, or npm's nodedir.
const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  resolve(dirname(process.execPath), '..', 'include', 'node'),
].filter(Boolean);
const nodeInclude = candidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!nodeInclude) {
  console.log(`topoprobe: native kernels not built: Node's headers (node_api.h) not found in ${candidates.join(', ')}`);
  process.exit(0);
}

const cc = process.env.CC ?? 'cc';
const extra = (process.env.TOPOPROBE_NATIVE_CFLAGS ?? '-O3 -march=native').split(/\s+/).filter(Boolean);
const includeDirs = ['/usr/include/openblas', '/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu', '/usr/local/include', '/opt/homebrew/opt/openblas/include']
  .filter((d) => existsSync(d))
  .map((d) => `-I${d}`);
const libDirs = ['/opt/homebrew/opt/openblas/lib'].filter((d) => existsSync(d)).map((d) => `-L${d}`);
const tmp = `${out}.${process.pid}.tmp`;
const args = [
  ...extra, '-std=gnu11', '-fopenmp', '-fPIC', '-shared', '-Wall', '-DNODE_GYP_MODULE_NAME=topoprobe_native',
  `-I${nodeInclude}`, ...includeDirs, source, ...libDirs, '-lopenblas', '-lm', '-o', tmp,
];
if (process.platform === 'darwin') args.unshift('-undefined', 'dynamic_lookup');

mkdirSync(outDir, { recursive: true });
try {
  execFileSync(cc, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  renameSync(tmp, out);
  console.log(`topoprobe: built native kernels (OpenBLAS) at ${out}`);
} catch (err) {
  rmSync(tmp, { force: true });
  const stderr = String(err.stderr ?? err.message).split('\n').find((l) => /error/.test(l)) ?? String(err.message).split('\n')[0];
  console.log(`topoprobe: native kernels not built (${stderr.trim()}); ${hint}`);
}
