#!/usr/bin/env node
/**
 * File-side workloads of issue 16, one at a time, each generated reproducibly in
 * a temporary directory and deleted afterwards:
 *
 *   node bench/file-paths.bench.mjs small [--runs 10000] [--format msgpack|jsonl] [--reps 3]
 *   node bench/file-paths.bench.mjs big   [--events 1000000] [--format msgpack|jsonl] [--reps 3]
 *   node bench/file-paths.bench.mjs copy  [--files 50000] [--kb 20] [--reps 3]
 *
 * Each prints pack-stream's median wall time, CPU and peak RSS (/usr/bin/time),
 * next to a limit measured on the same input (a read+write loop, `cp -r`) so the
 * ratio, not the raw time, is what to compare between machines. `--keep` keeps
 * the input; `--out DIR` puts the output packs there (default: the temp dir).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, opt, timed } from './common.mjs';
import { MsgpackEncoder, PyFloat, jsonlRecord } from '../dist/index.js';

const what = process.argv[2];
const REPS = Number(opt('reps', 3));
const FORMAT = opt('format', 'msgpack');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function eventPage(uid, t0, i) {
  const data = {};
  const ts = {};
  const keys = ['det1', 'det2', 'm1', 'm1_setpoint', 'temp', 'i0', 'i1', 'energy', 'status', 'count'];
  keys.forEach((k, j) => {
    data[k] = [j % 3 === 0 ? new PyFloat(i) : j % 3 === 1 ? Math.sin(i + j) * 1000 : i + j];
    ts[k] = [t0 + 1 + i * 0.01 + j * 1e-6];
  });
  return { time: [t0 + 1 + i * 0.01], uid: [`${uid}-e${i}`], seq_num: [i + 1], descriptor: `${uid}-d`, filled: {}, data, timestamps: ts };
}

/** The documents of one run, in canonical order (as a pack holds them). */
function* runDocs(r, events) {
  const uid = `${String(r).padStart(8, '0')}-bench-0000-0000-000000000000`;
  const t0 = 1600000000 + r * 1000;
  yield ['start', { uid, time: t0 + 0.25, scan_id: r + 1, plan_name: 'scan', detectors: ['det1', 'det2'], motors: ['m1'], num_points: events, versions: { bluesky: '1.6.0', ophyd: '1.5.0' } }];
  const dataKeys = {};
  for (const k of ['det1', 'det2', 'm1', 'm1_setpoint', 'temp', 'i0', 'i1', 'energy', 'status', 'count']) dataKeys[k] = { source: `SIM:${k}`, dtype: 'number', shape: [], precision: 3 };
  yield ['descriptor', { run_start: uid, time: t0 + 0.5, data_keys: dataKeys, uid: `${uid}-d`, configuration: {}, name: 'primary', hints: {}, object_keys: {} }];
  for (let i = 0; i < events; i++) yield ['event_page', eventPage(uid, t0, i)];
  yield ['stop', { run_start: uid, time: t0 + 999, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: events } }];
}

function writeRun(file, r, events, format) {
  const fd = openSync(file, 'w');
  const enc = new MsgpackEncoder(1 << 20);
  let text = '';
  for (const [name, doc] of runDocs(r, events)) {
    if (format === 'msgpack') {
      enc.record(name, doc);
      if (enc.length > 1 << 20) writeSync(fd, enc.take());
    } else {
      text += jsonlRecord(name, doc);
      if (text.length > 1 << 20) { writeSync(fd, text); text = ''; }
    }
  }
  if (format === 'msgpack') writeSync(fd, enc.take());
  else writeSync(fd, text);
  closeSync(fd);
}

function catalogYml(dir, format) {
  const driver = format === 'msgpack' ? 'bluesky-msgpack-catalog' : 'bluesky-jsonl-catalog';
  const file = path.join(dir, 'catalog.yml');
  writeFileSync(file, `sources:\n  bench:\n    driver: ${driver}\n    args:\n      paths:\n      - ${path.join(dir, 'documents', `*.${format}`)}\n      root_map: {}\n`);
  return file;
}

/** The floor: read every file and write it to a new one, one after another. */
function readWriteLoop(srcDir, outDir) {
  mkdirSync(outDir, { recursive: true });
  const t = process.hrtime.bigint();
  for (const f of readdirSync(srcDir)) writeFileSync(path.join(outDir, f), readFileSync(path.join(srcDir, f)));
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function report(label, rs, extra = '') {
  const secs = median(rs.map((r) => r.secs));
  console.log(`${label.padEnd(44)} ${secs.toFixed(2).padStart(7)} s  cpu ${median(rs.map((r) => r.cpu)).toFixed(2).padStart(6)} s  rss ${Math.max(...rs.map((r) => r.rss)).toFixed(0).padStart(4)} MiB ${extra}`);
  return secs;
}

function packReps(work, args, env = {}) {
  const rs = [];
  for (let i = 0; i < REPS; i++) {
    const out = path.join(opt('out', work), `out-${i}`);
    rmSync(out, { recursive: true, force: true });
    execFileSync('sync');
    rs.push(timed(process.execPath, [CLI, 'pack', ...args, out], env));
    rmSync(out, { recursive: true, force: true });
  }
  return rs;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'file-paths-bench-'));
