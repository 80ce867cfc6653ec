/**
 * TensorBoard event files, written without libtensorflow: scalar and text summaries, and a reader of
 * scalars back (for resume). Written from the published formats:
 *
 *   TFRecord framing, per record:  uint64 length (LE) | uint32 masked_crc32c(length bytes) |
 *                                  data[length] | uint32 masked_crc32c(data)
 *   Event (tensorflow/core/util/event.proto):  double wall_time = 1; int64 step = 2;
 *                                  string file_version = 3; Summary summary = 5
 *   Summary (tensorflow/core/framework/summary.proto):  repeated Value value = 1, Value { string tag = 1;
 *                                  float simple_value = 2; TensorProto tensor = 8; SummaryMetadata metadata = 9 }
 *
 * A file is `<dir>/events.out.tfevents.<unix seconds, 10 digits>.<host>.<pid>.<counter><suffix>`; its
 * first record is an Event with `file_version: "brain.Event:2"`. Every record is encoded whole in
 * memory and handed to the OS with one append (O_APPEND) before the call returns: nothing is buffered in
 * the process, so a crash (even SIGKILL) can lose at most the record being written, never corrupt an
 * earlier one, and a reader stops cleanly at a cut trailing record (the CRCs tell). A write that fails
 * part way (a full disk) has its part cut off again, so no later record follows a broken one.
 *
 * Resume note: with file_version "brain.Event:2" TensorBoard does not drop data when steps go backwards
 * (it purges only on a SessionLog START event), so a resumed run must not leave the steps it recomputes
 * in any file: run-events.ts rebuilds a resumed run's file from the metrics it keeps (reading the old
 * wall times back with {@link readScalars}) and removes the old one.
 */
import { closeSync, constants as fsc, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TopoprobeError, check } from './errors.js';
import { diskError, ensureDir } from './fs.js';

// ---------------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC32C (Castagnoli) of `data`: initial ~0, final xor ~0, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC32C that TFRecord framing stores: `((crc >>> 15) | (crc << 17)) + 0xa282ead8`, uint32. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// A minimal protobuf encoder (only what Event/Summary need)

const utf8 = new TextEncoder();

/** Bytes of a protobuf message under construction. */
class ProtoWriter {
  private chunks: number[] = [];
  private parts: Uint8Array[] = [];

  private flushBytes(): void {
    if (this.chunks.length) {
      this.parts.push(Uint8Array.from(this.chunks));
      this.chunks = [];
    }
  }

  /** A varint of a non-negative safe integer. */
  varint(v: number): this {
    while (v >= 0x80) {
      this.chunks.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.chunks.push(v);
    return this;
  }

  private key(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  uint(field: number, v: number): this {
    return this.key(field, 0).varint(v);
  }

  double(field: number, v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.key(field, 1);
    this.chunks.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.key(field, 5);
    this.chunks.push(...b);
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.key(field, 2).varint(v.length);
    this.flushBytes();
    this.parts.push(v);
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, utf8.encode(v));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    this.flushBytes();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
  }
}

/** One TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(12 + data.length + 4);
  out.writeUInt32LE(data.length >>> 0, 0);
  out.writeUInt32LE(Math.floor(data.length / 0x100000000), 4);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

const DT_STRING = 7;
export const FILE_VERSION = 'brain.Event:2';

// ---------------------------------------------------------------------------------------------------
// The writer

/** Per-process counter of the files opened, the last part of their names. */
let fileCounter = 0;

export interface EventWriterOptions {
  /** Appended to the file name (e.g. `.train`); no `/`. */
  filenameSuffix?: string;
  /** The clock in milliseconds (for tests): the file name's time and the default wall time. */
  now?: () => number;
}

/**
 * Writes one TensorBoard event file. Each call writes its record to the OS before returning (see the
 * module comment); steps are non-negative integers, tags non-empty. Values are stored as float32, NaN
 * and ±Infinity as they are.
 */
export class EventWriter {
  /** The event file's path. */
  readonly path: string;
  private fd: number | null;
  /** Bytes of whole records written so far. */
  private size = 0;
  private readonly now: () => number;

