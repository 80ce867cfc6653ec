/** `topoprobe hidden-states`: dump every submodule's hidden states for some inputs as JSON. */
import type { CommandModule } from 'yargs';
import { startBackend, type BackendArgs } from './common.js';
import { loadModel } from '../model/load.js';
import { hiddenStates } from '../model/encode.js';
import type { EncodedSequence } from '../data/batch.js';
import { writeJsonAtomic } from '../util/fs.js';
import { TopoprobeError } from '../util/errors.js';
import { getLogger } from '../util/log.js';
import { downloadProgress } from './progress.js';

interface Args extends BackendArgs {
  'data-dir'?: string;
  model: string;
  text?: string[];
  pair?: string[];
  ids?: string[];
  out: string;
  truncate: boolean;
}

/** Parses one `--ids` value ("101,7592,102"), naming the flag occurrence on error. */
export function parseIdList(value: string, index: number): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new TopoprobeError(`--ids #${index + 1} "${value}": expected comma-separated non-negative integers, e.g. 101,7592,102`);
  }
  return parts.map(Number);
}

export const hiddenStatesCommand: CommandModule<object, Args> = {
  command: 'hidden-states',
  describe: 'Write the hidden states of every submodule (embeddings + each layer) and the pooled output for some inputs',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Model folder, hub id (e.g. bert-large-uncased) or builtin:tiny' })
      .option('text', { type: 'string', array: true, describe: 'An input text (repeatable); tokenized with the model\'s tokenizer' })
      .option('pair', { type: 'string', array: true, describe: 'Second segment for the --text of the same position (token type 1)' })
      .option('ids', { type: 'string', array: true, describe: 'An input as comma-separated word-piece ids, specials included (repeatable)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output JSON file' })
      .option('truncate', { type: 'boolean', default: false, describe: 'Cut texts longer than the model allows instead of failing' })
      .example('$0 hidden-states --model builtin:tiny --text "Hello, world!" --out h.json', '')
      .example('$0 hidden-states --model ./my-bert --ids 101,7592,102 --ids 101,102 --out h.json', '') as never,
  handler: async (args) => {
    const texts = args.text ?? [];
    const pairs = args.pair ?? [];
    const idLists = (args.ids ?? []).map(parseIdList);
    if (texts.length + idLists.length === 0) throw new TopoprobeError('give at least one input with --text or --ids');
    if (pairs.length > texts.length) throw new TopoprobeError(`--pair given ${pairs.length} times but --text only ${texts.length} times`);
    await startBackend(args);
    const progress = downloadProgress();
    const { model, tokenizer } = await loadModel(args.model, { dataDir: args['data-dir'], hub: { onProgress: progress.onProgress } }).finally(progress.stop);
    try {
      const maxLength = model.config.max_position_embeddings;
      const seqs: EncodedSequence[] = [
        ...texts.map((t, i) => tokenizer.encode(t, pairs[i], { maxLength, truncation: args.truncate })),
        ...idLists.map((ids) => ({ ids })),
      ];
      const inputs = await hiddenStates(model, seqs, tokenizer.padId);
      writeJsonAtomic(args.out, {
        model: args.model,
        num_hidden_layers: model.config.num_hidden_layers,
        hidden_size: model.config.hidden_size,
        inputs: inputs.map((r, i) => (i < texts.length ? { text: texts[i], ...(pairs[i] !== undefined ? { pair: pairs[i] } : {}), ...r } : r)),
      }, 0);
      getLogger().info(`wrote hidden states of ${inputs.length} input(s), ${model.config.num_hidden_layers + 1} submodules each, to ${args.out}`);
    } finally {
      model.dispose();
    }
  },
};
