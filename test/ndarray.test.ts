/**
 * Arrays in documents: the msgpack-numpy map byte for byte (the golden bytes
 * are what `msgpack.packb(arr, default=msgpack_numpy.encode, use_bin_type=True)`
 * writes), the JSON of `arr.tolist()` as Python's json writes it, and the NPY
 * reader (files numpy wrote, and hand-built headers of each format version).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decode, encode, encodeRecord } from '../src/codec/msgpack.js';
import { NdArray, NdScalar, parseDtype } from '../src/codec/ndarray.js';
import { jsonlRecord, parsePyJson, stringifyPyJson } from '../src/codec/pyjson.js';
import { deepEqual, PyFloat } from '../src/codec/values.js';
import { parseNpy } from '../src/handlers/npy.js';
import { REPO } from './helpers/paths.js';

t.test('msgpack-numpy map, byte for byte', async (t) => {
  const a = NdArray.fromTypedArray(new Uint16Array([0, 1, 2]));
  t.equal(encode(a).toString('hex'), '85c4026e64c3c40474797065a33c7532c4046b696e64c400c40573686170659103c40464617461c406000001000200', 'np.arange(3, dtype="<u2")');
  const b = new NdArray('|b1', [], Buffer.from([1]));
  t.equal(encode(b).toString('hex'), '85c4026e64c3c40474797065a37c6231c4046b696e64c400c405736861706590c40464617461c40101', 'np.array(True)');
  const s = new NdScalar('<f4', Buffer.from(new Float32Array([1.5]).buffer));
  t.equal(encode(s).toString('hex'), '83c4026e64c2c40474797065a33c6634c40464617461c4040000c03f', 'np.float32(1.5)');
  // decoding gives the Map back, which NdArray reads again
  const back = NdArray.fromMsgpackValue(decode(encode(a)));
  t.ok(back && back.equals(a), 'round trip through our decoder');
  t.equal(NdArray.fromMsgpackValue({ nd: true }), undefined, 'a plain dict is not an array');
  // inside a record (an event_page column)
  const rec = encodeRecord('event_page', { data: { img: [a] }, filled: { img: ['d/0'] } });
  t.ok(rec.includes(Buffer.from('85c4026e64c3', 'hex')), 'nested arrays are encoded in place');
});

t.test('JSON as NumpyEncoder writes it (tolist)', async (t) => {
  const f8 = NdArray.fromTypedArray(new Float64Array([1, 0.1, 1e-5, 1e16, -0, NaN, Infinity, 123456.5]), [2, 4]);
  t.equal(stringifyPyJson(f8), '[[1.0, 0.1, 1e-05, 1e+16], [-0.0, NaN, Infinity, 123456.5]]');
  const f4 = NdArray.fromTypedArray(new Float32Array([0.1, 3]));
  t.equal(stringifyPyJson(f4), '[0.10000000149011612, 3.0]', 'float32 values as Python floats');
  const u8 = new NdArray('<u8', [2], Buffer.from(new BigUint64Array([2n ** 64n - 1n, 5n]).buffer));
  t.equal(stringifyPyJson(u8), '[18446744073709551615, 5]', 'uint64 exact');
  const be = new NdArray('>i2', [3], Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x01, 0x00]));
  t.equal(stringifyPyJson(be), '[-2, 1, 256]', 'big-endian data read in its own order');
  t.equal(stringifyPyJson(new NdArray('|b1', [2], Buffer.from([1, 0]))), '[true, false]');
  t.equal(stringifyPyJson(new NdArray('<u2', [0], Buffer.alloc(0))), '[]');
  t.equal(stringifyPyJson(new NdArray('<u2', [2, 0], Buffer.alloc(0))), '[[], []]');
  t.equal(stringifyPyJson(new NdArray('<i4', [], Buffer.from([7, 0, 0, 0]))), '7', 'a 0-d array is its item');
  const u = new NdArray('<U2', [2], Buffer.from(new Uint32Array([0x61, 0xe9, 0x62, 0]).buffer));
  t.equal(stringifyPyJson(u), '["a\\u00e9", "b"]', 'unicode strings, trailing NULs dropped, ensure_ascii');
  t.equal(stringifyPyJson(new NdArray('<f2', [2], Buffer.from([0x00, 0x3c, 0x00, 0x35]))), '[1.0, 0.3125]', 'float16');
  t.throws(() => stringifyPyJson(new NdArray('<c16', [1], Buffer.alloc(16))), /complex is not JSON serializable/);
  t.throws(() => stringifyPyJson(new NdArray('|S2', [1], Buffer.from('ab'))), /bytes is not JSON serializable/);
  t.equal(jsonlRecord('event_page', { data: { img: [f4] } }), '["event_page", {"data": {"img": [[0.10000000149011612, 3.0]]}}]\n');
  // the Value form agrees with the text form
  t.ok(deepEqual(f8.toJsonValue(), parsePyJson(stringifyPyJson(f8))), 'toJsonValue equals the parsed text');
  t.ok((f4.toJsonValue() as PyFloat[])[1] instanceof PyFloat, 'whole floats stay floats');
  t.equal(stringifyPyJson(new NdScalar('<f4', Buffer.from(new Float32Array([2]).buffer))), '2.0', 'a numpy scalar is its item');
});

t.test('dtype strings as numpy spells them', async (t) => {
  t.equal(parseDtype('<u1').str, '|u1');
  t.equal(parseDtype('|b1').str, '|b1');
  t.equal(parseDtype('>f8').str, '>f8');
  t.equal(parseDtype('<U5').itemsize, 20);
  t.equal(parseDtype('<M8[ns]').str, '<M8[ns]');
  t.throws(() => parseDtype('<f3'));
  t.throws(() => parseDtype('|u2'), /byte order/);
  t.throws(() => parseDtype("[('a', '<i4')]"));
  t.throws(() => new NdArray('<u2', [3], Buffer.alloc(4)), /need 6/);
});

t.test('Fortran-ordered data comes out in C order', async (t) => {
  // np.asfortranarray(np.arange(6).reshape(2, 3)).tobytes('A') is 0 3 1 4 2 5
  const f = NdArray.fromFortranOrder('|u1', [2, 3], Buffer.from([0, 3, 1, 4, 2, 5]));
  t.same([...f.data], [0, 1, 2, 3, 4, 5]);
  const f3 = NdArray.fromFortranOrder('|u1', [2, 2, 2], Buffer.from([0, 4, 2, 6, 1, 5, 3, 7]));
  t.same([...f3.data], [0, 1, 2, 3, 4, 5, 6, 7]);
});

function npy(header: string, data: Buffer, version = 1): Buffer {
  const h = Buffer.from(header, version === 3 ? 'utf8' : 'latin1');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const len = Buffer.alloc(version === 1 ? 2 : 4);
  if (version === 1) len.writeUInt16LE(h.length);
  else len.writeUInt32LE(h.length);
  return Buffer.concat([pre, len, h, data]);
}

t.test('NPY files', async (t) => {
  // real files numpy wrote (ophyd.sim's NPY_SEQ images in the sample catalog)
  const file = path.join(REPO, 'examples', 'catalog', 'external', '00f91b_0.npy');
  const a = parseNpy(readFileSync(file), file);
  t.equal(a.dtype, '<f8');
  t.same(a.shape, [10, 10]);
  t.equal(a.nbytes, 800);

  const v1 = parseNpy(npy("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }\n", Buffer.from([1, 0, 2, 0, 3, 0, 4, 0])));
  t.same([v1.dtype, v1.shape, stringifyPyJson(v1)], ['<i2', [2, 2], '[[1, 2], [3, 4]]']);
  const v2 = parseNpy(npy("{'descr': '>u2', 'fortran_order': True, 'shape': (2, 2), }\n", Buffer.from([0, 1, 0, 3, 0, 2, 0, 4]), 2));
  t.same([v2.dtype, stringifyPyJson(v2)], ['>u2', '[[1, 2], [3, 4]]'], 'v2 header, Fortran order, big-endian');
  const v3 = parseNpy(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (), }\n", Buffer.from([9]), 3));
  t.same([v3.shape, stringifyPyJson(v3)], [[], '9'], '0-d array');
  const one = parseNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", Buffer.from(new Float32Array([2.5]).buffer)));
  t.same(one.shape, [1]);

  t.throws(() => parseNpy(Buffer.from('not npy at all'), 'x.npy'), { code: 'E_HANDLER', message: /x\.npy is not a readable NPY file: no .*magic/ });
  t.throws(() => parseNpy(npy("{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }\n", Buffer.alloc(6)), 'short.npy'), { code: 'E_HANDLER', message: /short\.npy .*truncated \(6 of 8 bytes\)/ });
  t.throws(() => parseNpy(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", Buffer.alloc(8)), 'obj.npy'), { code: 'E_UNSUPPORTED', message: /allow_pickle=False/ });
  t.throws(() => parseNpy(npy("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }\n", Buffer.alloc(4)), 's.npy'), { code: 'E_UNSUPPORTED', message: /structured/ });
});

t.test('decoded msgpack-numpy maps are written to JSON and BSON as NumpyEncoder writes them', async (t) => {
  const { toBson } = await import('../src/codec/bson.js');
  const { numpyOfMsgpackMap } = await import('../src/codec/ndarray.js');
  // Golden bytes from msgpack.packb(..., default=msgpack_numpy.encode, use_bin_type=True):
  // np.arange(4, dtype='<i4').reshape(2, 2), np.int64(7), np.float32(0.5), np.float32(2.0), np.bool_(True).
  const arr = decode(Buffer.from('85c4026e64c3c40474797065a33c6934c4046b696e64c400c4057368617065920202c40464617461c41000000000010000000200000003000000', 'hex'));
  const i64 = decode(Buffer.from('83c4026e64c2c40474797065a33c6938c40464617461c4080700000000000000', 'hex'));
  const f32 = decode(Buffer.from('83c4026e64c2c40474797065a33c6634c40464617461c4040000003f', 'hex'));
  const f2 = decode(Buffer.from('83c4026e64c2c40474797065a33c6634c40464617461c40400000040', 'hex'));
  const b1 = decode(Buffer.from('83c4026e64c2c40474797065a37c6231c40464617461c40101', 'hex'));
  t.ok(arr instanceof Map, 'a msgpack-numpy map decodes to an ordered Map with bin keys');
  const doc = { data: { img: [arr], n: i64, x: f32, y: f2, b: b1 } };
  t.equal(stringifyPyJson(doc as never), '{"data": {"img": [[[0, 1], [2, 3]]], "n": 7, "x": 0.5, "y": 2.0, "b": true}}', 'JSON: tolist() and item()');
  t.same(toBson(doc as never), { data: { img: [[[0, 1], [2, 3]]], n: 7, x: 0.5, y: 2, b: true } }, 'BSON: the same values');
  const y = (toBson(doc as never) as { data: { y: unknown } }).data.y;
  t.equal((y as { _bsontype?: string })._bsontype, 'Double', 'a whole float32 stays a BSON double');
  t.equal(numpyOfMsgpackMap(new Map([[Buffer.from('nd'), 'yes']]) as never), undefined, 'other bin-keyed maps are left alone');
  t.throws(() => stringifyPyJson(new Map([[Buffer.from('k'), 1]]) as never), /keys must be str/, 'and still cannot be JSON');
});
