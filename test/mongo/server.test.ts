/**
 * Feature probe of the MongoDB-wire server used by the pack-stream Mongo tests.
 *
 * Run explicitly: `npx tap test/mongo/` (excluded from the default suite).
 * Uses FerretDB (scripts/ferretdb.sh) unless MONGODB_URI is set.
 *
 * Features FerretDB v1.24 (SQLite backend) lacks are asserted as lacking, so this
 * file fails if FerretDB's behaviour changes. Against a real MongoDB
 * (MONGODB_URI) the MongoDB behaviour is asserted where it is well known and
 * only recorded otherwise. A summary table of all findings is printed at the end
 * (as TAP comments) and, if PACK_STREAM_MONGO_FINDINGS is set, written there as JSON.
 */
import { writeFile } from 'node:fs/promises';
import t from 'tap';
import {
  Binary,
  Decimal128,
  Double,
  Int32,
  Long,
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  ObjectId,
  type Collection,
  type Db,
  type Document,
} from 'mongodb';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';

interface Finding {
  feature: string;
  works: boolean;
  detail: string;
}
const findings: Finding[] = [];
function record(feature: string, works: boolean, detail = ''): void {
  findings.push({ feature, works, detail });
}

type Attempt<T> = { ok: true; value: T } | { ok: false; err: any };
async function attempt<T>(fn: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, err };
  }
}
function describeErr(err: any): string {
  if (!err) return '';
  const parts = [err.name];
  if (err.code !== undefined) parts.push(`code ${err.code}`);
  if (err.codeName) parts.push(err.codeName);
  parts.push(JSON.stringify(String(err.message).slice(0, 160)));
  return parts.join(' ');
}
/** Type tag of a deserialized BSON value as the driver returned it. */
function typeTag(v: unknown): string {
  if (typeof v === 'bigint') return 'bigint';
  if (typeof v === 'number') return 'number';
  if (v && typeof v === 'object' && '_bsontype' in v) return String((v as { _bsontype: string })._bsontype);
  return typeof v;
}

