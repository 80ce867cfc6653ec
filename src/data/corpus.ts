/**
 * Plain-text pretraining corpora: one sentence or paragraph per line, in one or more files.
 *
 * Blank lines are skipped. A held-out split is drawn by a seeded shuffle of all lines, so it is the
 * same for the same seed whatever the file order. Encoding wraps each line as `[CLS] pieces [SEP]`; a
 * line longer than the model's budget is cut into consecutive chunks (each wrapped the same way)
 * rather than truncated, so no text is thrown away.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BertTokenizer } from '../tokenize/tokenizer.js';
import { Rng } from '../util/random.js';
import { TopoprobeError } from '../util/errors.js';
import { readText } from '../util/fs.js';

export interface CorpusFile {
  path: string;
  lines: number;
}

export interface Corpus {
  lines: string[];
  files: CorpusFile[];
}

/** Reads the corpus files; `field` names the config field in errors (e.g. `corpus.files`). */
export function readCorpus(paths: readonly string[], field = 'corpus.files'): Corpus {
  if (paths.length === 0) throw new TopoprobeError(`${field}: no corpus files given`);
  const lines: string[] = [];
  const files: CorpusFile[] = [];
  paths.forEach((p, i) => {
    const path = resolve(p);
    if (!existsSync(path)) throw new TopoprobeError(`${field}[${i}]: ${path} does not exist (build the built-in corpus with \`npm run corpus\`)`);
    if (!statSync(path).isFile()) throw new TopoprobeError(`${field}[${i}]: ${path} is not a file`);
    const text = readText(path, `${field}[${i}]:`);
    if (text.includes('\u0000')) throw new TopoprobeError(`${field}[${i}]: ${path} is not a text file`);
    const own = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    if (own.length === 0) throw new TopoprobeError(`${field}[${i}]: ${path} has no text`);
    for (const line of own) lines.push(line);
    files.push({ path, lines: own.length });
  });
  return { lines, files };
}

/** Indices of `n` lines split into training and held-out ones (`heldOut` of them), by a seeded shuffle. */
export function splitHeldOut(n: number, heldOut: number, seed: number): { train: number[]; heldOut: number[] } {
  if (heldOut >= n) throw new TopoprobeError(`corpus.held_out: ${heldOut} held-out lines leave none of the ${n} for training`);
  const order = new Rng(seed ^ 0x4e1d).shuffle(Array.from({ length: n }, (_, i) => i));
  return { heldOut: order.slice(0, heldOut).sort((a, b) => a - b), train: order.slice(heldOut).sort((a, b) => a - b) };
}

/** Cuts a line's pieces into `[CLS] chunk [SEP]` sequences of at most `maxLength` ids. */
export function chunkPieces(ids: readonly number[], maxLength: number, clsId: number, sepId: number): number[][] {
  if (maxLength < 3) throw new TopoprobeError(`corpus.max_length must be at least 3, got ${maxLength}`);
  const room = maxLength - 2;
  const out: number[][] = [];
  for (let i = 0; i < ids.length; i += room) out.push([clsId, ...ids.slice(i, i + room), sepId]);
  return out;
}

/**
 * Encodes lines into sequences of word-piece ids (see `chunkPieces`); counts lines that were cut, and
 * skips (and counts) lines with nothing to predict: no pieces, or only special ones such as [UNK].
 */
export function encodeCorpus(lines: readonly string[], tokenizer: BertTokenizer, maxLength: number): { sequences: number[][]; cut: number; skipped: number } {
  const sequences: number[][] = [];
  let cut = 0;
  let skipped = 0;
  for (const line of lines) {
    const pieces = tokenizer.tokensToIds(tokenizer.tokenize(line));
    if (pieces.every((id) => tokenizer.specialIds.has(id))) {
      skipped += 1;
      continue;
    }
    const chunks = chunkPieces(pieces, maxLength, tokenizer.clsId, tokenizer.sepId);
    if (chunks.length > 1) cut += 1;
    sequences.push(...chunks);
  }
  return { sequences, cut, skipped };
}
