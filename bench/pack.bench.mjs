#!/usr/bin/env node
/**
 * Pack throughput and memory on a fixed synthetic catalog, side by side with
 * the limits (cp of the same files, a bare decode+encode loop with our codec and
 * with msgpackr) and with Python databroker-pack on the same input when a
 * virtualenv with it exists (scripts/pyenv.sh).
 *
 *   npm run build && node bench/pack.bench.mjs [--runs 20] [--events 20000] [--python PATH/databroker-pack]
 *
 * Prints one table: seconds, documents/s, MB/s, peak RSS (MiB), ratio to pack-stream.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cache, CLI, opt, timed } from './common.mjs';
import { MsgpackDecoder, MsgpackEncoder, measureMsgpack, PyFloat } from '../dist/index.js';

const RUNS = Number(opt('runs', 20));
const EVENTS = Number(opt('events', 20000));
const PY_PACK = opt('python', process.env.DATABROKER_PACK ?? path.join(cache, 'venv', 'bin', 'databroker-pack'));

function makeCatalog(dir) {
  mkdirSync(path.join(dir, 'documents'), { recursive: true });
  let docs = 0;
  for (let r = 0; r < RUNS; r++) {
    const uid = `bench-${String(r).padStart(4, '0')}-0000-0000-0000-000000000000`;
    const e = new MsgpackEncoder(1 << 20);
    const t0 = 1600000000 + r * 1000;
    e.record('start', { uid, time: t0 + 0.25, scan_id: r + 1, plan_name: 'scan', detectors: ['det1', 'det2'], motors: ['m1'], num_points: EVENTS, versions: { bluesky: '1.6.0', ophyd: '1.5.0' }, hints: { dimensions: [[['m1'], 'primary']] } });
    const dataKeys = {};
    for (const k of ['det1', 'det2', 'm1', 'm1_setpoint', 'temp', 'i0', 'i1', 'energy', 'status', 'count']) dataKeys[k] = { source: `SIM:${k}`, dtype: 'number', shape: [], precision: 3 };
    e.record('descriptor', { run_start: uid, time: t0 + 0.5, data_keys: dataKeys, uid: `${uid}-d`, configuration: {}, name: 'primary', hints: {}, object_keys: {} });
    const w = e.take();
    const parts = [w];
    for (let i = 0; i < EVENTS; i++) {
      const data = {};
      const ts = {};
      let j = 0;
      for (const k of Object.keys(dataKeys)) {
        data[k] = j % 3 === 0 ? new PyFloat(i) : j % 3 === 1 ? Math.sin(i + j) * 1000 : i + j;
        ts[k] = t0 + 1 + i * 0.01 + j * 1e-6;
        j++;
      }
      e.record('event_page', { time: [t0 + 1 + i * 0.01], uid: [`${uid}-e${i}`], seq_num: [i + 1], descriptor: `${uid}-d`, filled: {}, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, [v]])), timestamps: Object.fromEntries(Object.entries(ts).map(([k, v]) => [k, [v]])) });
      if (e.length > 1 << 20) parts.push(e.take());
    }
    e.record('stop', { run_start: uid, time: t0 + 999, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: EVENTS } });
    parts.push(e.take());
    writeFileSync(path.join(dir, 'documents', `${uid}.msgpack`), Buffer.concat(parts));
    docs += EVENTS + 3;
  }
  writeFileSync(
    path.join(dir, 'catalog.yml'),
    `sources:\n  bench:\n    driver: bluesky-msgpack-catalog\n    args:\n      paths:\n      - ${path.join(dir, 'documents', '*.msgpack')}\n      root_map: {}\n`,
  );
  return docs;
}

function dirBytes(d) {
  return readdirSync(d).reduce((n, f) => n + statSync(path.join(d, f)).size, 0);
}

function codecLoop(files) {
  const t = Date.now();
  let n = 0;
  for (const f of files) {
    const buf = readFileSync(f);
    const enc = new MsgpackEncoder(1 << 20);
    let pos = 0;
    while (pos < buf.length) {
      const end = measureMsgpack(buf, pos);
      const rec = new MsgpackDecoder(buf.subarray(pos, end)).value();
      enc.record(rec[0], rec[1]);
      if (enc.length > 1 << 20) enc.take();
      pos = end;
      n++;
    }
  }
  return { secs: (Date.now() - t) / 1000, rss: process.memoryUsage().rss / 2 ** 20, n };
}

/** msgpackr as a reference speed (it loses float/int types, so the project does not use it). */
async function msgpackrLoop(files) {
  let mod;
  try {
    mod = await import('msgpackr');
  } catch {
    console.error('bench: msgpackr is not installed (npm install --no-save msgpackr); skipping that row');
    return null;
  }
  const { Packr, unpackMultiple } = mod;
  const packr = new Packr({ useRecords: false, variableMapSize: true });
  const t = Date.now();
  for (const f of files) unpackMultiple(readFileSync(f), (v) => { packr.pack(v); });
  return { secs: (Date.now() - t) / 1000, rss: process.memoryUsage().rss / 2 ** 20 };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'pack-stream-bench-'));
try {
  const src = path.join(work, 'src');
  const docs = makeCatalog(src);
  const bytes = dirBytes(path.join(src, 'documents'));
  const files = readdirSync(path.join(src, 'documents')).map((f) => path.join(src, 'documents', f));
  execFileSync('sync');
  console.error(`bench: ${RUNS} runs x ${EVENTS} events = ${docs} documents, ${(bytes / 1e6).toFixed(1)} MB in ${src}`);
  const rows = [];
  const ps = timed(process.execPath, [CLI, 'pack', path.join(src, 'catalog.yml'), path.join(work, 'out-ps'), '--all', '--salt', 'S']);
  rows.push(['pack-stream pack', ps]);
  const psj = timed(process.execPath, [CLI, 'pack', path.join(src, 'catalog.yml'), path.join(work, 'out-psj'), '--all', '--salt', 'S', '--format', 'jsonl']);
  rows.push(['pack-stream pack --format jsonl', psj]);
  rows.push(['cp -r (raw copy limit)', timed('cp', ['-r', path.join(src, 'documents'), path.join(work, 'out-cp')])]);
  rows.push(['bare codec loop (decode+encode, ours)', codecLoop(files)]);
  const mr = await msgpackrLoop(files);
  if (mr) rows.push(['bare msgpackr loop (lossy, reference)', mr]);
  if (existsSync(PY_PACK)) {
    try {
      rows.push(['Python databroker-pack 0.3', timed(PY_PACK, ['bench', path.join(work, 'out-py'), '--all', '--salt', 'S'], { INTAKE_PATH: src, PYTHONWARNINGS: 'ignore' })]);
    } catch (e) {
      console.error(`bench: Python databroker-pack failed: ${e.message.split('\n').filter(Boolean).slice(-1)[0]}`);
    }
  } else {
    console.error(`bench: no Python databroker-pack at ${PY_PACK} (run scripts/pyenv.sh or pass --python); skipping that row`);
  }
  const base = ps.secs;
  console.log(`| what | seconds | documents/s | MB/s | peak RSS MiB | time vs pack-stream |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [name, r] of rows) {
    console.log(`| ${name} | ${r.secs.toFixed(2)} | ${Math.round(docs / r.secs).toLocaleString('en')} | ${(bytes / 1e6 / r.secs).toFixed(1)} | ${r.rss.toFixed(0)} | ${(r.secs / base).toFixed(2)}x |`);
  }
} finally {
  if (!process.env.PACK_STREAM_KEEP_TMP) rmSync(work, { recursive: true, force: true });
}
