import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bf16ToF32,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  openSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type WritableDtype,
} from '../src/model/safetensors.js';
import { expectError } from './helpers.js';

/** A tensor entry of a hand-assembled file: raw little-endian bytes. */
interface RawEntry {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * Assembles a safetensors file byte by byte: u64 LE header length, the header exactly as given (no
 * padding, so its length can be odd), then the data.
 */
function assemble(entries: RawEntry[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.byteLength] };
    offset += e.bytes.byteLength;
  }
  return assembleRaw(JSON.stringify(header), entries.map((e) => e.bytes));
}

function assembleRaw(headerText: string, data: Uint8Array[], declaredLength?: bigint): Uint8Array {
  const header = new TextEncoder().encode(headerText);
  const size = data.reduce((n, d) => n + d.byteLength, 0);
  const out = new Uint8Array(8 + header.byteLength + size);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(header.byteLength), true);
  out.set(header, 8);
  let at = 8 + header.byteLength;
  for (const d of data) {
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}

/** Little-endian bytes of values written with a DataView setter. */
function le(count: number, size: number, set: (view: DataView, offset: number, i: number) => void): Uint8Array {
  const bytes = new Uint8Array(count * size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) set(view, i * size, i);
  return bytes;
}

describe('safetensors', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-safetensors-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('half-precision conversions', () => {
    it('decodes float16 bit patterns', () => {
      expect(f16ToF32(0x3c00)).to.equal(1);
      expect(f16ToF32(0xc000)).to.equal(-2);
      expect(f16ToF32(0x7bff)).to.equal(65504);
      expect(f16ToF32(0x0001)).to.equal(2 ** -24); // smallest subnormal
      expect(f16ToF32(0x03ff)).to.equal(1023 * 2 ** -24); // largest subnormal
      expect(f16ToF32(0x0400)).to.equal(2 ** -14); // smallest normal
      expect(f16ToF32(0x3555)).to.equal((1 + 0x155 / 1024) / 4); // 0.33325
      expect(f16ToF32(0x7c00)).to.equal(Infinity);
      expect(f16ToF32(0xfc00)).to.equal(-Infinity);
      expect(f16ToF32(0x7e00)).to.be.NaN;
      expect(f16ToF32(0x7c01)).to.be.NaN;
      expect(Object.is(f16ToF32(0x8000), -0)).to.equal(true);
    });

    it('decodes bfloat16 bit patterns', () => {
      expect(bf16ToF32(0x3f80)).to.equal(1);
      expect(bf16ToF32(0xc0a0)).to.equal(-5);
      expect(bf16ToF32(0x4049)).to.equal(3.140625);
      expect(bf16ToF32(0x0001)).to.equal(2 ** -133); // a float32 subnormal
      expect(bf16ToF32(0x7f80)).to.equal(Infinity);
      expect(bf16ToF32(0xff80)).to.equal(-Infinity);
      expect(bf16ToF32(0x7fc0)).to.be.NaN;
    });

    it('encodes float16 with round-to-nearest-even, overflow and subnormals', () => {
      expect(f32ToF16(1)).to.equal(0x3c00);
      expect(f32ToF16(-2)).to.equal(0xc000);
      expect(f32ToF16(65504)).to.equal(0x7bff);
      expect(f32ToF16(65519)).to.equal(0x7bff); // below the halfway point to 65536
      expect(f32ToF16(65520)).to.equal(0x7c00); // halfway, ties to even: infinity
      expect(f32ToF16(1e6)).to.equal(0x7c00);
      expect(f32ToF16(-Infinity)).to.equal(0xfc00);
      expect(f32ToF16(2 ** -24)).to.equal(0x0001);
      expect(f32ToF16(2 ** -25)).to.equal(0x0000); // halfway to the smallest subnormal: ties to even (zero)
      expect(f32ToF16(1.5 * 2 ** -25)).to.equal(0x0001);
      expect(f32ToF16(1e-10)).to.equal(0x0000);
      expect(f32ToF16(1 + 2 ** -11)).to.equal(0x3c00); // tie, even mantissa stays
      expect(f32ToF16(1 + 3 * 2 ** -11)).to.equal(0x3c02); // tie, odd mantissa rounds up
      expect(f32ToF16(-0)).to.equal(0x8000);
      expect(f16ToF32(f32ToF16(NaN))).to.be.NaN;
    });

    it('encodes bfloat16 with round-to-nearest-even', () => {
      expect(f32ToBf16(1)).to.equal(0x3f80);
      expect(f32ToBf16(-5)).to.equal(0xc0a0);
      expect(f32ToBf16(1 + 2 ** -8)).to.equal(0x3f80); // tie, even stays
      expect(f32ToBf16(1 + 3 * 2 ** -8)).to.equal(0x3f82); // tie, odd rounds up
      expect(f32ToBf16(3.4e38)).to.equal(0x7f80); // rounds up to infinity
      expect(bf16ToF32(f32ToBf16(NaN))).to.be.NaN;
    });

    it('round-trips every non-NaN 16-bit pattern exactly', () => {
      for (let bits = 0; bits < 0x10000; bits++) {
        const h = f16ToF32(bits);
        if (!Number.isNaN(h) && f32ToF16(h) !== bits) expect.fail(`f16 0x${bits.toString(16)} -> ${h} -> 0x${f32ToF16(h).toString(16)}`);
        const b = bf16ToF32(bits);
        if (!Number.isNaN(b) && f32ToBf16(b) !== bits) expect.fail(`bf16 0x${bits.toString(16)} -> ${b} -> 0x${f32ToBf16(b).toString(16)}`);
      }
    });
  });

  describe('reading a hand-built file', () => {
    const entries: RawEntry[] = [
      { name: 'a.f32', dtype: 'F32', shape: [2, 3], bytes: le(6, 4, (v, o, i) => v.setFloat32(o, i * 1.5 - 2, true)) },
      { name: 'b.f16', dtype: 'F16', shape: [4], bytes: le(4, 2, (v, o, i) => v.setUint16(o, [0x3c00, 0xc000, 0x0001, 0x7c00][i]!, true)) },
      { name: 'c.bf16', dtype: 'BF16', shape: [2], bytes: le(2, 2, (v, o, i) => v.setUint16(o, [0x3f80, 0xc0a0][i]!, true)) },
      { name: 'd.f64', dtype: 'F64', shape: [2], bytes: le(2, 8, (v, o, i) => v.setFloat64(o, [0.1, -1e300][i]!, true)) },
      { name: 'e.i64', dtype: 'I64', shape: [1, 4], bytes: le(4, 8, (v, o, i) => v.setBigInt64(o, BigInt(i) - 1n, true)) },
      { name: 'f.i32', dtype: 'I32', shape: [3], bytes: le(3, 4, (v, o, i) => v.setInt32(o, (i - 1) * 100000, true)) },
      { name: 'g.scalar', dtype: 'F32', shape: [], bytes: le(1, 4, (v, o) => v.setFloat32(o, 42, true)) },
      { name: 'h.empty', dtype: 'F32', shape: [0, 8], bytes: new Uint8Array(0) },
    ];
    const bytes = assemble(entries, { format: 'pt', note: 'hand-built!' });

    function checkValues(file: ReturnType<typeof openSafetensors>): void {
      expect(file.metadata).to.deep.equal({ format: 'pt', note: 'hand-built!' });
      expect(new Set(file.names())).to.deep.equal(new Set(entries.map((e) => e.name)));
      const a = file.readFloat32('a.f32');
      expect(a.shape).to.deep.equal([2, 3]);
      expect([...a.data]).to.deep.equal([-2, -0.5, 1, 2.5, 4, 5.5]);
      expect([...file.readFloat32('b.f16').data]).to.deep.equal([1, -2, 2 ** -24, Infinity]);
      expect([...file.readFloat32('c.bf16').data]).to.deep.equal([1, -5]);
      expect([...file.readFloat32('d.f64').data]).to.deep.equal([Math.fround(0.1), -Infinity]); // 1e300 overflows float32
      const e = file.read('e.i64');
      expect(e.dtype).to.equal('I64');
      expect(e.data).to.be.instanceOf(BigInt64Array);
      expect([...(e.data as BigInt64Array)]).to.deep.equal([-1n, 0n, 1n, 2n]);
      const f = file.read('f.i32');
      expect(f.data).to.be.instanceOf(Int32Array);
      expect([...f.data]).to.deep.equal([-100000, 0, 100000]);
      expect([...file.readFloat32('g.scalar').data]).to.deep.equal([42]);
      expect(file.readFloat32('h.empty').data.length).to.equal(0);
    }

    it('has an odd header length, so the data is unaligned', () => {
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(headerLength % 2).to.equal(1, 'adjust the metadata note to make the header length odd');
    });

    it('reads every dtype from disk', () => {
      const path = join(dir, 'hand.safetensors');
      writeFileSync(path, bytes);
      // b.f16 holds an infinity and d.f64 a value beyond float32: read as they are only when allowed.
      checkValues(openSafetensors(path, { allowNonFinite: true }));
      const { tensors, metadata } = readSafetensors(path, { allowNonFinite: true });
      expect(metadata.format).to.equal('pt');
      expect(tensors.size).to.equal(entries.length);
    });

    it('reads every dtype from an unaligned buffer in memory', () => {
      const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1); // also misalign the buffer itself
      shifted.set(bytes);
      checkValues(parseSafetensors(shifted, 'shifted', { allowNonFinite: true }));
    });

    it('returns views of an aligned in-memory buffer instead of copies', () => {
      const aligned = assemble([{ name: 'x', dtype: 'F32', shape: [2], bytes: le(2, 4, (v, o, i) => v.setFloat32(o, i + 1, true)) }], { k: 'vv' });
      const dataStart = aligned.byteLength - 8;
      expect(dataStart % 4).to.equal(0);
      const t = parseSafetensors(aligned).readFloat32('x');
      expect([...t.data]).to.deep.equal([1, 2]);
      expect(t.data.buffer).to.equal(aligned.buffer);
    });

    it('names a dtype it cannot read, and lists all such tensors in readAll', () => {
      const path = join(dir, 'u8.safetensors');
      writeFileSync(
        path,
        assemble([
          { name: 'mask', dtype: 'U8', shape: [3], bytes: new Uint8Array([1, 0, 1]) },
          { name: 'flags', dtype: 'BOOL', shape: [1], bytes: new Uint8Array([1]) },
          { name: 'ok', dtype: 'F32', shape: [1], bytes: new Uint8Array(4) },
        ]),
      );
      const file = openSafetensors(path);
      expect([...file.readFloat32('ok').data]).to.deep.equal([0]);
      expectError(() => file.read('mask'), path, '"mask"', 'U8');
      expectError(() => file.readAll(), path, 'mask (U8)', 'flags (BOOL)');
      expectError(() => file.readFloat32('nope'), path, '"nope"');
    });

    it('refuses an integer tensor where floats are expected', () => {
      const path = join(dir, 'ints.safetensors');
      writeFileSync(path, assemble([{ name: 'ids', dtype: 'I64', shape: [1], bytes: new Uint8Array(8) }]));
      expectError(() => openSafetensors(path).readFloat32('ids'), path, '"ids"', 'I64');
    });
  });

  describe('writing', () => {
    const tensors = [
      { name: 'z.last', shape: [3], data: new Float32Array([1, -2, 3.25]) },
      { name: 'a.first', shape: [2, 2], data: new Float32Array([0.1, -65504, 1e-7, 7e4]) },
      { name: 'm.middle', shape: [5], data: new Float32Array([NaN, Infinity, -Infinity, -0, 2 ** -20]) },
    ];

    function headerOf(bytes: Uint8Array): { length: number; text: string } {
      const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      return { length, text: Buffer.from(bytes.subarray(8, 8 + length)).toString('utf8') };
    }

    it('writes the reference layout: compact JSON, metadata first, sorted names, space padding to 8 bytes', () => {
      const path = join(dir, 'layout.safetensors');
      writeSafetensors(path, [{ name: 'w', shape: [2], data: new Float32Array([1, 2]) }], { metadata: { format: 'pt' } });
      const bytes = new Uint8Array(readFileSync(path));
      const { length, text } = headerOf(bytes);
      const json = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
      expect(length % 8).to.equal(0);
      expect(text).to.equal(json + ' '.repeat(length - json.length));
      expect(bytes.byteLength).to.equal(8 + length + 8);
    });

    for (const dtype of ['F32', 'F16', 'BF16'] as WritableDtype[]) {
      it(`round-trips ${dtype}`, () => {
        const path = join(dir, `round-${dtype}.safetensors`);
        writeSafetensors(path, tensors, { dtype, metadata: { format: 'pt', dtype } });
        const file = openSafetensors(path, { allowNonFinite: true }); // m.middle holds NaN and infinities
        expect(file.metadata).to.deep.equal({ format: 'pt', dtype });
        expect(file.names()).to.deep.equal(['a.first', 'm.middle', 'z.last']); // data in sorted-name order
        const header = headerOf(new Uint8Array(readFileSync(path)));
        expect(header.length % 8).to.equal(0);
        expect(header.text.indexOf('"a.first"')).to.be.lessThan(header.text.indexOf('"z.last"'));
        const round = (x: number): number => (dtype === 'F32' ? Math.fround(x) : dtype === 'F16' ? f16ToF32(f32ToF16(x)) : bf16ToF32(f32ToBf16(x)));
        for (const t of tensors) {
          const back = file.readFloat32(t.name);
          expect(file.info(t.name).dtype).to.equal(dtype);
          expect(back.shape).to.deep.equal(t.shape);
          const expected = [...t.data].map(round);
          [...back.data].forEach((v, i) => {
            if (Number.isNaN(expected[i]!)) expect(v).to.be.NaN;
            else expect(Object.is(v, expected[i]), `${t.name}[${i}]: ${v} vs ${expected[i]}`).to.equal(true);
          });
        }
        if (dtype === 'F16') expect(file.readFloat32('a.first').data[3]).to.equal(Infinity); // 7e4 overflows float16
      });
    }

    it('accepts a Map and leaves no temporary file behind', () => {
      const sub = mkdtempSync(join(dir, 'map-'));
      const path = join(sub, 'm.safetensors');
      writeSafetensors(path, new Map([['k', { shape: [1], data: new Float32Array([5]) }]]));
      expect([...openSafetensors(path).readFloat32('k').data]).to.deep.equal([5]);
      expect(openSafetensors(path).metadata).to.deep.equal({});
      expect(readdirSync(sub).sort()).to.deep.equal(['m.safetensors']);
    });

    it('refuses data that does not match its shape, naming the file and tensor', () => {
      const path = join(dir, 'bad-write.safetensors');
      expectError(() => writeSafetensors(path, [{ name: 'w', shape: [3], data: new Float32Array(2) }]), path, '"w"', '[3]');
      expectError(() => encodeSafetensors([{ name: 'w', shape: [1], data: new Float32Array(1) }, { name: 'w', shape: [1], data: new Float32Array(1) }]), '"w"');
    });
  });

  describe('corrupt files', () => {
    const good = (): Uint8Array => assemble([{ name: 'weight', dtype: 'F32', shape: [2, 2], bytes: new Uint8Array(16) }]);
    let n = 0;
    function write(bytes: Uint8Array): string {
      const path = join(dir, `corrupt-${n++}.safetensors`);
      writeFileSync(path, bytes);
      return path;
    }

    it('a file shorter than 8 bytes', () => {
      const path = write(new Uint8Array(5));
      expectError(() => openSafetensors(path), path, '5 bytes', 'too short');
    });

    it('a header length past the end of the file', () => {
      const path = write(assembleRaw('{}', [], 1000n));
      expectError(() => openSafetensors(path), path, 'header length 1000', 'past the end');
    });

    it('a truncated file (data cut off)', () => {
      const bytes = good();
      const path = write(bytes.subarray(0, bytes.byteLength - 4));
      expectError(() => openSafetensors(path), path, '"weight"', 'past the end');
    });

    it('a header that is not JSON', () => {
      const path = write(assembleRaw('{"weight": {"dtype": "F32", ', [new Uint8Array(16)]));
      expectError(() => openSafetensors(path), path, 'not valid JSON');
    });

    it('offsets past the end of the data', () => {
      const path = write(assembleRaw('{"weight":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', [new Uint8Array(16)]));
      expectError(() => openSafetensors(path), path, '"weight"', '[8, 24]', 'past the end');
    });

    it('a byte size that does not match shape x dtype size', () => {
      const path = write(assembleRaw('{"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}', [new Uint8Array(16)]));
      expectError(() => openSafetensors(path), path, '"weight"', '16 bytes', '[2, 3]', 'needs 24');
    });

    it('an unknown dtype', () => {
      const path = write(assembleRaw('{"weight":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}', [new Uint8Array(16)]));
      expectError(() => openSafetensors(path), path, '"weight"', 'unknown dtype "F128"');
    });

    it('overlapping tensors', () => {
      const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
      const path = write(assembleRaw(header, [new Uint8Array(12)]));
      expectError(() => openSafetensors(path), path, '"b"', 'overlaps', '"a"');
    });

    it('malformed entries', () => {
      const bad = [
        ['{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}', 'shape'],
        ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', 'data_offsets'],
        ['{"w":{"shape":[1],"data_offsets":[0,4]}}', 'dtype'],
        ['{"__metadata__":{"format":1}}', '__metadata__'],
        ['[1,2]', 'not a JSON object'],
      ] as const;
      for (const [header, fragment] of bad) {
        const path = write(assembleRaw(header, [new Uint8Array(4)]));
        expectError(() => openSafetensors(path), path, fragment);
      }
    });

    it('a missing file', () => {
      expectError(() => openSafetensors(join(dir, 'absent.safetensors')), 'absent.safetensors', 'not found');
    });

    it('a file changed after its header was read', () => {
      const path = write(good());
      const file = openSafetensors(path);
      writeFileSync(path, assemble([{ name: 'weight', dtype: 'F32', shape: [2, 3], bytes: new Uint8Array(24) }]));
      expectError(() => file.readFloat32('weight'), path, 'changed');
    });
  });

  describe('non-finite values', () => {
    const f32 = (values: number[]): Uint8Array => le(values.length, 4, (v, o, i) => v.setFloat32(o, values[i]!, true));
    const f16 = (bits: number[]): Uint8Array => le(bits.length, 2, (v, o, i) => v.setUint16(o, bits[i]!, true));
    const QUERY = 'encoder.layer.0.attention.self.query.weight';

    it('refuses an F32 tensor with NaN values, naming the file, the tensor, the count and the first position', () => {
      const sub = mkdtempSync(join(dir, 'nan-'));
      const path = join(sub, 'model.safetensors');
      writeFileSync(path, assemble([
        { name: 'ok', dtype: 'F32', shape: [2], bytes: f32([1, 2]) },
        { name: QUERY, dtype: 'F32', shape: [2, 3], bytes: f32([0, 1, NaN, 3, NaN, NaN]) },
      ]));
      const file = openSafetensors(path);
      expect([...file.readFloat32('ok').data]).to.deep.equal([1, 2]); // other tensors still read
      const message = expectError(() => file.readFloat32(QUERY), `${path}: tensor "${QUERY}" has 3 NaN values (first at [0, 2])`);
      expect(message).to.not.include('infinite');
      expectError(() => file.read(QUERY), path, QUERY, '3 NaN values');
      // readSafetensors (probe files, optimizer state) reads every tensor, so it refuses too.
      expectError(() => readSafetensors(path), `${path}: tensor "${QUERY}" has 3 NaN values`);
      // Allowed explicitly, the values come back as stored.
      expect(Number.isNaN(openSafetensors(path, { allowNonFinite: true }).readFloat32(QUERY).data[2])).to.equal(true);
    });

    it('refuses infinities, also where they come from F16, BF16 or F64 (beyond float32) storage', () => {
      const path = join(dir, 'inf.safetensors');
      writeFileSync(path, assemble([
        { name: 'a.f32', dtype: 'F32', shape: [3], bytes: f32([Infinity, 1, -Infinity]) },
        { name: 'b.f16', dtype: 'F16', shape: [2, 2], bytes: f16([0x3c00, 0x3c00, 0x3c00, 0xfc00]) },
        { name: 'c.bf16', dtype: 'BF16', shape: [3], bytes: f16([0x7fc0, 0x3f80, 0x7f80]) },
        { name: 'd.f64', dtype: 'F64', shape: [2], bytes: le(2, 8, (v, o, i) => v.setFloat64(o, [0.5, 1e300][i]!, true)) },
        { name: 'e.scalar', dtype: 'F32', shape: [], bytes: f32([NaN]) },
      ]));
      const file = openSafetensors(path);
      expectError(() => file.readFloat32('a.f32'), `${path}: tensor "a.f32" has 2 infinite values (first at [0])`);
      expectError(() => file.readFloat32('b.f16'), `${path}: tensor "b.f16" has 1 infinite value (first at [1, 1])`);
      expectError(() => file.readFloat32('c.bf16'), `${path}: tensor "c.bf16" has 1 NaN and 1 infinite values (first at [0])`);
      expectError(() => file.readFloat32('d.f64'), `${path}: tensor "d.f64" has 1 infinite value (first at [1])`, 'beyond the float32 range');
      expectError(() => file.readFloat32('e.scalar'), `${path}: tensor "e.scalar" has 1 NaN value;`);
    });

    it('names the source of an in-memory buffer, and leaves integer tensors alone', () => {
      const bytes = assemble([
        { name: 'ids', dtype: 'I32', shape: [2], bytes: le(2, 4, (v, o, i) => v.setInt32(o, -1 - i, true)) },
        { name: 'w', dtype: 'F32', shape: [1], bytes: f32([NaN]) },
      ]);
      const file = parseSafetensors(bytes, 'upload.safetensors');
      expect([...file.read('ids').data]).to.deep.equal([-1, -2]);
      expectError(() => file.readFloat32('w'), 'upload.safetensors: tensor "w" has 1 NaN value');
    });

    it('checks a 4-million-element tensor in one fast pass', () => {
      const data = new Float32Array(4_000_000).fill(0.25);
      const path = join(dir, 'big.safetensors');
      writeSafetensors(path, [{ name: 'big', shape: [2000, 2000], data }]);
      const file = openSafetensors(path);
      const start = performance.now();
      expect(file.readFloat32('big').data.length).to.equal(4_000_000);
      const ms = performance.now() - start;
      expect(ms).to.be.lessThan(1000);
      data[3_999_999] = NaN;
      writeSafetensors(path, [{ name: 'big', shape: [2000, 2000], data }]);
      expectError(() => openSafetensors(path).readFloat32('big'), '"big" has 1 NaN value (first at [1999, 1999])');
    });
  });
});
