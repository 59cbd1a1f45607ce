/**
 * `unpack mongo_normalized` against a real server (FerretDB, or MONGODB_URI):
 * every vector (and the sample catalog) unpacked into MongoDB and read back
 * from MongoDB gives the same documents in canonical order, number types and
 * key order included, and packs into byte-identical document files; the stored layout is suitcase-mongo's (one document per
 * event with `filled`, per datum, the same indexes); the catalog YAML is
 * databroker-unpack's; a re-run changes nothing; a changed document is a
 * conflict reported with both versions.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Double, Int32, MongoClient } from 'mongodb';
import { parse } from 'yaml';
import { MongoCatalog } from '../../src/sources/mongo-catalog.js';
import { openSource } from '../../src/sources/open.js';
import { MONGO_NORMALIZED_INDEXES, indexName } from '../../src/sinks/mongo-normalized.js';
import { exportCatalog } from '../../src/pipeline/export.js';
import { unpackMongoNormalized } from '../../src/pipeline/unpack-mongo.js';
import { runCli, runCommand } from '../helpers/cli.js';
import { treeDigest } from '../helpers/files.js';
import { docsOf, firstDifference, runsOf, sandbox, uniqueDb } from '../helpers/mongo-fixtures.js';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';
import { HAS_VECTORS, REPO, VECTORS } from '../helpers/paths.js';

const SOURCES = [
  ...(HAS_VECTORS ? ['simple_catalog', 'another_simple_catalog', 'polartools_scalar', 'tutorials_jsonl'].map((v) => path.join(VECTORS, v)) : []),
  path.join(REPO, 'examples', 'catalog'),
];

if (skipUnlessMongo(t)) {
  const server = await startMongo();
  t.teardown(() => server.stop());
  const client = new MongoClient(server.uri);
  t.teardown(() => client.close());
  const dbs: string[] = [];
  t.teardown(async () => {
    for (const d of dbs) await client.db(d).dropDatabase().catch(() => {});
  });
  if (!HAS_VECTORS) t.comment(`no vectors at ${VECTORS}: only the sample catalog is round-tripped`);

  for (const src of SOURCES) {
    await t.test(`round trip: ${path.basename(src)}`, async (t) => {
      const sb = sandbox();
      const dbName = uniqueDb('rt');
      dbs.push(dbName);
      const uri = server.dbUri(dbName);
      const before = await treeDigest(src);
      const name = `rt_${path.basename(src)}`;
      const res = await unpackMongoNormalized(src, name, { mongoUri: uri, ...sb.search });
      t.same(res.failures, [], 'no failed runs');
      t.same(res.conflicts, []);
      t.ok(res.wroteCatalog);
      t.same(await treeDigest(src), before, 'source untouched');

      const source = await openSource(src);
      const mongo = MongoCatalog.fromUri(uri);
      t.teardown(() => mongo.close());
      const want = await runsOf(source);
      const got = await runsOf(mongo);
      t.same(got.map((r) => r.uid).sort(), want.map((r) => r.uid).sort(), 'same runs');
      const times = got.map((r) => Number(r.start.time));
      t.same(times, [...times].sort((a, b) => b - a), 'runs are listed newest first');
      let docs = 0;
      for (const w of want) {
        const g = got.find((r) => r.uid === w.uid)!;
        const a = await docsOf(w);
        const b = await docsOf(g);
        docs += b.length;
        t.equal(firstDifference(a, b), null, `run ${w.uid}: same documents in canonical order`);
      }
      t.ok(docs > 0);

      // Packed from MongoDB and packed from the source: the same document files, byte for byte.
      const fromMongo = await exportCatalog(mongo, path.join(sb.root, 'from-mongo'), { salt: 'S', external: 'ignore' });
      const fromSource = await exportCatalog(source, path.join(sb.root, 'from-source'), { salt: 'S', external: 'ignore' });
      t.same(fromMongo.failures, []);
      t.same([...fromMongo.documentFiles].sort(), [...fromSource.documentFiles].sort());
      for (const f of fromSource.documentFiles) {
        t.ok(readFileSync(path.join(fromMongo.dir, f)).equals(readFileSync(path.join(fromSource.dir, f))), `${f} is byte-identical`);
      }

      // What is stored: suitcase's layout.
      const db = client.db(dbName);
      const events = await db.collection('event').find({}, { promoteValues: false }).toArray();
      t.ok(events.length > 0);
      t.ok(events.every((e) => 'filled' in e && Object.keys(e).slice(1).join(',') === 'descriptor,uid,time,seq_num,data,timestamps,filled'), 'one document per event, with filled, in unpack_event_page key order');
      t.ok(events.every((e) => e.time instanceof Double && e.seq_num instanceof Int32), 'time stays a double and seq_num an int32');
      const datums = await db.collection('datum').find({}).toArray();
      t.ok(datums.every((d) => Object.keys(d).slice(1).join(',') === 'datum_id,datum_kwargs,resource'), 'one document per datum');
      const starts = await db.collection('run_start').find({}, { promoteValues: false }).toArray();
      t.ok(starts.every((s) => s.time instanceof Double), 'start times are doubles');
      const resources = await db.collection('resource').find({}).toArray();
      t.equal(new Set(resources.map((r) => r.uid)).size, resources.length, 'no resource twice');

      const yaml = parse(readFileSync(res.file, 'utf8'), { version: '1.1' });
      t.equal(res.file, path.join(sb.userDir, `databroker_unpack_${name}.yml`));
      const entry = yaml.sources[name];
      t.equal(entry.driver, 'bluesky-mongo-normalized-catalog');
      t.same(entry.args.metadatastore_db, uri);
      t.same(entry.args.asset_registry_db, uri);
      for (const v of Object.values(entry.args.root_map ?? {})) t.ok(path.isAbsolute(String(v)), `root_map value ${String(v)} is absolute`);
      const packYaml = existsSync(path.join(src, 'catalog.yml')) ? parse(readFileSync(path.join(src, 'catalog.yml'), 'utf8'), { version: '1.1' }) : undefined;
      if (packYaml?.sources?.packed_catalog) {
        t.same(entry.metadata, packYaml.sources.packed_catalog.metadata, "the pack's metadata is kept");
        t.same(Object.keys(entry.args.root_map), Object.keys(packYaml.sources.packed_catalog.args.root_map ?? {}));
      }

      // The same again: nothing changes.
      const counts = async () => Object.fromEntries(await Promise.all(['run_start', 'run_stop', 'event_descriptor', 'event', 'resource', 'datum'].map(async (c) => [c, await db.collection(c).countDocuments()])));
      const countsBefore = await counts();
      const yamlBefore = readFileSync(res.file, 'utf8');
      const again = await unpackMongoNormalized(src, name, { mongoUri: uri, ...sb.search });
      t.equal(again.totals.inserted, 0, 're-run inserts nothing');
      t.equal(again.totals.duplicates, res.totals.inserted, 'every document is recognised as already stored');
      t.same(again.failures, []);
      t.same(await counts(), countsBefore, 're-run leaves every collection as it was');
      t.equal(readFileSync(res.file, 'utf8'), yamlBefore, 're-run leaves the catalog YAML as it was');
    });
  }

  await t.test('indexes are suitcase-mongo\'s (text indexes: a warning where the server has none)', async (t) => {
    const sb = sandbox();
    const dbName = uniqueDb('idx');
    dbs.push(dbName);
    const res = await unpackMongoNormalized(path.join(REPO, 'examples', 'catalog'), 'idx', { mongoUri: server.dbUri(dbName), ...sb.search });
    const db = client.db(dbName);
    for (const coll of ['run_start', 'run_stop', 'event_descriptor', 'event', 'resource', 'datum']) {
      const have = new Map((await db.collection(coll).listIndexes().toArray()).map((i) => [i.name, i]));
      for (const spec of MONGO_NORMALIZED_INDEXES.filter((s) => s.collection === coll)) {
        const name = indexName(spec.keys);
        const isText = Object.values(spec.keys).includes('text');
        const idx = have.get(name);
        if (!idx) {
          t.ok(isText, `${coll}.${name} missing only if it is a text index`);
          t.ok(res.warnings.some((w) => w.includes(name) && w.includes(coll)), `a warning says ${coll}.${name} was not created`);
          continue;
        }
        if (!isText) t.same(idx.key, spec.keys, `${coll}.${name} keys`);
        t.equal(Boolean(idx.unique), Boolean(spec.unique), `${coll}.${name} unique=${Boolean(spec.unique)}`);
      }
    }
    if (server.kind === 'ferretdb') t.equal(res.warnings.length, 3, 'FerretDB: the three text indexes are missing, nothing else');
  });

  await t.test('a changed document is a conflict, reported with both versions (CLI)', async (t) => {
    const sb = sandbox();
    const dbName = uniqueDb('conf');
    dbs.push(dbName);
    const uri = server.dbUri(dbName);
    const src = path.join(REPO, 'examples', 'catalog');
    const first = await runCli(['unpack', 'mongo_normalized', src, 'conf', '--mongo-uri', uri], { env: sb.env });
    t.equal(first.code, 0, first.stderr);
    const db = client.db(dbName);
    const ev = await db.collection('event').findOne({}, { sort: { time: 1 } });
    await db.collection('event').updateOne({ _id: ev!._id }, { $set: { seq_num: new Int32(424242) } });
    const res = await runCli(['unpack', 'mongo_normalized', src, 'conf', '--mongo-uri', uri], { env: sb.env });
    t.equal(res.code, 1, 'exit code 1');
    t.match(res.stderr, new RegExp(`conflict in event uid=${ev!.uid}`));
    t.match(res.stderr, /stored: +\{.*"seq_num": 424242/);
    t.match(res.stderr, new RegExp(`incoming: +\\{.*"seq_num": ${String(ev!.seq_num)},`));
    t.match(res.stderr, /E_CONFLICT/);
    t.equal(await db.collection('event').countDocuments({ uid: ev!.uid }), 1, 'the stored version stays, once');
    t.equal((await db.collection('event').findOne({ uid: ev!.uid }))!.seq_num, 424242);
  });

  await t.test('the databroker-unpack drop-in: mongo_normalized with the options first, Placed line on stdout', async (t) => {
    const sb = sandbox();
    const dbName = uniqueDb('dropin');
    dbs.push(dbName);
    const uri = server.dbUri(dbName);
    const r = await runCommand('databroker-unpack', ['--mongo-uri', uri, 'mongo_normalized', path.join(REPO, 'examples', 'catalog'), 'dropin'], { env: sb.env });
    t.equal(r.code, 0, r.stderr);
    const file = path.join(sb.env.XDG_DATA_HOME!, 'intake', 'databroker_unpack_dropin.yml');
    t.equal(r.stdout, `Placed configuration file at ${file}\n`);
    t.equal(await client.db(dbName).collection('run_start').countDocuments({}), 4);
  });

  await t.test('values FerretDB cannot store fail their run with a clear message; MongoDB keeps them', async (t) => {
    const sb = sandbox();
    const dir = path.join(sb.root, 'nan');
    mkdirSync(dir);
    const uid = 'nan00000-0000-0000-0000-000000000000';
    writeFileSync(
      path.join(dir, `${uid}.jsonl`),
      [
        `["start", {"uid": "${uid}", "time": 1.0, "scan_id": 1, "reading": NaN, "hints": {"dimensions": [[["x"], "primary"]]}}]`,
        `["stop", {"uid": "${uid}-s", "run_start": "${uid}", "time": 2.0, "exit_status": "success"}]`,
        '',
      ].join('\n'),
    );
    const dbName = uniqueDb('nan');
    dbs.push(dbName);
    const res = await unpackMongoNormalized(dir, 'nan', { mongoUri: server.dbUri(dbName), ...sb.search });
    if (server.kind === 'ferretdb') {
      t.equal(res.failures.length, 1);
      t.match(res.failures[0]!.message, /\$\.reading: FerretDB cannot store NaN/);
      t.notOk(res.wroteCatalog, 'no catalog for a database that holds no run');
    } else {
      t.same(res.failures, []);
      const cat = MongoCatalog.fromUri(server.dbUri(dbName));
      t.teardown(() => cat.close());
      const start = (await cat.lookup(uid)).start;
      t.ok(Number.isNaN(start.reading as number), 'NaN round-trips through MongoDB');
    }
  });

  await t.test('merge rules and the URI', async (t) => {
    const sb = sandbox();
    const src = path.join(REPO, 'examples', 'catalog');
    const noDb = await runCli(['unpack', 'mongo_normalized', src, 'x', '--mongo-uri', server.uri], { env: sb.env });
    t.equal(noDb.code, 2, 'a URI without a database is a usage error');
    t.match(noDb.stderr, /must name a database/);

    const dbName = uniqueDb('merge');
    dbs.push(dbName);
    const uri = server.dbUri(dbName);
    t.equal((await runCli(['unpack', 'mongo_normalized', src, 'm', '--mongo-uri', uri], { env: sb.env })).code, 0);
    const noMerge = await runCli(['unpack', 'mongo_normalized', src, 'm', '--mongo-uri', uri, '--no-merge'], { env: sb.env });
    t.equal(noMerge.code, 1);
    t.match(noMerge.stderr, /already exists/);
    t.match(noMerge.stderr, /The catalogs that exist on this system are:\n {2}m\n/);
    const other = await runCli(['unpack', 'mongo_normalized', src, 'm', '--mongo-uri', server.dbUri(`${dbName}_other`)], { env: sb.env });
    t.equal(other.code, 1, 'merging needs the same URI');
    t.match(other.stderr, /E_CONFLICT.*metadatastore_db/);
    const filePack = path.join(sb.root, 'file-pack');
    t.equal((await runCli(['pack', src, filePack, '--all'], { env: sb.env })).code, 0);
    const inplace = await runCli(['unpack', 'inplace', filePack, 'files'], { env: sb.env });
    t.equal(inplace.code, 0, inplace.stderr);
    const mixed = await runCli(['unpack', 'mongo_normalized', src, 'files', '--mongo-uri', uri], { env: sb.env });
    t.equal(mixed.code, 1, 'cannot merge a Mongo catalog into a file-backed one');
    t.match(mixed.stderr, /E_CONFLICT.*driver/);

    // {database} is replaced by databroker_NAME.
    const tmpl = `${server.uri.replace(/\/$/, '')}/{database}`;
    const name = `tmpl${process.pid}`;
    dbs.push(`databroker_${name}`);
    const r = await runCli(['unpack', 'mongo_normalized', src, name, '--mongo-uri', tmpl], { env: sb.env });
    t.equal(r.code, 0, r.stderr);
    t.ok((await client.db(`databroker_${name}`).collection('run_start').countDocuments()) > 0);
  });

  await t.test('any SOURCE goes straight in: one MongoDB into another, then packed by catalog name', async (t) => {
    const sb = sandbox();
    const a = uniqueDb('srcA');
    const b = uniqueDb('srcB');
    dbs.push(a, b);
    const src = path.join(REPO, 'examples', 'catalog');
    t.equal((await unpackMongoNormalized(src, 'a', { mongoUri: server.dbUri(a), ...sb.search })).failures.length, 0);
    // SOURCE 'a' is the catalog name the first unpack wrote (its root_map comes along).
    const r = await runCli(['unpack', 'mongo_normalized', 'a', 'b', '--mongo-uri', server.dbUri(b)], { env: sb.env });
    t.equal(r.code, 0, r.stderr);
    const ca = MongoCatalog.fromUri(server.dbUri(a));
    const cb = MongoCatalog.fromUri(server.dbUri(b));
    t.teardown(async () => {
      await ca.close();
      await cb.close();
    });
    const ra = await runsOf(ca);
    const rb = await runsOf(cb);
    t.same(rb.map((x) => x.uid), ra.map((x) => x.uid));
    for (let i = 0; i < ra.length; i++) t.equal(firstDifference(await docsOf(ra[i]!), await docsOf(rb[i]!)), null);

    // The catalog YAML makes the database a source by name, root_map included (external files are found).
    const dest = path.join(sb.root, 'pack');
    const p = await runCli(['pack', 'b', dest, '--all'], { env: sb.env });
    t.equal(p.code, 0, p.stderr);
    t.equal(parse(readFileSync(path.join(dest, 'catalog.yml'), 'utf8')).sources.packed_catalog.driver, 'bluesky-msgpack-catalog');
  });
}
