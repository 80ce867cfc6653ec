/** `topoprobe measure`: X_sp, X_ssp and X_essp per submodule (see src/probe/measure.ts). */
import type { CommandModule } from 'yargs';
import { progressBars } from './progress.js';
import type cliProgress from 'cli-progress';
import { join, resolve } from 'node:path';
import { startBackend, type BackendArgs } from './common.js';
import { loadConfig } from '../util/config.js';
import { measureConfigSchema } from '../probe/config.js';
import { replotMeasure, runMeasure } from '../probe/measure.js';
import { closeLogger, createLogger } from '../util/log.js';
import { existsSync } from 'node:fs';
import { TopoprobeError } from '../util/errors.js';
import { LOG_FILE, checkRunName, removeStubRun, timestampedName } from '../util/run-folder.js';

interface Args extends BackendArgs {
  config?: string;
  control?: string;
  plot?: string;
  set?: string[];
  name?: string;
  'data-dir'?: string;
  'log-level': string;
}

export const measureCommand: CommandModule<object, Args> = {
  command: 'measure',
  describe: 'Measure X_sp, X_ssp, X_essp and the distance probe (structural probes) for every selected submodule of a model',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'A measure config (YAML), e.g. configs/measure/quick.yaml' })
      .option('control', { type: 'string', describe: 'A measure run to draw beside this one in the plot (the reinitialize: true control); sets the config key "control"' })
      .option('plot', { type: 'string', describe: 'Only redraw this measure run\'s plot (with --control beside it); measures nothing' })
      .option('set', { type: 'string', array: true, describe: 'Override a config key: --set epochs=5 --set submodules=[0,12,24]' })
      .option('name', { type: 'string', describe: 'Run folder name (default: the config\'s name, else measure-<time>)' })
      .example('$0 measure --config configs/measure/quick.yaml', '')
      .example('$0 measure --config configs/measure/bert-large-uncased.yaml --set mode=paper', '')
      .example('$0 measure --plot runs/mini-measure --control runs/mini-measure-reinit', '') as never,
  handler: async (args) => {
    if (args.plot === undefined && args.config === undefined) throw new TopoprobeError('give --config (to measure) or --plot RUN (to redraw a run\'s plot)');
    if (args.plot !== undefined && args.config !== undefined) throw new TopoprobeError('--plot redraws an existing run; it takes no --config');
    if (args.plot !== undefined) {
      process.stdout.write(`plot: ${await replotMeasure(args.plot, args.control)}\n`);
      return;
    }
    const config = loadConfig(args.config!, measureConfigSchema, args.set ?? []);
    if (args.control !== undefined) config.control = args.control;
    if (args.name !== undefined) checkRunName(args.name, '--name');
    else if (config.name !== undefined) checkRunName(config.name, `${args.config}: name`);
    const name = args.name ?? config.name ?? timestampedName('measure');
    const runDir = resolve(config.out_dir, name);
    const existed = existsSync(runDir);
    await startBackend(args);
    const log = createLogger({ level: args['log-level'], file: join(runDir, LOG_FILE) });
    const bars = progressBars(' {phase} [{bar}] {value}/{total}');
    const phaseBars = new Map<string, cliProgress.SingleBar>();
    try {
      const result = await runMeasure({ ...config, name }, {
        log,
        onProgress: (phase, done, total) => {
          let bar = phaseBars.get(phase);
          if (!bar) {
            bar = bars.create(total, 0, { phase: phase === 'encode' ? 'encoding sentences' : 'training probes   ' });
            phaseBars.set(phase, bar);
          }
          bar.update(done);
        },
      }, { dataDir: args['data-dir'] });
      bars.stop();
      phaseBars.clear();
      const fmt = (x: number | null) => (x === null ? '   -  ' : x.toFixed(4));
      process.stdout.write(`submodule   x_sp    x_ssp   x_essp  spearman root_acc   uuas  dist_spr\n`);
      for (const r of result.rows) {
        process.stdout.write(`${String(r.submodule).padStart(9)}  ${fmt(r.x_sp)}  ${fmt(r.x_ssp)}  ${fmt(r.x_essp)}  ${fmt(r.spearman)}  ${fmt(r.root_acc)}  ${fmt(r.uuas)}  ${fmt(r.distance_spearman)}\n`);
      }
      process.stdout.write(`results: ${result.runDir}\n`);
    } catch (err) {
      await closeLogger();
      removeStubRun(runDir, existed);
      throw err;
    } finally {
      if (phaseBars.size > 0) bars.stop();
    }
  },
};
