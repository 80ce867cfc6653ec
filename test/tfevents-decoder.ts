/**
 * An independent decoder of TensorBoard event files, written from the published formats (TFRecord framing
 * with masked CRC32C, the Event and Summary protos) with its own bitwise CRC32C, for the tests of
 * src/util/tensorboard.ts and of the runs that write event files. It asserts every length and CRC.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';

/** CRC32C one bit at a time (Castagnoli, reflected 0x82F63B78). */
export function bitwiseCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc & 1) !== 0 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** The TFRecord mask, in BigInt arithmetic: rotate right by 15, add 0xa282ead8, modulo 2^32. */
export function mask(crc: number): number {
  const c = BigInt(crc);
  const rotated = ((c >> 15n) | (c << 17n)) & 0xffffffffn;
  return Number((rotated + 0xa282ead8n) & 0xffffffffn);
}

export interface Rec {
  offset: number;
  length: number;
  data: Buffer;
}

/** Every record of a TFRecord file, asserting each length and both CRCs, and that nothing is left over. */
export function decodeRecords(file: Buffer): Rec[] {
  const out: Rec[] = [];
  let at = 0;
  while (at < file.length) {
    expect(file.length - at, `header at ${at}`).to.be.at.least(12);
    const length = file.readBigUInt64LE(at);
    expect(length < 1n << 32n, `length at ${at}`).to.equal(true);
    const n = Number(length);
    expect(file.readUInt32LE(at + 8), `length CRC at ${at}`).to.equal(mask(bitwiseCrc32c(file.subarray(at, at + 8))));
    expect(file.length - at, `record at ${at}`).to.be.at.least(16 + n);
    const data = file.subarray(at + 12, at + 12 + n);
    expect(file.readUInt32LE(at + 12 + n), `data CRC at ${at}`).to.equal(mask(bitwiseCrc32c(data)));
    out.push({ offset: at, length: n, data });
    at += 16 + n;
  }
  expect(at).to.equal(file.length);
  return out;
}

export type Wire = { field: number; type: 0; int: bigint } | { field: number; type: 1 | 2 | 5; raw: Buffer };

/** The fields of one protobuf message (wire types 0, 1, 2, 5; anything else fails). */
export function decodeMessage(buf: Buffer): Wire[] {
  const fields: Wire[] = [];
  let i = 0;
  const readVarint = (): bigint => {
    let value = 0n;
    let scale = 1n;
    for (let k = 0; k < 10; k++) {
      expect(i, 'varint runs past the message').to.be.below(buf.length);
      const b = buf[i++]!;
      value += BigInt(b & 0x7f) * scale;
      scale *= 128n;
      if (b < 128) return value;
    }
    throw new Error('varint longer than 10 bytes');
  };
  const slice = (n: number): Buffer => {
    expect(i + n, 'field runs past the message').to.be.at.most(buf.length);
    i += n;
    return buf.subarray(i - n, i);
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Number(key / 8n);
    const type = Number(key % 8n);
    if (type === 0) fields.push({ field, type, int: readVarint() });
    else if (type === 1) fields.push({ field, type, raw: slice(8) });
    else if (type === 5) fields.push({ field, type, raw: slice(4) });
    else if (type === 2) fields.push({ field, type, raw: slice(Number(readVarint())) });
    else throw new Error(`unexpected wire type ${type} (field ${field})`);
  }
  return fields;
}

/** The one field `field` of a message (asserting its wire type, and that it is not repeated), or undefined. */
function only(fields: Wire[], field: number, type: number): Wire | undefined {
  const found = fields.filter((f) => f.field === field);
  expect(found.length, `field ${field} repeated`).to.be.at.most(1);
  if (found[0]) expect(found[0].type, `wire type of field ${field}`).to.equal(type);
  return found[0];
}
const raw = (w: Wire | undefined): Buffer => (w && w.type !== 0 ? w.raw : Buffer.alloc(0));
const int = (w: Wire | undefined): bigint => (w && w.type === 0 ? w.int : 0n);

export interface DecodedValue {
  tag: string;
  simpleValue?: number;
  pluginName?: string;
  dtype?: number;
  shapeDims?: number;
  strings?: string[];
  fields: number[];
}
export interface DecodedEvent {
  wallTime: number;
  step: bigint;
  fileVersion?: string;
  values?: DecodedValue[];
  fields: number[];
}

function decodeEvent(data: Buffer): DecodedEvent {
  const f = decodeMessage(data);
  const ev: DecodedEvent = {
    wallTime: raw(only(f, 1, 1)).readDoubleLE(0),
    step: BigInt.asIntN(64, int(only(f, 2, 0))),
    fields: f.map((x) => x.field),
  };
  const version = only(f, 3, 2);
  if (version) ev.fileVersion = raw(version).toString('utf8');
  const summary = only(f, 5, 2);
  if (summary) {
    ev.values = decodeMessage(raw(summary)).map((v) => {
      expect(v.field).to.equal(1);
      const vf = decodeMessage(raw(v));
      const out: DecodedValue = { tag: raw(only(vf, 1, 2)).toString('utf8'), fields: vf.map((x) => x.field) };
      const simple = only(vf, 2, 5);
      if (simple) out.simpleValue = raw(simple).readFloatLE(0);
      const meta = only(vf, 9, 2);
      if (meta) {
        const plugin = only(decodeMessage(raw(meta)), 1, 2);
        out.pluginName = raw(only(decodeMessage(raw(plugin)), 1, 2)).toString('utf8');
      }
      const tensor = only(vf, 8, 2);
      if (tensor) {
        const tf = decodeMessage(raw(tensor));
        out.dtype = Number(int(only(tf, 1, 0)));
        out.shapeDims = decodeMessage(raw(only(tf, 2, 2))).filter((d) => d.field === 2).length;
        out.strings = tf.filter((x) => x.field === 8).map((x) => raw(x).toString('utf8'));
      }
      return out;
    });
  }
  return ev;
}

export function decodeFile(path: string): DecodedEvent[] {
  return decodeRecords(readFileSync(path)).map((r) => decodeEvent(r.data));
}

