import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { initBackend, parseBackendChoice, currentBackend, parseThreads, MAX_THREADS } from '../src/backend/index.js';
import { defaultThreads } from '../src/backend/blas.js';
import { TopoprobeError } from '../src/util/errors.js';
import { webgpuAvailable } from './helpers.js';
import { findVulkanLoader } from '../src/backend/webgpu.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliCommand } from '../src/sweep/executor.js';
import { stepMatmulFlops } from '../src/train/bench.js';

describe('backend selection', () => {
  const order = ['node-gpu', 'webgpu', 'node', 'blas', 'wasm', 'cpu'];

  it('auto takes the first backend that loads, in order, and says why each earlier one was skipped', async () => {
    const info = await initBackend('auto', { reselect: true });
    const chosenAt = order.indexOf(info.name);
    expect(chosenAt).to.be.at.least(0);
    expect(info.skipped.map((s) => s.name)).to.deep.equal(order.slice(0, chosenAt));
    for (const s of info.skipped) expect(s.reason).to.be.a('string').and.not.empty;
    expect(tf.getBackend()).to.equal(info.tfBackend);
    expect(currentBackend()).to.equal(info);
  });

  it('auto passes over a software WebGPU adapter, naming it; --backend webgpu takes it and logs the adapter', async function () {
    const gpu = await webgpuAvailable();
    if (!gpu.ok) this.skip();
    const info = await initBackend('auto', { reselect: true });
    if (info.adapter === undefined) {
      // Only a software adapter here (CI's SwiftShader): auto must have skipped webgpu for that reason.
      const skipped = info.skipped.find((s) => s.name === 'webgpu');
      expect(skipped?.reason).to.match(/only a software adapter, .*slower than blas; --backend webgpu uses it/);
      const forced = await initBackend('webgpu');
      expect(forced.adapter?.software).to.equal(true);
      expect(tf.getBackend()).to.equal('webgpu');
    } else {
      expect(info.name).to.equal('webgpu');
      expect(info.adapter.software).to.equal(false);
    }
    await initBackend('cpu');
  });

  it('without a GPU driver, --backend webgpu is an error saying why, and auto passes it over with the reason', () => {
    const { cmd, args } = cliCommand();
    // No ICD (a driver file that does not exist) and no loader path: Dawn finds no adapter.
    const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', LD_LIBRARY_PATH: '' };
    const forced = spawnSync(cmd, [...args, 'bench', '--backend', 'webgpu', '--layers', '1', '--hidden', '8', '--heads', '1', '--inter', '8', '--batch', '1', '--seq', '4', '--vocab', '16', '--steps', '1', '--warmup', '0'], { env, encoding: 'utf8' });
    expect(forced.status).to.not.equal(0);
    expect(forced.stderr).to.match(/backend "webgpu" is not available: no (WebGPU adapter|Vulkan loader)/);
    const auto = spawnSync(cmd, [...args, 'bench', '--backend', 'auto', '--layers', '1', '--hidden', '8', '--heads', '1', '--inter', '8', '--batch', '1', '--seq', '4', '--vocab', '16', '--steps', '1', '--warmup', '0'], { env, encoding: 'utf8' });
    expect(auto.status, auto.stderr).to.equal(0);
    expect(auto.stderr).to.match(/webgpu: no (WebGPU adapter|Vulkan loader)/);
    expect(JSON.parse(auto.stdout).backend).to.not.equal('webgpu');
    // Without a loader Dawn is never started, so its own multi-line warning does not reach a CPU user's console.
    const saved = process.env.LD_LIBRARY_PATH;
    process.env.LD_LIBRARY_PATH = '';
    const loader = findVulkanLoader();
    if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
    else process.env.LD_LIBRARY_PATH = saved;
    if (loader === null) {
      expect(forced.stderr).to.include('no Vulkan loader (libvulkan.so.1');
      expect(auto.stderr).to.not.include("Couldn't load Vulkan");
    }
  });

  it('finds the Vulkan loader on LD_LIBRARY_PATH', async function () {
    if (process.platform !== 'linux') this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'topoprobe-vk-'));
    const saved = process.env.LD_LIBRARY_PATH;
    try {
      writeFileSync(join(dir, 'libvulkan.so.1'), '');
      process.env.LD_LIBRARY_PATH = `/nonexistent:${dir}`;
      expect(findVulkanLoader()).to.equal(join(dir, 'libvulkan.so.1'));
    } finally {
      if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
      else process.env.LD_LIBRARY_PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
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


describe('bench arithmetic', () => {
  it('counts a training step\'s matrix-product FLOPs as 3x the forward\'s (hand-computed for a small model)', () => {
    // N = 4 x 16 = 64 tokens, H = 64, I = 128: per layer 4 x 2NH^2 = 2 097 152, 2 x 2NHI = 2 097 152, 2 x 2BT^2H = 262 144;
    // pooler 2BH^2 = 32 768, classifier 2BH x 2 = 1 024; times 3.
    expect(stepMatmulFlops({ layers: 1, hidden: 64, inter: 128, batch: 4, seq: 16, labels: 2 })).to.equal(3 * (2097152 + 2097152 + 262144 + 32768 + 1024));
    expect(stepMatmulFlops({ layers: 2, hidden: 64, inter: 128, batch: 4, seq: 16, labels: 2 })).to.equal(3 * (2 * (2097152 + 2097152 + 262144) + 32768 + 1024));
  });
});
