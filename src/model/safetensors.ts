/**
 * The safetensors format (https://github.com/huggingface/safetensors), read and written.
 *
 * Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON, then the data
 * section. The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }`, offsets
 * relative to the start of the data section, plus an optional `__metadata__` map of strings. Tensor
 * data is raw, little-endian, row-major.
 *
 * Reading is lazy: {@link openSafetensors} reads and validates the header only; each tensor is read
 * from disk when asked for, straight into a fresh (hence aligned) typed array, so loading a
 * checkpoint holds one copy of the weights in memory, never the file plus the tensors. F16, BF16 and
 * F64 tensors are decoded to Float32Array; I32 and I64 tensors keep their integers.
 *
 * Every floating-point tensor read is checked to be finite (one pass over its Float32Array): a NaN or
 * an infinity in weights, probes or optimizer moments is a TopoprobeError naming the file and tensor
 * (`<file>: tensor "<name>" has 3 NaN values (first at [0, 7]) ...`). Pass `allowNonFinite` to read
 * such values anyway.
 */
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { endianness } from 'node:os';
import { TopoprobeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

/** Every whole-byte dtype of the safetensors format, with its element size in bytes. */
const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  C64: 8,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

/** A dtype the safetensors format defines (sub-byte types excepted). */
export type SafetensorsDtype = keyof typeof DTYPE_SIZES;

/** The dtypes topoprobe can read: floats become Float32Array, integers stay integers. */
export const READABLE_DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64'] as const;
export type ReadableDtype = (typeof READABLE_DTYPES)[number];

/** The dtypes {@link writeSafetensors} can write. */
export const WRITABLE_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type WritableDtype = (typeof WRITABLE_DTYPES)[number];

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length would otherwise allocate). */
const MAX_HEADER_BYTES = 100_000_000;

/** Whether the host stores numbers little-endian (typed arrays use host order; the format is little-endian). */
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

/** A tensor's entry in the header. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** `[begin, end)` in bytes, relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
}

/** A float tensor in memory: row-major data of product(shape) elements. */
export interface Float32Tensor {
  shape: number[];
  data: Float32Array;
}

/** The element array of a tensor read from a file. */
export type TensorData = Float32Array | Int32Array | BigInt64Array;

/** Options for reading a safetensors file. */
export interface ReadSafetensorsOptions {
  /** Return NaN and infinite values as they are instead of refusing the tensor (default false). */
  allowNonFinite?: boolean;
}

/** A tensor read from a file, with the dtype it was stored in. */
export interface Tensor {
  name: string;
  dtype: ReadableDtype;
  shape: number[];
  data: TensorData;
}

// ---------------------------------------------------------------------------------------------------
// Half-precision conversions

/** Decodes an IEEE 754 binary16 bit pattern (0..0xFFFF), subnormals, infinities and NaN included. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero or subnormal: m * 2^-14 * 2^-10
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Decodes a bfloat16 bit pattern: the upper half of a float32. */
export function bf16ToF32(bits: number): number {
  F32_SCRATCH_U32[0] = (bits & 0xffff) << 16;
  return F32_SCRATCH[0]!;
}

const F32_SCRATCH = new Float32Array(1);
const F32_SCRATCH_U32 = new Uint32Array(F32_SCRATCH.buffer);

/** The binary16 bit pattern of a float32 bit pattern, rounded to nearest, ties to even. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf, or a quiet NaN
  const e = exp - 127 + 15; // the binary16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (e <= 0) {
    // A binary16 subnormal (unit 2^-24), or zero. Values below 2^-25 round to zero.
    if (e < -10) return sign;
    mant |= 0x800000; // the implicit leading one
    const shift = 14 - e; // 14..24
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++; // a carry makes the smallest normal, correctly
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry may reach infinity, correctly
  return sign | half;
}

/** The bfloat16 bit pattern of a float32 bit pattern, rounded to nearest, ties to even. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  const lsb = (b >>> 16) & 1;
  return Math.floor((b + 0x7fff + lsb) / 0x10000) & 0xffff;
}

/** Encodes a number as binary16 (round to nearest even; overflow gives infinity). */
export function f32ToF16(x: number): number {
  F32_SCRATCH[0] = x;
  return f32BitsToF16Bits(F32_SCRATCH_U32[0]!);
}

/** Encodes a number as bfloat16 (round to nearest even). */
export function f32ToBf16(x: number): number {
  F32_SCRATCH[0] = x;
  return f32BitsToBf16Bits(F32_SCRATCH_U32[0]!);
}

