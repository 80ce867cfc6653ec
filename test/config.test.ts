import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig, applySet, mergeConfig, parseKeyPath, readYaml, MAX_ALIAS_COUNT } from '../src/util/config.js';
import { measureConfigSchema } from '../src/probe/config.js';
import { expectError } from './helpers.js';

describe('YAML configs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const schema = z.object({ a: z.number().default(1), b: z.object({ c: z.string(), d: z.array(z.number()).default([]) }).strict(), list: z.array(z.object({ x: z.number() }).strict()).default([]) }).strict();

  it('merges objects key by key and replaces everything else', () => {
    expect(mergeConfig({ a: 1, b: { c: 'x', d: [1, 2] } }, { b: { d: [3] }, e: 2 })).to.deep.equal({ a: 1, b: { c: 'x', d: [3] }, e: 2 });
  });

  it('follows extends (relative to the file) and applies --set with key paths and YAML values', () => {
    writeFileSync(join(dir, 'base.yaml'), 'a: 5\nb: {c: base, d: [1]}\nlist: [{x: 1}, {x: 2}]\n');
    writeFileSync(join(dir, 'child.yaml'), 'extends: base.yaml\nb: {c: child}\n');
    const cfg = loadConfig(join(dir, 'child.yaml'), schema, ['list[1].x=7', 'b.d=[4, 5]', 'a=6']);
    expect(cfg).to.deep.equal({ a: 6, b: { c: 'child', d: [4, 5] }, list: [{ x: 1 }, { x: 7 }] });
    expect(parseKeyPath('guidance[0].layer')).to.deep.equal(['guidance', 0, 'layer']);
  });

  it('names the file and key path of an unknown key, a wrong type and an out-of-range value', () => {
    writeFileSync(join(dir, 'c.yaml'), 'b: {c: 1, e: 2}\n');
    const msg = expectError(() => loadConfig(join(dir, 'c.yaml'), schema), join(dir, 'c.yaml'));
    expect(msg).to.match(/b\.c: .*expected string/);
    expect(msg).to.match(/b: Unrecognized key.*"e"/);
    writeFileSync(join(dir, 'm.yaml'), 'epochs: 0\ndata: {pool_dev: 0.7}\n');
    const m = expectError(() => loadConfig(join(dir, 'm.yaml'), measureConfigSchema), 'm.yaml');
    expect(m).to.match(/epochs: Too small/);
    expect(m).to.match(/data\.pool_dev: Too big/);
  });

  it('names the line of invalid YAML, a missing file, an extends cycle and a bad --set', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'a: 1\nb: [1, 2\n');
    expectError(() => loadConfig(join(dir, 'bad.yaml'), schema), `${join(dir, 'bad.yaml')}:`, 'invalid YAML');
    expectError(() => loadConfig(join(dir, 'none.yaml'), schema), 'none.yaml: config file not found');
    writeFileSync(join(dir, 'x.yaml'), 'extends: y.yaml\n');
    writeFileSync(join(dir, 'y.yaml'), 'extends: x.yaml\n');
    expectError(() => loadConfig(join(dir, 'x.yaml'), schema), 'extends itself');
    expectError(() => applySet({}, 'novalue'), '--set novalue: expected key=value');
  });

  it('fills every default of the measure config from an empty mapping', () => {
    writeFileSync(join(dir, 'empty.yaml'), '{}\n');
    const cfg = loadConfig(join(dir, 'empty.yaml'), measureConfigSchema);
    expect(cfg).to.include({ model: 'builtin:tiny', mode: 'clean', labels: 'greedy', root_depth: 1, epochs: 10 });
    expect(cfg.data.ewt.train).to.equal('ud-ewt/en_ewt-ud-train.conllu');
    expect(cfg.probe.init_range).to.equal(0.05);
    expect(cfg.optimizer).to.deep.equal({ name: 'adam', lr: 0.001 });
  });
});

/** Whether anything has been added to Object.prototype (a polluted key is visible on every object). */
function prototypeKeys(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).filter((k) => !BUILTIN_PROTOTYPE_KEYS.includes(k));
}
const BUILTIN_PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);