  /** Opens a new event file in `dir` (created if missing) and writes the file_version record. */
  constructor(dir: string, opts: EventWriterOptions = {}) {
    const suffix = opts.filenameSuffix ?? '';
    check(typeof suffix === 'string' && !/[/\\\0]/.test(suffix), `event file suffix ${JSON.stringify(suffix)}: must not contain a path separator`);
    this.now = opts.now ?? Date.now;
    const ms = this.now();
    check(Number.isFinite(ms) && ms >= 0, `event file clock: ${ms} is not a time`);
    ensureDir(dir);
    const seconds = String(Math.floor(ms / 1000)).padStart(10, '0');
    const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
    // A new file, never an existing one: the name's counter moves on past any file already there.
    const base = `events.out.tfevents.${seconds}.${host}.${process.pid}.`;
    const [fd, path] = createNew((n) => join(dir, `${base}${n}${suffix}`));
    this.fd = fd;
    this.path = path;
    try {
      this.writeEvent(new ProtoWriter().double(1, ms / 1000).string(3, FILE_VERSION));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** One scalar summary `tag` = `value` at `step` (wall time `wallTimeMs`, or now). */
  scalar(tag: string, value: number, step: number, wallTimeMs?: number): void {
    this.scalars({ [tag]: value }, step, wallTimeMs);
  }

  /** Several scalars at one step, as one Event with one Value each (nothing is written for none). */
  scalars(values: Record<string, number>, step: number, wallTimeMs?: number): void {
    const entries = Object.entries(values);
    const summary = new ProtoWriter();
    for (const [tag, value] of entries) {
      checkTag(tag);
      check(typeof value === 'number', () => `summary ${JSON.stringify(tag)}: value ${String(value)} is not a number`);
      summary.message(1, new ProtoWriter().string(1, tag).float(2, value));
    }
    const event = this.eventHeader(step, wallTimeMs); // checks the step even for no values
    if (entries.length === 0) return;
    this.writeEvent(event.message(5, summary));
  }

  /** A text summary (TensorBoard's text plugin renders `markdown` as markdown). */
  text(tag: string, markdown: string, step: number, wallTimeMs?: number): void {
    checkTag(tag);
    check(typeof markdown === 'string', () => `text summary ${JSON.stringify(tag)}: not a string`);
    const metadata = new ProtoWriter().message(1, new ProtoWriter().string(1, 'text'));
    const tensor = new ProtoWriter()
      .uint(1, DT_STRING)
      .message(2, new ProtoWriter()) // an empty shape: a scalar
      .string(8, markdown);
    const value = new ProtoWriter().string(1, tag).message(8, tensor).message(9, metadata);
    this.writeEvent(this.eventHeader(step, wallTimeMs).message(5, new ProtoWriter().message(1, value)));
  }

  /**
   * Nothing is buffered in the process (each record reached the OS when its call returned), so this
   * only checks the writer is open; no fsync (a power cut may still lose what the OS had not written).
   */
  flush(): void {
    this.openFd();
  }

  /** Closes the file; later writes are an error, a second close does nothing. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } catch (err) {
      throw diskError(`cannot close event file ${this.path}`, err);
    }
  }

  private eventHeader(step: number, wallTimeMs: number | undefined): ProtoWriter {
    check(Number.isSafeInteger(step) && step >= 0, () => `summary step ${String(step)}: must be a non-negative integer`);
    const ms = wallTimeMs ?? this.now();
    check(typeof ms === 'number' && Number.isFinite(ms), () => `summary wall time ${String(ms)}: not a finite number of milliseconds`);
    const event = new ProtoWriter().double(1, ms / 1000);
    if (step !== 0) event.uint(2, step); // proto3: a zero is the default, left out
    return event;
  }

  private openFd(): number {
    if (this.fd === null) throw new Error(`event file ${this.path} is closed`);
    return this.fd;
  }

  /** The whole record in one buffer, appended (a short write is continued, never interleaved). */
  private writeEvent(event: ProtoWriter): void {
    const fd = this.openFd();
    const record = frameRecord(event.finish());
    let off = 0;
    try {
      while (off < record.length) off += writeSync(fd, record, off, record.length - off);
    } catch (err) {
      // A part of a record must not stay ahead of later ones (a reader stops at it): cut it off, or
      // where that fails too, close the writer so that nothing follows it.
      try {
        if (off > 0) ftruncateSync(fd, this.size);
      } catch {
        this.fd = null;
        try {
          closeSync(fd);
        } catch {
          // already failing: the write error is the one to report
        }
      }
      throw diskError(`cannot write event file ${this.path}`, err);
    }
    this.size += record.length;
  }
}

const CREATE_NEW = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_APPEND;

/** Opens a file that did not exist, at the first free `pathFor(counter)`: [fd, path]. */
function createNew(pathFor: (counter: number) => string): [number, string] {
  for (let attempt = 0; ; attempt++) {
    const path = pathFor(fileCounter++);
    try {
      return [openSync(path, CREATE_NEW, 0o644), path];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 1000) continue;
      throw diskError(`cannot create event file ${path}`, err);
    }
  }
}

function checkTag(tag: string): void {
  check(typeof tag === 'string' && tag.length > 0, 'summary tag: must be a non-empty string');
}

// ---------------------------------------------------------------------------------------------------
// Reading back

/** The records of TFRecord bytes up to the first cut or damaged one. */
export interface RecordScan {
  /** Each record's data, in order. */
  records: Uint8Array[];
  /** Bytes of whole, intact records from the start (a writer continuing the file would append here). */
  validLength: number;
  /** Why the scan stopped before the end, e.g. `record 5 at byte 812: cut (needs 40 bytes, 17 left)`. */
  problem?: string;
}

/** Splits TFRecord bytes into records, checking both CRCs, and stops at the first cut or bad one. */
export function scanRecords(bytes: Uint8Array): RecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let pos = 0;
  const stop = (why: string): RecordScan => ({ records, validLength: pos, problem: `record ${records.length + 1} at byte ${pos}: ${why}` });
  while (pos < bytes.length) {
    const left = bytes.length - pos;
    if (left < 12) return stop(`cut (header needs 12 bytes, ${left} left)`);
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(bytes.subarray(pos, pos + 8))) return stop('bad length CRC');
    const hi = view.getUint32(pos + 4, true);
    const len = view.getUint32(pos, true) + hi * 0x100000000;
    if (hi > 0x1fffff || len + 16 > left) return stop(`cut (needs ${len + 16} bytes, ${left} left)`);
    const data = bytes.subarray(pos + 12, pos + 12 + len);
    if (view.getUint32(pos + 12 + len, true) !== maskedCrc32c(data)) return stop('bad data CRC');
    records.push(data);
    pos += 16 + len;
  }
  return { records, validLength: pos };
}

