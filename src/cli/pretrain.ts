/** `topoprobe pretrain`: masked-language-model pretraining on plain-text files (see src/train/pretrain.ts). */
import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { progressBar } from './progress.js';
import { startBackend, type BackendArgs } from './common.js';
import { setExitCode } from './main.js';
import { loadConfig } from '../util/config.js';
import { pretrainConfigSchema, type PretrainConfig } from '../train/pretrain-config.js';
import { runPretrain } from '../train/pretrain.js';
import { createLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';

interface Args extends BackendArgs {
  config?: string;
  set?: string[];
  name?: string;
  resume?: string;
  'stop-after'?: number;
  'data-dir'?: string;
  'log-level': string;
}

export const pretrainCommand: CommandModule<object, Args> = {
  command: 'pretrain',
  describe: 'Pretrain a BERT with the masked-language-model objective on plain-text files',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'A pretrain config (YAML), e.g. configs/pretrain/mini.yaml' })
      .option('set', { type: 'string', array: true, describe: 'Override a config key: --set max_steps=1000' })
      .option('name', { type: 'string', describe: 'Run folder name (default: the config\'s name, else pretrain-<time>)' })
      .option('resume', { type: 'string', describe: 'Continue an interrupted run folder from its last checkpoint' })
      .option('stop-after', { type: 'number', hidden: true, describe: 'Stop after N updates as if interrupted (testing resume)' })
      .example('$0 pretrain --config configs/pretrain/mini.yaml', '')
      .example('$0 pretrain --resume runs/pretrain-mini', '') as never,
  handler: async (args) => {
    if (!args.config && !args.resume) throw new TopoprobeError('give --config (a new run) or --resume (an interrupted run folder)');
    let config: PretrainConfig;
    if (args.resume) {
      const saved = join(resolve(args.resume), 'config.yaml');
      if (!existsSync(saved)) throw new TopoprobeError(`--resume ${args.resume}: no config.yaml in that folder`);
      config = loadConfig(saved, pretrainConfigSchema);
    } else {
      config = loadConfig(args.config!, pretrainConfigSchema, args.set ?? []);
      if (args.name) config = { ...config, name: args.name };
    }
    await startBackend(args);
    const name = config.name ?? `pretrain-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const runDir = args.resume ? resolve(args.resume) : resolve(config.out_dir, name);
    const log = createLogger({ level: args['log-level'], file: join(runDir, 'log.jsonl') });
    const bar = progressBar(` ${name} [{bar}] {value}/{total} updates | epoch {epoch} | MLM loss {loss} | ETA {eta_formatted}`);
    let started = false;
    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.stderr.write('\ntopoprobe: interrupted; saving a checkpoint (Ctrl-C again to quit without it)\n');
    };
    process.on('SIGINT', onSigint);
    let result;
    try {
      result = await runPretrain({ ...config, name }, {
        log,
        stopAfter: args['stop-after'],
        shouldStop: () => interrupted,
        onProgress: (done, total, info) => {
          if (!started) {
            bar.start(total, done - 1, { epoch: info.epoch, loss: '-' });
            started = true;
          }
          bar.update(done, { epoch: info.epoch, loss: info.loss.toFixed(4) });
        },
      }, { dataDir: args['data-dir'], resume: args.resume });
    } finally {
      process.off('SIGINT', onSigint);
      if (started) bar.stop();
    }
    const s = (x: { loss: number; accuracy: number }) => `MLM loss ${x.loss.toFixed(4)}, masked accuracy ${x.accuracy.toFixed(4)}`;
    process.stdout.write(`held-out after ${result.steps} updates: ${s(result.held_out)}\n`);
    if (result.initial) process.stdout.write(`held-out before training:   ${s(result.initial)}\n`);
    process.stdout.write(`unigram baseline:           ${s(result.unigram)}\n`);
    if (result.status === 'interrupted') {
      process.stdout.write(`interrupted after ${result.steps} updates; continue with: topoprobe pretrain --resume ${result.runDir}\n`);
      setExitCode(130);
    } else {
      process.stdout.write(`model: ${result.modelDir} (${result.parameters} parameters, vocabulary ${result.vocab_size}; ${result.wall_time_s.toFixed(0)} s on ${result.backend})\n`);
    }
  },
};
