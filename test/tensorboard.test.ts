/**
 * src/util/tensorboard.ts: event files checked by a decoder written here from the formats (TFRecord
 * framing, the Event and Summary protos), with its own bitwise CRC32C, not the module's internals; and,
 * where TensorBoard is installed, by TensorBoard's own event file loader.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { EventWriter, crc32c, maskedCrc32c, readScalars } from '../src/util/tensorboard.js';
import { TopoprobeError } from '../src/util/errors.js';
import { bitwiseCrc32c, decodeFile, decodeRecords, mask, type DecodedEvent } from './tfevents-decoder.js';

// ---------------------------------------------------------------------------------------------------

const MARKDOWN = '# Run notes\n\n**lr** = 3e-5 — ünïcödé ✓\n\n| a | b |\n|---|---|\n| 1 | 2 |\n';
const T0 = 1_700_000_000_123; // ms

/** A file with every kind of record; returns the writer's path. */
function writeSample(dir: string): string {
  let clock = T0;
  const w = new EventWriter(dir, { now: () => clock });
  clock += 1000;
  w.scalar('loss', 0.1, 0);
  w.scalar('neg', -2.5, 3, T0 + 2500);
  w.scalar('big/step', 1e30, 2 ** 40, T0 + 3000);
  w.scalar('nan', NaN, 7, T0 + 4000);
  w.scalars({ 'eval/a': 1.5, 'eval/b': -0.3, inf: Infinity, ninf: -Infinity }, 9, T0 + 5000);
  w.text('notes', MARKDOWN, 11, T0 + 6000);
  w.close();
  return w.path;
}

const EXPECTED_SCALARS = [
  { step: 0, wallTime: (T0 + 1000) / 1000, tag: 'loss', value: Math.fround(0.1) },
  { step: 3, wallTime: (T0 + 2500) / 1000, tag: 'neg', value: -2.5 },
  { step: 2 ** 40, wallTime: (T0 + 3000) / 1000, tag: 'big/step', value: Math.fround(1e30) },
  { step: 7, wallTime: (T0 + 4000) / 1000, tag: 'nan', value: NaN },
  { step: 9, wallTime: (T0 + 5000) / 1000, tag: 'eval/a', value: 1.5 },
  { step: 9, wallTime: (T0 + 5000) / 1000, tag: 'eval/b', value: Math.fround(-0.3) },
  { step: 9, wallTime: (T0 + 5000) / 1000, tag: 'inf', value: Infinity },
  { step: 9, wallTime: (T0 + 5000) / 1000, tag: 'ninf', value: -Infinity },
];

/** Deep equality where NaN equals NaN (chai's deep equal already treats NaN as equal to NaN; kept explicit). */
function expectScalars(actual: unknown[], expected: typeof EXPECTED_SCALARS): void {
  expect(actual).to.have.length(expected.length);
  expected.forEach((e, i) => {
    const a = actual[i] as (typeof EXPECTED_SCALARS)[number];
    expect({ ...a, value: Object.is(a.value, NaN) ? 'NaN' : a.value }, `scalar ${i}`).to.deep.equal({ ...e, value: Number.isNaN(e.value) ? 'NaN' : e.value });
  });
}

