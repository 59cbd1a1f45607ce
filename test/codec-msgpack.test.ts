import t from 'tap';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { MsgpackDecoder, MsgpackEncoder, RecordScanner, decode, encode, measure } from '../src/codec/msgpack.js';
import { PyFloat, deepEqual, type Value } from '../src/codec/values.js';
import { msgpackRecordsOf, readMsgpackRecords } from '../src/sources/msgpack-records.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';

const hex = (v: Value) => encode(v).toString('hex');

t.test('numbers keep their Python type', async (t) => {
  t.equal(hex(new PyFloat(1)), 'cb3ff0000000000000', 'float 1.0 is float64, not an int');
  t.equal(hex(1), '01');
  t.equal(hex(-1), 'ff');
  t.equal(hex(-33), 'd0df');
  t.equal(hex(255), 'ccff');
  t.equal(hex(65536), 'ce00010000');
  t.equal(hex(2 ** 32), 'cf0000000100000000', '2^32 stays an int (msgpackr writes a float)');
  t.equal(hex(2 ** 53 - 1), 'cf001fffffffffffff');
  t.equal(hex(2n ** 63n - 1n), 'cf7fffffffffffffff');
  t.equal(hex(-(2n ** 63n)), 'd38000000000000000');
  t.equal(hex(2n ** 64n - 1n), 'cfffffffffffffffff');
  t.throws(() => encode(2n ** 64n), { name: 'RangeError' });
  t.equal(hex(0.5), 'cb3fe0000000000000');
  t.equal(hex(new PyFloat(-0)), 'cb8000000000000000', '-0.0 stays a float');
  t.equal(hex(NaN), 'cb7ff8000000000000');
  const back = decode(encode(new PyFloat(1)));
  t.ok(back instanceof PyFloat && back.value === 1, 'float64 1.0 decodes to PyFloat');
  t.equal(decode(Buffer.from('cf0000000100000000', 'hex')), 2 ** 32, 'uint64 in safe range decodes to number');
  t.equal(decode(Buffer.from('cfffffffffffffffff', 'hex')), 2n ** 64n - 1n, 'big uint64 decodes exact as bigint');
  t.equal(decode(Buffer.from('d38000000000000000', 'hex')), -(2n ** 63n));
});

t.test('strings and bytes use the forms Python picks', async (t) => {
  t.equal(hex('a'.repeat(31)).slice(0, 2), 'bf');
  t.equal(hex('a'.repeat(32)).slice(0, 4), 'd920', 'str8 from 32 bytes (use_bin_type=True)');
  t.equal(hex('a'.repeat(256)).slice(0, 6), 'da0100');
  t.equal(hex('é'), 'a2c3a9');
  t.equal(hex('温度'.repeat(20)).slice(0, 4), 'd978');
  t.equal(hex(Buffer.from([1, 2])), 'c4020102');
  t.same(decode(encode('Müller 😀')), 'Müller 😀');
});

t.test('maps keep order, odd keys and bin keys', async (t) => {
  const m = new Map<string | Uint8Array, Value>([['b', 1], ['0', 2], ['a', 3]]);
  const back = decode(encode(m));
  t.ok(back instanceof Map, 'integer-like keys decode to an ordered Map');
  t.same([...(back as Map<string, Value>).keys()], ['b', '0', 'a']);
  t.equal(encode(back).toString('hex'), encode(m).toString('hex'));
  // msgpack-numpy's array map, as Python writes it: bin keys
  const nd = new Map<string | Uint8Array, Value>([
    [Buffer.from('nd'), true],
    [Buffer.from('type'), '<f8'],
    [Buffer.from('kind'), Buffer.alloc(0)],
    [Buffer.from('shape'), [2]],
    [Buffer.from('data'), Buffer.alloc(16)],
  ]);
  const bytes = encode(nd);
  t.equal(bytes.subarray(0, 4).toString('hex'), '85c4026e', 'fixmap of 5 with a bin key first');
  t.same(encode(decode(bytes)), bytes, 'bin-keyed map re-encodes byte for byte');
  const proto = decode(encode(new Map([['__proto__', 1]]))) as Map<string, Value>;
  t.equal(proto.get('__proto__'), 1, '__proto__ is an ordinary key');
  t.throws(() => decode(Buffer.from('8101a161', 'hex')), /map key/, 'int map keys are refused like strict_map_key');
});

