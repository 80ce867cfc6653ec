/** `topoprobe pretrain`: masked-language-model pretraining on plain-text files (see src/train/pretrain.ts). */
import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { startBackend, type BackendArgs } from './common.js';
import { resumeOfFinished, runConfig, withRunHooks, type RunArgs } from './run-hooks.js';
import { setExitCode } from './exit-code.js';
import { timestampedName } from '../util/run-folder.js';
import { pretrainConfigSchema } from '../train/pretrain-config.js';
import { runPretrain } from '../train/pretrain.js';

interface Args extends BackendArgs, RunArgs {
  'data-dir'?: string;
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
    if (resumeOfFinished(args)) return;
    const config = runConfig(args, pretrainConfigSchema);
    await startBackend(args);
    const name = config.name ?? timestampedName('pretrain');
    const runDir = args.resume ? resolve(args.resume) : resolve(config.out_dir, name);
    const result = await withRunHooks({ name, runDir, lossLabel: 'MLM loss' }, args, (hooks) =>
      runPretrain({ ...config, name }, hooks, { dataDir: args['data-dir'], resume: args.resume }),
    );
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
