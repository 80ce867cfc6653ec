/** Progress bars for the console (stderr), readable in CI logs too. */
import cliProgress from 'cli-progress';

/** A download progress callback for resolveModel: one bar per file of known size. */
export function downloadProgress(): { onProgress: (file: string, received: number, total: number | undefined) => void; stop: () => void } {
  const bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: ' {file} [{bar}] {percentage}% {value}/{total} bytes',
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
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
