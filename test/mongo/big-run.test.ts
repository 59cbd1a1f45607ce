/**
 * A run of more than 1,000,000 events packs from MongoDB with flat memory.
 *
 * The run goes straight into the server (insertMany); then `pack-stream pack`
 * runs as a child with a 96 MiB V8 old-space limit — far below what the run's
 * events would take if they were held (hundreds of MiB) — while its RSS is
 * sampled from /proc. Passes if the pack holds every document in order, the
 * process did not run out of heap, and RSS stayed under a fixed bound and did
 * not climb between the first and the second half of the export.
 *
 * PACK_STREAM_BIG_EVENTS sets the number of events (default 1,000,001).
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Double, Int32, MongoClient } from 'mongodb';
import { readRecords } from '../../src/sources/file-catalog.js';
import { tempDir } from '../helpers/files.js';
import { uniqueDb } from '../helpers/mongo-fixtures.js';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';
import { CLI } from '../helpers/paths.js';

const EVENTS = Number(process.env.PACK_STREAM_BIG_EVENTS ?? 1_000_001);
const RSS_BOUND_MIB = 320;
const UID = 'big1m000-0000-0000-0000-000000000000';

function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

if (skipUnlessMongo(t)) {
  t.setTimeout(45 * 60_000);
  const server = await startMongo();
  t.teardown(() => server.stop());
  const client = new MongoClient(server.uri);
  t.teardown(() => client.close());
  const name = uniqueDb('big');
  const db = client.db(name);
  t.teardown(() => db.dropDatabase().catch(() => {}));

  const t0 = 1_700_000_000;
  await db.collection('run_start').insertOne({ uid: UID, time: new Double(t0), scan_id: new Int32(1), plan_name: 'count', num_points: new Int32(EVENTS) });
  await db.collection('event_descriptor').insertMany([
    { run_start: UID, uid: `${UID}-p`, time: new Double(t0 + 0.5), name: 'primary', data_keys: { det: { dtype: 'number', shape: [], source: 'det' }, m: { dtype: 'integer', shape: [], source: 'm' } } },
    { run_start: UID, uid: `${UID}-b`, time: new Double(t0 + 0.25), name: 'baseline', data_keys: { temp: { dtype: 'number', shape: [], source: 'temp' } } },
  ]);
  await db.collection('event').createIndex({ descriptor: -1, time: 1 });
  const started = Date.now();
  const BATCH = 10_000;
  for (let i = 0; i < EVENTS; i += BATCH) {
    const docs = [];
    for (let j = i; j < Math.min(EVENTS, i + BATCH); j++) {
      const time = new Double(t0 + 1 + j * 0.001);
      docs.push({ descriptor: `${UID}-p`, uid: `${UID}-${String(j).padStart(8, '0')}`, time, seq_num: new Int32(j + 1), data: { det: new Double(j % 7), m: new Int32(j) }, timestamps: { det: time, m: time }, filled: {} });
    }
    await db.collection('event').insertMany(docs, { ordered: false });
  }
  await db.collection('event').insertMany([
    { descriptor: `${UID}-b`, uid: `${UID}-b0`, time: new Double(t0 + 0.75), seq_num: new Int32(1), data: { temp: new Double(20.5) }, timestamps: { temp: new Double(t0) }, filled: {} },
    { descriptor: `${UID}-b`, uid: `${UID}-b1`, time: new Double(t0 + 1 + EVENTS * 0.001), seq_num: new Int32(2), data: { temp: new Double(21) }, timestamps: { temp: new Double(t0) }, filled: {} },
  ]);
  await db.collection('run_stop').insertOne({ run_start: UID, uid: `${UID}-s`, time: new Double(t0 + 2 + EVENTS * 0.001), exit_status: 'success' });
  t.comment(`inserted ${EVENTS + 2} events in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  await t.test(`a run of ${EVENTS} events packs with flat memory`, async (t) => {
    const dest = path.join(tempDir(), 'pack');
    const partial = path.join(dest, 'documents', `${UID}.msgpack.partial`);
    const final = path.join(dest, 'documents', `${UID}.msgpack`);
    const samples: { bytes: number; rss: number }[] = [];
    const begun = Date.now();
    const child = spawn(process.execPath, ['--max-old-space-size=96', CLI, 'pack', server.dbUri(name), dest, '--all', '--ignore-external'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setInterval(() => {
      const rss = rssMiB(child.pid!);
      if (rss !== undefined) samples.push({ bytes: size(partial), rss });
    }, 250);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(timer);
    const secs = (Date.now() - begun) / 1000;
    t.equal(code, 0, stderr);

    let n = 0;
    let events = 0;
    let lastTime = -Infinity;
    let ordered = true;
    for await (const p of readRecords(final, 'msgpack')) {
      n++;
      if (p.name === 'event_page') {
        events++;
        const time = Number((p.doc.time as unknown[])[0]);
        if (time < lastTime) ordered = false;
        lastTime = time;
      }
    }
    t.equal(events, EVENTS + 2, 'every event is in the pack');
    t.equal(n, EVENTS + 2 + 4, 'start, 2 descriptors, events, stop');
    t.ok(ordered, 'events in time order');

    const total = Math.max(...samples.map((s) => s.bytes), 1);
    const writing = samples.filter((s) => s.bytes > 0);
    const firstHalf = writing.filter((s) => s.bytes <= total / 2).map((s) => s.rss);
    const secondHalf = writing.filter((s) => s.bytes > total / 2).map((s) => s.rss);
    const peak = Math.max(...samples.map((s) => s.rss));
    const peak1 = Math.max(...firstHalf);
    const peak2 = Math.max(...secondHalf);
    t.comment(`packed ${EVENTS + 6} documents in ${secs.toFixed(1)} s (${Math.round((EVENTS + 6) / secs)} documents/s); RSS peak ${peak.toFixed(0)} MiB, first half ${peak1.toFixed(0)} MiB, second half ${peak2.toFixed(0)} MiB, ${samples.length} samples`);
    t.ok(firstHalf.length > 2 && secondHalf.length > 2, 'RSS sampled all along the export');
    t.ok(peak < RSS_BOUND_MIB, `peak RSS ${peak.toFixed(0)} MiB < ${RSS_BOUND_MIB} MiB`);
    t.ok(peak2 <= peak1 * 1.15 + 16, `RSS flat: second half ${peak2.toFixed(0)} MiB vs first half ${peak1.toFixed(0)} MiB`);
  });
}
