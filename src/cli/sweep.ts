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
import { runTask, submitSweep, sweepStatus, type SlurmOptions } from '../sweep/slurm.js';

interface Args {
  config?: string;
  worker?: string;
  executor?: 'local' | 'slurm';
  partition?: string;
  time?: string;
  'cpus-per-task'?: number;
  'gpus-per-task'?: number;
  'array-parallelism'?: number;
  'sbatch-arg'?: string[];
  task?: string;
  index?: number;
  status?: string;
  json: boolean;
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
  describe: 'Run an ablation grid of fine-tuning runs (submodules x weights x seeds, plus the baseline) in a local worker pool or as a Slurm job array',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'A sweep config (YAML), e.g. configs/sweeps/cola-layers.yaml' })
      .option('worker', { type: 'string', describe: 'Continue a sweep folder on this machine, or join it as a second worker here (across machines: --executor slurm)' })
      .option('executor', { type: 'string', choices: ['local', 'slurm'], describe: 'local: a pool of worker processes on this machine; slurm: submit one job array (default: the config\'s executor, local)' })
      .option('partition', { type: 'string', describe: 'Slurm: the partition (slurm.partition)' })
      .option('time', { type: 'string', describe: 'Slurm: each task\'s time limit, e.g. 04:00:00 (slurm.time); a task checkpoints and requeues itself before it' })
      .option('cpus-per-task', { type: 'number', describe: 'Slurm: CPUs per run (slurm.cpus_per_task)' })
      .option('gpus-per-task', { type: 'number', describe: 'Slurm: GPUs per run (slurm.gpus_per_task)' })
      .option('array-parallelism', { type: 'number', describe: 'Slurm: at most this many runs at once (%K; slurm.array_parallelism)' })
      .option('sbatch-arg', { type: 'string', array: true, describe: 'Slurm: more sbatch arguments, e.g. --sbatch-arg=--account=lab (slurm.sbatch_args); repeatable' })
      .option('status', { type: 'string', describe: 'Show each run\'s state in a sweep folder (from its manifest and Slurm\'s queue)' })
      .option('json', { type: 'boolean', default: false, describe: 'With --status: print JSON' })
      .option('task', { type: 'string', hidden: true, describe: 'Run one Slurm array task of a sweep folder (the job script calls it)' })
      .option('index', { type: 'number', hidden: true, describe: 'With --task: the manifest run (default: SLURM_ARRAY_TASK_ID)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the expanded runs without running them' })
      .option('workers', { type: 'number', describe: 'Runs in parallel (default: one per two cores)' })
      .option('retries', { type: 'number', describe: 'Tries again for a failed run (default: the config\'s, 1)' })
      .example('$0 sweep --config configs/sweeps/cola-layers.yaml --dry-run', '')
      .example('$0 sweep --worker runs/sweeps/cola-layers', '')
      .example('$0 sweep --config configs/sweeps/cola-layers.yaml --executor slurm --partition gpu --gpus-per-task 1 --time 04:00:00', '')
      .example('$0 sweep --status runs/sweeps/cola-layers', '') as never,
  handler: async (args) => {
    const modes = (['config', 'worker', 'task', 'status'] as const).filter((k) => args[k] !== undefined);
    if (modes.length === 0) throw new TopoprobeError('give --config (plan and run a sweep), --worker (continue a sweep folder here) or --status (show a sweep folder\'s runs)');
    if (modes.length > 1) throw new TopoprobeError(`give one of --config, --worker, --task, --status (got ${modes.map((m) => `--${m}`).join(' and ')})`);
    for (const k of ['cpus-per-task', 'gpus-per-task', 'array-parallelism', 'index'] as const) {
      const v = args[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= (k === 'index' ? 0 : 1))) throw new TopoprobeError(`--${k} must be a ${k === 'index' ? 'non-negative' : 'positive'} integer (got ${v})`);
    }
    if (args.status !== undefined) return printStatus(args.status, args.json);
    const runArgs = [
      ...(args.backend ? ['--backend', args.backend] : []),
      ...(args['data-dir'] ? ['--data-dir', args['data-dir']] : []),
    ];
    if (args.task !== undefined) {
      const dir = resolve(args.task);
      const log = createLogger({ level: args['log-level'], file: join(dir, 'slurm', `task-${process.env.SLURM_ARRAY_JOB_ID ?? 'local'}_${process.env.SLURM_ARRAY_TASK_ID ?? args.index}.log.jsonl`) });
      setExitCode(await runTask(dir, { index: args.index, retries: args.retries ?? 1, runArgs, log }));
      return;
    }
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
      if ((args.executor ?? config.executor) === 'slurm') {
        const y = config.slurm;
        const opts: SlurmOptions = {
          partition: args.partition ?? y.partition,
          time: args.time ?? y.time,
          cpusPerTask: args['cpus-per-task'] ?? y.cpus_per_task,
          gpusPerTask: args['gpus-per-task'] ?? y.gpus_per_task,
          arrayParallelism: args['array-parallelism'] ?? y.array_parallelism,
          sbatchArgs: [...y.sbatch_args, ...(args['sbatch-arg'] ?? [])],
          signalLead: y.signal_lead,
        };
        const log = createLogger({ level: args['log-level'], file: join(sweepDir, `sweep-${process.pid}.log.jsonl`) });
        const s = submitSweep(sweepDir, { opts, retries, runArgs, log });
        process.stdout.write(`submitted ${s.runs} run(s) of ${sweepDir} as Slurm job array ${s.array} (--array=${s.tasks}); comparison job ${s.compare} runs when it ends\n`);
        process.stdout.write(`follow it with: topoprobe sweep --status ${sweepDir}\n`);
        return;
      }
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
    const bar = progressBar(' sweep [{bar}] {value}/{total} done | {running} running | {failed} failed | ETA {eta_h}');
    let started = false;
    const { runs, stoppedBy } = await executeSweep(sweepDir, {
      workers, retries, log, runArgs, threads: args.threads,
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
      if (left.length) process.stdout.write(`${left.length} runs are held by processes on other hosts (a sweep spreads over machines as a Slurm job array: --executor slurm): ${left.map((r) => r.name).join(', ')}\n`);
      if (failed.length) setExitCode(1);
    }
  },
};

function printStatus(dir: string, json: boolean): void {
  const st = sweepStatus(dir);
  if (json) {
    process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
    return;
  }
  const count = (state: string) => st.runs.filter((r) => r.state === state).length;
  const states = ['completed', 'running', 'pending', 'requeued', 'failed', 'stopped'].filter((s) => count(s) > 0);
  process.stdout.write(`${st.sweep}: ${st.runs.length} runs: ${states.map((s) => `${count(s)} ${s}`).join(', ')}\n`);
  const last = st.submissions.at(-1);
  if (last) process.stdout.write(`Slurm job array ${last.array} (--array=${last.tasks}, submitted ${last.submitted}); comparison job ${last.compare}: ${st.compare?.state}\n`);
  else process.stdout.write('never submitted to Slurm (a local sweep)\n');
  if (!st.queueRead && st.submissions.length) process.stdout.write('squeue could not be read: states come from the manifest alone\n');
  const width = Math.max(4, ...st.runs.map((r) => r.name.length));
  for (const r of st.runs) {
    process.stdout.write(`  ${String(r.index).padStart(3)}  ${r.name.padEnd(width)}  ${r.state.padEnd(9)}  ${(r.task ?? '-').padEnd(10)}  ${r.detail}\n`);
    if (r.logs?.length) process.stdout.write(`       logs: ${r.logs.join(', ')}\n`);
  }
}
