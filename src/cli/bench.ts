/** `topoprobe bench`: time training steps of a BERT of a given size (see src/train/bench.ts). */
import type { CommandModule } from 'yargs';
import { startBackend, type BackendArgs } from './common.js';
import { benchTrainingStep, benchGemm, type BenchOptions } from '../train/bench.js';
import { getLogger } from '../util/log.js';
import { adapterText } from '../backend/webgpu.js';
import { check } from '../util/errors.js';

type BenchArgs = Omit<BenchOptions, 'onStep'> & BackendArgs & { gemm: boolean };

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Time full training steps (forward, backward, AdamW) and print JSON with ms_per_step, tokens_per_s and matmul_tflop_per_s',
  builder: (y) =>
    y
      .option('layers', { type: 'number', default: 2, describe: 'Encoder layers' })
      .option('hidden', { type: 'number', default: 128, describe: 'Hidden size' })
      .option('heads', { type: 'number', default: 2, describe: 'Attention heads' })
      .option('inter', { type: 'number', default: 512, describe: 'Feed-forward (intermediate) size' })
      .option('batch', { type: 'number', default: 8, describe: 'Batch size' })
      .option('seq', { type: 'number', default: 64, describe: 'Sequence length' })
      .option('vocab', { type: 'number', default: 30522, describe: 'Vocabulary size' })
      .option('labels', { type: 'number', default: 2, describe: 'Classifier outputs' })
      .option('warmup', { type: 'number', default: 1, describe: 'Untimed warm-up steps' })
      .option('steps', { type: 'number', default: 3, describe: 'Timed steps (the median is reported)' })
      .option('seed', { type: 'number', default: 0 })
      .option('profile', { type: 'boolean', default: false, describe: 'Also profile one step kernel by kernel (adds "profile" to the JSON)' })
      .option('gemm', { type: 'boolean', default: false, describe: 'Measure matrix-product GFLOP/s instead of training steps' }) as never,
  handler: async (args) => {
    for (const k of ['layers', 'hidden', 'heads', 'inter', 'batch', 'seq', 'vocab', 'labels', 'steps'] as const) {
      check(Number.isInteger(args[k]) && args[k] > 0, `--${k} must be a positive integer (got ${args[k]})`);
    }
    check(Number.isInteger(args.warmup) && args.warmup >= 0, `--warmup must be a non-negative integer (got ${args.warmup})`);
    check(args.hidden % args.heads === 0, `--hidden ${args.hidden} must be a multiple of --heads ${args.heads}`);
    const backend = await startBackend(args);
    if (args.gemm) {
      // On a GPU one product takes well under the queue's round trip: time 20 in a row.
      const chain = backend.name === 'webgpu' || backend.name === 'node-gpu' ? 20 : 1;
      process.stdout.write(JSON.stringify({ backend: backend.name, threads: backend.threads, ...(backend.adapter ? { adapter: adapterText(backend.adapter) } : {}), gemm: await benchGemm(5, chain) }) + '\n');
      return;
    }
    const log = getLogger();
    const { layers, hidden, heads, inter, batch, seq, vocab, labels, warmup, steps, seed, profile } = args;
    const result = await benchTrainingStep({
      layers, hidden, heads, inter, batch, seq, vocab, labels, warmup, steps, seed, profile,
      onStep: ({ step, warmup, ms }) => log.info(`${warmup ? 'warm-up' : 'step'} ${step + 1}: ${ms.toFixed(0)} ms`),
    });
    process.stdout.write(JSON.stringify(result) + '\n');
  },
};