let f16Table: Float32Array | undefined;

/** Decodes binary16 patterns through a 65536-entry table built on first use. */
export function decodeF16(src: Uint16Array): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(0x10000);
    for (let i = 0; i < 0x10000; i++) f16Table[i] = f16ToF32(i);
  }
  const table = f16Table;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

/** Decodes bfloat16 patterns exactly (by placing them in the upper half of float32 patterns). */
export function decodeBf16(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** Encodes float32 values as binary16 patterns. */
export function encodeF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Encodes float32 values as bfloat16 patterns. */
export function encodeBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Byte sources

/** Where the bytes of a safetensors file come from: a file on disk, or a buffer already in memory. */
interface ByteSource {
  readonly size: number;
  /** Fills `target` with the bytes at absolute `offset`. */
  readInto(offset: number, target: Uint8Array): void;
  /** The bytes at `offset` without a copy, when the source is in memory. */
  view?(offset: number, length: number): Uint8Array;
}

/** readSync moves at most 2 GiB - 1 per call. */
const MAX_READ = 0x40000000;

function readFully(fd: number, target: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < target.byteLength) {
    const n = readSync(fd, target, done, Math.min(MAX_READ, target.byteLength - done), position + done);
    if (n === 0) throw new TopoprobeError(`${path}: unexpected end of file at byte ${position + done} (the file is truncated or changed while being read)`);
    done += n;
  }
}

/**
 * A file read on demand: each read opens the file, checks it has not changed since the header was
 * read (size and modification time), and reads the range. No descriptor is held between reads.
 */
class FileSource implements ByteSource {
  readonly size: number;
  private readonly mtimeMs: number;

  constructor(
    readonly path: string,
    stats: Stats,
  ) {
    this.size = stats.size;
    this.mtimeMs = stats.mtimeMs;
  }

  readInto(offset: number, target: Uint8Array): void {
    const fd = openFile(this.path);
    try {
      const stats = fstatSync(fd);
      if (stats.size !== this.size || stats.mtimeMs !== this.mtimeMs) {
        throw new TopoprobeError(`${this.path}: the file changed on disk after its header was read; open it again`);
      }
      readFully(fd, target, offset, this.path);
    } finally {
      closeSync(fd);
    }
  }
}

class MemorySource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  readInto(offset: number, target: Uint8Array): void {
    target.set(this.bytes.subarray(offset, offset + target.byteLength));
  }
  view(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length);
  }
}

function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TopoprobeError(`${path}: file not found`);
    if (code === 'EISDIR') throw new TopoprobeError(`${path}: is a folder, not a safetensors file`);
    throw new TopoprobeError(`${path}: cannot open (${(err as Error).message})`, { cause: err });
  }
}

/** Reverses the byte order of each `size`-byte element, in place (big-endian hosts only). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.byteLength; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Reading

type TypedArrayCtor<T> = { new (length: number): T; new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/** A parsed safetensors file whose tensors are read on demand. */
export class SafetensorsFile {
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor's header entry, in data order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;

  /** @internal Use {@link openSafetensors} or {@link parseSafetensors}. */
  constructor(
    /** The file's path (or a label for an in-memory buffer); every error message starts with it. */
    readonly source: string,
    private readonly bytes: ByteSource,
    private readonly dataStart: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
    private readonly options: ReadSafetensorsOptions = {},
  ) {
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Tensor names in data order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The header entry of `name`; an error naming the file when there is none. */
  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new TopoprobeError(`${this.source}: no tensor "${name}" in this file`);
    return info;
  }

  /** Tensors whose dtype topoprobe cannot read, as "name (DTYPE)". */
  unsupported(): string[] {
    return [...this.tensors.values()].filter((t) => !isReadable(t.dtype)).map((t) => `${t.name} (${t.dtype})`);
  }

