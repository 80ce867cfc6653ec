/**
 * What the training commands (`train`, `pretrain`) share: the config of a new run or of the run being
 * resumed, and the hooks of a running trainer (pino log in the run folder, a progress bar, and Ctrl-C that
 * finishes the current update, saves checkpoints/last and stops, so `--resume` continues from there).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { progressBar } from './progress.js';
import type { TrainHooks } from '../train/loop.js';
import { loadConfig } from '../util/config.js';
import { closeLogger, createLogger } from '../util/log.js';
import { CONFIG_FILE, LOG_FILE, RESULTS_FILE, checkRunName, isFinished, removeStubRun } from '../util/run-folder.js';
import { TopoprobeError } from '../util/errors.js';

export interface RunArgs {
  config?: string;
  set?: string[];
  name?: string;
  resume?: string;
  'stop-after'?: number;
  'log-level': string;
}

/** The config from --config (with --set and --name), or the resumed run folder's config.yaml. */
export function runConfig<S extends z.ZodType<{ name?: string }>>(args: RunArgs, schema: S): z.infer<S> {
  if (!args.config && !args.resume) throw new TopoprobeError('give --config (a new run) or --resume (an interrupted run folder)');
  if (args.resume) {
    const saved = join(resolve(args.resume), CONFIG_FILE);
    if (!existsSync(saved)) throw new TopoprobeError(`--resume ${args.resume}: no ${CONFIG_FILE} in that folder`);
    return loadConfig(saved, schema);
  }
  const config = loadConfig(args.config!, schema, args.set ?? []);
  if (args.name !== undefined) checkRunName(args.name, '--name');
  else if (config.name !== undefined) checkRunName(config.name, `${args.config}: name`);
  return args.name !== undefined ? { ...config, name: args.name } : config;
}

/** `--resume` of a finished run: says so (it has nothing to do) and returns true. */
export function resumeOfFinished(args: RunArgs): boolean {
  if (!args.resume || !isFinished(resolve(args.resume))) return false;
  process.stdout.write(`${resolve(args.resume)} is a finished run (${RESULTS_FILE} is there); nothing to resume\n`);
  return true;
}

let stopRequested = false;

/**
 * Asks the running trainer to stop as Ctrl-C does (finish the update, save checkpoints/last, exit 130), but
 * without counting as a Ctrl-C: a SIGINT that follows is still the first, not the "quit at once" one. For a
 * sweep's trainer (src/sweep/child.ts), which is told to stop both by its own SIGTERM (Slurm signals every
 * process of a job) and by its worker's SIGINT.
 */
export function requestStop(why: string): void {
  if (!stopRequested) process.stderr.write(`\ntopoprobe: ${why}; saving a checkpoint\n`);
  stopRequested = true;
}

/**
 * Runs a trainer with the CLI's hooks: a log in `runDir`, a progress bar labelled `name` showing the loss
 * as `lossLabel`, `--stop-after`, and Ctrl-C as a stop (a second Ctrl-C quits at once).
 */
export async function withRunHooks<T>(
  run: { name: string; runDir: string; lossLabel: string },
  args: RunArgs,
  work: (hooks: TrainHooks) => Promise<T>,
): Promise<T> {
  const existed = existsSync(run.runDir);
  const log = createLogger({ level: args['log-level'], file: join(run.runDir, LOG_FILE) });
  const bar = progressBar(` ${run.name} [{bar}] {value}/{total} updates | epoch {epoch} | ${run.lossLabel} {loss} | ETA {eta_formatted}`);
  let started = false;
  let sigints = 0;
  const onSigint = () => {
    sigints += 1;
    if (sigints > 1) process.exit(130);
    if (!stopRequested) process.stderr.write('\ntopoprobe: interrupted; saving a checkpoint (Ctrl-C again to quit without it)\n');
    stopRequested = true;
  };
  process.on('SIGINT', onSigint);
  try {
    return await work({
      log,
      stopAfter: args['stop-after'],
      shouldStop: () => stopRequested,
      onProgress: (done, total, info) => {
        if (!started) {
          bar.start(total, done - 1, { epoch: info.epoch, loss: '-' });
          started = true;
        }
        bar.update(done, { epoch: info.epoch, loss: info.loss.toFixed(4) });
      },
    });
  } catch (err) {
    // Refused before the run began (a bad model, data, a finished run): no stub folder is left behind (the
    // log is closed first, or its writer would make the folder again).
    await closeLogger();
    removeStubRun(run.runDir, existed);
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    if (started) bar.stop();
  }
}
