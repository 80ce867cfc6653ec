/**
 * The shape of src/: no import cycles (type-only imports count: a cycle of types is still a tangle a
 * reader has to hold at once), and the dependency directions the layout promises.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { projectRoot } from '../src/util/root.js';

const src = join(projectRoot(), 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The project files a module imports (static `import`/`export ... from`, and `import()` with a literal). */
export function importsOf(file: string, text: string): string[] {
  const out = new Set<string>();
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s*['"](\.[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    out.add(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return [...out];
}

/** Every elementary cycle's first appearance in a depth-first search (enough to name each tangle). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

const files = sources(src);
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(f, 'utf8')).filter((t) => t.startsWith(src))]));
const rel = (f: string) => relative(src, f);
const folder = (f: string) => rel(f).split('/')[0]!;

describe('architecture of src/', () => {
  it('finds the cycles of a hand-made graph (the checker itself)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(findCycles(g)).to.deep.equal([['a', 'b', 'c', 'a'], ['e', 'e']]);
    expect(findCycles(new Map([['a', ['b']], ['b', []]]))).to.deep.equal([]);
    expect(importsOf('/p/x.ts', "import type { A } from './a.js';\nexport { b } from '../b.js';\nconst c = await import('./c.js');\nimport * as tf from '@tensorflow/tfjs';")).to.deep.equal(['/p/a.ts', '/b.ts', '/p/c.ts']);
  });

  it('has no import cycles', () => {
    expect(files.length).to.be.greaterThan(50);
    expect(findCycles(graph).map((c) => c.map(rel).join(' -> '))).to.deep.equal([]);
  });

  it('keeps util/ a leaf, and the benchmark and the trainers out of compare/ and cli/', () => {
    const bad: string[] = [];
    for (const [f, targets] of graph) {
      for (const t of targets) {
        if (folder(f) === 'util' && folder(t) !== 'util') bad.push(`${rel(f)} -> ${rel(t)}`);
        if (['train', 'probe', 'model', 'data', 'backend', 'tokenize'].includes(folder(f)) && ['compare', 'cli', 'sweep'].includes(folder(t))) bad.push(`${rel(f)} -> ${rel(t)}`);
      }
    }
    expect(bad).to.deep.equal([]);
  });
});
