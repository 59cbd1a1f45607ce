#!/usr/bin/env node
/**
 * MongoDB throughput on a fixed synthetic pack, next to the comparisons the
 * issue asks for:
 *
 *   unpack:  pack-stream unpack mongo_normalized (bulk, unordered, idempotent)
 *            vs one insertOne per document (what suitcase-mongo does), same pack;
 *            and the re-run of the unpack (every document already stored).
 *   pack:    pack-stream pack mongodb://… (keyset reads, canonical order, msgpack out)
 *            vs a bare driver cursor over the same collections (decoded by the
 *            driver; and raw BSON, not decoded, as the floor).
 *
 *   npm run build && node bench/mongo.bench.mjs [--runs 10] [--events 5000] [--uri mongodb://host:port/]
 *
 * Server: --uri, else $MONGODB_URI, else FerretDB from scripts/ferretdb.sh
 * (started here on a free port with a temp data dir). Note that FerretDB v1
 * (SQLite) scans a collection for every query, so absolute numbers on it say
 * more about FerretDB than about pack-stream; ratios on the same server are
 * the point.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';
import { cache, CLI, opt, timed } from './common.mjs';
import { MsgpackEncoder, PyFloat, openSource, toBsonDocument, unpackDatumPage, unpackEventPage } from '../dist/index.js';
import { rowAsEvent } from '../dist/transforms/pages.js';

const RUNS = Number(opt('runs', 10));
const EVENTS = Number(opt('events', 5000));

/** RunEngine-shaped runs: scalar and external keys, a resource, datum pages of 5, one-row event pages. */
function makeRuns(dir) {
  mkdirSync(dir, { recursive: true });
  for (let r = 0; r < RUNS; r++) {
    const uid = `mbench-${String(r).padStart(4, '0')}-0000-0000-000000000000`;
    const t0 = 1_600_000_000 + r * 100_000;
    const e = new MsgpackEncoder(1 << 20);
    const parts = [];
    e.record('start', { uid, time: new PyFloat(t0), scan_id: r + 1, plan_name: 'count', detectors: ['det', 'cam'], hints: { dimensions: [[['time'], 'primary']] } });
    const dataKeys = { cam_image: { source: 'SIM:cam', dtype: 'array', shape: [512, 512], external: 'FILESTORE:' } };
    for (const k of ['det1', 'det2', 'm1', 'm1_setpoint', 'temp', 'i0', 'i1', 'energy']) dataKeys[k] = { source: `SIM:${k}`, dtype: 'number', shape: [], precision: 3 };
    e.record('descriptor', { run_start: uid, time: t0 + 0.5, uid: `${uid}-d`, name: 'primary', data_keys: dataKeys, configuration: {}, hints: {}, object_keys: {} });
    const res = `${uid}-res`;
    e.record('resource', { spec: 'AD_HDF5', root: '/data', resource_path: `${uid}.h5`, resource_kwargs: { frame_per_point: 1 }, path_semantics: 'posix', uid: res, run_start: uid });
    for (let i = 0; i < EVENTS; i += 5) {
      const ids = [];
      const pt = [];
      for (let j = i; j < Math.min(EVENTS, i + 5); j++) {
        ids.push(`${res}/${j}`);
        pt.push(j);
      }
      e.record('datum_page', { resource: res, datum_id: ids, datum_kwargs: { point_number: pt } });
    }
    for (let i = 0; i < EVENTS; i++) {
      const t = t0 + 1 + i * 0.01;
      const data = { cam_image: [`${res}/${i}`] };
      const ts = { cam_image: [t] };
      let j = 0;
      for (const k of Object.keys(dataKeys).slice(1)) {
        data[k] = [j % 3 === 0 ? new PyFloat(i) : j % 3 === 1 ? Math.sin(i + j) * 1000 : i + j];
        ts[k] = [t];
        j++;
      }
      e.record('event_page', { time: [t], uid: [`${uid}-e${i}`], seq_num: [i + 1], descriptor: `${uid}-d`, filled: { cam_image: [false] }, data, timestamps: ts });
      if (e.length > 1 << 20) parts.push(e.take());
    }
    e.record('stop', { run_start: uid, time: t0 + 99_999, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: EVENTS } });
    parts.push(e.take());
    writeFileSync(path.join(dir, `${uid}.msgpack`), Buffer.concat(parts));
  }
  return RUNS * (4 + 2 * EVENTS); // documents stored: events and datums one per row
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(work) {
  const uri = opt('uri', process.env.MONGODB_URI);
  if (uri) return { uri: uri.replace(/\/?$/, '/'), stop: () => {}, kind: 'given' };
  const bin = process.env.FERRETDB_BIN || path.join(cache, 'bin', 'ferretdb');
  if (!existsSync(bin)) throw new Error(`no server: pass --uri or set MONGODB_URI, or build FerretDB with scripts/ferretdb.sh (looked for ${bin})`);
  const port = await freePort();
  const data = path.join(work, 'ferretdb');
  mkdirSync(data, { recursive: true });
  const child = spawn(bin, ['--handler=sqlite', `--sqlite-url=${pathToFileURL(data).href}/`, `--state-dir=${work}`, `--listen-addr=127.0.0.1:${port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error'], { stdio: 'ignore' });
  process.on('exit', () => child.kill('SIGKILL'));
  const url = `mongodb://127.0.0.1:${port}/`;
  for (let i = 0; i < 200; i++) {
    const c = new MongoClient(url, { serverSelectionTimeoutMS: 500 });
    try {
      await c.db('admin').command({ ping: 1 });
      await c.close();
      return { uri: url, stop: () => child.kill('SIGKILL'), kind: 'FerretDB' };
    } catch {
      await c.close().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('FerretDB did not start');
}

/** suitcase-mongo's way: every event and datum its own insert_one (no indexes checked, no duplicate handling). */
async function insertOneEach(src, uri) {
  const client = new MongoClient(uri);
  const db = client.db();
  const t = Date.now();
  let n = 0;
  const cat = await openSource(src);
  const coll = { start: 'run_start', stop: 'run_stop', descriptor: 'event_descriptor', resource: 'resource', event: 'event', datum: 'datum' };
  for await (const run of cat.runs()) {
    for await (const { name, doc } of run.documents()) {
      if (name === 'event_page') {
        for (const row of unpackEventPage(doc)) {
          await db.collection('event').insertOne(toBsonDocument(rowAsEvent(row), { ferretdb: true }));
          n++;
        }
      } else if (name === 'datum_page') {
        for (const row of unpackDatumPage(doc)) {
          await db.collection('datum').insertOne(toBsonDocument({ datum_id: row.datum_id, datum_kwargs: row.datum_kwargs, resource: row.resource }, { ferretdb: true }));
          n++;
        }
      } else if (coll[name]) {
        await db.collection(coll[name]).insertOne(toBsonDocument(doc, { ferretdb: true }));
        n++;
      }
    }
  }
  const secs = (Date.now() - t) / 1000;
  await client.close();
  return { secs, rss: process.memoryUsage().rss / 2 ** 20, n };
}

/** The six collections through a plain driver cursor: decoded by the driver, or raw BSON. */
async function bareRead(uri, raw) {
  const client = new MongoClient(uri);
  const db = client.db();
  const t = Date.now();
  let n = 0;
  for (const c of ['run_start', 'run_stop', 'event_descriptor', 'event', 'resource', 'datum']) {
    for await (const d of db.collection(c).find({}, { batchSize: 1000, ...(raw ? { raw: true } : {}) })) if (d) n++;
  }
  const secs = (Date.now() - t) / 1000;
  await client.close();
  return { secs, rss: process.memoryUsage().rss / 2 ** 20, n };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'pack-stream-mongo-bench-'));
let server;
try {
  server = await startServer(work);
  const runs = path.join(work, 'runs');
  const stored = makeRuns(runs);
  const pack = path.join(work, 'pack');
  timed(process.execPath, [CLI, 'pack', runs, pack, '--all', '--ignore-external'], {});
  const env = { XDG_DATA_HOME: path.join(work, 'xdg'), HOME: work };
  const tag = `${process.pid}_${Date.now().toString(36)}`;
  const dbBulk = `bench_bulk_${tag}`;
  const dbOne = `bench_one_${tag}`;
  console.error(`bench: ${server.kind} at ${server.uri}; ${RUNS} runs x ${EVENTS} events: ${stored} documents to store`);

  const rows = [];
  const unpack = timed(process.execPath, [CLI, 'unpack', 'mongo_normalized', pack, 'bench', '--mongo-uri', `${server.uri}${dbBulk}`], env);
  rows.push(['unpack mongo_normalized (bulk)', unpack, stored]);
  const one = await insertOneEach(pack, `${server.uri}${dbOne}`);
  rows.push(['one insertOne per document (suitcase-style)', one, one.n]);
  const rerun = timed(process.execPath, [CLI, 'unpack', 'mongo_normalized', pack, 'bench', '--mongo-uri', `${server.uri}${dbBulk}`], env);
  rows.push(['unpack again (all already stored)', rerun, stored]);
  // Counted in stored documents read (as the bare cursors are); the pack holds fewer
  // (datums in pages of 5).
  const out = timed(process.execPath, [CLI, 'pack', `${server.uri}${dbBulk}`, path.join(work, 'out'), '--all', '--ignore-external'], {});
  rows.push(['pack from MongoDB (canonical order, msgpack files)', out, stored]);
  const bare = await bareRead(`${server.uri}${dbBulk}`, false);
  rows.push(['bare driver cursor, decoded (6 collections)', bare, bare.n]);
  const bareRaw = await bareRead(`${server.uri}${dbBulk}`, true);
  rows.push(['bare driver cursor, raw BSON (6 collections)', bareRaw, bareRaw.n]);

  console.log('| what | seconds | documents | documents/s | peak RSS MiB |');
  console.log('|---|---|---|---|---|');
  for (const [name, r, n] of rows) console.log(`| ${name} | ${r.secs.toFixed(2)} | ${n} | ${Math.round(n / r.secs).toLocaleString('en')} | ${r.rss.toFixed(0)} |`);
  console.log(`\nunpack vs one insert per document: ${(one.secs / unpack.secs).toFixed(1)}x faster; pack from MongoDB vs bare decoded cursor: ${(out.secs / bare.secs).toFixed(2)}x the time`);
  const client = new MongoClient(server.uri);
  for (const d of [dbBulk, dbOne]) await client.db(d).dropDatabase().catch(() => {});
  await client.close();
} finally {
  server?.stop();
  if (!process.env.PACK_STREAM_KEEP_TMP) rmSync(work, { recursive: true, force: true });
}
