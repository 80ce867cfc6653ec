import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig, applySet, mergeConfig, parseKeyPath } from '../src/util/config.js';
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

  it('fills every default of the measure config from an empty file', () => {
    writeFileSync(join(dir, 'empty.yaml'), '');
    const cfg = loadConfig(join(dir, 'empty.yaml'), measureConfigSchema);
    expect(cfg).to.include({ model: 'builtin:tiny', mode: 'clean', labels: 'greedy', root_depth: 1, epochs: 10 });
    expect(cfg.data.ewt.train).to.equal('ud-ewt/en_ewt-ud-train.conllu');
    expect(cfg.probe.init_range).to.equal(0.05);
    expect(cfg.optimizer).to.deep.equal({ name: 'adam', lr: 0.001 });
  });
});