try {
  if (what === 'small' || what === 'big') {
    const runs = what === 'small' ? Number(opt('runs', 10000)) : 1;
    const events = what === 'small' ? 30 : Number(opt('events', 1000000));
    const src = path.join(work, 'src');
    mkdirSync(path.join(src, 'documents'), { recursive: true });
    for (let r = 0; r < runs; r++) writeRun(path.join(src, 'documents', `run-${String(r).padStart(6, '0')}.${FORMAT}`), r, events, FORMAT);
    const cat = catalogYml(src, FORMAT);
    const bytes = Number(execFileSync('du', ['-sb', path.join(src, 'documents')], { encoding: 'utf8' }).split('\t')[0]);
    const docs = runs * (events + 3);
    console.log(`${what}: ${runs} runs x ${events + 3} documents (${FORMAT}), ${(bytes / 1e6).toFixed(1)} MB`);
    const rs = packReps(work, [cat, '--all', '--salt', 'S', '--format', 'msgpack']);
    const ps = report(`pack-stream pack (${FORMAT} -> msgpack)`, rs);
    console.log(`  ${Math.round(docs / ps).toLocaleString('en')} docs/s, ${Math.round(runs / ps).toLocaleString('en')} runs/s, ${(bytes / 1e6 / ps).toFixed(1)} MB/s`);
    const rw = [];
    for (let i = 0; i < REPS; i++) {
      const out = path.join(work, `rw-${i}`);
      rw.push(readWriteLoop(path.join(src, 'documents'), out));
      rmSync(out, { recursive: true, force: true });
    }
    const floor = median(rw);
    console.log(`${'read+write loop (floor)'.padEnd(44)} ${floor.toFixed(2).padStart(7)} s  pack-stream/floor ${(ps / floor).toFixed(2)}x`);
  } else if (what === 'copy') {
    const files = Number(opt('files', 50000));
    const kb = Number(opt('kb', 20));
    const perResource = Number(opt('per-resource', 100));
    const runs = Number(opt('runs', Math.max(1, Math.round(files / 500))));
    const data = path.join(work, 'data');
    const src = path.join(work, 'src');
    mkdirSync(path.join(src, 'documents'), { recursive: true });
    const payload = Buffer.alloc(kb * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 2654435761) >>> 24;
    let f = 0;
    const perRun = Math.ceil(files / runs);
    for (let r = 0; r < runs; r++) {
      const uid = `${String(r).padStart(8, '0')}-copy-0000-0000-000000000000`;
      const t0 = 1600000000 + r * 1000;
      const enc = new MsgpackEncoder(1 << 20);
      enc.record('start', { uid, time: t0, scan_id: r + 1 });
      enc.record('descriptor', { run_start: uid, time: t0 + 0.5, uid: `${uid}-d`, name: 'primary', data_keys: { img: { source: 'X', dtype: 'array', shape: [1], external: 'FILESTORE:' } }, configuration: {}, hints: {}, object_keys: {} });
      const mine = Math.min(perRun, files - f);
      for (let k = 0; k < mine; k += perResource) {
        const n = Math.min(perResource, mine - k);
        const sub = path.join(data, `r${r}`, `res${k}`);
        mkdirSync(sub, { recursive: true });
        for (let j = 0; j < n; j++) { payload.writeUInt32LE(f++, 0); writeFileSync(path.join(sub, `f_${j}.npy`), payload); }
        const res = `${uid}-res${k}`;
        enc.record('resource', { spec: 'NPY_SEQ', root: data, resource_path: `r${r}/res${k}/f`, resource_kwargs: {}, path_semantics: 'posix', uid: res, run_start: uid });
        // One datum per file, listed by the handler from the datum kwargs.
        const ids = [];
        const kw = [];
        for (let j = 0; j < n; j++) { ids.push(`${res}/${j}`); kw.push(j); }
        enc.record('datum_page', { resource: res, datum_id: ids, datum_kwargs: { index: kw } });
      }
      enc.record('stop', { run_start: uid, time: t0 + 999, uid: `${uid}-s`, exit_status: 'success' });
      writeFileSync(path.join(src, 'documents', `run-${r}.msgpack`), enc.take());
    }
    const cat = catalogYml(src, 'msgpack');
    console.log(`copy: ${files} files of ${kb} KB in ${runs} runs`);
    const args = [cat, '--all', '--salt', 'S', '--copy-external', ...(opt('concurrency') ? ['--concurrency', opt('concurrency')] : [])];
    if (opt('handler')) args.push('--handler-registry', opt('handler'));
    const ps = report('pack-stream pack --copy-external', packReps(work, args));
    const cp = [];
    for (let i = 0; i < REPS; i++) {
      const out = path.join(opt('out', work), `cp-${i}`);
      execFileSync('sync');
      cp.push(timed('cp', ['-r', data, out]));
      rmSync(out, { recursive: true, force: true });
    }
    const c = report('cp -r (limit)', cp);
    console.log(`  pack-stream/cp ${(ps / c).toFixed(2)}x`);
  } else {
    console.error('usage: file-paths.bench.mjs small|big|copy [options]');
    process.exitCode = 2;
  }
} finally {
  if (!process.argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
  else console.error(`kept ${work}`);
}