  /**
   * Reads one tensor; floats are decoded to Float32Array, I32/I64 stay Int32Array/BigInt64Array. A
   * float tensor holding NaN or infinite values is an error naming it (unless `allowNonFinite`).
   */
  read(name: string): Tensor {
    const info = this.info(name);
    const shape = [...info.shape];
    switch (info.dtype) {
      case 'F32':
        return this.finite({ name, dtype: 'F32', shape, data: this.elements(info, Float32Array) });
      case 'F16':
        return this.finite({ name, dtype: 'F16', shape, data: decodeF16(this.elements(info, Uint16Array)) });
      case 'BF16':
        return this.finite({ name, dtype: 'BF16', shape, data: decodeBf16(this.elements(info, Uint16Array)) });
      case 'F64':
        return this.finite({ name, dtype: 'F64', shape, data: Float32Array.from(this.elements(info, Float64Array)) });
      case 'I32':
        return { name, dtype: 'I32', shape, data: this.elements(info, Int32Array) };
      case 'I64':
        return { name, dtype: 'I64', shape, data: this.elements(info, BigInt64Array) };
      default:
        throw new TopoprobeError(
          `${this.source}: tensor "${name}" has dtype ${info.dtype}, which topoprobe cannot read (supported: ${READABLE_DTYPES.join(', ')})`,
        );
    }
  }

  /** `t` itself when its values are all finite (or the file was opened with `allowNonFinite`); else an error naming it. */
  private finite(t: Tensor & { data: Float32Array }): Tensor {
    if (!this.options.allowNonFinite) checkFinite(this.source, t.name, t.dtype, t.shape, t.data);
    return t;
  }

  /** Reads a floating-point tensor as float32; an integer tensor is an error naming it. */
  readFloat32(name: string): Float32Tensor {
    const info = this.info(name);
    if (info.dtype === 'I32' || info.dtype === 'I64') {
      throw new TopoprobeError(`${this.source}: tensor "${name}" has integer dtype ${info.dtype}, expected a floating-point tensor (F32, F16, BF16 or F64)`);
    }
    const t = this.read(name);
    return { shape: t.shape, data: t.data as Float32Array };
  }

  /** Reads every tensor; if any has a dtype topoprobe cannot read, the error lists them all. */
  readAll(): Map<string, Tensor> {
    const bad = this.unsupported();
    if (bad.length > 0) {
      throw new TopoprobeError(
        `${this.source}: ${bad.length} tensor(s) with unsupported dtypes (supported: ${READABLE_DTYPES.join(', ')}): ${bad.join(', ')}`,
      );
    }
    const out = new Map<string, Tensor>();
    for (const name of this.tensors.keys()) out.set(name, this.read(name));
    return out;
  }

  /**
   * The stored elements of a tensor as a typed array of their own type, in host byte order. From a
   * file: a fresh array. From memory: a view when the offset is aligned for the type (and the host is
   * little-endian), else an aligned copy.
   */
  private elements<T extends ArrayBufferView>(info: TensorInfo, ctor: TypedArrayCtor<T>): T {
    const size = ctor.BYTES_PER_ELEMENT;
    const byteLength = info.dataOffsets[1] - info.dataOffsets[0];
    const length = byteLength / size;
    const offset = this.dataStart + info.dataOffsets[0];
    const view = this.bytes.view?.(offset, byteLength);
    if (view && HOST_LITTLE_ENDIAN && view.byteOffset % size === 0) {
      return new ctor(view.buffer, view.byteOffset, length);
    }
    const out = new ctor(length);
    const outBytes = new Uint8Array(out.buffer, out.byteOffset, byteLength);
    this.bytes.readInto(offset, outBytes);
    if (!HOST_LITTLE_ENDIAN) swapBytes(outBytes, size);
    return out;
  }
}

/**
 * Throws a TopoprobeError naming `source` and tensor `name` when `data` holds NaN or infinite values,
 * with their counts and the index of the first. One pass; the counting branch runs only for bad values.
 */
export function checkFinite(source: string, name: string, dtype: string, shape: readonly number[], data: Float32Array): void {
  let nan = 0;
  let inf = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x - x !== 0) {
      // NaN - NaN and ±Inf - ±Inf are NaN; every finite x gives 0.
      if (x !== x) nan++;
      else inf++;
      if (first < 0) first = i;
    }
  }
  if (first < 0) return;
  const counts = [nan > 0 ? `${nan} NaN` : '', inf > 0 ? `${inf} infinite` : ''].filter((c) => c !== '').join(' and ');
  const index: number[] = [];
  for (let rest = first, d = shape.length - 1; d >= 0; d--) {
    index.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  const why = dtype === 'F64' && inf > 0 ? ' (F64 values beyond the float32 range, about ±3.4e38, become infinite)' : '';
  throw new TopoprobeError(
    `${source}: tensor "${name}" has ${counts} value${nan + inf === 1 ? '' : 's'}${index.length > 0 ? ` (first at ${fmtShape(index)})` : ''}${why}; ` +
      'the file is corrupt, or the training run that saved it diverged',
  );
}

