/** `topoprobe data download|list`: fetch the GLUE / UD EWT / vocabulary data, or show what is there (see src/data/download.ts). */
import type { CommandModule } from 'yargs';
import { DATA_ITEMS, dataStatus, downloadData } from '../data/download.js';
import { downloadProgress } from './progress.js';

interface DownloadArgs {
  'data-dir'?: string;
  task: string[];
  force: boolean;
}

interface ListArgs {
  'data-dir'?: string;
}

const KNOWN = DATA_ITEMS.map((i) => i.name).join(', ');

const downloadCommand: CommandModule<object, DownloadArgs> = {
  command: 'download <task...>',
  describe: 'Download data items from their official sources into the data directory',
  builder: (y) =>
    y
      .positional('task', { type: 'string', array: true, describe: `What to download: ${KNOWN}, or all` })
      .option('force', { type: 'boolean', default: false, describe: 'Download again even when the files are already there' })
      .example('$0 data download rte stsb', '')
      .example('$0 data download all --data-dir ./data', '')
      .epilogue('TOPOPROBE_DATA_MIRROR=http://host[/prefix] replaces the scheme and host of every source URL.') as never,
  handler: async (args) => {
    const progress = downloadProgress();
    const results = await downloadData(args.task.map(String), { dataDir: args['data-dir'], force: args.force, onProgress: progress.onProgress }).finally(
      progress.stop,
    );
    for (const r of results) {
      if (r.status === 'skipped') {
        process.stdout.write(`${r.name}: already present, skipped (--force downloads it again)\n`);
        continue;
      }
      process.stdout.write(`${r.name}: downloaded ${r.files.length} file(s)\n`);
      for (const s of r.sources) {
        const check = s.pinned === null ? 'WARNING: not verified: no pinned hash' : 'verified';
        process.stdout.write(`  ${s.url}: ${s.bytes} bytes, sha256 ${s.sha256} (${check})\n`);
      }
    }
    const dir = dataStatus({ dataDir: args['data-dir'] }).dataDir;
    process.stdout.write(`data directory: ${dir}\n`);
  },
};

const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'Show which data items the data directory has, and which files are missing',
  builder: (y) => y as never,
  handler: (args) => {
    const { dataDir, items } = dataStatus({ dataDir: args['data-dir'] });
    process.stdout.write(`data directory: ${dataDir}\n`);
    const width = Math.max(...items.map((i) => i.name.length));
    for (const item of items) {
      const state = item.complete
        ? 'present'
        : item.missing.length === item.files.length
          ? 'missing'
          : `incomplete (${item.missing.length} of ${item.files.length} missing)`;
      process.stdout.write(`${item.name.padEnd(width)}  ${state.padEnd(9)}  ${item.description}\n`);
      if (!item.complete) process.stdout.write(`${' '.repeat(width)}  missing: ${item.missing.join(', ')}\n`);
    }
    const missing = items.filter((i) => !i.complete).map((i) => i.name);
    if (missing.length > 0) process.stdout.write(`get them with: topoprobe data download ${missing.join(' ')}${args['data-dir'] ? ` --data-dir ${dataDir}` : ''}\n`);
  },
};

export const dataCommand: CommandModule<object, object> = {
  command: 'data <command>',
  describe: 'Download the data sets and vocabulary topoprobe reads, or list what the data directory has',
  builder: (y) => y.command(downloadCommand).command(listCommand).demandCommand(1, 'Name a data command: download or list.') as never,
  handler: () => undefined,
};
