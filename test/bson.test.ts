/**
 * The MongoDB pieces that need no server: BSON ⇄ value model (types, key
 * order, FerretDB's detours), duplicate comparison, URI handling, query
 * helpers and the catalog YAML of unpack mongo_normalized.
 */
import t from 'tap';
import { BSON, Long, ObjectId } from 'mongodb';
import { decodeStored, NESTED_ARRAY, toBson, toBsonDocument } from '../src/codec/bson.js';
import { PyFloat, deepEqual, docKeys, isPlainDoc, type Doc, type Value } from '../src/codec/values.js';
import { sameStored } from '../src/sinks/mongo-normalized.js';
import { andQueries, escapeRegex } from '../src/sources/mongo-catalog.js';
import { databaseOfUri, hidePassword, requireDatabase } from '../src/sources/mongo-connection.js';
import { mongoCatalogDocument, mongoUriFor } from '../src/pipeline/unpack-mongo.js';

function roundTrip(doc: Doc, ferretdb = false): Doc {
  const bytes = BSON.serialize(toBsonDocument(doc, { ferretdb }));
  return decodeStored(bytes).doc;
}

t.test('numbers keep their Python type through BSON', async (t) => {
  const doc: Doc = {
    whole: new PyFloat(1),
    negzero: new PyFloat(-0),
    frac: 2.5,
    nan: NaN,
    inf: -Infinity,
    i32: 2147483647,
    i32min: -2147483648,
    i64: 2147483648,
    safe: Number.MAX_SAFE_INTEGER,
    big: 2n ** 53n + 1n,
    neg: -(2n ** 63n),
  };
  const bson = toBsonDocument(doc) as Record<string, { _bsontype?: string }>;
  t.same(
    Object.fromEntries(Object.entries(bson).map(([k, v]) => [k, v._bsontype])),
    { _id: 'ObjectId', whole: 'Double', negzero: 'Double', frac: 'Double', nan: 'Double', inf: 'Double', i32: 'Int32', i32min: 'Int32', i64: 'Long', safe: 'Long', big: 'Long', neg: 'Long' },
    'floats are doubles, ints are int32 or int64 by range',
  );
  const back = roundTrip(doc);
  t.ok(deepEqual(back, doc), 'decoded equal, types included');
  t.ok(back.whole instanceof PyFloat && Object.is((back.negzero as PyFloat).value, -0));
  t.equal(back.big, 2n ** 53n + 1n, 'int64 beyond 2^53 is an exact bigint');
  t.equal(back.safe, Number.MAX_SAFE_INTEGER, 'a safe int64 is a number');
  t.throws(() => toBson(2n ** 63n), { code: 'E_ENCODE', message: /8-byte/ });
});