describe('tensorboard: event files', () => {
  let root: string;
  let n = 0;
  const freshDir = () => join(root, `d${n++}`);
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'topoprobe-tb-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('crc32c', () => {
    const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
    const vectors: Array<[string, Uint8Array, number]> = [
      ['"123456789"', new TextEncoder().encode('123456789'), 0xe3069283],
      ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
      ['32 0xFF bytes', new Uint8Array(32).fill(0xff), 0x62a8ab43],
      ['bytes 0..31 ascending', ascending, 0x46dd794e],
      ['bytes 31..0 descending (RFC 3720)', ascending.slice().reverse(), 0x113fdb5c],
      ['nothing', new Uint8Array(0), 0],
    ];
    for (const [name, bytes, want] of vectors) {
      it(`matches the published check value of ${name}`, () => {
        expect(crc32c(bytes).toString(16)).to.equal(want.toString(16));
        expect(bitwiseCrc32c(bytes).toString(16), 'the test decoder CRC').to.equal(want.toString(16));
      });
    }

    it('agrees with the bitwise CRC on random data, and masks as TFRecord does', () => {
      let seed = 12345;
      for (let len = 0; len < 300; len += 7) {
        const bytes = Uint8Array.from({ length: len }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
        expect(crc32c(bytes), `length ${len}`).to.equal(bitwiseCrc32c(bytes));
        expect(maskedCrc32c(bytes), `masked, length ${len}`).to.equal(mask(bitwiseCrc32c(bytes)));
      }
      // a hand-worked mask: crc 0xE3069283 -> rotr15 = 0x2507C60D, + 0xA282EAD8 = 0xC78AB0E5 (mod 2^32)
      expect(maskedCrc32c(new TextEncoder().encode('123456789')).toString(16)).to.equal('c78ab0e5');
    });
  });

  describe('the independent decoder reads what EventWriter writes', () => {
    let path: string;
    let events: DecodedEvent[];
    before(() => {
      path = writeSample(freshDir());
      events = decodeFile(path);
    });

    it('frames every record with its length and both masked CRCs (the decoder checks each)', () => {
      const recs = decodeRecords(readFileSync(path));
      expect(recs).to.have.length(7);
      expect(recs.map((r) => r.offset + r.length + 16).at(-1)).to.equal(statSync(path).size);
    });

    it('starts with a file_version "brain.Event:2" event at the clock time', () => {
      expect(events[0]).to.deep.equal({ wallTime: T0 / 1000, step: 0n, fileVersion: 'brain.Event:2', fields: [1, 3] });
    });

    it('writes each scalar event with its wall time, step, tag and float32 value', () => {
      const scalarEvents = events.slice(1, 6);
      const flat = scalarEvents.flatMap((e) => e.values!.map((v) => ({ step: Number(e.step), wallTime: e.wallTime, tag: v.tag, value: v.simpleValue! })));
      expectScalars(flat, EXPECTED_SCALARS);
      expect(scalarEvents.map((e) => e.step)).to.deep.equal([0n, 3n, 2n ** 40n, 7n, 9n]);
      expect(scalarEvents.map((e) => e.values!.length)).to.deep.equal([1, 1, 1, 1, 4]);
      for (const e of scalarEvents) {
        expect(e.fields.filter((f) => f !== 1 && f !== 2)).to.deep.equal([5]); // a summary, nothing else
        for (const v of e.values!) expect(v.fields.sort()).to.deep.equal([1, 2]);
      }
    });

    it('writes the text summary for the text plugin: a DT_STRING scalar tensor holding the markdown', () => {
      const e = events[6]!;
      expect(e.step).to.equal(11n);
      expect(e.wallTime).to.equal((T0 + 6000) / 1000);
      expect(e.values).to.have.length(1);
      const v = e.values![0]!;
      expect(v).to.include({ tag: 'notes', pluginName: 'text', dtype: 7, shapeDims: 0 });
      expect(v.simpleValue).to.equal(undefined);
      expect(v.strings).to.deep.equal([MARKDOWN]);
    });

    it('names the file events.out.tfevents.<10-digit seconds>.<host>.<pid>.<counter><suffix>', () => {
      expect(basename(path)).to.match(new RegExp(`^events\\.out\\.tfevents\\.1700000000\\.[A-Za-z0-9._-]+\\.${process.pid}\\.\\d+$`));
      const dir = freshDir();
      const a = new EventWriter(dir, { now: () => 5_000, filenameSuffix: '.train' });
      const b = new EventWriter(dir, { now: () => 5_000, filenameSuffix: '.train' });
      a.close();
      b.close();
      expect(basename(a.path)).to.match(/^events\.out\.tfevents\.0000000005\..+\.\d+\.train$/);
      expect(a.path).to.not.equal(b.path);
      expect(readdirSync(dir).sort()).to.deep.equal([basename(a.path), basename(b.path)].sort());
    });

    it('creates missing folders', () => {
      const dir = join(freshDir(), 'a', 'b');
      const w = new EventWriter(dir);
      w.close();
      expect(readdirSync(dir)).to.deep.equal([basename(w.path)]);
      expect(decodeFile(w.path)[0]!.fileVersion).to.equal('brain.Event:2');
    });

    it('has each record on disk when its call returns (nothing waits for flush or close)', () => {
      const w = new EventWriter(freshDir());
      try {
        expect(decodeFile(w.path)).to.have.length(1);
        w.scalar('x', 1, 1);
        expect(decodeFile(w.path)).to.have.length(2);
        w.text('t', 'hi', 2);
        expect(decodeFile(w.path)).to.have.length(3);
        w.flush();
        expect(decodeFile(w.path)).to.have.length(3);
        w.scalars({}, 3); // no values: no event
        expect(decodeFile(w.path)).to.have.length(3);
      } finally {
        w.close();
      }
      w.close(); // a second close does nothing
      expect(() => w.scalar('x', 1, 3)).to.throw(/closed/);
      expect(() => w.flush()).to.throw(/closed/);
    });
  });

  describe('readScalars', () => {
    let path: string;
    before(() => {
      path = writeSample(freshDir());
    });

    it('reads back every scalar, in order (text skipped)', () => {
      expectScalars(readScalars(path), EXPECTED_SCALARS);
    });

    it('reads everything before a trailing record cut in half, or cut in its header', () => {
      const bytes = readFileSync(path);
      const recs = decodeRecords(bytes);
      // append one more scalar record, then cut it at several points
      const dir = freshDir();
      const w = new EventWriter(dir, { now: () => T0 });
      w.scalar('extra', 42, 100, T0 + 9000);
      w.close();
      const extraRecs = decodeRecords(readFileSync(w.path));
      const extra = readFileSync(w.path).subarray(extraRecs[1]!.offset);
      const whole = Buffer.concat([bytes, extra]);
      const cutPath = join(dir, 'events.out.tfevents.cut');
      writeFileSync(cutPath, whole);
      expectScalars(readScalars(cutPath), [...EXPECTED_SCALARS, { step: 100, wallTime: (T0 + 9000) / 1000, tag: 'extra', value: 42 }]);
      for (const cut of [Math.floor(extra.length / 2), 5, 12, extra.length - 1, 0]) {
        writeFileSync(cutPath, whole.subarray(0, bytes.length + cut));
        expectScalars(readScalars(cutPath), EXPECTED_SCALARS);
      }
      // a cut inside the last scalar record of the sample itself loses that event's four values only
      const last = recs[5]!;
      writeFileSync(cutPath, bytes.subarray(0, last.offset + Math.floor((last.length + 16) / 2)));
      expectScalars(readScalars(cutPath), EXPECTED_SCALARS.slice(0, 4));
    });

    it('stops at a damaged record (a flipped byte of the data, the length, or either CRC), keeping what came before', () => {
      const bytes = readFileSync(path);
      const recs = decodeRecords(bytes);
      const damagedPath = join(freshDir() + '-damaged');
      const r = recs[3]!;
      // a data byte, a length byte, a byte of the length's CRC, a byte of the data's CRC
      for (const at of [r.offset + 12 + 3, r.offset + 1, r.offset + 9, r.offset + 12 + r.length + 2]) {
        const copy = Buffer.from(bytes);
        copy[at] = copy[at]! ^ 0x10;
        writeFileSync(damagedPath, copy);
        expectScalars(readScalars(damagedPath), EXPECTED_SCALARS.slice(0, 2));
      }
    });

    it('reads an empty file as nothing, and a missing file as a TopoprobeError', () => {
      const p = join(freshDir() + '-empty');
      writeFileSync(p, '');
      expect(readScalars(p)).to.deep.equal([]);
      expect(() => readScalars(join(root, 'no-such-file'))).to.throw(TopoprobeError, /cannot read event file/);
    });
  });

  describe('argument errors', () => {
    it('refuses negative, fractional, non-finite and unsafe steps, empty tags and non-number values, writing nothing', () => {
      const w = new EventWriter(freshDir());
      try {
        for (const step of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
          expect(() => w.scalar('x', 1, step), `step ${step}`).to.throw(TopoprobeError, /step .*non-negative integer/);
          expect(() => w.scalars({ x: 1 }, step), `step ${step}`).to.throw(TopoprobeError, /non-negative integer/);
          expect(() => w.text('x', 'y', step), `step ${step}`).to.throw(TopoprobeError, /non-negative integer/);
        }
        expect(() => w.scalar('', 1, 1)).to.throw(TopoprobeError, /tag: must be a non-empty string/);
        expect(() => w.scalars({ ok: 1, '': 2 }, 1)).to.throw(TopoprobeError, /tag: must be a non-empty string/);
        expect(() => w.text('', 'y', 1)).to.throw(TopoprobeError, /tag: must be a non-empty string/);
        expect(() => w.scalar('x', '1' as unknown as number, 1)).to.throw(TopoprobeError, /not a number/);
        expect(() => w.scalar('x', 1, 1, NaN)).to.throw(TopoprobeError, /wall time/);
        expect(() => new EventWriter(freshDir(), { filenameSuffix: '/x' })).to.throw(TopoprobeError, /path separator/);
      } finally {
        w.close();
      }
      expect(decodeFile(w.path)).to.have.length(1); // the file_version record alone
    });
  });

  describe('TensorBoard itself', () => {
    // Prints, as JSON, what TensorBoard's own loader makes of a file. EventFileLoader applies TensorBoard's
    // migrations (a simple_value becomes a float tensor of the scalars plugin), so both forms are read.
    const LOADER = `
import json, struct, sys
from tensorboard.backend.event_processing import event_file_loader
out = []
for ev in event_file_loader.EventFileLoader(sys.argv[1]).Load():
    e = {"wall_time": ev.wall_time, "step": ev.step, "what": ev.WhichOneof("what"), "values": []}
    if e["what"] == "file_version":
        e["file_version"] = ev.file_version
    if ev.HasField("summary"):
        for v in ev.summary.value:
            d = {"tag": v.tag, "plugin": v.metadata.plugin_data.plugin_name}
            if v.WhichOneof("value") == "simple_value":
                d["number"] = repr(float(v.simple_value))
            elif v.WhichOneof("value") == "tensor":
                t = v.tensor
                d["dtype"] = int(t.dtype)
                if t.dtype == 7:
                    d["strings"] = [s.decode("utf-8") for s in t.string_val]
                elif t.dtype == 1:
                    xs = list(t.float_val) or [x[0] for x in struct.iter_unpack("<f", t.tensor_content)]
                    d["number"] = repr(float(xs[0]))
            e["values"].append(d)
    out.append(e)
print(json.dumps(out))
`;

    it("reads the file with TensorBoard's event_file_loader, to the same events", function () {
      const probe = spawnSync('python3', ['-c', 'import tensorboard'], { encoding: 'utf8', timeout: 60000 });
      if (probe.status !== 0) {
        const why = probe.error ? probe.error.message : (probe.stderr.trim().split('\n').at(-1) ?? `exit ${probe.status}`);
        this.test!.title += ` [skipped: python3 -c "import tensorboard" failed: ${why}]`;
        this.skip();
      }
      const path = writeSample(freshDir());
      const res = spawnSync('python3', ['-c', LOADER, path], { encoding: 'utf8', timeout: 120000 });
      expect(res.status, res.stderr).to.equal(0);
      const got = JSON.parse(res.stdout) as Array<{ wall_time: number; step: number; what: string; file_version?: string; values: Array<{ tag: string; plugin: string; number?: string; dtype?: number; strings?: string[] }> }>;
      expect(got[0]).to.deep.include({ what: 'file_version', file_version: 'brain.Event:2', wall_time: T0 / 1000 });
      const special: Record<string, number> = { nan: NaN, inf: Infinity, '-inf': -Infinity };
      const pyNumber = (s: string) => special[s] ?? Number(s);
      const scalars = got
        .slice(1)
        .flatMap((e) => e.values.filter((v) => v.number !== undefined).map((v) => ({ step: e.step, wallTime: e.wall_time, tag: v.tag, value: pyNumber(v.number!) })));
      expectScalars(scalars, EXPECTED_SCALARS);
      const texts = got.flatMap((e) => e.values.filter((v) => v.plugin === 'text').map((v) => ({ step: e.step, ...v })));
      expect(texts).to.deep.equal([{ step: 11, tag: 'notes', plugin: 'text', dtype: 7, strings: [MARKDOWN] }]);
    });
  });
});
