/** `topoprobe train`: fine-tune on a GLUE task with optional probe guidance (see src/train/trainer.ts). */
import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { startBackend, type BackendArgs } from './common.js';
import { resumeOfFinished, runConfig, withRunHooks, type RunArgs } from './run-hooks.js';
import { trainConfigSchema, type TrainConfig } from '../train/config.js';
import { runTrain, type TrainResult } from '../train/trainer.js';
import { setExitCode } from './exit-code.js';
import { timestampedName } from '../util/run-folder.js';

interface Args extends BackendArgs, RunArgs {
  baseline: boolean;
  'data-dir'?: string;
}

async function runOne(config: TrainConfig, args: Args, resume?: string): Promise<TrainResult> {
  const name = config.name ?? timestampedName(config.task);
  const runDir = resume ? resolve(resume) : resolve(config.out_dir, name);
  return withRunHooks({ name, runDir, lossLabel: 'loss' }, args, (hooks) => runTrain({ ...config, name }, hooks, { dataDir: args['data-dir'], resume }));
}

const show = (x: number | null) => (x === null ? '-' : x.toFixed(4));

/** Whether the run ended collapsed (results.json's verdict; src/train/monitor.ts), in words. */
function collapseNote(r: TrainResult): string {
  if (r.collapsed === undefined || !r.collapse) return '';
  if (!r.collapsed) return ', not collapsed';
  const why = [r.collapse.constant_predictor ? 'one predicted class' : '', ...r.collapse.star_tree.map((k) => `${k} star tree`)].filter(Boolean).join(', ');
  return `, COLLAPSED (${why})`;
}

export const trainCommand: CommandModule<object, Args> = {
  command: 'train',
  describe: 'Fine-tune a BERT on a GLUE task, optionally guided by tree topological probes',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'A train config (YAML), e.g. configs/cola/paper.yaml' })
      .option('set', { type: 'string', array: true, describe: 'Override a config key: --set seed=5 --set guidance[0].layer=12' })
      .option('name', { type: 'string', describe: 'Run folder name (default: the config\'s name, else <task>-<time>)' })
      .option('resume', { type: 'string', describe: 'Continue an interrupted run folder from its last checkpoint' })
      .option('baseline', { type: 'boolean', default: false, describe: 'Also run the same config without guidance and print both scores' })
      .option('stop-after', { type: 'number', hidden: true, describe: 'Stop after N updates as if interrupted (testing resume)' })
      .example('$0 train --config configs/quickstart.yaml --baseline', '')
      .example('$0 train --config configs/cola/paper.yaml --set seed=5', '')
      .example('$0 train --resume runs/cola-paper-seed1', '') as never,
  handler: async (args) => {
    if (resumeOfFinished(args)) return;
    const config = runConfig(args, trainConfigSchema);
    await startBackend(args);
    const guided = await runOne(config, args, args.resume);
    const rows: Array<[string, TrainResult]> = [[guided.guidance.length ? 'guided' : 'run', guided]];
    if (args.baseline && !args.resume && guided.status !== 'interrupted') {
      const name = `${guided.runDir.split('/').pop()}-baseline`;
      rows.push(['baseline (no guidance)', await runOne({ ...config, name, guidance: [], select: undefined }, args)]);
    }
    for (const [label, r] of rows) {
      process.stdout.write(`${label.padEnd(24)} ${r.task} ${r.metric}: best ${show(r.best)} (epoch ${r.best_epoch ?? '-'}), final ${show(r.final)}${collapseNote(r)}  [${r.status}, ${r.steps} updates, ${r.wall_time_s.toFixed(0)} s, ${r.runDir}]\n`);
    }
    if (guided.status === 'interrupted') {
      process.stdout.write(`interrupted after ${guided.steps} updates; continue with: topoprobe train --resume ${guided.runDir}\n`);
      setExitCode(130);
    }
  },
};
