/**
 * Packing from a mongo_normalized database: documents written straight into
 * the server with exact BSON types, read back through MongoCatalog and the CLI.
 * Canonical order (streams, resources, datum pages of 5, events merged by
 * (time, uid), legacy resources found from datum ids), `filled` as databroker
 * sets it, `_id` never exported, number types exact (int64 beyond 2^53 too),
 * databroker's lookup rules with an escaped prefix regex, queries sent to the
 * server, and reads that resume by key after a cursor or the server is lost.
 */
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { Double, Int32, Long, MongoClient, ObjectId, type Db } from 'mongodb';
import { PyFloat, type Doc } from '../../src/codec/values.js';
import { readRecords } from '../../src/sources/file-catalog.js';
import { MongoCatalog, escapeRegex } from '../../src/sources/mongo-catalog.js';
import type { DocPair } from '../../src/types.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { docsOf, firstDifference, runsOf, sandbox, uniqueDb } from '../helpers/mongo-fixtures.js';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';

const R1 = 'r1000000-0000-0000-0000-000000000001';
const D = (n: number) => new Double(n);
const I = (n: number) => new Int32(n);

async function seed(db: Db): Promise<{ legacy2Id: ObjectId }> {
  const rs = db.collection('run_start');
  const nested = new Map<string, unknown>([['10', I(1)], ['2', I(2)]]);
  await rs.insertOne({
    uid: R1, time: D(1000), scan_id: I(7), plan_name: 'scan',
    big: Long.fromBigInt(2n ** 62n), small64: Long.fromNumber(5), whole: D(3), frac: D(2.5), nested,
  });
  await rs.insertOne({ uid: 'abc.def-0000-0000-0000-000000000002', time: D(2000), scan_id: I(7), plan_name: 'count' });
  await rs.insertOne({ uid: 'abcXdef-0000-0000-0000-000000000003', time: D(1500), scan_id: I(7), plan_name: 'count' });
  await rs.insertOne({ uid: 'abd00000-0000-0000-0000-000000000004', time: D(3000), scan_id: I(8), plan_name: 'scan' });

  const ds = db.collection('event_descriptor');
  // primary is stored first, although baseline's time is earlier: streams follow the stored order.
  await ds.insertOne({ run_start: R1, uid: 'd-primary', time: D(1001), name: 'primary', data_keys: { x: { dtype: 'number', shape: [], source: 'x' }, img: { dtype: 'array', shape: [2, 2], source: 'img', external: 'FILESTORE:' } } });
  await ds.insertOne({ run_start: R1, uid: 'd-baseline', time: D(1000.5), name: 'baseline', data_keys: { t: { dtype: 'integer', shape: [], source: 't' } } });
  await ds.insertOne({ run_start: R1, uid: 'd-noname', time: D(1002), data_keys: { q: { dtype: 'number', shape: [], source: 'q' } } });

  const res = db.collection('resource');
  const resource = (uid: string, extra: Doc = {}) => ({ spec: 'NPY_SEQ', root: '/data', resource_path: `p/${uid}`, resource_kwargs: {}, path_semantics: 'posix', uid, ...extra });
  await res.insertOne(resource('res1', { run_start: R1 }));
  await res.insertOne(resource('res1', { run_start: R1 })); // suitcase's duplicate copy
  await res.insertOne(resource('legacy1'));
  const legacy2Id = new ObjectId();
  await res.insertOne({ _id: legacy2Id, spec: 'NPY_SEQ', root: '/old', resource_path: 'q', resource_kwargs: {}, path_semantics: 'posix' });

  const datum = db.collection('datum');
  const datums = [];
  for (let i = 0; i < 7; i++) datums.push({ datum_id: `res1/${i}`, datum_kwargs: { index: I(i) }, resource: 'res1' });
  datums.push({ datum_id: 'legacy1/0', datum_kwargs: { index: I(0) }, resource: 'legacy1' });
  datums.push({ datum_id: 'legacy1/1', datum_kwargs: { index: I(1) }, resource: 'legacy1' });
  datums.push({ datum_id: 'plainid0', datum_kwargs: { index: I(0) }, resource: legacy2Id.toHexString() });
  datums.push({ datum_id: 'plainid1', datum_kwargs: { index: I(1) }, resource: legacy2Id.toHexString() });
  await datum.insertMany(datums);

  const ev = db.collection('event');
  const e = (descriptor: string, uid: string, time: number, seq: number, data: Doc, filled?: Doc) => ({
    descriptor, uid, time: D(time), seq_num: I(seq), data, timestamps: Object.fromEntries(Object.keys(data).map((k) => [k, D(time)])), ...(filled ? { filled } : {}),
  });
  await ev.insertMany([
    e('d-primary', 'e1', 1003, 1, { x: D(1), img: 'res1/0' }, { img: true }),
    e('d-primary', 'e2', 1005, 2, { x: D(2.5), img: 'legacy1/0' }, {}),
    e('d-primary', 'e0-tie', 1005, 3, { x: D(3), img: 'legacy1/1' }, {}),
    e('d-primary', 'e4', 1007, 4, { x: D(4), img: 'plainid0' }),
    e('d-primary', 'e5', 1008, 5, { x: D(5), img: 'res1/1' }, { img: false }),
    e('d-baseline', 'b1', 1004, 1, { t: I(20) }, {}),
    e('d-baseline', 'a-b2', 1005, 2, { t: I(21) }, {}),
    e('d-noname', 'n1', 1004.5, 1, { q: D(1) }, {}),
  ]);
  await db.collection('run_stop').insertOne({ run_start: R1, uid: 's1', time: D(1010), exit_status: 'success', num_events: { primary: I(5), baseline: I(2) } });
  return { legacy2Id };
}

