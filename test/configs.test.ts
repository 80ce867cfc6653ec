/** Every config committed under configs/ is valid under its command's schema. */
import { expect } from 'chai';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadConfig } from '../src/util/config.js';
import { projectRoot } from '../src/util/root.js';
import { trainConfigSchema } from '../src/train/config.js';
import { pretrainConfigSchema } from '../src/train/pretrain-config.js';
import { measureConfigSchema } from '../src/probe/config.js';
import { sweepConfigSchema } from '../src/sweep/config.js';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    return statSync(path).isDirectory() ? yamlFiles(path) : f.endsWith('.yaml') ? [path] : [];
  });
}

describe('committed configs', () => {
  const root = join(projectRoot(), 'configs');
  const files = yamlFiles(root);

  it('exist for every command', () => {
    const folders = new Set(files.map((f) => relative(root, f).split('/')[0]));
    for (const folder of ['pretrain', 'measure', 'sweeps', 'cola', 'quickstart.yaml']) expect(folders).to.include(folder);
  });

  for (const file of files) {
    const rel = relative(root, file);
    it(`${rel} parses`, () => {
      const kind = rel.split('/')[0];
      if (kind === 'pretrain') loadConfig(file, pretrainConfigSchema);
      else if (kind === 'measure') loadConfig(file, measureConfigSchema);
      else if (kind === 'sweeps') loadConfig(file, sweepConfigSchema);
      else loadConfig(file, trainConfigSchema);
    });
  }

  it('the quickstart uses the pretrained built-in model', () => {
    expect(loadConfig(join(root, 'quickstart.yaml'), trainConfigSchema).model).to.equal('builtin:mini');
  });
});