t.test('key order, Maps, binary, nested documents; _id split off', async (t) => {
  const inner = new Map<string, Value>([['10', 1], ['2', 'b'], ['x', [1, { y: null }]]]);
  const doc: Doc = { b: 1, a: { z: true, k: inner }, bin: new Uint8Array([1, 2, 3]), list: [[1, 2], []] };
  const bytes = BSON.serialize(toBsonDocument(doc));
  const stored = decodeStored(bytes, 'event');
  t.ok(stored.id instanceof ObjectId, '_id comes apart, ready for a query');
  t.equal(stored.idKey, (stored.id as ObjectId).toHexString());
  t.notOk('_id' in stored.doc);
  t.same(Object.keys(stored.doc), ['b', 'a', 'bin', 'list']);
  const k = (stored.doc.a as Doc).k;
  t.ok(k instanceof Map, 'integer-like keys keep their order in a Map');
  t.same([...(k as Map<string, Value>).keys()], ['10', '2', 'x']);
  t.ok(deepEqual(stored.doc, doc));
  t.equal(stored.bytes, bytes.length);
  const proto: Doc = {};
  Object.defineProperty(proto, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
  const p = decodeStored(BSON.serialize(toBsonDocument({ d: proto }))).doc.d;
  t.ok(p instanceof Map && p.get('__proto__') === 'p', 'a __proto__ key is kept (in a Map), never a prototype');
  // Top-level integer-like keys too: the document stays a plain object (stages read doc.uid), its key order kept beside it.
  const top = new Map<string, Value>([['a', 2], ['5', 1]]);
  const back = decodeStored(BSON.serialize(toBsonDocument(top as unknown as Doc) as never)).doc;
  t.ok(isPlainDoc(back));
  t.same(docKeys(back), ['a', '5']);
  t.equal(back['5'], 1);
  t.same(docKeys(decodeStored(BSON.serialize(toBsonDocument(back) as never)).doc), ['a', '5'], 'and is stored in that order again');
});

t.test('FerretDB detours: nested arrays wrapped and unwrapped, unstorable values refused', async (t) => {
  const doc: Doc = { hints: { dimensions: [[['time'], 'primary']] }, img: [[1, 2], [3, 4]] };
  const ferret = toBsonDocument(doc, { ferretdb: true }) as Record<string, unknown>;
  t.same(
    JSON.parse(JSON.stringify(ferret.hints)),
    { dimensions: [{ [NESTED_ARRAY]: [{ [NESTED_ARRAY]: ['time'] }, 'primary'] }] },
    'every array directly inside an array is wrapped',
  );
  t.ok(deepEqual(roundTrip(doc, true), doc), 'and comes back as the array');
  t.ok(deepEqual(roundTrip(doc, false), doc), 'real MongoDB: nothing wrapped');
  t.throws(() => toBsonDocument({ v: NaN }, { ferretdb: true, where: 'event e1' }), { code: 'E_ENCODE', message: /event e1: \$\.v: FerretDB cannot store NaN/ });
  t.throws(() => toBsonDocument({ d: { 'a.b': 1 } }, { ferretdb: true }), { code: 'E_ENCODE', message: /"a\.b"/ });
  t.throws(() => toBsonDocument({ d: { $x: 1 } }, { ferretdb: true }), { code: 'E_ENCODE' });
  t.doesNotThrow(() => toBsonDocument({ v: NaN, d: { 'a.b': 1 } }), 'allowed for MongoDB');
  t.throws(() => toBson(new Map<Uint8Array, Value>([[new Uint8Array([1]), 1]]) as never), { code: 'E_ENCODE', message: /binary keys/ });
});

t.test('BSON types event-model documents cannot carry are named', async (t) => {
  const bytes = BSON.serialize({ uid: 'u', when: new Date(0) });
  t.throws(() => decodeStored(bytes, 'run_start'), { code: 'E_UNSUPPORTED', message: /run_start: field when holds a BSON date/ });
  const oid = new ObjectId();
  t.equal(decodeStored(BSON.serialize({ ref: oid })).doc.ref, oid.toHexString(), 'an ObjectId value becomes its hex string');
  t.equal(decodeStored(BSON.serialize({ _id: 'legacy-id', a: 1 })).idKey, 'legacy-id');
  t.same(decodeStored(BSON.serialize({ _id: Long.fromNumber(7), a: 1 })).idKey, '7');
  t.throws(() => decodeStored(Buffer.from([5, 0, 0, 0])), { code: 'E_CORRUPT' });
});

t.test('duplicates compare as Python compares dicts', async (t) => {
  t.ok(sameStored({ a: 1, b: [new PyFloat(1), 'x'] }, { b: [1, 'x'], a: new PyFloat(1) }), 'key order aside, 1 == 1.0');
  t.ok(sameStored({ v: NaN, z: new PyFloat(-0) }, { v: NaN, z: new PyFloat(0) }), 'NaN equals NaN, -0.0 equals 0.0 (FerretDB drops the sign)');
  t.ok(sameStored({ m: new Map<string, Value>([['2', 1], ['10', 2]]) }, { m: new Map<string, Value>([['10', 2], ['2', 1]]) }));
  t.notOk(sameStored({ a: 1 }, { a: 2 }));
  t.notOk(sameStored({ a: 1 }, { a: 1, b: 2 }));
  t.notOk(sameStored({ a: '1' }, { a: 1 }));
  t.notOk(sameStored({ a: [1, 2] }, { a: [2, 1] }));
  t.ok(sameStored({ a: 2n ** 60n }, { a: 2n ** 60n }));
  t.notOk(sameStored({ a: 2n ** 60n }, { a: 2n ** 60n + 1n }));
});

t.test('URIs, regex escaping, queries', async (t) => {
  t.equal(databaseOfUri('mongodb://h:27017/db?x=1'), 'db');
  t.equal(databaseOfUri('mongodb+srv://u:p@cluster.example/my%20db'), 'my db');
  t.equal(databaseOfUri('mongodb://h1:1,h2:2/'), '');
  t.equal(databaseOfUri('mongodb://h'), '');
  t.throws(() => requireDatabase('mongodb://localhost:27017/'), { code: 'E_USAGE', message: /must name a database/ });
  t.equal(hidePassword('mongodb://user:secret@h/db'), 'mongodb://user:***@h/db');
  t.equal(mongoUriFor('beam'), 'mongodb://localhost:27017/databroker_beam', "databroker-unpack's default");
  t.equal(mongoUriFor('beam', 'mongodb://db:1/{database}?w=1'), 'mongodb://db:1/databroker_beam?w=1');
  t.throws(() => mongoUriFor('beam', 'mongodb://db:1'), { code: 'E_USAGE' });
  t.equal(escapeRegex('1.2+[x](y)^$|\\'), '1\\.2\\+\\[x\\]\\(y\\)\\^\\$\\|\\\\');
  t.ok(new RegExp(`^${escapeRegex('a.b')}`).test('a.bc') && !new RegExp(`^${escapeRegex('a.b')}`).test('aXbc'));
  t.same(andQueries(undefined, {}, { a: 1 }), { a: 1 });
  t.same(andQueries({ a: 1 }, { b: 2 }), { $and: [{ a: 1 }, { b: 2 }] });
  t.same(andQueries(), {});
});

t.test('the catalog YAML of unpack mongo_normalized, and its merge rules', async (t) => {
  const uri = 'mongodb://localhost:27017/databroker_x';
  const pack = {
    path: '/data/pack',
    catalog: {
      sources: {
        packed_catalog: {
          driver: 'bluesky-msgpack-catalog',
          args: { paths: ['/old/documents/*.msgpack'], root_map: { abc: 'external_files/abc', def: '/abs/def' } },
          metadata: { generated_by: { library: 'databroker_pack' }, relative_paths: ['./documents/*.msgpack'] },
        },
      },
    },
  };
  const doc = mongoCatalogDocument(pack, {}, 'x', uri, undefined, { cwd: '/', platform: 'linux' });
  t.same(doc, {
    sources: {
      x: {
        driver: 'bluesky-mongo-normalized-catalog',
        args: { metadatastore_db: uri, asset_registry_db: uri, root_map: { abc: '/data/pack/external_files/abc', def: '/abs/def' } },
        metadata: { generated_by: { library: 'databroker_pack' }, relative_paths: ['./documents/*.msgpack'] },
      },
    },
  });
  const existing = (doc.sources as Record<string, Record<string, unknown>>).x!;
  t.same(mongoCatalogDocument(pack, {}, 'x', uri, existing, { cwd: '/', platform: 'linux' }), doc, 'the same pack again: no collision, nothing changes');
  const other = { ...existing, args: { ...(existing.args as object), root_map: { abc: '/elsewhere' } } };
  t.throws(() => mongoCatalogDocument(pack, {}, 'x', uri, other, { platform: 'linux' }), { code: 'E_CONFLICT', message: /root_map keys abc map to different paths/ });
  const merged = mongoCatalogDocument(pack, {}, 'x', uri, { ...existing, args: { ...(existing.args as object), root_map: { zzz: '/z' } } }, { cwd: '/', platform: 'linux' });
  t.same(Object.keys(((merged.sources as Doc).x as { args: { root_map: object } }).args.root_map).sort(), ['abc', 'def', 'zzz'], 'root_maps merged');
  t.throws(() => mongoCatalogDocument(pack, {}, 'x', uri, { driver: 'bluesky-msgpack-catalog', args: {} }), { code: 'E_CONFLICT', message: /driver/ });
  t.throws(() => mongoCatalogDocument(pack, {}, 'x', uri, { ...existing, args: { ...(existing.args as object), asset_registry_db: 'mongodb://h/other' } }), {
    code: 'E_CONFLICT',
    message: /asset_registry_db/,
  });
  t.same(mongoCatalogDocument(undefined, { '/raw': '/mnt/raw' }, 'y', uri, undefined), {
    sources: { y: { args: { metadatastore_db: uri, asset_registry_db: uri, root_map: { '/raw': '/mnt/raw' } }, driver: 'bluesky-mongo-normalized-catalog' } },
  }, 'a SOURCE that is not a pack: its root_map');
});
