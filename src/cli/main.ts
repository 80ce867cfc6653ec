/**
 * The `topoprobe` command line: a thin layer over the library. Each command lives in its own file and
 * registers itself here. User errors (TopoprobeError) print their message and exit with status 2.
 */
import yargs, { type Argv } from 'yargs';
import { TopoprobeError } from '../util/errors.js';
import { createLogger, closeLogger } from '../util/log.js';
import { BACKEND_NAMES } from '../backend/index.js';
import { hiddenStatesCommand } from './hidden-states.js';
import { benchCommand } from './bench.js';
import { measureCommand } from './measure.js';
import { dataCommand } from './data.js';
import { trainCommand } from './train.js';
import { compareCommand } from './compare.js';
import { sweepCommand } from './sweep.js';
import { pretrainCommand } from './pretrain.js';
import { takeExitCode } from './exit-code.js';

export interface GlobalArgs {
  backend?: string;
  threads?: number;
  'log-level': string;
  'data-dir'?: string;
}

function parser(argv: string[]): Argv<GlobalArgs> {
  return yargs(argv)
    .scriptName('topoprobe')
    .usage('$0 <command> [options]')
    .option('backend', {
      type: 'string',
      choices: BACKEND_NAMES as unknown as string[],
      describe: 'Tensor backend (default: $TOPOPROBE_BACKEND, else auto: node-gpu, node, blas, wasm, cpu)',
    })
    .option('threads', { type: 'number', describe: 'Threads for the native (blas) kernels (default $TOPOPROBE_THREADS, else every core)' })
    .option('log-level', { type: 'string', default: process.env.TOPOPROBE_LOG_LEVEL ?? 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], describe: 'Console log level' })
    .option('data-dir', { type: 'string', describe: 'Data directory (default: $TOPOPROBE_DATA_DIR, else ../shared/data, else ~/.cache/topoprobe/data)' })
    .middleware((args) => {
      createLogger({ level: args['log-level'] });
    })
    .command(hiddenStatesCommand)
    .command(benchCommand)
    .command(measureCommand)
    .command(dataCommand)
    .command(trainCommand)
    .command(compareCommand)
    .command(sweepCommand)
    .command(pretrainCommand)
    .demandCommand(1, 'Name a command (see --help).')
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      throw err ?? new TopoprobeError(msg);
    }) as unknown as Argv<GlobalArgs>;
}

/** Runs the CLI on `argv` and returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  takeExitCode();
  try {
    await parser(argv).parseAsync();
    return takeExitCode();
  } catch (err) {
    if (err instanceof TopoprobeError) {
      process.stderr.write(`topoprobe: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await closeLogger();
  }
}
