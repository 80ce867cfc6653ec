/** Progress bars for the console (stderr), readable in CI logs too. */
import cliProgress from 'cli-progress';

/** Bar options shared by every command: stderr, and plain periodic lines when it is not a terminal (CI logs). */
function barOptions(format: string, extra: cliProgress.Options = {}): cliProgress.Options {
  return { stream: process.stderr, format, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 10000, hideCursor: true, ...extra };
}

/** One progress bar. */
export function progressBar(format: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(barOptions(format), cliProgress.Presets.shades_classic);
}

/** Several bars under one another. */
export function progressBars(format: string, extra: cliProgress.Options = {}): cliProgress.MultiBar {
  return new cliProgress.MultiBar(barOptions(format, extra), cliProgress.Presets.shades_classic);
}

/** A download progress callback for resolveModel: one bar per file of known size. */
export function downloadProgress(): { onProgress: (file: string, received: number, total: number | undefined) => void; stop: () => void } {
  const bars = progressBars(' {file} [{bar}] {percentage}% {value}/{total} bytes', { notTTYSchedule: 5000, clearOnComplete: false });
  const byFile = new Map<string, cliProgress.SingleBar>();
  return {
    onProgress: (file, received, total) => {
      if (total === undefined) return;
      let bar = byFile.get(file);
      if (!bar) {
        bar = bars.create(total, 0, { file });
        byFile.set(file, bar);
      }
      bar.update(received);
    },
    stop: () => bars.stop(),
  };
}
