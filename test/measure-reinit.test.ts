import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, haveData, nativeAvailable } from './helpers.js';

interface MeasureJson {
  model: string;
  reinitialized: boolean;
  rows: Array<Record<string, number | null>>;
}

describe('topoprobe measure: reinitialize (random-encoder control)', function () {
  let scratch: string;
  before(function () {
    if (!haveData('ud-ewt/en_ewt-ud-train.conllu', 'bert-uncased/vocab.txt')) this.skip();
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-reinit-'));
  });
  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** A tiny X_sp measurement of builtin:tiny's last layer. */
  async function measure(name: string, seed: number, reinitialize: boolean): Promise<MeasureJson> {
    const path = join(scratch, `${name}.yaml`);
    writeFileSync(
      path,
      `model: builtin:tiny\nout_dir: ${scratch}\nreinitialize: ${reinitialize}\nsubmodules: [2]\nmetrics: [x_sp]\n` +
        `data:\n  max_sentences: 8\nepochs: 1\nbatch_size: 4\nseed: ${seed}\n`,
    );
    const { code, stderr } = await cli(['measure', '--config', path, '--name', name], {}, nativeAvailable() ? 'blas' : 'cpu');
    expect(code, stderr).to.equal(0);
    return JSON.parse(readFileSync(join(scratch, name, 'measure.json'), 'utf8')) as MeasureJson;
  }

  it('measures fresh weights seeded by `seed`, and says so in measure.json', async () => {
    // builtin:tiny is itself the seed-0 initialisation of its config: reinitialising with seed 0 gives the same encoder,
    // so (data order and probes being seeded alike) the very same numbers.
    const plain0 = await measure('plain0', 0, false);
    const reinit0 = await measure('reinit0', 0, true);
    expect(plain0.reinitialized).to.equal(false);
    expect(reinit0.reinitialized).to.equal(true);
    expect(reinit0.model).to.equal('builtin:tiny');
    expect(reinit0.rows).to.deep.equal(plain0.rows);
    expect(readFileSync(join(scratch, 'reinit0', 'config.yaml'), 'utf8')).to.match(/reinitialize: true/);

    // With seed 1 the data order and probes are those of a seed-1 run of the trained (seed-0) weights, but the encoder differs.
    const plain1 = await measure('plain1', 1, false);
    const reinit1 = await measure('reinit1', 1, true);
    expect(plain1.reinitialized).to.equal(false);
    expect(reinit1.reinitialized).to.equal(true);
    const x = (m: MeasureJson) => m.rows[0]!.x_sp;
    expect(x(plain1)).to.be.a('number');
    expect(x(reinit1)).to.be.a('number');
    expect(x(reinit1)).to.not.equal(x(plain1));
    expect(reinit1.rows[0]!.submodule).to.equal(2);
  });
});
