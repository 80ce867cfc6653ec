#!/usr/bin/env node
// Copies what a report needs from a sweep folder into a folder that can be committed:
//   node scripts/archive-sweep.mjs runs/sweeps/<name> docs/<report>/<name>
// writes <dest>/manifest.json (the sweep's, with its config paths made relative to the working directory) and,
// for each completed run, <dest>/runs/<run>/{config.yaml,results.json,metrics.jsonl} (no checkpoints). The copy is
// itself a sweep folder for `topoprobe compare <dest>`: runs not yet completed are listed as missing. Running it
// again after more runs finish brings the copy up to date. Every file is written to a temporary name, then renamed.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';

const [src, dest] = process.argv.slice(2);
if (!src || !dest) {
  process.stderr.write('usage: node scripts/archive-sweep.mjs <sweep folder> <destination folder>\n');
  process.exit(2);
}
const manifestPath = join(src, 'manifest.json');
if (!existsSync(manifestPath)) {
  process.stderr.write(`${manifestPath}: not found (expected a topoprobe sweep folder)\n`);
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const rel = (p) => (typeof p === 'string' && isAbsolute(p) ? relative(process.cwd(), p) : p);
const atomic = (path, write) => {
  const tmp = `${path}.tmp-${process.pid}`;
  write(tmp);
  renameSync(tmp, path);
};
let copied = 0;
for (const run of manifest.runs) {
  if (run.status !== 'completed') continue;
  const from = join(src, run.dir);
  const to = join(dest, run.dir);
  mkdirSync(to, { recursive: true });
  for (const f of ['config.yaml', 'results.json', 'metrics.jsonl']) {
    if (!existsSync(join(from, f))) throw new Error(`${join(from, f)}: missing in a completed run`);
    atomic(join(to, f), (tmp) => copyFileSync(join(from, f), tmp));
  }
  copied += 1;
}
const out = { ...manifest, config: rel(manifest.config), base: rel(manifest.base) };
mkdirSync(dest, { recursive: true });
atomic(join(dest, 'manifest.json'), (tmp) => writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n'));
process.stdout.write(`${resolve(dest)}: ${copied} of ${manifest.runs.length} runs completed and copied\n`);
