import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { initBackend, parseBackendChoice, currentBackend, parseThreads, MAX_THREADS } from '../src/backend/index.js';
import { defaultThreads } from '../src/backend/blas.js';
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

describe('thread counts', () => {
  const saved = process.env.TOPOPROBE_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.TOPOPROBE_THREADS;
    else process.env.TOPOPROBE_THREADS = saved;
  });

  it('parses a whole number from 1 to MAX_THREADS', () => {
    expect(parseThreads('4', '--threads')).to.equal(4);
    expect(parseThreads(' 8 ', '--threads')).to.equal(8);
    expect(parseThreads(String(MAX_THREADS), '--threads')).to.equal(MAX_THREADS);
  });

  for (const value of ['abc', '0', '-2', '1.5', '4x', '1e3', '0x10', '', String(MAX_THREADS + 1), '99999999999999999999']) {
    it(`refuses "${value}", naming the source and the value`, () => {
      expect(() => parseThreads(value, 'TOPOPROBE_THREADS')).to.throw(TopoprobeError, `TOPOPROBE_THREADS: expected a whole number of threads from 1 to ${MAX_THREADS} (got "${value}")`);
    });
  }

  it('reads TOPOPROBE_THREADS, treats unset or empty as every core, and refuses a bad value', () => {
    process.env.TOPOPROBE_THREADS = '3';
    expect(defaultThreads()).to.equal(3);
    delete process.env.TOPOPROBE_THREADS;
    expect(defaultThreads()).to.equal(availableParallelism());
    process.env.TOPOPROBE_THREADS = '  ';
    expect(defaultThreads()).to.equal(availableParallelism());
    process.env.TOPOPROBE_THREADS = '1.5';
    expect(() => defaultThreads()).to.throw(TopoprobeError, 'TOPOPROBE_THREADS: expected a whole number of threads from 1 to 1024 (got "1.5")');
  });

  it('initBackend refuses a bad TOPOPROBE_THREADS even when it keeps the current backend, and a bad threads option', async () => {
    await initBackend('cpu');
    process.env.TOPOPROBE_THREADS = 'abc';
    const err = await initBackend('cpu').then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(TopoprobeError);
    expect((err as Error).message).to.equal('TOPOPROBE_THREADS: expected a whole number of threads from 1 to 1024 (got "abc")');
    delete process.env.TOPOPROBE_THREADS;
    const bad = await initBackend('cpu', { threads: 0 }).then(() => null, (e: unknown) => e);
    expect(bad).to.be.instanceOf(TopoprobeError);
    expect((bad as Error).message).to.match(/^threads: expected a whole number from 1 to 1024 \(got 0\)/);
    expect((await initBackend('cpu')).name).to.equal('cpu');
  });
});

