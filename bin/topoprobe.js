#!/usr/bin/env node
// The CLI entry point: runs the compiled TypeScript (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/entry.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('topoprobe: dist/ is missing; run `npm run build` (npm install runs it) first.');
  process.exit(2);
}
await import(entry.href);
