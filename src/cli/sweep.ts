/** `topoprobe sweep`: expand a sweep config into runs and execute them (see src/sweep/). */
import type { CommandModule } from 'yargs';
import { progressBar } from './progress.js';
import { join, resolve } from 'node:path';
import { loadConfig } from '../util/config.js';
import { sweepConfigSchema, planRuns, basePath, validateRuns, overrideOrigin } from '../sweep/config.js';
import { initManifest, manifestPath, readManifest, runPaths } from '../sweep/manifest.js';
import { executeSweep, signalExitCode } from '../sweep/executor.js';
import { createLogger } from '../util/log.js';
import { TopoprobeError } from '../util/errors.js';
import { LOG_FILE } from '../util/run-folder.js';
import { setExitCode } from './exit-code.js';
import { existsSync } from 'node:fs';

interface Args {
  config?: string;
  worker?: string;
  'dry-run': boolean;
  workers?: number;
  retries?: number;
  backend?: string;
  threads?: number;
  'data-dir'?: string;
  'log-level': string;
}

const fmtEta = (s: number | null) => (s === null ? '?' : s > 3600 ? `${(s / 3600).toFixed(1)} h` : s > 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

export const sweepCommand: CommandModule<object, Args> = {
  command: 'sweep',
  describe: 'Run an ablation grid of fine-tuning runs (submodules x weights x seeds, plus the baseline) in a local worker pool',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'A sweep config (YAML), e.g. configs/sweeps/cola-layers.yaml' })
      .option('worker', { type: 'string', describe: 'Join an existing sweep folder as a worker (claims pending runs)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the expanded runs without running them' })
      .option('workers', { type: 'number', describe: 'Runs in parallel (default: one per two cores)' })
      .option('retries', { type: 'number', describe: 'Tries again for a failed run (default: the config\'s, 1)' })
      .example('$0 sweep --config configs/sweeps/cola-layers.yaml --dry-run', '')
      .example('$0 sweep --worker runs/sweeps/cola-layers', '') as never,
  handler: async (args) => {
    if (!args.config && !args.worker) throw new TopoprobeError('give --config (plan and run a sweep) or --worker (join a sweep folder)');
    if (args.workers !== undefined && !(Number.isInteger(args.workers) && args.workers > 0)) throw new TopoprobeError(`--workers must be a positive integer (got ${args.workers})`);
    let sweepDir: string;
    let retries = args.retries ?? 1;
    let workers = args.workers;
    if (args.config) {
      const config = loadConfig(args.config, sweepConfigSchema);
      const base = basePath(args.config, config);
      if (!existsSync(base)) throw new TopoprobeError(`${args.config}: base: ${base} not found`);
      const planned = planRuns(config);
      // Every run's config is checked before anything is created or started.
      validateRuns(base, planned, args.config, overrideOrigin(config));
      if (args['dry-run']) {
        process.stdout.write(`${planned.length} runs (base ${base}):\n`);
        for (const r of planned) process.stdout.write(`  ${r.name.padEnd(36)} ${r.overrides.join(' ')}\n`);
        return;
      }
      sweepDir = resolve(config.out_dir, config.name);
      initManifest(sweepDir, config.name, resolve(args.config), base, planned);
      retries = args.retries ?? config.retries;
      workers = args.workers ?? config.workers;
    } else {
      sweepDir = resolve(args.worker!);
      const m = readManifest(sweepDir);
      if (!existsSync(m.base)) throw new TopoprobeError(`${manifestPath(sweepDir)}: base: ${m.base} not found`);
      const todo = m.runs.filter((r) => r.status !== 'completed');
      validateRuns(m.base, todo, manifestPath(sweepDir), (k) => `runs' override ${k}`);
      if (args['dry-run']) {
        process.stdout.write(`${todo.length} of ${m.runs.length} runs to do (base ${m.base}):\n`);
        for (const r of todo) process.stdout.write(`  ${r.name.padEnd(36)} ${r.status.padEnd(10)} ${r.overrides.join(' ')}\n`);
        return;
      }
    }
    const log = createLogger({ level: args['log-level'], file: join(sweepDir, `sweep-${process.pid}.log.jsonl`) });
    const runArgs = [
      ...(args.backend ? ['--backend', args.backend] : []),
      ...(args['data-dir'] ? ['--data-dir', args['data-dir']] : []),
    ];
    const bar = progressBar(' sweep [{bar}] {value}/{total} done | {running} running | {failed} failed | ETA {eta_h}');
    let started = false;
    const { runs, stoppedBy } = await executeSweep(sweepDir, {
      workers, retries, log, runArgs,
      onProgress: (p) => {
        if (!started) {
          bar.start(p.total, p.done, { running: p.running, failed: p.failed, eta_h: fmtEta(p.eta) });
          started = true;
        }
        bar.update(p.done, { running: p.running, failed: p.failed, eta_h: fmtEta(p.eta) });
      },
    });
    if (started) bar.stop();
    const failed = runs.filter((r) => r.status === 'failed');
    const left = runs.filter((r) => r.status === 'pending' || r.status === 'running');
    process.stdout.write(`${runs.filter((r) => r.status === 'completed').length}/${runs.length} runs completed, ${failed.length} failed (${sweepDir})\n`);
    for (const r of failed) {
      const p = runPaths(sweepDir, r);
      const logs = [p.log, join(p.dir, LOG_FILE)].filter((f) => existsSync(f));
      process.stdout.write(`  failed: ${r.name} after ${r.attempts} attempts: ${(r.error ?? '').split('\n').pop()}\n          logs: ${logs.join(', ') || '(none)'}\n`);
    }
    if (stoppedBy) {
      process.stdout.write(`stopped by ${stoppedBy}: ${left.length} runs left (interrupted ones continue from their checkpoints); continue with: topoprobe sweep --worker ${sweepDir}\n`);
      setExitCode(signalExitCode(stoppedBy));
    } else {
      if (left.length) process.stdout.write(`${left.length} runs are held by workers on other hosts: ${left.map((r) => r.name).join(', ')}\n`);
      if (failed.length) setExitCode(1);
    }
  },
};
