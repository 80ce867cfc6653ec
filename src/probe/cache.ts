/**
 * A float16 cache of hidden states on disk: one file per (dataset, split, submodule), written once while
 * encoding and read back whole when that submodule's probes are trained. Halving the bytes and keeping
 * only one submodule in memory at a time is what lets one encoder pass serve all 25 submodules of
 * bert-large.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeF16, encodeF16 } from '../model/safetensors.js';

export class StateCache {
  private readonly fds = new Map<string, number>();

  constructor(
    readonly dir: string,
    readonly hidden: number,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private file(key: string): string {
    return join(this.dir, `${key}.f16`);
  }

  /** Appends rows (a multiple of `hidden` values) to `key`'s file. */
  append(key: string, rows: Float32Array): void {
    if (rows.length % this.hidden !== 0) throw new Error(`state cache ${key}: ${rows.length} values is not a multiple of hidden ${this.hidden}`);
    let fd = this.fds.get(key);
    if (fd === undefined) {
      fd = openSync(this.file(key), 'w');
      this.fds.set(key, fd);
    }
    const bytes = new Uint8Array(encodeF16(rows).buffer);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  }

  /** Closes every file; call before reading. */
  finish(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  /** All rows of `key`, as float32 ([rows, hidden] row-major). */
  read(key: string): Float32Array {
    const buf = readFileSync(this.file(key));
    const halves = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    return decodeF16(halves);
  }

  close(): void {
    this.finish();
  }
}
