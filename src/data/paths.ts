/**
 * Where topoprobe finds its data (GLUE tasks, UD EWT, the bert-uncased vocabulary).
 *
 * Order: an explicit argument (the `--data-dir` flag or a config key), then `TOPOPROBE_DATA_DIR`, then
 * `../shared/data` beside the project (the developers' and CI's copy), then `~/.cache/topoprobe/data`
 * (where `topoprobe data download` puts it).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json), from this module's location in src/ or dist/src/. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export function dataDir(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (process.env.TOPOPROBE_DATA_DIR) return resolve(process.env.TOPOPROBE_DATA_DIR);
  const shared = resolve(projectRoot(), '..', 'shared', 'data');
  if (existsSync(shared)) return shared;
  return join(homedir(), '.cache', 'topoprobe', 'data');
}

/** The bert-uncased WordPiece vocabulary (30522 lines) in the data directory. */
export function bertUncasedVocabPath(explicit?: string): string {
  return join(dataDir(explicit), 'bert-uncased', 'vocab.txt');
}