/** A minimal protobuf reader: the fields of one message. */
interface Field {
  field: number;
  wireType: number;
  /** varint (as a bigint), fixed64/fixed32 (their bytes), length-delimited (its bytes). */
  int?: bigint;
  bytes?: Uint8Array;
}

function parseFields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (p >= b.length || shift > 63n) throw new Error('bad varint');
      const byte = b[p++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return v;
    }
  };
  const take = (n: number): Uint8Array => {
    if (n > b.length - p) throw new Error('field past the end');
    const s = b.subarray(p, p + n);
    p += n;
    return s;
  };
  while (p < b.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (wireType === 0) out.push({ field, wireType, int: varint() });
    else if (wireType === 1) out.push({ field, wireType, bytes: take(8) });
    else if (wireType === 2) out.push({ field, wireType, bytes: take(Number(varint())) });
    else if (wireType === 5) out.push({ field, wireType, bytes: take(4) });
    else throw new Error(`wire type ${wireType}`);
  }
  return out;
}

const utf8Decode = new TextDecoder();

/** One scalar summary read back. */
export interface ScalarRecord {
  step: number;
  /** Seconds since the epoch (the Event's wall_time). */
  wallTime: number;
  tag: string;
  value: number;
}

/**
 * The scalar summaries (`simple_value`) of an event file, in file order: for resume, the last step
 * written per tag. Stops cleanly at the first cut, damaged (CRC) or undecodable record, returning what
 * came before. A missing or unreadable file is a TopoprobeError.
 */
export function readScalars(path: string): ScalarRecord[] {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TopoprobeError(`cannot read event file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const out: ScalarRecord[] = [];
  for (const record of scanRecords(bytes).records) {
    let found: ScalarRecord[];
    try {
      found = scalarsOfEvent(record);
    } catch {
      break; // intact framing around something that is not an Event: treated as the end
    }
    out.push(...found);
  }
  return out;
}

function scalarsOfEvent(record: Uint8Array): ScalarRecord[] {
  let wallTime = 0;
  let step = 0;
  const summaries: Uint8Array[] = [];
  for (const f of parseFields(record)) {
    if (f.field === 1 && f.wireType === 1) wallTime = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, 8).getFloat64(0, true);
    else if (f.field === 2 && f.wireType === 0) step = Number(BigInt.asIntN(64, f.int!));
    else if (f.field === 5 && f.wireType === 2) summaries.push(f.bytes!);
  }
  const out: ScalarRecord[] = [];
  for (const summary of summaries) {
    for (const v of parseFields(summary)) {
      if (v.field !== 1 || v.wireType !== 2) continue;
      let tag = '';
      let value: number | undefined;
      for (const f of parseFields(v.bytes!)) {
        if (f.field === 1 && f.wireType === 2) tag = utf8Decode.decode(f.bytes!);
        else if (f.field === 2 && f.wireType === 5) value = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, 4).getFloat32(0, true);
      }
      if (value !== undefined) out.push({ step, wallTime, tag, value });
    }
  }
  return out;
}