function isReadable(dtype: string): dtype is ReadableDtype {
  return (READABLE_DTYPES as readonly string[]).includes(dtype);
}

function isDtype(dtype: string): dtype is SafetensorsDtype {
  return Object.hasOwn(DTYPE_SIZES, dtype);
}

function isNonNegativeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Validates the header of a file of `fileSize` bytes whose first 8 bytes are `prefix`, reading the
 * JSON header with `readHeader`. Returns where the data starts and the entries.
 */
function parseHeader(
  source: string,
  fileSize: number,
  prefix: Uint8Array,
  readHeader: (length: number) => Uint8Array,
): { dataStart: number; tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (fileSize < 8) {
    throw new TopoprobeError(`${source}: file is ${fileSize} bytes, too short for a safetensors file (the header length alone takes 8)`);
  }
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileSize - 8)) {
    throw new TopoprobeError(`${source}: header length ${headerLength} runs past the end of the file (${fileSize} bytes); the file is truncated or not safetensors`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) throw new TopoprobeError(`${source}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readHeader(n)));
  } catch (err) {
    throw new TopoprobeError(`${source}: header is not valid JSON (${(err as Error).message}); the file is corrupt or not safetensors`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TopoprobeError(`${source}: header is not a JSON object`);
  }
  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: TensorInfo[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TopoprobeError(`${source}: __metadata__ is not a JSON object of strings`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new TopoprobeError(`${source}: __metadata__ value "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const at = `${source}: tensor "${name}"`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TopoprobeError(`${at}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string') throw new TopoprobeError(`${at}: missing "dtype"`);
    if (!isDtype(dtype)) throw new TopoprobeError(`${at}: unknown dtype "${dtype}"`);
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      throw new TopoprobeError(`${at}: "shape" is not a list of non-negative integers (${JSON.stringify(shape)})`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt) || offsets[0] > offsets[1]) {
      throw new TopoprobeError(`${at}: "data_offsets" is not [begin, end] with 0 <= begin <= end (${JSON.stringify(offsets)})`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      throw new TopoprobeError(`${at}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes); the file is truncated or corrupt`);
    }
    const expected = product(shape) * DTYPE_SIZES[dtype];
    if (end - begin !== expected) {
      throw new TopoprobeError(
        `${at}: holds ${end - begin} bytes, but dtype ${dtype} with shape ${fmtShape(shape)} needs ${expected} (${product(shape)} x ${DTYPE_SIZES[dtype]})`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], dataOffsets: [begin, end] });
  }
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  // Sorted by start, a tensor overlaps an earlier one exactly when it starts before the furthest end so far.
  let furthest: TensorInfo | undefined;
  for (const e of entries) {
    if (e.dataOffsets[0] === e.dataOffsets[1]) continue; // empty tensors occupy nothing
    if (furthest && e.dataOffsets[0] < furthest.dataOffsets[1]) {
      throw new TopoprobeError(
        `${source}: tensor "${e.name}" (bytes ${e.dataOffsets[0]}..${e.dataOffsets[1]}) overlaps tensor "${furthest.name}" (bytes ${furthest.dataOffsets[0]}..${furthest.dataOffsets[1]})`,
      );
    }
    if (!furthest || e.dataOffsets[1] > furthest.dataOffsets[1]) furthest = e;
  }
  return { dataStart, tensors: new Map(entries.map((e) => [e.name, e])), metadata };
}

/** Opens a safetensors file: reads and validates its header; tensors are read when asked for. */
export function openSafetensors(path: string, opts: ReadSafetensorsOptions = {}): SafetensorsFile {
  const fd = openFile(path);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new TopoprobeError(`${path}: not a regular file`);
    const prefix = new Uint8Array(8);
    if (stats.size >= 8) readFully(fd, prefix, 0, path);
    const { dataStart, tensors, metadata } = parseHeader(path, stats.size, prefix, (n) => {
      const header = new Uint8Array(n);
      readFully(fd, header, 8, path);
      return header;
    });
    return new SafetensorsFile(path, new FileSource(path, stats), dataStart, tensors, metadata, opts);
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses safetensors bytes already in memory; `source` names them in errors. Aligned F32/I32/I64
 * tensors read from it are views of `bytes` (no copy); the rest are copies.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>', opts: ReadSafetensorsOptions = {}): SafetensorsFile {
  const { dataStart, tensors, metadata } = parseHeader(source, bytes.byteLength, bytes.subarray(0, 8), (n) => bytes.subarray(8, 8 + n));
  return new SafetensorsFile(source, new MemorySource(bytes), dataStart, tensors, metadata, opts);
}

