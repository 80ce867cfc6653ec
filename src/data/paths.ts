/**
 * Where topoprobe finds its data (GLUE tasks, UD EWT, the bert-uncased vocabulary).
 *
 * Order: an explicit argument (the `--data-dir` flag or a config key), then `TOPOPROBE_DATA_DIR`, then
 * `../shared/data` beside the project (the developers' and CI's copy), then `~/.cache/topoprobe/data`
 * (where `topoprobe data download` puts it).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { projectRoot } from '../util/root.js';

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