t.test('typed arrays are refused, not silently corrupted', async (t) => {
  t.throws(() => encode(new Float64Array([1.5]) as unknown as Value), /typed arrays/);
});

t.test('incomplete input is detected with the bytes needed', async (t) => {
  const full = encode({ a: 'x'.repeat(100) });
  for (let n = 0; n < full.length; n++) {
    t.throws(() => measure(full.subarray(0, n), 0), { name: 'Incomplete' });
  }
  t.equal(measure(full, 0), full.length);
  const d = new MsgpackDecoder(full.subarray(0, 10));
  t.throws(() => d.value(), { name: 'Incomplete' });
});

t.test('random values round-trip exactly', async (t) => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const gen = (depth: number): Value => {
    const r = rnd();
    if (depth > 3 || r < 0.5) {
      const k = Math.floor(rnd() * 9);
      switch (k) {
        case 0: return Math.floor(rnd() * 2 ** 40) - 2 ** 39;
        case 1: return rnd() * 1e6;
        case 2: return new PyFloat(Math.floor(rnd() * 100));
        case 3: return 'k'.repeat(Math.floor(rnd() * 300));
        case 4: return null;
        case 5: return rnd() < 0.5;
        case 6: return BigInt(Math.floor(rnd() * 2 ** 31)) * 2n ** 32n + 2n ** 60n;
        case 7: return Buffer.from([1, 2, 3]);
        default: return -Math.floor(rnd() * 70000);
      }
    }
    if (rnd() < 0.5) return Array.from({ length: Math.floor(rnd() * 20) }, () => gen(depth + 1));
    const o: Record<string, Value> = {};
    for (let i = 0; i < Math.floor(rnd() * 20); i++) o[`key${i}_${Math.floor(rnd() * 1000)}`] = gen(depth + 1);
    return o;
  };
  for (let i = 0; i < 300; i++) {
    const v = gen(0);
    const b = encode(v);
    const back = decode(b);
    if (!deepEqual(back, v)) t.fail(`value ${i} changed`);
    if (Buffer.compare(encode(back), b) !== 0) t.fail(`value ${i} re-encodes differently`);
  }
  t.pass('300 random documents');
});

t.test('every vector document re-encodes byte for byte', { skip: SKIP_VECTORS }, async (t) => {
  let n = 0;
  for (const pack of ['simple_catalog', 'another_simple_catalog', 'polartools_scalar']) {
    const dir = path.join(VECTORS, pack, 'documents');
    for (const f of readdirSync(dir)) {
      for await (const rec of readMsgpackRecords(path.join(dir, f))) {
        const e = new MsgpackEncoder(16);
        e.record(rec.name, rec.doc);
        if (Buffer.compare(e.take(), rec.raw as Buffer) !== 0) t.fail(`${pack}/${f}: ${rec.name} differs`);
        n++;
      }
    }
  }
  t.ok(n > 20, `${n} documents compared`);
});

t.test('canonical one-row event pages are recognised from their bytes', async (t) => {
  const { canonicalEventPageDescriptor, encodeRecord } = await import('../src/codec/msgpack.js');
  const page = { time: [1.5], uid: ['u'], seq_num: [1], descriptor: 'D', filled: {}, data: { x: [new PyFloat(1)], y: [[1, 2]] }, timestamps: { x: [1.5], y: [1.5] } };
  t.equal(canonicalEventPageDescriptor(encodeRecord('event_page', page)), 'D');
  t.equal(canonicalEventPageDescriptor(encodeRecord('event_page', { ...page, time: [1, 2] })), undefined, 'two rows');
  t.equal(canonicalEventPageDescriptor(encodeRecord('event_page', { ...page, data: { x: [1, 2] } })), undefined, 'a two-row column');
  const { filled, ...noFilled } = page;
  void filled;
  t.equal(canonicalEventPageDescriptor(encodeRecord('event_page', noFilled)), undefined, 'no filled key');
  t.equal(canonicalEventPageDescriptor(encodeRecord('event_page', { uid: ['u'], time: [1.5], seq_num: [1], descriptor: 'D', filled: {}, data: {}, timestamps: {} })), undefined, 'other key order');
  t.equal(canonicalEventPageDescriptor(encodeRecord('event', page)), undefined, 'not a page');
  const b = encodeRecord('event_page', page);
  t.equal(canonicalEventPageDescriptor(b.subarray(0, b.length - 3)), undefined, 'truncated');
});

