/**
 * The `topoprobe` command line: a thin layer over the library. Each command lives in its own file and
 * registers itself here. User errors (TopoprobeError) print their message and exit with status 2, as do
 * file-system errors (no space, read-only, permission denied, ...) that reach the top: one line naming
 * the path and the cause, no stack.
 */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { TopoprobeError, describeSystemError, findSystemError } from '../util/errors.js';
import { createLogger, closeLogger } from '../util/log.js';
import { BACKEND_NAMES, parseThreads } from '../backend/index.js';
import { hiddenStatesCommand } from './hidden-states.js';
import { benchCommand } from './bench.js';
import { measureCommand } from './measure.js';
import { dataCommand } from './data.js';
import { trainCommand } from './train.js';
import { compareCommand } from './compare.js';
import { sweepCommand } from './sweep.js';
import { pretrainCommand } from './pretrain.js';
import { inspectCommand } from './inspect.js';
import { takeExitCode } from './exit-code.js';

export interface GlobalArgs {
  backend?: string;
  threads?: number;
  'log-level': string;
  'data-dir'?: string;
}

const COMMANDS: ReadonlyArray<CommandModule<never, never>> = [
  hiddenStatesCommand,
  benchCommand,
  measureCommand,
  dataCommand,
  trainCommand,
  compareCommand,
  sweepCommand,
  pretrainCommand,
  inspectCommand,
] as never;

/** The command names, e.g. `train` of `train [options]`. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map((c) => String(Array.isArray(c.command) ? c.command[0] : c.command).split(/\s/)[0]!);

/** The global options that take a value (the next word, unless given as `--name=value`). */
const VALUED_GLOBALS = new Set(['--backend', '--threads', '--log-level', '--data-dir']);

/** The words of `argv` that are not options or global options' values: the command as typed, then its words. */
export function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (VALUED_GLOBALS.has(a)) i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  return words;
}

/**
 * The message for a yargs failure. An unknown command names itself and the nearest command when one is
 * close (yargs' recommendCommands says `Did you mean train?`), else the commands there are.
 */
export function failureMessage(msg: string, argv: readonly string[]): string {
  const words = commandWords(argv);
  const suggestion = /^Did you mean (.+)\?$/.exec(msg)?.[1];
  if (suggestion !== undefined) {
    // At the top level the command word; under a known command (`data donwload`) the word after it.
    const word = COMMAND_NAMES.includes(words[0] ?? '') ? words[1] : words[0];
    return `unknown command${word !== undefined ? ` "${word}"` : ''}: did you mean ${suggestion}? (see --help)`;
  }
  const word = words[0];
  if (word !== undefined && !COMMAND_NAMES.includes(word) && /^Unknown arguments?: /.test(msg)) {
    return `unknown command "${word}" (the commands are ${COMMAND_NAMES.join(', ')}; see --help)`;
  }
  return msg;
}

function parser(argv: string[]): Argv<GlobalArgs> {
  let y = yargs(argv)
    .scriptName('topoprobe')
    .usage('$0 <command> [options]')
    .option('backend', {
      type: 'string',
      choices: BACKEND_NAMES as unknown as string[],
      describe: 'Tensor backend (default: $TOPOPROBE_BACKEND, else auto: node-gpu, webgpu on a hardware GPU, node, blas, wasm, cpu)',
    })
    .option('threads', {
      type: 'string',
      // Parsed here (not as a yargs number, which turns `abc` into NaN) so an error can show the value typed.
      coerce: (v: unknown) => parseThreads(Array.isArray(v) ? String(v[v.length - 1]) : String(v), '--threads'),
      describe: 'Threads for the native (blas) kernels, a positive integer (default $TOPOPROBE_THREADS, else every core)',
    })
    .option('log-level', { type: 'string', default: process.env.TOPOPROBE_LOG_LEVEL ?? 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], describe: 'Console log level' })
    .option('data-dir', { type: 'string', describe: 'Data directory (default: $TOPOPROBE_DATA_DIR, else ../shared/data, else ~/.cache/topoprobe/data)' })
    .middleware((args) => {
      createLogger({ level: args['log-level'] });
    });
  for (const c of COMMANDS) y = y.command(c as never);
  return y
    .demandCommand(1, 'Name a command (see --help).')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      // yargs reports its own usage errors, and an option's coerce that threw (its message kept, the error
      // not), as a YError: bad input too.
      if (err?.name === 'YError') throw new TopoprobeError(failureMessage(err.message, argv), { cause: err });
      throw err ?? new TopoprobeError(failureMessage(msg, argv));
    }) as unknown as Argv<GlobalArgs>;
}

/**
 * The one line `run` prints for an error that is the user's or the machine's, not a bug: a
 * TopoprobeError's message, or a file-system error (its own or a cause's) described by path and cause.
 * Null for anything else, which keeps its stack.
 */
export function errorLine(err: unknown): string | null {
  if (err instanceof TopoprobeError) return err.message;
  const sys = findSystemError(err);
  return sys ? describeSystemError(sys) : null;
}

/** Runs the CLI on `argv` and returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  takeExitCode();
  let code: number;
  try {
    await parser(argv).parseAsync();
    code = takeExitCode();
  } catch (err) {
    const message = errorLine(err);
    if (message === null) {
      await closeLogger().catch(() => undefined);
      throw err;
    }
    process.stderr.write(`topoprobe: ${message}\n`);
    code = 2;
  }
  try {
    await closeLogger();
  } catch (err) {
    // Flushing the log can itself meet a full or read-only disk.
    const message = errorLine(err);
    if (message === null) throw err;
    process.stderr.write(`topoprobe: ${message}\n`);
    code = 2;
  }
  return code;
}
