/** Shared test helpers: fixture paths and numeric comparisons. */
import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { TopoprobeError } from '../src/util/errors.js';
import { loadNative } from '../src/backend/blas.js';
import { adapterText, installWebGPU } from '../src/backend/webgpu.js';
import { run } from '../src/cli/main.js';
import { dataDir } from '../src/data/paths.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface ReferenceOutputs {
  config: Record<string, unknown>;
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  labels: number[];
  loss: number;
  logits: number[][];
  pooled_output: number[][];
  hidden_states: number[][][][];
  grad: Record<string, number | number[] | number[][]>;
  texts: Array<{ text: string; tokens: string[]; ids: number[]; input_ids: number[] }>;
}

/** The torch reference's outputs for the tiny fixtures (scripts/reference/make_fixtures.py). */
export function referenceOutputs(): ReferenceOutputs {
  return JSON.parse(readFileSync(join(FIXTURES, 'tiny-bert-expected.json'), 'utf8')) as ReferenceOutputs;
}

export function flatten(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flatten) : [x as number];
}

/** The largest absolute difference between two equally shaped nested arrays. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = flatten(a);
  const fb = flatten(b);
  if (fa.length !== fb.length) throw new Error(`size mismatch: ${fa.length} vs ${fb.length}`);
  let m = 0;
  for (let i = 0; i < fa.length; i++) m = Math.max(m, Math.abs(fa[i]! - fb[i]!));
  return m;
}

/** Asserts that `fn` throws a TopoprobeError whose message contains every fragment; returns the message. */
export function expectError(fn: () => unknown, ...fragments: string[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return checkCaught(caught, fragments);
}

/** The same for a promise that must reject. */
export async function expectRejects(promise: Promise<unknown>, ...fragments: string[]): Promise<string> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  return checkCaught(caught, fragments);
}

function checkCaught(caught: unknown, fragments: string[]): string {
  expect(caught, 'expected an error').to.be.instanceOf(TopoprobeError);
  const message = (caught as Error).message;
  for (const f of fragments) expect(message).to.include(f);
  return message;
}

/**
 * Whether the native kernels are built. With TOPOPROBE_REQUIRE_NATIVE=1 (as in CI) their absence is an
 * error rather than a reason to skip, so the fast path cannot go untested silently.
 */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch (err) {
    if (process.env.TOPOPROBE_REQUIRE_NATIVE === '1') throw err;
    return false;
  }
}

let webgpuChecked: { ok: boolean; reason: string } | undefined;

/**
 * Whether a WebGPU adapter is present (a software one counts: CI gets SwiftShader), and why not. With
 * TOPOPROBE_REQUIRE_WEBGPU=1 (as in CI) its absence is an error, so the GPU path cannot go untested silently.
 */
export async function webgpuAvailable(): Promise<{ ok: boolean; reason: string }> {
  if (!webgpuChecked) {
    try {
      const adapter = await installWebGPU();
      webgpuChecked = { ok: true, reason: adapterText(adapter) };
    } catch (err) {
      webgpuChecked = { ok: false, reason: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
    }
  }
  if (!webgpuChecked.ok && process.env.TOPOPROBE_REQUIRE_WEBGPU === '1') throw new Error(`TOPOPROBE_REQUIRE_WEBGPU=1 but webgpu is not available: ${webgpuChecked.reason}`);
  return webgpuChecked;
}

/**
 * The backends that run here, for tests that must hold on each: webgpu too where an adapter is present
 * (the tests on it read tensors asynchronously). Where it is not, the reason is printed once.
 */
export async function testBackends(): Promise<Array<'cpu' | 'wasm' | 'blas' | 'webgpu'>> {
  const gpu = await webgpuAvailable();
  if (!gpu.ok && !reported) {
    reported = true;
    process.stderr.write(`  (webgpu tests not run here: ${gpu.reason})\n`);
  }
  return ['cpu', 'wasm', ...(nativeAvailable() ? (['blas'] as const) : []), ...(gpu.ok ? (['webgpu'] as const) : [])];
}
let reported = false;

/** Runs the CLI in-process, capturing what it writes to stdout and stderr. */
export async function cli(args: string[], env: Record<string, string | undefined> = {}, backend = 'cpu'): Promise<{ code: number; stdout: string; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    const code = await run(['--log-level', 'silent', '--backend', backend, ...args]);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}


/** Whether the data directory has these files (relative paths); tests on real data skip otherwise. */
export function haveData(...files: string[]): boolean {
  return files.every((f) => existsSync(join(dataDir(), f)));
}