describe('YAML configs: bad input is refused by name', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    // Clean up after a failing test so one pollution does not fail every later test.
    delete (Object.prototype as Record<string, unknown>).polluted;
  });

  const schema = z.object({ a: z.number().default(1), b: z.object({ c: z.string() }).strict().optional(), list: z.array(z.object({ x: z.number() }).strict()).default([]) }).strict();
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  for (const [what, text] of [
    ['a 0-byte file', ''],
    ['only comments and blank lines', '# a comment\n\n   \n  # another\n'],
    ['only a document marker and a comment', '---\n# nothing\n...\n'],
    ['a byte-order mark and whitespace', '\uFEFF  \n\t\n'],
  ] as const) {
    it(`refuses ${what} as an empty config, naming the file`, () => {
      const path = write('empty.yaml', text);
      const msg = expectError(() => loadConfig(path, schema), `${path}: is empty`);
      expect(msg.split('\n')).to.have.length(1);
    });
  }

  it('refuses an empty parent named by extends:, naming the parent and the child', () => {
    const base = write('base.yaml', '# to be filled in\n');
    const child = write('child.yaml', 'extends: base.yaml\na: 2\n');
    expectError(() => loadConfig(child, schema), `${base}: is empty`, `extends: in ${child}`);
  });

  it('tells a null document apart from an empty one', () => {
    const path = write('null.yaml', '~\n');
    const msg = expectError(() => loadConfig(path, schema), `${path}: a config must be a mapping`);
    expect(msg).not.to.include('is empty');
  });

  it('refuses a folder given as a config or as an extends: parent', () => {
    const folder = join(dir, 'configs');
    mkdirSync(folder);
    expectError(() => loadConfig(folder, schema), `${folder}: is a folder, not a config file`);
    const child = write('child.yaml', 'extends: configs\n');
    expectError(() => loadConfig(child, schema), `${folder}: is a folder, not a config file`, `extends: in ${child}`);
    expectError(() => loadConfig(write('blank-extends.yaml', 'extends: ""\n'), schema), 'extends: expected a path');
  });

  it('names the missing parent of extends: and the file that names it', () => {
    const child = write('child.yaml', 'extends: nowhere.yaml\n');
    expectError(() => loadConfig(child, schema), `${join(dir, 'nowhere.yaml')}: config file not found`, `extends: in ${child}`);
  });

  it('refuses a "billion laughs" alias bomb quickly, naming the file', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const path = write('bomb.yaml', levels.join('\n') + '\n');
    const started = Date.now();
    expectError(() => loadConfig(path, schema), `${path}: invalid YAML: its aliases expand too far`, `more than ${MAX_ALIAS_COUNT}`);
    expect(Date.now() - started).to.be.below(2000);
  });

  it('still resolves a few ordinary aliases', () => {
    const path = write('alias.yaml', 'a: &n 3\nlist: [{x: *n}, {x: *n}]\n');
    expect(loadConfig(path, schema)).to.deep.equal({ a: 3, list: [{ x: 3 }, { x: 3 }] });
  });

  it('names the file of any other YAML failure: an unknown alias, a duplicate key, two documents', () => {
    expectError(() => loadConfig(write('alias.yaml', 'a: *nowhere\n'), schema), `${join(dir, 'alias.yaml')}: invalid YAML:`, 'nowhere');
    expectError(() => loadConfig(write('dup.yaml', 'a: 1\na: 2\n'), schema), `${join(dir, 'dup.yaml')}:2:1: invalid YAML:`, 'unique');
    expectError(() => loadConfig(write('two.yaml', 'a: 1\n---\na: 2\n'), schema), `${join(dir, 'two.yaml')}:`, 'invalid YAML');
  });

  for (const [what, text, keyPath, key] of [
    ['at the top level', '__proto__: {polluted: 1}\n', '__proto__', '__proto__'],
    ['nested', 'b: {c: x, __proto__: {polluted: 1}}\n', 'b.__proto__', '__proto__'],
    ['in a list', 'list: [{x: 1}, {constructor: {prototype: {polluted: 1}}}]\n', 'list[1].constructor', 'constructor'],
    ['as prototype', 'b: {prototype: {polluted: 1}}\n', 'b.prototype', 'prototype'],
  ] as const) {
    it(`refuses a forbidden key in a config file ${what}, naming file and key path`, () => {
      const path = write('proto.yaml', text);
      expectError(() => loadConfig(path, schema), `${path}: ${keyPath}: the key "${key}" is not allowed`);
      expect(prototypeKeys()).to.deep.equal([]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
  }

  it('refuses a forbidden key in a child config, whose merge would otherwise set the prototype', () => {
    write('base.yaml', 'a: 1\n');
    const child = write('child.yaml', 'extends: base.yaml\n__proto__: {polluted: 1}\n');
    expectError(() => readYaml(child), `${child}: __proto__:`);
    expectError(() => loadConfig(child, schema), `${child}: __proto__: the key "__proto__" is not allowed`);
    expect(prototypeKeys()).to.deep.equal([]);
  });

  it('mergeConfig refuses __proto__ from JSON (an own key) rather than setting the prototype', () => {
    const over = JSON.parse('{"b": {"__proto__": {"polluted": 1}}}') as unknown;
    expectError(() => mergeConfig({ b: { c: 'x' } }, over), 'the key "__proto__" is not allowed');
    expectError(() => mergeConfig(JSON.parse('{"__proto__": {"polluted": 1}}'), { a: 1 }), 'the key "__proto__" is not allowed');
    expect(prototypeKeys()).to.deep.equal([]);
    // An inherited name is not "in" the base: `constructor` of a plain object is not merged into.
    expect(() => mergeConfig({}, { constructor: 1 })).to.throw(/"constructor" is not allowed/);
  });

  for (const path of ['optimizer..lr', '.lr', 'lr.', 'a.[0]', '[0].x', 'a[x]', 'a]', 'a[0]b']) {
    it(`refuses the --set key path ${path}, quoting the assignment`, () => {
      const cfg = { a: 1 };
      const msg = expectError(() => applySet(cfg, `${path}=1`), `--set ${path}=1: `);
      expect(msg).to.match(/empty key|is not a key or key\[index\]/);
      expect(cfg).to.deep.equal({ a: 1 });
    });
  }

  it('sets list elements only by replacing or appending, never leaving a gap', () => {
    const cfg: Record<string, unknown> = { guidance: [{ layer: 1 }] };
    const msg = expectError(() => applySet(cfg, 'guidance[5]={layer: 2}'), '--set guidance[5]={layer: 2}: guidance has 1 element: index [5] would leave a gap', '[0] to [0] replace', '[1] appends');
    expect(msg.split('\n')).to.have.length(1);
    expectError(() => applySet(cfg, 'guidance[2].layer=2'), 'index [2] would leave a gap');
    expect(cfg).to.deep.equal({ guidance: [{ layer: 1 }] });
    applySet(cfg, 'guidance[0].layer=3');
    applySet(cfg, 'guidance[1].layer=4');
    applySet(cfg, 'guidance[2]={layer: 5}');
    expect(cfg).to.deep.equal({ guidance: [{ layer: 3 }, { layer: 4 }, { layer: 5 }] });
    expect((cfg.guidance as unknown[]).every((x) => x !== undefined)).to.equal(true);
    // A list that --set creates starts empty: only [0] can be set.
    applySet(cfg, 'fresh[0].x=1');
    expect(cfg.fresh).to.deep.equal([{ x: 1 }]);
    expectError(() => applySet(cfg, 'other[3].x=1'), 'other has 0 elements: index [3] would leave a gap ([0] appends');
    expect(cfg).not.to.have.property('other');
  });

  it('refuses a key into a list and an index into a mapping', () => {
    const cfg: Record<string, unknown> = { list: [{ x: 1 }], b: { c: 'x' } };
    expectError(() => applySet(cfg, 'list.x=2'), '--set list.x=2: list is a list; index it as list[0]');
    expectError(() => applySet(cfg, 'b[0]=2'), '--set b[0]=2: b is a mapping, not a list');
    expectError(() => applySet(cfg, 'b.c.d=2'), '--set b.c.d=2: b.c is not a mapping or list');
    expect(cfg).to.deep.equal({ list: [{ x: 1 }], b: { c: 'x' } });
  });

  for (const assignment of ['__proto__.polluted=1', 'a.__proto__.polluted=1', 'constructor.prototype.polluted=1', 'list[0].__proto__.polluted=1', 'prototype=1', 'b.constructor=1']) {
    it(`refuses --set ${assignment} and leaves Object.prototype untouched`, () => {
      const cfg: Record<string, unknown> = { a: {}, list: [{}], b: {} };
      const key = /(__proto__|constructor|prototype)/.exec(assignment)![1]!;
      expectError(() => applySet(cfg, assignment), `--set ${assignment}: the key "${key}" is not allowed`);
      expect(prototypeKeys()).to.deep.equal([]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getPrototypeOf(cfg.a)).to.equal(Object.prototype);
      expect(cfg).to.deep.equal({ a: {}, list: [{}], b: {} });
    });
  }

  it('refuses a --set value that carries a forbidden key', () => {
    const cfg: Record<string, unknown> = {};
    expectError(() => applySet(cfg, 'b={__proto__: {polluted: 1}}'), '--set b={__proto__: {polluted: 1}}: __proto__: the key "__proto__" is not allowed');
    expect(cfg).to.deep.equal({});
    expect(prototypeKeys()).to.deep.equal([]);
  });

  it('loadConfig applies --set checks before validation, naming the assignment', () => {
    const path = write('ok.yaml', 'a: 2\nlist: [{x: 1}]\n');
    expectError(() => loadConfig(path, schema, ['list[3].x=1']), '--set list[3].x=1: list has 1 element');
    expect(loadConfig(path, schema, ['list[1].x=2'])).to.deep.equal({ a: 2, list: [{ x: 1 }, { x: 2 }] });
  });
});

