import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendChoice, currentBackend } from '../src/backend/index.js';
import { TopoprobeError } from '../src/util/errors.js';

describe('backend selection', () => {
  const order = ['node-gpu', 'node', 'blas', 'wasm', 'cpu'];

  it('auto takes the first backend that loads, in order, and says why each earlier one was skipped', async () => {
    const info = await initBackend('auto', { reselect: true });
    const chosenAt = order.indexOf(info.name);
    expect(chosenAt).to.be.at.least(0);
    expect(info.skipped.map((s) => s.name)).to.deep.equal(order.slice(0, chosenAt));
    for (const s of info.skipped) expect(s.reason).to.be.a('string').and.not.empty;
    expect(tf.getBackend()).to.equal(info.tfBackend);
    expect(currentBackend()).to.equal(info);
  });

  it('an explicit choice switches backends', async () => {
    expect((await initBackend('cpu')).name).to.equal('cpu');
    expect(tf.getBackend()).to.equal('cpu');
    expect((await initBackend('wasm')).name).to.equal('wasm');
    expect(tf.getBackend()).to.equal('wasm');
  });

  it('an explicit choice that cannot load is an error naming it', async function () {
    let installed = true;
    try {
      await import(['@tensorflow', 'tfjs-node-gpu'].join('/'));
    } catch {
      installed = false;
    }
    if (installed) this.skip();
    const err = await initBackend('node-gpu').then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(TopoprobeError);
    expect((err as Error).message).to.match(/backend "node-gpu" is not available/);
  });

  it('parses names from flags and the environment, rejecting unknown ones with their source', () => {
    expect(parseBackendChoice(undefined, 'x')).to.equal('auto');
    expect(parseBackendChoice(' WASM ', 'x')).to.equal('wasm');
    expect(() => parseBackendChoice('gpu', 'TOPOPROBE_BACKEND')).to.throw(TopoprobeError, /TOPOPROBE_BACKEND: unknown backend "gpu"/);
  });
});
