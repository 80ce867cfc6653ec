/** `topoprobe compare`: fine-tuning runs grouped by condition, with seed statistics against a baseline (see src/compare/compare.ts). */
import type { CommandModule } from 'yargs';
import { runCompare, type Which } from '../compare/compare.js';

interface Args {
  paths: string[];
  metric: Which;
  baseline?: string;
  out?: string;
  paper?: string[];
  measure?: string;
}

const f4 = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const fp = (x: number | null) => (x === null ? '-' : x < 1e-4 ? x.toExponential(1) : x.toPrecision(3));

export const compareCommand: CommandModule<object, Args> = {
  command: 'compare <paths..>',
  describe: 'Compare fine-tuning runs by condition (mean, CI, tests against the baseline) and plot them',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, describe: 'A sweep folder (with manifest.json), or run folders' })
      .option('metric', { type: 'string', choices: ['best', 'final'], default: 'best', describe: 'Compare each run\'s best or final score of the task metric' })
      .option('baseline', { type: 'string', describe: 'The baseline: a condition key, or a run name / folder (globs allowed) of that condition (default: the condition without guidance)' })
      .option('out', { type: 'string', describe: 'Output folder (default: the sweep folder, else ./comparison)' })
      .option('paper', { type: 'string', array: true, describe: 'The authors\' published result files (or folders of them): TAB-separated key/value blocks, see src/compare/paper.ts' })
      .option('measure', { type: 'string', describe: 'A measure run folder: plot X_ssp of the guided submodules beside the scores' })
      .example('$0 compare sweeps/cola-layers', '')
      .example('$0 compare runs/cola-base-s1 runs/cola-l16-s1 --metric final --out cmp', '')
      .example('$0 compare sweeps/cola-layers --paper paper/cola.tsv --measure runs/measure-bert-large', '') as never,
  handler: async (args) => {
    const { comparison: c, files } = await runCompare({
      paths: args.paths, metric: args.metric, baseline: args.baseline, out: args.out, paper: args.paper, measure: args.measure,
    });
    process.stdout.write(`${c.task}, ${c.metric} (${c.which}); baseline: ${c.baselines.length ? c.baselines.join('; ') : 'none'}\n`);
    const width = Math.max(9, ...c.conditions.map((r) => r.key.length));
    process.stdout.write(`${'condition'.padEnd(width)}   n    mean     std    diff  test               p_welch  (holm)  p_rank  (holm)  collapsed\n`);
    for (const r of c.conditions) {
      process.stdout.write(
        `${r.key.padEnd(width)} ${String(r.n).padStart(3)}  ${f4(r.mean).padStart(7)} ${f4(r.std).padStart(7)} ${f4(r.diff).padStart(7)}  ${(r.test ?? '-').padEnd(17)} ${fp(r.p_welch).padStart(7)} ${fp(r.p_welch_holm).padStart(7)} ${fp(r.p_rank).padStart(7)} ${fp(r.p_rank_holm).padStart(7)}  ${r.collapsed}\n`,
      );
    }
    for (const m of c.missing) process.stdout.write(`missing: ${m.name} (${m.reason})\n`);
    process.stdout.write(`written: ${files.csv}, ${files.json}, ${files.md}, ${files.svg}, ${files.png}\n`);
  },
};