/** Reads every tensor of a file (see {@link SafetensorsFile.readAll}) with its metadata. */
export function readSafetensors(path: string, opts: ReadSafetensorsOptions = {}): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const file = openSafetensors(path, opts);
  return { tensors: file.readAll(), metadata: { ...file.metadata } };
}

// ---------------------------------------------------------------------------------------------------
// Writing

/** A float tensor to write. */
export interface NamedFloat32Tensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/** Tensors to write: a list of named tensors, or a map from name to tensor. */
export type TensorsToWrite = Iterable<NamedFloat32Tensor> | ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

export interface WriteSafetensorsOptions {
  /** The stored dtype (default F32); F16 and BF16 round to nearest even. */
  dtype?: WritableDtype;
  /** The `__metadata__` map (omitted from the header when not given). */
  metadata?: Readonly<Record<string, string>>;
}

function toNamedList(tensors: TensorsToWrite): NamedFloat32Tensor[] {
  if (tensors instanceof Map) {
    return [...(tensors as ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>)].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  }
  return [...(tensors as Iterable<NamedFloat32Tensor>)];
}

function littleEndianBytes(array: Float32Array | Uint16Array): Uint8Array {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, array.BYTES_PER_ELEMENT);
  return copy;
}

/**
 * Serialises tensors to the chunks of a safetensors file: the 8-byte length, the header (compact
 * JSON, `__metadata__` first, padded with spaces to a multiple of 8 bytes as the reference
 * implementation does), then each tensor's data, in sorted-name order. F32 data is not copied.
 */
export function encodeSafetensors(tensors: TensorsToWrite, opts: WriteSafetensorsOptions = {}): Uint8Array[] {
  const dtype = opts.dtype ?? 'F32';
  if (!(WRITABLE_DTYPES as readonly string[]).includes(dtype)) {
    throw new TopoprobeError(`cannot write dtype "${dtype}" (supported: ${WRITABLE_DTYPES.join(', ')})`);
  }
  const list = toNamedList(tensors).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const seen = new Set<string>();
  for (const t of list) {
    if (t.name === '' || t.name === '__metadata__') throw new TopoprobeError(`invalid tensor name "${t.name}"`);
    if (seen.has(t.name)) throw new TopoprobeError(`tensor "${t.name}" given twice`);
    seen.add(t.name);
    if (!t.shape.every(isNonNegativeInt)) throw new TopoprobeError(`tensor "${t.name}": shape ${fmtShape(t.shape)} is not a list of non-negative integers`);
    if (product(t.shape) !== t.data.length) {
      throw new TopoprobeError(`tensor "${t.name}": shape ${fmtShape(t.shape)} holds ${product(t.shape)} elements but the data has ${t.data.length}`);
    }
  }
  const encoded = list.map((t) => littleEndianBytes(dtype === 'F32' ? t.data : dtype === 'F16' ? encodeF16(t.data) : encodeBf16(t.data)));
  // Built by hand so keys keep this order even when a name looks like an array index.
  const fields: string[] = [];
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') throw new TopoprobeError(`metadata "${k}" must be a string`);
    }
    fields.push(`"__metadata__":${jsonObject(Object.entries(opts.metadata))}`);
  }
  let offset = 0;
  list.forEach((t, i) => {
    const end = offset + encoded[i]!.byteLength;
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"${dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`);
    offset = end;
  });
  let header = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const padding = (8 - (header.byteLength % 8)) % 8;
  if (padding) header = Buffer.concat([header, Buffer.alloc(padding, 0x20)]);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  return [prefix, header, ...encoded];
}

function jsonObject(entries: Array<[string, string]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

/** Writes tensors as a safetensors file, atomically (a temporary file renamed into place). */
export function writeSafetensors(path: string, tensors: TensorsToWrite, opts: WriteSafetensorsOptions = {}): void {
  let chunks: Uint8Array[];
  try {
    chunks = encodeSafetensors(tensors, opts);
  } catch (err) {
    if (err instanceof TopoprobeError) throw new TopoprobeError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
  writeFileAtomic(path, chunks);
}