function summary(p: DocPair): string {
  const d = p.doc;
  switch (p.name) {
    case 'event_page': return `event_page ${(d.uid as string[])[0]}`;
    case 'datum_page': return `datum_page ${(d.datum_id as string[]).join(',')}`;
    case 'resource': return `resource ${String(d.uid)}`;
    default: return `${p.name} ${String(d.uid)}`;
  }
}

function hasId(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasId);
  if (v instanceof Map) return v.has('_id') || [...v.values()].some(hasId);
  if (v && typeof v === 'object' && !(v instanceof PyFloat) && !(v instanceof Uint8Array)) return Object.hasOwn(v, '_id') || Object.values(v).some(hasId);
  return false;
}

if (skipUnlessMongo(t)) {
  const server = await startMongo();
  t.teardown(() => server.stop());
  const client = new MongoClient(server.uri);
  t.teardown(() => client.close());
  const dbName = uniqueDb('src');
  const db = client.db(dbName);
  t.teardown(() => db.dropDatabase().catch(() => {}));
  const { legacy2Id } = await seed(db);
  const uri = server.dbUri(dbName);
  const cat = MongoCatalog.fromUri(uri);
  t.teardown(() => cat.close());

  await t.test('canonical order, filled, legacy resources, no _id', async (t) => {
    const run = await cat.lookup(R1);
    const docs = await docsOf(run);
    t.same(docs.map(summary), [
      `start ${R1}`,
      'descriptor d-primary',
      'resource res1',
      'datum_page res1/0,res1/1,res1/2,res1/3,res1/4',
      'datum_page res1/5,res1/6',
      'descriptor d-baseline',
      'event_page e1',
      'event_page b1',
      'event_page a-b2',
      'resource legacy1',
      'datum_page legacy1/0,legacy1/1',
      'event_page e2',
      'event_page e0-tie',
      `resource ${legacy2Id.toHexString()}`,
      'datum_page plainid0,plainid1',
      'event_page e4',
      'event_page e5',
      'stop s1',
    ]);
    t.notOk(docs.some((p) => hasId(p.doc)), '_id is never exported');
    const pages = docs.filter((p) => p.name === 'event_page');
    for (const p of pages) t.same(Object.keys(p.doc), ['time', 'uid', 'seq_num', 'descriptor', 'filled', 'data', 'timestamps']);
    const filled = (uid: string) => pages.find((p) => (p.doc.uid as string[])[0] === uid)!.doc.filled;
    t.same(filled('e1'), { img: [false] }, 'stored filled {img: true} becomes {img: false}');
    t.same(filled('e4'), { img: [false] }, 'an event stored without filled gets it');
    t.same(filled('b1'), {}, 'no external keys, empty filled');
    const legacy2 = docs.find((p) => p.name === 'resource' && p.doc.root === '/old')!;
    t.same(Object.keys(legacy2.doc), ['spec', 'root', 'resource_path', 'resource_kwargs', 'path_semantics', 'uid'], 'a resource without uid gets its _id as uid, last');
    const dp = docs.find((p) => p.name === 'datum_page')!;
    t.same(Object.keys(dp.doc), ['resource', 'datum_id', 'datum_kwargs']);
  });

  await t.test('number types and key order survive exactly', async (t) => {
    const run = await cat.lookup(R1);
    const s = run.start;
    t.ok(s.time instanceof PyFloat && (s.time as PyFloat).value === 1000, 'a whole double stays a float');
    t.equal(s.scan_id, 7, 'int32 is an int');
    t.equal(s.big, 2n ** 62n, 'int64 beyond 2^53 is exact (bigint)');
    t.equal(s.small64, 5, 'a small int64 is an int');
    t.ok(s.whole instanceof PyFloat);
    t.equal(s.frac, 2.5);
    t.ok(s.nested instanceof Map, 'integer-like keys keep their order (Map)');
    t.same([...(s.nested as Map<string, unknown>).keys()], ['10', '2']);

    // ... and through the CLI into a msgpack pack.
    const dest = path.join(tempDir(), 'pack');
    const r = await runCli(['pack', uri, dest, '--uids', '-', '--ignore-external'], { input: `${R1}\n` });
    t.equal(r.code, 0, r.stderr);
    const recs: DocPair[] = [];
    for await (const p of readRecords(path.join(dest, 'documents', `${R1}.msgpack`), 'msgpack')) recs.push(p);
    const start = recs[0]!.doc;
    t.ok(start.time instanceof PyFloat);
    t.equal(start.big, 2n ** 62n);
    t.same([...(start.nested as Map<string, unknown>).keys()], ['10', '2']);
    const ev = recs.find((p) => p.name === 'event_page' && (p.doc.uid as string[])[0] === 'e1')!.doc;
    t.ok((ev.data as Doc).x && ((ev.data as Doc).x as unknown[])[0] instanceof PyFloat, 'x: 1.0 stays a float in the pack');
    t.equal(recs.length, 18);
  });

  await t.test('lookup: databroker rules, escaped prefix regex', async (t) => {
    t.equal((await cat.lookup('abc.def')).uid, 'abc.def-0000-0000-0000-000000000002', "'.' is literal: no match with abcXdef");
    t.equal(escapeRegex('a.b*c'), 'a\\.b\\*c');
    await t.rejects(cat.lookup('abc'), { code: 'E_AMBIGUOUS', message: /Multiple matches to partial uid 'abc'/ });
    t.equal((await cat.lookup('7')).uid, 'abc.def-0000-0000-0000-000000000002', 'scan_id 7: the newest of three');
    t.equal((await cat.lookup('-1')).uid, 'abd00000-0000-0000-0000-000000000004', '-1 is the newest');
    t.equal((await cat.lookup('-2')).uid, 'abc.def-0000-0000-0000-000000000002');
    await t.rejects(cat.lookup('-10'), { code: 'E_NOT_FOUND' });
    await t.rejects(cat.lookup('99'), { code: 'E_NOT_FOUND', message: 'No run with scan_id=99' });
    await t.rejects(cat.lookup('zzz'), { code: 'E_NOT_FOUND' });
    t.equal((await cat.lookup(R1)).uid, R1);
    t.equal((await cat.lookup('7', { query: { plan_name: 'scan' } })).uid, R1, 'lookup within a query');
  });

  await t.test('listing and queries go to the server', async (t) => {
    t.same((await runsOf(cat)).map((r) => r.uid.slice(0, 7)), ['abd0000', 'abc.def', 'abcXdef', 'r100000'], 'newest first');
    t.same((await runsOf(cat, { plan_name: 'count' })).map((r) => r.uid.slice(0, 7)), ['abc.def', 'abcXdef']);
    const sb = sandbox();
    const dest = path.join(sb.root, 'q');
    const r = await runCli(['pack', uri, dest, '-q', 'TimeRange(since=1400, until=2000)', '--ignore-external'], { env: sb.env });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /packed 1 run\(s\)/, 'until is exclusive');
    const lim = await runCli(['pack', uri, path.join(sb.root, 'lim'), '--all', '--limit', '2', '--ignore-external'], { env: sb.env });
    t.match(lim.stderr, /packed 2 run\(s\)/);
    const uidsFile = path.join(sb.root, 'uids.txt');
    writeFileSync(uidsFile, '# two runs\nabc.def\n-1\n');
    const u = await runCli(['pack', uri, path.join(sb.root, 'uids'), '--uids', uidsFile, '--ignore-external'], { env: sb.env });
    t.match(u.stderr, /packed 2 run\(s\)/, u.stderr);
    const bad = await runCli(['pack', uri, path.join(sb.root, 'bad'), '-q', "{'time': {'$frobnicate': 1}}"], { env: sb.env });
    t.equal(bad.code, 2, 'a bad query is a usage error');
    t.match(bad.stderr, /E_BAD_QUERY/);
    // TextQuery is for the server: without a text index (or on FerretDB) it refuses, and says why.
    const text = await runCli(['pack', uri, path.join(sb.root, 'text'), '-q', "TextQuery('scan')", '--ignore-external'], { env: sb.env });
    t.equal(text.code, 1, 'a query the server refuses is a failure');
    t.match(text.stderr, /E_BAD_QUERY: .* refused the query \{"\$and":\[\{"\$text":\{"\$search":"scan"\}\}\]\}: /);
    const noDb = await runCli(['pack', server.uri, path.join(sb.root, 'nodb'), '--all'], { env: sb.env });
    t.equal(noDb.code, 2);
    t.match(noDb.stderr, /must name a database/);
  });

  await t.test('reads resume by key: cursors re-issued at every batch give the same documents', async (t) => {
    const want = await docsOf(await cat.lookup(R1));
    let queries = 0;
    const tiny = MongoCatalog.fromUri(uri, { read: { batchSize: 1, maxCursorAgeMs: 0, onQuery: () => void queries++ } });
    t.teardown(() => tiny.close());
    t.equal(firstDifference(want, await docsOf(await tiny.lookup(R1))), null);
    t.ok(queries > 10, `${queries} queries were issued`);
  });

  await t.test('the server killed and restarted in the middle of a run', { skip: server.kind === 'ferretdb' ? false : 'needs the local FerretDB' }, async (t) => {
    const uid = 'big00000-0000-0000-0000-000000000000';
    await db.collection('run_start').insertOne({ uid, time: D(5000), scan_id: I(1) });
    await db.collection('event_descriptor').insertOne({ run_start: uid, uid: 'd-big', time: D(5000), name: 'primary', data_keys: { x: { dtype: 'number', shape: [], source: 'x' } } });
    const evs = [];
    for (let i = 0; i < 3000; i++) evs.push({ descriptor: 'd-big', uid: `big-${String(i).padStart(5, '0')}`, time: D(5001 + Math.floor(i / 3)), seq_num: I(i + 1), data: { x: D(i) }, timestamps: { x: D(5001 + i) }, filled: {} });
    await db.collection('event').insertMany(evs);
    const want = await docsOf(await cat.lookup(uid));
    t.equal(want.length, 3002);

    const c2 = MongoCatalog.fromUri(uri, { read: { batchSize: 50 } });
    t.teardown(() => c2.close());
    const got: DocPair[] = [];
    for await (const p of (await c2.lookup(uid)).documents()) {
      got.push(p);
      if (got.length === 700) {
        server.kill();
        await new Promise((r) => setTimeout(r, 500));
        await server.restart();
      }
    }
    t.equal(firstDifference(want, got), null, 'every document once, in order');
  });
}
