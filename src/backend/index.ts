/**
 * Tensor backend selection.
 *
 * `auto` tries, in order: `node-gpu` (@tensorflow/tfjs-node-gpu, libtensorflow with CUDA), `webgpu`
 * (@tensorflow/tfjs-backend-webgpu on Dawn: Vulkan, Metal or D3D12; a hardware adapter only, see
 * src/backend/webgpu.ts), `node` (@tensorflow/tfjs-node, libtensorflow on CPU), `blas` (the cpu backend with native OpenBLAS and C
 * kernels, src/backend/blas.ts), `wasm` (@tensorflow/tfjs-backend-wasm, XNNPACK, one thread in Node),
 * `cpu` (plain JavaScript). The first that loads wins; why the others did not is logged. The choice can
 * be forced with the `--backend` flag or `TOPOPROBE_BACKEND`.
 */
import * as tf from '@tensorflow/tfjs';
import { getLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';
import { registerSegmentSumKernel } from './segment-sum.js';
import { registerBlasBackend, defaultThreads, parseThreads, MAX_THREADS } from './blas.js';
import { adapterText, installWebGPU, registerWebGPUKernels, type AdapterInfo } from './webgpu.js';

export { parseThreads, MAX_THREADS };

export const BACKEND_NAMES = ['auto', 'node-gpu', 'webgpu', 'node', 'blas', 'wasm', 'cpu'] as const;

/** The order `auto` tries. */
export const AUTO_ORDER: readonly ConcreteBackend[] = ['node-gpu', 'webgpu', 'node', 'blas', 'wasm', 'cpu'];
export type BackendChoice = (typeof BACKEND_NAMES)[number];
export type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** What was chosen. */
  name: ConcreteBackend;
  /** tfjs's own name for it (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Why each backend tried before it was not used. */
  skipped: Array<{ name: ConcreteBackend; reason: string }>;
  /** Threads for native matrix products (blas only). */
  threads?: number;
  /** The GPU adapter (webgpu only). */
  adapter?: AdapterInfo;
}

let current: BackendInfo | undefined;

async function importOptional(spec: string): Promise<void> {
  // A variable specifier keeps TypeScript from requiring the optional package's types.
  await import(spec);
}

async function tryBackend(name: ConcreteBackend, threads: number | undefined, auto: boolean): Promise<{ tfBackend: string; adapter?: AdapterInfo }> {
  switch (name) {
    case 'webgpu': {
      const adapter = await installWebGPU();
      if (auto && adapter.software) throw new Error(`only a software adapter, ${adapterText(adapter)} (slower than blas; --backend webgpu uses it)`);
      // A literal import, so a bundle (scripts/device) carries it with the one tfjs-core it shares.
      await import('@tensorflow/tfjs-backend-webgpu');
      registerWebGPUKernels();
      if (!(await tf.setBackend('webgpu'))) throw new Error(`the webgpu backend did not initialise on ${adapterText(adapter)}`);
      return { tfBackend: 'webgpu', adapter };
    }
    case 'blas':
      registerBlasBackend(threads);
      if (!(await tf.setBackend('blas'))) throw new Error('the blas backend did not initialise');
      return { tfBackend: 'blas' };
    case 'node-gpu':
      await importOptional('@tensorflow/tfjs-node-gpu');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node-gpu loaded but the tensorflow backend did not initialise');
      return { tfBackend: 'tensorflow' };
    case 'node':
      await importOptional('@tensorflow/tfjs-node');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node loaded but the tensorflow backend did not initialise');
      return { tfBackend: 'tensorflow' };
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      registerSegmentSumKernel('wasm');
      if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
      return { tfBackend: 'wasm' };
    case 'cpu':
      registerSegmentSumKernel('cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
      return { tfBackend: 'cpu' };
  }
}

function shortReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Cannot find (package|module)/.test(msg)) return 'not installed';
  return msg.split('\n')[0]!.slice(0, 300);
}

/** Parses a backend name from a flag or the environment, naming the source on error. */
export function parseBackendChoice(value: string | undefined, source: string): BackendChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new TopoprobeError(`${source}: unknown backend "${value}" (expected one of ${BACKEND_NAMES.join(', ')})`);
}

/**
 * Selects and initialises the tensor backend. `choice` defaults to `TOPOPROBE_BACKEND`, then `auto`.
 * Calling it again with the same choice (or `auto`) keeps the current backend unless `reselect` is set;
 * a different concrete choice switches backends.
 */
export async function initBackend(choice?: BackendChoice, opts: { reselect?: boolean; threads?: number } = {}): Promise<BackendInfo> {
  const resolved = choice ?? parseBackendChoice(process.env.TOPOPROBE_BACKEND, 'TOPOPROBE_BACKEND');
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1 && opts.threads <= MAX_THREADS)) {
    throw new TopoprobeError(`threads: expected a whole number from 1 to ${MAX_THREADS} (got ${opts.threads})`);
  }
  // Read (and checked) even when the current backend is kept: a bad TOPOPROBE_THREADS is always refused.
  const threads = opts.threads ?? defaultThreads();
  if (current && !opts.reselect && opts.threads === undefined && (resolved === 'auto' || resolved === current.name)) return current;
  const log = getLogger();
  // tfjs's own console warnings (e.g. its advert for tfjs-node on the cpu backend) would mix with the
  // CLI's output; the choice and the reasons are logged here instead.
  tf.enableProdMode();
  const order: readonly ConcreteBackend[] = resolved === 'auto' ? AUTO_ORDER : [resolved];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    try {
      const { tfBackend, adapter } = await tryBackend(name, threads, resolved === 'auto');
      await tf.ready();
      current = { name, tfBackend, skipped, ...(name === 'blas' ? { threads } : {}), ...(adapter ? { adapter } : {}) };
      log.info(
        { backend: name, skipped, threads: current.threads, adapter },
        `tensor backend: ${name}${name === 'blas' ? ` (${threads} threads)` : ''}${adapter ? ` on ${adapterText(adapter)}` : ''}` +
          (skipped.length ? ` (skipped ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''),
      );
      return current;
    } catch (err) {
      if (resolved !== 'auto') {
        throw new TopoprobeError(`backend "${name}" is not available: ${shortReason(err)}`, { cause: err });
      }
      skipped.push({ name, reason: shortReason(err) });
    }
  }
  throw new TopoprobeError(`no tensor backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** The backend chosen by the last initBackend, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