if (skipUnlessMongo(t)) {
  const server = await startMongo();
  t.teardown(() => server.stop());
  const ferret = server.kind === 'ferretdb';
  t.comment(`server: ${server.kind} ${server.uri}`);

  const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  t.teardown(() => client.close());

  const dbName = `pack_stream_probe_${process.pid}_${Date.now().toString(36)}`;
  const db: Db = client.db(dbName);
  t.teardown(async () => {
    await db.dropDatabase().catch(() => {});
  });

  await t.test('ping and buildInfo', async (t) => {
    const ping = await db.command({ ping: 1 });
    t.equal(ping.ok, 1);
    const info = await db.admin().command({ buildInfo: 1 });
    t.type(info.version, 'string');
    const ferretdbVersion = info.ferretdbVersion ?? info.ferretdb?.version;
    record('buildInfo', true, `version ${info.version}${ferretdbVersion ? `, ferretdbVersion ${ferretdbVersion}` : ''}`);
    if (ferret) t.match(String(ferretdbVersion ?? ''), /v1\.24\.2/);
    const hello = await db.admin().command({ hello: 1 });
    t.equal(hello.maxBsonObjectSize, 16 * 1024 * 1024);
    record(
      'hello limits',
      true,
      `maxBsonObjectSize ${hello.maxBsonObjectSize}, maxMessageSizeBytes ${hello.maxMessageSizeBytes}, maxWriteBatchSize ${hello.maxWriteBatchSize}, maxWireVersion ${hello.maxWireVersion}`,
    );
  });

  await t.test('insertMany ordered:false with duplicate keys', async (t) => {
    const c = db.collection('dups');
    await c.createIndex({ uid: 1 }, { unique: true });
    const docs = ['a', 'b', 'a', 'c', 'b', 'd'].map((uid, i) => ({ uid, i }));
    const r = await attempt(() => c.insertMany(docs, { ordered: false }));
    t.notOk(r.ok, 'rejects');
    const err = (r as { err: any }).err;
    t.ok(err instanceof MongoBulkWriteError, `MongoBulkWriteError (got ${err?.name})`);
    t.equal(err.code, 11000);
    const we = (Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]).filter(Boolean);
    t.same(
      we.map((w: any) => [w.index, w.code]),
      [
        [2, 11000],
        [4, 11000],
      ],
      'one write error per duplicate, with its index',
    );
    t.equal(err.insertedCount, 4, 'insertedCount counts the non-duplicates');
    t.equal(await c.countDocuments(), 4, 'continued past the duplicates');
    const first = we[0]?.err ?? {};
    const hasKeyInfo = first.keyPattern !== undefined || first.keyValue !== undefined;
    if (ferret) t.notOk(hasKeyInfo, 'FerretDB: no keyPattern/keyValue on write errors');
    record(
      'insertMany ordered:false + dup keys',
      true,
      `MongoBulkWriteError code 11000, writeErrors [{index 2, code 11000}, {index 4, code 11000}], insertedCount 4, continues; ` +
        `errmsg ${JSON.stringify(String(we[0]?.errmsg))}; keyPattern/keyValue ${hasKeyInfo ? 'present' : 'absent'}`,
    );

    // Across FerretDB's internal insert batches (--test-batch-size=100) and the driver's.
    const many = Array.from({ length: 1000 }, (_, i) => ({ uid: `m${i}` }));
    many[150] = { uid: 'm10' };
    many[650] = { uid: 'a' };
    many[999] = { uid: 'm998' };
    const r2 = await attempt(() => c.insertMany(many, { ordered: false }));
    t.notOk(r2.ok);
    const e2 = (r2 as { err: any }).err;
    const idx2 = (Array.isArray(e2.writeErrors) ? e2.writeErrors : [e2.writeErrors]).map((w: any) => w.index);
    t.same(idx2, [150, 650, 999], 'write error indexes across batches');
    t.equal(e2.insertedCount, 997);
    t.equal(await c.countDocuments(), 4 + 997);
    record('insertMany ordered:false, 1000 docs, dups in several batches', true, 'indexes [150,650,999], insertedCount 997');

    const r3 = await attempt(() => c.insertMany([{ uid: 'e' }, { uid: 'a' }, { uid: 'f' }], { ordered: true }));
    t.notOk(r3.ok);
    const e3 = (r3 as { err: any }).err;
    t.equal(e3.insertedCount, 1, 'ordered stops at first duplicate');
    t.equal(await c.countDocuments({ uid: 'f' }), 0);
    record('insertMany ordered:true + dup key', true, 'stops at first duplicate (insertedCount 1)');

    const r4 = await attempt(() => c.insertOne({ uid: 'a' }));
    t.notOk(r4.ok);
    const e4 = (r4 as { err: any }).err;
    t.ok(e4 instanceof MongoServerError);
    t.equal(e4.code, 11000);
    record('insertOne dup key', true, describeErr(e4));
  });

  await t.test('createIndex variants and listIndexes', async (t) => {
    const c = db.collection('run_start');
    await c.insertOne({ uid: 'x', time: 1, scan_id: 1 });

    t.equal(await c.createIndex({ uid: 1 }, { unique: true }), 'uid_1');
    t.equal(await c.createIndex({ scan_id: -1, _id: -1 }, { unique: true }), 'scan_id_-1__id_-1');
    t.equal(await c.createIndex({ time: 1, _id: -1 }, { unique: true }), 'time_1__id_-1');
    t.equal(await c.createIndex({ time: -1, scan_id: -1 }, { background: true }), 'time_-1_scan_id_-1');
    t.equal(await c.createIndex({ data_session: 1 }), 'data_session_1');
    record('createIndex unique', true, 'uid_1');
    record('createIndex compound mixed direction (unique)', true, 'scan_id_-1__id_-1, time_1__id_-1');
    record('createIndex background:true', true, 'accepted (ignored); not echoed by listIndexes');

    // Text index.
    const text = await attempt(() => c.createIndex({ '$**': 'text' }));
    if (ferret) {
      t.notOk(text.ok, 'FerretDB: text index unsupported');
      const e = (text as { err: any }).err;
      t.equal(e?.code, 27, 'error code 27');
      t.equal(e?.codeName, 'IndexNotFound');
      record('createIndex {$**: text}', false, describeErr(e));
    } else {
      t.ok(text.ok, 'MongoDB: text index');
      record('createIndex {$**: text}', text.ok, text.ok ? String(text.value) : describeErr((text as any).err));
    }

    // Same keys, different options: MongoDB raises (IndexKeySpecsConflict / IndexOptionsConflict).
    const conflict = await attempt(() => c.createIndex({ uid: 1 }, { unique: false }));
    if (ferret) {
      t.ok(conflict.ok, 'FerretDB: silently accepts same keys with different uniqueness');
      record('createIndex same keys, different unique', false, 'FerretDB returns OK "uid_1" and keeps the unique index (MongoDB: error 85/86)');
    } else {
      t.notOk(conflict.ok, 'MongoDB: conflicting index spec is an error');
      record('createIndex same keys, different unique', !conflict.ok, conflict.ok ? 'accepted' : describeErr((conflict as any).err));
    }
    const again = await attempt(() => c.createIndex({ uid: 1 }, { unique: true }));
    t.ok(again.ok, 'identical re-create is a no-op');
    record('createIndex identical re-create', again.ok, 'no-op');

    const sparse = await attempt(() => c.createIndex({ x: 1 }, { sparse: true }));
    t.ok(sparse.ok);
    record('createIndex sparse', sparse.ok, sparse.ok ? String(sparse.value) : describeErr((sparse as any).err));
    const partial = await attempt(() => c.createIndex({ y: 1 }, { partialFilterExpression: { y: { $exists: true } } }));
    if (ferret) {
      t.notOk(partial.ok);
      t.equal((partial as any).err?.code, 238);
    }
    record('createIndex partialFilterExpression', partial.ok, partial.ok ? String(partial.value) : describeErr((partial as any).err));

    // Unique index over existing duplicates.
    const d = db.collection('dup_existing');
    await d.insertMany([{ k: 1 }, { k: 1 }]);
    const dupIdx = await attempt(() => d.createIndex({ k: 1 }, { unique: true }));
    t.notOk(dupIdx.ok, 'unique index over duplicates fails');
    const dupErr = (dupIdx as any).err;
    if (ferret) {
      t.equal(dupErr?.code, 1, 'FerretDB: code 1 InternalError (MongoDB: 11000)');
      t.match(String(dupErr?.message), /UNIQUE constraint failed/);
    } else {
      t.equal(dupErr?.code, 11000);
    }
    record('createIndex unique over existing duplicates', true, `fails: ${describeErr(dupErr)} … ${JSON.stringify(String(dupErr?.message).slice(-120))}`);

    const list = await c.listIndexes().toArray();
    const names = list.map((i) => i.name).sort();
    const expected = ['_id_', 'data_session_1', 'scan_id_-1__id_-1', 'time_-1_scan_id_-1', 'time_1__id_-1', 'uid_1', 'x_1'];
    if (!ferret) expected.push('$**_text');
    t.same(names, expected.sort());
    const uidIdx = list.find((i) => i.name === 'uid_1');
    t.equal(uidIdx?.unique, true, 'unique flag reported');
    t.same(uidIdx?.key, { uid: 1 });
    t.same(list.find((i) => i.name === 'scan_id_-1__id_-1')?.key, { scan_id: -1, _id: -1 }, 'key order kept');
    const bg = list.find((i) => i.name === 'time_-1_scan_id_-1');
    t.equal(bg?.unique, undefined, 'non-unique index has no unique field');
    record('listIndexes', true, `names ${JSON.stringify(names)}; fields: ${Object.keys(uidIdx ?? {}).join(',')}; sparse flag ${list.find((i) => i.name === 'x_1')?.sparse === true ? 'reported' : 'NOT reported'}`);
    if (ferret) {
      t.equal(list.find((i) => i.name === 'x_1')?.sparse, undefined, 'FerretDB: sparse not echoed');
      t.equal(bg?.background, undefined, 'FerretDB: background not echoed');
    }

    const dropIdx = await attempt(() => c.dropIndex('data_session_1'));
    t.ok(dropIdx.ok);
    record('dropIndex by name', dropIdx.ok, '');
  });

  // A run_start-like collection for the query checks.
  const runs: Collection = db.collection('q_run_start');
  const N = 300;
  const base = 1_700_000_000;
  const runDocs = Array.from({ length: N }, (_, i) => ({
    // Deliberately odd key order; `time` has ties (every 3 docs share a time).
    uid: `${(i * 7919) % 1000}`.padStart(3, '0') + `-uid-${i}`,
    time: base + Math.floor(i / 3) + (i % 2 ? 0.5 : 0),
    scan_id: i,
    plan_name: i % 2 ? 'count' : 'scan',
    nested: { z: 1, a: [1, 'two', null, { b: true }], e: {}, l: [] },
  }));

  await t.test('find: sort + projection excluding _id, key order', async (t) => {
    await runs.insertMany(runDocs.map((d) => ({ ...d })));
    await runs.createIndex({ time: 1, _id: 1 });
    const got = await runs.find({}, { sort: { time: -1, uid: 1 }, projection: { _id: 0 } }).toArray();
    t.equal(got.length, N);
    t.notOk('_id' in got[0]!, '_id excluded');
    const want = [...runDocs].sort((a, b) => b.time - a.time || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
    t.same(got, want, 'sorted, all JSON values round-trip');
    t.same(Object.keys(got[0]!), ['uid', 'time', 'scan_id', 'plan_name', 'nested'], 'top-level key order kept');
    t.same(Object.keys(got[0]!.nested), ['z', 'a', 'e', 'l'], 'nested key order kept');
    record('find sort + projection {_id:0}', true, 'correct order; key order (top-level and nested) preserved; null/bool/[]/{} round-trip');

    // Where does the driver-generated _id land?
    const withId = await runs.findOne({ scan_id: 0 });
    const keys = Object.keys(withId ?? {});
    record('stored _id position', true, `keys of stored doc: ${keys.join(',')}`);
    t.ok(keys.includes('_id'));
  });

  await t.test('regex prefix, ranges, counts', async (t) => {
    const prefix = runDocs[5]!.uid.slice(0, 3);
    const want = runDocs.filter((d) => d.uid.startsWith(prefix)).map((d) => d.uid).sort();
    const got = (await runs.find({ uid: { $regex: `^${prefix}` } }, { projection: { uid: 1, _id: 0 } }).toArray())
      .map((d) => d.uid)
      .sort();
    t.same(got, want);
    t.ok(got.length >= 1);
    const got2 = (await runs.find({ uid: { $regex: new RegExp(`^${prefix}`) } }).limit(10).toArray()).length;
    t.equal(got2, Math.min(10, want.length), 'RegExp object + limit');
    record('regex prefix {$regex: "^abc"}', true, 'string and RegExp forms, with limit');

    const lo = base + 10;
    const hi = base + 20;
    const inRange = runDocs.filter((d) => d.time >= lo && d.time < hi).length;
    t.equal(await runs.countDocuments({ time: { $gte: lo, $lt: hi } }), inRange);
    record('$gte/$lt on time + countDocuments(filter)', true, `${inRange} docs`);
    t.equal(await runs.countDocuments({}), N);
    t.equal(await runs.estimatedDocumentCount(), N);
    t.equal(await runs.countDocuments({ plan_name: 'count' }), N / 2);
    record('countDocuments / estimatedDocumentCount', true, '');

    // catalog[-N]: find().sort(time DESC).skip(k).limit(1)
    const third = await runs.find({}, { sort: { time: -1, _id: -1 }, skip: 2, limit: 1, projection: { _id: 0, time: 1 } }).toArray();
    const timesDesc = runDocs.map((d) => d.time).sort((a, b) => b - a);
    t.equal(third[0]?.time, timesDesc[2]);
    record('sort DESC + skip + limit', true, '');

    const one = await runs.findOne({ scan_id: 42 }, { projection: { _id: 0 } });
    t.same(one, runDocs[42]);
    const none = await runs.findOne({ scan_id: -1 });
    t.equal(none, null);
    record('findOne (hit and miss)', true, '');
  });

  await t.test('keyset pagination', async (t) => {
    const all = await runs.find({}, { sort: { time: 1, _id: 1 }, projection: { time: 1 } }).toArray();
    t.equal(all.length, N);

    // Form 1: {time: {$gt: t}} with limit; only correct without ties, so page by time then by _id within ties.
    const pageSize = 7;
    const viaOr: Document[] = [];
    let last: Document | undefined;
    for (;;) {
      const filter = last
        ? { $or: [{ time: { $gt: last.time } }, { time: last.time, _id: { $gt: last._id } }] }
        : {};
      const page = await runs.find(filter, { sort: { time: 1, _id: 1 }, limit: pageSize, projection: { time: 1 } }).toArray();
      viaOr.push(...page);
      if (page.length < pageSize) break;
      last = page[page.length - 1];
    }
    t.same(viaOr.map((d) => String(d._id)), all.map((d) => String(d._id)), '$or keyset pages cover everything in order');

    // Form 1, {time: {$gt: t}}: only correct when times are unique.
    const uniq = db.collection('q_unique_time');
    await uniq.insertMany(Array.from({ length: 100 }, (_, i) => ({ time: base + i * 0.25, i })));
    const viaGt: number[] = [];
    let lastTime = -Infinity;
    for (;;) {
      const page = await uniq.find({ time: { $gt: lastTime } }, { sort: { time: 1, _id: 1 }, limit: pageSize }).toArray();
      viaGt.push(...page.map((d) => d.i));
      if (page.length < pageSize) break;
      lastTime = page[page.length - 1]!.time;
    }
    t.same(viaGt, Array.from({ length: 100 }, (_, i) => i), '{time: {$gt}} keyset pages');

    // ObjectId comparison operators.
    const mid = all[150]!._id as ObjectId;
    t.equal(await runs.countDocuments({ _id: { $gt: mid } }), all.filter((d) => String(d._id) > String(mid)).length);
    record('keyset pagination', true, '{time:{$gt}} and {$or:[{time:{$gt:t}},{time:t,_id:{$gt:id}}]} with sort {time:1,_id:1} + limit; _id $gt');

    // A large result through several getMore batches.
    const ids = await runs.find({}, { batchSize: 50, projection: { _id: 1 } }).toArray();
    t.equal(ids.length, N);
    record('cursor getMore (batchSize 50)', true, '');
  });

  await t.test('numeric types round trip', async (t) => {
    const c = db.collection('numbers');
    await c.insertMany([
      { k: 'double', v: new Double(1) },
      { k: 'int32', v: new Int32(1) },
      { k: 'int64', v: Long.fromBigInt(2n ** 62n) },
      { k: 'int64small', v: Long.fromNumber(5) },
      { k: 'bigint', v: 7n },
      { k: 'js1', v: 1 },
      { k: 'js1.5', v: 1.5 },
      { k: 'js2^31', v: 2 ** 31 },
      { k: 'js2^53', v: 2 ** 53 },
      { k: 'negzero', v: -0 },
    ]);
    const read = async (opts: Document) => {
      const docs = await c.find({}, { ...opts, projection: { _id: 0 }, sort: { k: 1 } }).toArray();
      return Object.fromEntries(docs.map((d) => [d.k, d.v]));
    };
    const tags = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeTag(v)]));

    const dflt = await read({});
    t.same(tags(dflt), {
      double: 'number',
      int32: 'number',
      int64: 'Long',
      int64small: 'number',
      bigint: 'number',
      js1: 'number',
      'js1.5': 'number',
      'js2^31': 'number',
      'js2^53': 'number',
      negzero: 'number',
    });
    t.equal(String(dflt.int64), String(2n ** 62n));

    const raw = await read({ promoteValues: false });
    t.same(tags(raw), {
      double: 'Double',
      int32: 'Int32',
      int64: 'Long',
      int64small: 'Long',
      bigint: 'Long',
      js1: 'Int32',
      'js1.5': 'Double',
      'js2^31': 'Double',
      'js2^53': 'Double',
      negzero: 'Double',
    }, 'promoteValues:false keeps every BSON numeric type');

    const longs = await read({ promoteLongs: false });
    t.same(tags(longs), { ...tags(dflt), int64small: 'Long', bigint: 'Long' }, 'promoteLongs:false: only int64 -> Long');

    const big = await read({ useBigInt64: true });
    t.same(tags(big), { ...tags(dflt), int64: 'bigint', int64small: 'bigint', bigint: 'bigint' }, 'useBigInt64: int64 -> bigint');
    t.equal(big.int64, 2n ** 62n);

    const both = await attempt(() => read({ useBigInt64: true, promoteValues: false }));
    t.notOk(both.ok, 'driver refuses useBigInt64 with promoteValues:false');
    record('driver options useBigInt64 + promoteValues:false', false, `client-side ${describeErr((both as any).err)}`);

    // -0.0 (the driver sends a double -0.0).
    const negZeroKept = Object.is((raw.negzero as Double).value, -0);
    if (ferret) t.notOk(negZeroKept, 'FerretDB: -0.0 comes back as 0.0');
    else t.ok(negZeroKept, 'MongoDB keeps -0.0');
    record('double -0.0', negZeroKept, negZeroKept ? 'kept' : 'comes back as +0.0 (Double 0)');

    // Query by int64 and numeric cross-type equality.
    t.same((await c.find({ v: Long.fromBigInt(2n ** 62n) }, { projection: { _id: 0, k: 1 } }).toArray()).map((d) => d.k), ['int64']);
    t.same((await c.find({ v: 1 }, { projection: { _id: 0, k: 1 }, sort: { k: 1 } }).toArray()).map((d) => d.k), ['double', 'int32', 'js1']);
    record('numeric round trip', true,
      'default: int32/double -> number, int64 -> number if safe else Long; promoteValues:false: Int32/Double/Long as stored; ' +
      'promoteLongs:false: int64 -> Long; useBigInt64: int64 -> bigint; JS integers in int32 range are sent as int32, others as double, bigint as int64');
  });

  await t.test('NaN, Infinity, Decimal128', async (t) => {
    const c = db.collection('special');
    const inf = await attempt(() => c.insertOne({ k: 'inf', v: Infinity }));
    const ninf = await attempt(() => c.insertOne({ k: '-inf', v: -Infinity }));
    if (ferret) {
      t.notOk(inf.ok, 'FerretDB rejects Infinity');
      t.equal((inf as any).err?.code, 2);
      t.match((inf as any).err?.message, /infinity values are not allowed/);
      t.notOk(ninf.ok, 'FerretDB rejects -Infinity');
    } else {
      t.ok(inf.ok && ninf.ok);
    }
    record('Infinity / -Infinity doubles', inf.ok, inf.ok ? 'round-trip' : describeErr((inf as any).err));

    const nan = await attempt(() => c.insertOne({ k: 'nan', v: NaN }));
    if (ferret) {
      t.notOk(nan.ok, 'FerretDB rejects NaN');
      t.match((nan as any).err?.name, /MongoNetworkError/, 'by dropping the connection');
    } else {
      t.ok(nan.ok);
    }
    record('NaN double', nan.ok, nan.ok ? 'round-trip' : `${describeErr((nan as any).err)} (server log: "NaN is not supported"; the server closes the connection)`);

    // A NaN inside an unordered batch: does the rest of the batch go in?
    const batch = await attempt(() =>
      c.insertMany([{ k: 'b1' }, { k: 'b2', v: [1, NaN] }, { k: 'b3' }], { ordered: false }),
    );
    const afterBatch = await c.countDocuments({ k: { $in: ['b1', 'b3'] } });
    if (ferret) {
      t.notOk(batch.ok);
      t.equal(afterBatch, 0, 'FerretDB: the whole batch is lost (connection dropped)');
    }
    record('NaN inside insertMany(ordered:false)', batch.ok, `${batch.ok ? 'ok' : describeErr((batch as any).err)}; ${afterBatch}/2 valid docs of the batch stored`);

    const dec = await attempt(() => c.insertOne({ k: 'dec', v: Decimal128.fromString('1.5') }));
    if (ferret) t.notOk(dec.ok, 'FerretDB: Decimal128 unsupported');
    record('Decimal128', dec.ok, dec.ok ? 'round-trip' : describeErr((dec as any).err));

    const bin = await attempt(() => c.insertOne({ k: 'bin', v: new Binary(Buffer.from([1, 2, 3])) }));
    t.ok(bin.ok);
    const dt = await attempt(() => c.insertOne({ k: 'date', v: new Date(0) }));
    t.ok(dt.ok);
    record('Binary and Date', bin.ok && dt.ok, '');

    // The client keeps working after connections were dropped.
    t.equal(await c.countDocuments({ k: { $in: ['bin', 'date'] } }), 2);
  });

  await t.test("field names with '.' / '$' / empty / unicode", async (t) => {
    const c = db.collection('keys');
    const cases: Array<[string, Document]> = [
      ['nested key with "."', { k: 'dot', v: { 'a.b': 1 } }],
      ['top-level key with "."', { k: 'dottop', 'a.b': 1 }],
      ['nested key starting with "$"', { k: 'dollar', v: { $x: 1 } }],
      ['top-level key starting with "$"', { k: 'dollartop', $x: 1 }],
      ['empty key', { k: 'empty', v: { '': 1 } }],
      ['unicode key', { k: 'uni', v: { 'µm': 1, 'ключ': 2 } }],
      ['key with space', { k: 'space', v: { 'a b': 1 } }],
    ];
    for (const [label, doc] of cases) {
      const r = await attempt(() => c.insertOne({ ...doc }));
      let roundTrip = false;
      if (r.ok) {
        const back = await c.findOne({ k: doc.k }, { projection: { _id: 0 } });
        roundTrip = JSON.stringify(back) === JSON.stringify(doc);
        t.ok(roundTrip, `${label} round-trips`);
      }
      record(`field name: ${label}`, r.ok && roundTrip, r.ok ? (roundTrip ? 'round-trip' : 'stored but changed') : describeErr((r as any).err));
      if (ferret && /"\."|"\$"/.test(label)) {
        t.notOk(r.ok, `FerretDB rejects ${label}`);
        t.equal((r as any).err?.code, 2, 'code 2 BadValue');
      } else if (ferret) {
        t.ok(r.ok, `${label} accepted`);
      }
    }
  });

  await t.test('large documents', async (t) => {
    const c = db.collection('large');
    for (const mb of [1, 5, 10, 15]) {
      const payload = 'x'.repeat(mb * 1024 * 1024 - 1024);
      const r = await attempt(() => c.insertOne({ k: `s${mb}`, payload }));
      t.ok(r.ok, `${mb} MB string document`);
      if (r.ok) {
        const back = await c.findOne({ k: `s${mb}` });
        t.equal(back?.payload.length, payload.length);
      }
      record(`document ~${mb} MB (one string)`, r.ok, r.ok ? 'round-trip' : describeErr((r as any).err));
    }
    // ~5 MB of small numbers in arrays (event data-like).
    const arr = Array.from({ length: 400_000 }, (_, i) => i * 0.5);
    const r = await attempt(() => c.insertOne({ k: 'arr', data: { x: arr } }));
    t.ok(r.ok, 'document with a 400k-element double array (~5 MB BSON)');
    if (r.ok) {
      const back = await c.findOne({ k: 'arr' }, { projection: { _id: 0 } });
      t.equal(back?.data.x.length, arr.length);
      t.equal(back?.data.x[399_999], 399_999 * 0.5);
    }
    record('document ~5 MB (400k-element array)', r.ok, r.ok ? 'round-trip' : describeErr((r as any).err));
    // Several big documents in one insertMany (driver splits into 48 MB messages).
    const many = Array.from({ length: 8 }, (_, i) => ({ k: `many${i}`, payload: 'y'.repeat(8 * 1024 * 1024) }));
    const rm = await attempt(() => c.insertMany(many, { ordered: false }));
    t.ok(rm.ok, 'insertMany of 8 x 8 MB');
    record('insertMany 8 x 8 MB', rm.ok, rm.ok ? '' : describeErr((rm as any).err));

    const tooBig = await attempt(() => c.insertOne({ k: 'toobig', payload: 'z'.repeat(17 * 1024 * 1024) }));
    t.notOk(tooBig.ok, '> 16 MB rejected');
    record('document > 16 MB', !tooBig.ok, `rejected: ${describeErr((tooBig as any).err)}`);
  });

  await t.test('bulkWrite, deleteMany, drop database', async (t) => {
    const c = db.collection('bulk');
    await c.createIndex({ uid: 1 }, { unique: true });
    const r = await attempt(() =>
      c.bulkWrite(
        [
          { insertOne: { document: { uid: 'a', n: 1 } } },
          { insertOne: { document: { uid: 'b', n: 2 } } },
          { insertOne: { document: { uid: 'a', n: 3 } } },
          { updateOne: { filter: { uid: 'b' }, update: { $set: { n: 20 } } } },
          { replaceOne: { filter: { uid: 'c' }, replacement: { uid: 'c', n: 30 }, upsert: true } },
          { deleteOne: { filter: { uid: 'zzz' } } },
        ],
        { ordered: false },
      ),
    );
    t.notOk(r.ok, 'bulkWrite with a duplicate rejects');
    const e = (r as any).err;
    t.ok(e instanceof MongoBulkWriteError);
    t.same((Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]).map((w: any) => [w.index, w.code]), [[2, 11000]]);
    t.equal(e.result?.insertedCount, 2);
    t.equal(e.result?.modifiedCount, 1);
    t.equal(e.result?.upsertedCount, 1);
    t.same((await c.find({}, { sort: { uid: 1 }, projection: { _id: 0 } }).toArray()), [
      { uid: 'a', n: 1 },
      { uid: 'b', n: 20 },
      { uid: 'c', n: 30 },
    ]);
    record('bulkWrite ordered:false (insert/update/replace-upsert/delete + dup)', true, 'writeErrors [{index 2, 11000}], other ops applied');

    const ok = await c.bulkWrite([{ insertOne: { document: { uid: 'd' } } }, { insertOne: { document: { uid: 'e' } } }]);
    t.equal(ok.insertedCount, 2);

    const del = await c.deleteMany({ uid: { $in: ['a', 'b'] } });
    t.equal(del.deletedCount, 2);
    t.equal(await c.countDocuments(), 3);
    const delAll = await c.deleteMany({});
    t.equal(delAll.deletedCount, 3);
    record('deleteMany', true, 'deletedCount correct');

    const other = client.db(`${dbName}_drop`);
    await other.collection('x').insertOne({ a: 1 });
    const before = (await client.db('admin').admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name);
    t.ok(before.includes(`${dbName}_drop`));
    t.equal(await other.dropDatabase(), true);
    const after = (await client.db('admin').admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name);
    t.notOk(after.includes(`${dbName}_drop`), 'database gone after dropDatabase');
    t.same(await other.listCollections().toArray(), []);
    record('dropDatabase', true, 'gone from listDatabases');

    const coll = db.collection('to_drop');
    await coll.insertOne({ a: 1 });
    t.equal(await coll.drop(), true);
    record('collection drop', true, '');
  });

  await t.test('server killed and restarted keeps its data', { skip: ferret ? false : 'needs the local FerretDB' }, async (t) => {
    const c = db.collection('persist');
    await c.createIndex({ uid: 1 }, { unique: true });
    await c.insertMany(Array.from({ length: 100 }, (_, i) => ({ uid: `p${i}` })));
    const oldPid = server.pid;
    server.kill();
    const shortClient = new MongoClient(server.uri, { serverSelectionTimeoutMS: 1000 });
    const during = await attempt(() => shortClient.db(dbName).collection('persist').findOne({}));
    await shortClient.close();
    t.notOk(during.ok, 'operations fail while the server is down');
    record('operation while server killed', false, describeErr((during as any).err));

    await server.restart();
    t.not(server.pid, oldPid, 'new process');
    // The same client reconnects on its own.
    t.equal(await c.countDocuments(), 100, 'documents survived SIGKILL');
    const dup = await attempt(() => c.insertOne({ uid: 'p5' }));
    t.equal((dup as any).err?.code, 11000, 'unique index survived');
    const names = (await c.listIndexes().toArray()).map((i) => i.name).sort();
    t.same(names, ['_id_', 'uid_1']);
    record('SIGKILL + restart (same port, same data dir)', true, 'data and indexes kept; existing MongoClient reconnects');
  });

  const w = Math.max(...findings.map((f) => f.feature.length));
  t.comment(
    `Feature findings (${server.kind}):\n` +
      findings.map((f) => `${f.works ? 'works' : 'FAILS'}  ${f.feature.padEnd(w)}  ${f.detail}`).join('\n'),
  );
  const out = process.env.PACK_STREAM_MONGO_FINDINGS;
  if (out) await writeFile(out, JSON.stringify({ kind: server.kind, findings }, null, 2));
}