t.test('RecordScanner frames records across any split, as measure() does, and checks them', async (t) => {
  const values: Value[] = [
    ['start', { uid: 'u', s8: 'x'.repeat(40), s16: 'é'.repeat(200), s32: 'y'.repeat(70000), n: [1, -1, 200, -200, 70000, -70000, 2 ** 40, -(2 ** 40), 1.5, new PyFloat(2)] }],
    ['event_page', { data: { a: [[1, 2, 3, null, true, false]], b: [new Uint8Array(300)], c: [new Map<string | Uint8Array, Value>([[new Uint8Array([1]), 2]])] }, big: new Array(70000).fill(7), m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) }],
    [],
    {},
  ];
  const bytes = Buffer.concat(values.map((v) => encode(v)));
  const ends: number[] = [];
  for (let p = 0; p < bytes.length; p = measure(bytes, p)) ends.push(measure(bytes, p));
  for (const step of [1, 7, 4096, bytes.length]) {
    const scanner = new RecordScanner();
    const got: number[] = [];
    let needTooSmall = 0;
    let start = 0;
    let end = 0;
    while (start < bytes.length) {
      end = Math.min(bytes.length, end + step);
      for (;;) {
        const len = scanner.scan(bytes, start, end);
        if (len < 0) {
          if (scanner.need <= end - start) needTooSmall++;
          break;
        }
        start += len;
        got.push(start);
        if (start >= end) break;
      }
    }
    t.same(got, ends, `fed ${step} bytes at a time`);
    t.equal(needTooSmall, 0, 'when it needs more, it says more than it has');
  }
  const bad: [string, Buffer, RegExp][] = [
    ['invalid UTF-8', Buffer.from([0x92, 0xa1, 0x61, 0xa2, 0xc3, 0x28]), /is not valid UTF-8/],
    ['an int map key', Buffer.from([0x81, 0x01, 0x02]), /map key at offset 1 is not a str or bin/],
    ['an ext type', Buffer.from([0x91, 0xd4, 0x01, 0x01]), /unsupported msgpack type byte 0xd4/],
    ['1,001 levels', Buffer.concat([Buffer.alloc(1001, 0x91), Buffer.from([0xc0])]), /nesting deeper than 1000 levels/],
  ];
  for (const [what, b, msg] of bad) t.throws(() => new RecordScanner().scan(b, 0, b.length), { message: msg }, what);
  const ok = Buffer.concat([Buffer.alloc(1000, 0x91), Buffer.from([0xc0])]);
  t.equal(new RecordScanner().scan(ok, 0, ok.length), ok.length, '1,000 levels are fine');
});

t.test('msgpackRecordsOf: whole records from a stream of chunks, capped and checked', async (t) => {
  const recs = [encode({ name: 'start', doc: { uid: 'u' } }), encode({ name: 'event', doc: { big: 'z'.repeat(300000) } }), encode({ name: 'stop', doc: {} })];
  const all = Buffer.concat(recs);
  async function* chunks(b: Buffer, size: number) {
    for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
  }
  for (const size of [1, 1000, 65536, all.length]) {
    const got: Buffer[] = [];
    for await (const r of msgpackRecordsOf(chunks(all, size), 'stream')) got.push(Buffer.from(r));
    t.same(got, recs, `chunks of ${size}`);
  }
  const collect = async (b: Buffer, max?: number) => {
    for await (const r of msgpackRecordsOf(chunks(b, 4096), 'stream', max)) void r;
  };
  await t.rejects(collect(all, 100000), { code: 'E_LIMIT', message: /stream: the record at byte \d+ is at least \d+ bytes, more than the limit of 100000/ });
  await t.rejects(collect(all.subarray(0, all.length - 3)), { code: 'E_TRUNCATED', message: /stream ends inside a record/ });
  await t.rejects(collect(Buffer.from([0x81, 0x01, 0x02])), { code: 'E_CORRUPT', message: /map key at offset 1 is not a str or bin/ });
});
