/** `topoprobe inspect`: one sentence through a model and a measure run's probes (see src/probe/inspect.ts). */
import type { CommandModule } from 'yargs';
import { startBackend, type BackendArgs } from './common.js';
import { runInspect } from '../probe/inspect.js';
import { getLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';

interface Args extends BackendArgs {
  'data-dir'?: string;
  model: string;
  measure: string;
  text?: string;
  conllu?: string;
  sentence?: string;
  submodules?: string;
  out: string;
}

/** `--submodules 0,4,12` or `0-24` or a mix, naming the flag on error. */
export function parseSubmodules(value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (b < a) throw new TopoprobeError(`--submodules: range ${part} runs backwards`);
      for (let s = a; s <= b; s++) out.push(s);
    } else if (/^\d+$/.test(part)) {
      out.push(Number(part));
    } else {
      throw new TopoprobeError(`--submodules "${value}": expected comma-separated submodules or ranges, e.g. 0,12,24 or 0-24`);
    }
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

export const inspectCommand: CommandModule<object, Args> = {
  command: 'inspect',
  describe: 'Draw one sentence through a measure run\'s probes, per submodule: predicted depths and their tree labels, the distance probe\'s tree, gold tree and distance matrices',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Model folder, hub id or builtin:<name> (normally the measured one)' })
      .option('measure', { type: 'string', demandOption: true, describe: 'A topoprobe measure run folder (its probes are applied)' })
      .option('text', { type: 'string', describe: 'The sentence as text (no gold tree)' })
      .option('conllu', { type: 'string', describe: 'A CoNLL-U file to take the sentence (and its gold tree) from' })
      .option('sentence', { type: 'string', describe: 'With --conllu: the sentence\'s 1-based number in the file, or its sent_id' })
      .option('submodules', { type: 'string', describe: 'Submodules to draw, e.g. 0,12,24 or 0-24 (default: every measured one)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output folder (sub-<i>.svg/png, panel.svg/png, inspect.json)' })
      .example('$0 inspect --model builtin:mini --measure models/mini --text "The cat sat on the mat." --out runs/inspect', '')
      .example('$0 inspect --model builtin:mini --measure runs/mini-measure --conllu ../shared/data/ud-ewt/en_ewt-ud-test.conllu --sentence 5 --out runs/inspect-5', '') as never,
  handler: async (args) => {
    if ((args.text === undefined) === (args.conllu === undefined)) throw new TopoprobeError('give exactly one of --text and --conllu');
    if (args.sentence !== undefined && args.conllu === undefined) throw new TopoprobeError('--sentence goes with --conllu');
    const submodules = args.submodules !== undefined ? parseSubmodules(args.submodules) : undefined;
    await startBackend(args);
    const log = getLogger();
    const result = await runInspect({
      model: args.model, measure: args.measure, text: args.text, conllu: args.conllu, sentence: args.sentence,
      submodules, out: args.out, dataDir: args['data-dir'], log,
    });
    process.stdout.write(`${result.submodules.length} submodule(s) drawn: ${result.outDir} (panel.svg/png, sub-<i>.svg/png, inspect.json)\n`);
  },
};
