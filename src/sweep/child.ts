/**
 * The process a sweep worker starts for each run: the `topoprobe` CLI (as src/cli/entry.ts), which also
 * stops when the worker is gone. The worker spawns it with an IPC channel and in a process group of its
 * own (so a Ctrl-C at the terminal reaches only the worker, which passes it on once). When the channel
 * closes (the worker exited or was killed, SIGKILL included), this process's parent changes, or it gets
 * SIGTERM, it asks the trainer to stop (requestStop): the trainer finishes the current update, saves
 * checkpoints/last and exits, as on Ctrl-C, and the next worker resumes the run from there.
 */
import { run } from '../cli/main.js';
import { requestStop } from '../cli/run-hooks.js';

if (process.channel) {
  // The channel must not keep this process alive once the command is done.
  process.channel.unref();
  process.on('disconnect', () => requestStop('the sweep worker is gone'));
}
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) requestStop('the sweep worker is gone');
}, 500).unref();
// Slurm signals every process of a job (a requeue, a preemption, the time limit, scancel): SIGTERM stops the
// trainer at a checkpoint too, and the worker's SIGINT that follows is not taken as a second Ctrl-C.
process.on('SIGTERM', () => requestStop('SIGTERM'));

process.exitCode = await run(process.argv.slice(2));
