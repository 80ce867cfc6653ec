/**
 * The process a sweep worker starts for each run: the `topoprobe` CLI (as src/cli/entry.ts), which also
 * stops when the worker is gone. The worker spawns it with an IPC channel and in a process group of its
 * own (so a Ctrl-C at the terminal reaches only the worker, which passes it on once). When the channel
 * closes (the worker exited or was killed, SIGKILL included) or this process's parent changes, it sends
 * itself one SIGINT: the trainer finishes the current update, saves checkpoints/last and exits, as on
 * Ctrl-C, and the next worker resumes the run from there.
 */
import { run } from '../cli/main.js';

let asked = false;
const stop = () => {
  if (asked) return;
  asked = true;
  process.kill(process.pid, 'SIGINT');
};

if (process.channel) {
  // The channel must not keep this process alive once the command is done.
  process.channel.unref();
  process.on('disconnect', stop);
}
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 500).unref();

process.exitCode = await run(process.argv.slice(2));
