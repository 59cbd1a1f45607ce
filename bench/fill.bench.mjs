#!/usr/bin/env node
/**
 * --fill-external throughput and memory: a run of N detector frames (default
 * 1,000 frames of 2048×2048 uint16, 8 MiB each) stored as area detectors store
 * them — AD_HDF5 (100 frames per file, one chunk per frame, uncompressed),
 * NPY_SEQ (one .npy per frame) or AD_TIFF (one .tiff per frame) — packed with
 * `pack-stream pack --fill-external`. Reports frames/s, MB/s of frame data,
 * peak RSS, and `cat` of the same files as the I/O ceiling. Each format's files
 * (8 GiB at the default size) are removed before the next is made.
 *
 * With the pinned Python virtualenv (scripts/pyenv.sh), the NPY_SEQ run is also
 * packed by Python databroker-pack --fill-external (its HDF5 handlers return dask
 * arrays, which its msgpack writer cannot encode, so only NPY is comparable).
 *
 *   npm run build && node bench/fill.bench.mjs [--frames 1000] [--size 2048] [--formats h5,npy,tiff]
 *        [--per-file 100] [--concurrency 4] [--format msgpack|jsonl] [--dir /tmp] [--python PATH|none]
 */

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cache, CLI, opt, timed } from './common.mjs';
import { MsgpackEncoder, PyFloat } from '../dist/index.js';

const FRAMES = Number(opt('frames', 1000));
const SIZE = Number(opt('size', 2048));
const PER_FILE = Number(opt('per-file', 100));
const CONCURRENCY = Number(opt('concurrency', 4));
const FORMATS = String(opt('formats', 'h5,npy,tiff')).split(',');
const OUT_FORMAT = opt('format', 'msgpack');
const BASE = opt('dir', os.tmpdir());
const FRAME_BYTES = SIZE * SIZE * 2;
const PY_PACK = opt('python', path.join(cache, 'venv', 'bin', 'databroker-pack'));

function frame(i) {
  const a = new Uint16Array(SIZE * SIZE);
  for (let p = 0; p < a.length; p += 1) a[p] = (p * 31 + i * 7919) & 0xffff;
  return a;
}

function npyBytes(a) {
  let header = `{'descr': '<u2', 'fortran_order': False, 'shape': (${SIZE}, ${SIZE}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(a.buffer)]);
}

/**
 * A baseline uncompressed single-strip uint16 TIFF, as NDFileTIFF writes frames
 * (geotiff's writer is too slow for gigabytes of fixtures).
 */
function tiffBytes(a) {
  const tags = [[256, 4, SIZE], [257, 4, SIZE], [258, 3, 16], [259, 3, 1], [262, 3, 1], [273, 4, 0], [277, 3, 1], [278, 4, SIZE], [279, 4, a.byteLength], [339, 3, 1]];
  const ifdSize = 2 + tags.length * 12 + 4;
  const dataOffset = 8 + ifdSize;
  const head = Buffer.alloc(dataOffset);
  head.write('II', 0, 'latin1');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(8, 4);
  head.writeUInt16LE(tags.length, 8);
  tags.forEach(([tag, type, value], k) => {
    const o = 10 + k * 12;
    head.writeUInt16LE(tag, o);
    head.writeUInt16LE(type, o + 2);
    head.writeUInt32LE(1, o + 4);
    if (type === 3) head.writeUInt16LE(value, o + 8);
    else head.writeUInt32LE(tag === 273 ? dataOffset : value, o + 8);
  });
  head.writeUInt32LE(0, 10 + tags.length * 12);
  return Buffer.concat([head, Buffer.from(a.buffer, a.byteOffset, a.byteLength)]);
}

/** Detector files for FRAMES frames; returns the resources (with their datums) that point at them. */
async function makeData(kind, dir) {
  mkdirSync(dir, { recursive: true });
  if (kind === 'npy') {
    for (let i = 0; i < FRAMES; i++) writeFileSync(path.join(dir, `frames_${i}.npy`), npyBytes(frame(i)));
    return [{ spec: 'NPY_SEQ', resource_path: 'frames', resource_kwargs: {}, datums: Array.from({ length: FRAMES }, (_, i) => ({ index: i })) }];
  }
  if (kind === 'tiff') {
    for (let i = 0; i < FRAMES; i++) writeFileSync(path.join(dir, `scan_${String(i).padStart(6, '0')}.tiff`), tiffBytes(frame(i)));
    return [{ spec: 'AD_TIFF', resource_path: '', resource_kwargs: { template: '%s%s_%6.6d.tiff', filename: 'scan', frame_per_point: 1 }, datums: Array.from({ length: FRAMES }, (_, i) => ({ point_number: i })) }];
  }
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const resources = [];
  for (let start = 0, n = 0; start < FRAMES; start += PER_FILE, n++) {
    const count = Math.min(PER_FILE, FRAMES - start);
    const name = `scan_${String(n).padStart(6, '0')}.h5`;
    const f = new h5.File(path.join(dir, name), 'w');
    f.create_group('entry');
    f.get('entry').create_group('data');
    const ds = f.get('entry/data').create_dataset({ name: 'data', data: frame(start), shape: [1, SIZE, SIZE], maxshape: [null, SIZE, SIZE], dtype: '<H', chunks: [1, SIZE, SIZE] });
    for (let i = 1; i < count; i++) {
      ds.resize([i + 1, SIZE, SIZE]);
      ds.write_slice([[i, i + 1]], frame(start + i));
    }
    f.close();
    resources.push({ spec: 'AD_HDF5', resource_path: name, resource_kwargs: { frame_per_point: 1 }, datums: Array.from({ length: count }, (_, i) => ({ point_number: i })) });
  }
  return resources;
}

function writeRun(file, root, resources) {
  const uid = 'fill-bench-0000-0000-0000-000000000000';
  const e = new MsgpackEncoder(1 << 20);
  const t0 = 1700000000;
  e.record('start', { uid, time: new PyFloat(t0), scan_id: 1, plan_name: 'count' });
  e.record('descriptor', { run_start: uid, time: new PyFloat(t0 + 1), uid: `${uid}-d`, name: 'primary', data_keys: { img: { source: 'SIM:img', dtype: 'array', shape: [1, SIZE, SIZE], external: 'FILESTORE:' } }, configuration: {}, hints: {}, object_keys: {} });
  const ids = [];
  resources.forEach((r, ri) => {
    const ruid = `${uid}-r${ri}`;
    e.record('resource', { spec: r.spec, root, resource_path: r.resource_path, resource_kwargs: r.resource_kwargs, path_semantics: 'posix', uid: ruid, run_start: uid });
    for (let s = 0; s < r.datums.length; s += 5) {
      const chunk = r.datums.slice(s, s + 5);
      const cols = {};
      for (const dk of chunk) for (const [k, v] of Object.entries(dk)) (cols[k] ??= []).push(v);
      e.record('datum_page', { resource: ruid, datum_id: chunk.map((_, i) => `${ruid}/${s + i}`), datum_kwargs: cols });
    }
    ids.push(...r.datums.map((_, i) => `${ruid}/${i}`));
  });
  ids.forEach((id, i) => {
    e.record('event_page', { time: [t0 + 2 + i * 0.1], uid: [`${uid}-e${i}`], seq_num: [i + 1], descriptor: `${uid}-d`, filled: { img: [false] }, data: { img: [id] }, timestamps: { img: [t0 + 2 + i * 0.1] } });
  });
  e.record('stop', { run_start: uid, time: t0 + 9999, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: ids.length } });
  writeFileSync(file, e.take());
}

function du(d) {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) n += e.isDirectory() ? du(path.join(d, e.name)) : statSync(path.join(d, e.name)).size;
  return n;
}

const rows = [];
const MB = FRAMES * FRAME_BYTES / 1e6;
console.error(`fill bench: ${FRAMES} frames of ${SIZE}x${SIZE} uint16 (${MB.toFixed(0)} MB of frame data), --concurrency ${CONCURRENCY}, --format ${OUT_FORMAT}, on ${os.cpus().length} CPUs`);
for (const kind of FORMATS) {
  const work = mkdtempSync(path.join(BASE, `fill-bench-${kind}-`));
  try {
    const data = path.join(work, 'data');
    const t = Date.now();
    const resources = await makeData(kind, data);
    mkdirSync(path.join(work, 'runs'));
    writeRun(path.join(work, 'runs', 'run.msgpack'), data, resources);
    console.error(`${kind}: wrote ${(du(data) / 1e9).toFixed(2)} GB of detector files in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const files = readdirSync(data).map((f) => path.join(data, f));
    const cat = timed('bash', ['-c', `cat ${data}/* > /dev/null`]);
    rows.push({ case: `${kind}: cat of the files (read only)`, secs: cat.secs, rss: cat.rss, files: files.length });
    const cp = timed('bash', ['-c', `cat ${data}/* > ${path.join(work, 'copy.bin')} && sync ${path.join(work, 'copy.bin')}`]);
    rows.push({ case: `${kind}: cat of the files into one file, synced (read + write)`, secs: cp.secs, rss: cp.rss, files: files.length });
    rmSync(path.join(work, 'copy.bin'));
    const out = path.join(work, 'pack');
    if (process.env.FILL_BENCH_PROFILE) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${process.env.FILL_BENCH_PROFILE}`;
    const r = timed(process.execPath, [CLI, 'pack', path.join(work, 'runs'), out, '--all', '--fill-external', '--format', OUT_FORMAT, '--concurrency', String(CONCURRENCY)]);
    rows.push({ case: `${kind}: pack-stream pack --fill-external`, secs: r.secs, rss: r.rss, out: du(out) });
    rmSync(out, { recursive: true, force: true });
    if (kind === 'npy' && OUT_FORMAT === 'msgpack' && existsSync(PY_PACK)) {
      writeFileSync(path.join(work, 'bench.yml'), `sources:\n  fillbench:\n    driver: bluesky-msgpack-catalog\n    args:\n      paths:\n      - ${path.join(work, 'runs', '*.msgpack')}\n`);
      try {
        const py = timed(PY_PACK, ['fillbench', path.join(work, 'py-pack'), '--all', '--fill-external'], { INTAKE_PATH: work, TMPDIR: work, PYTHONWARNINGS: 'ignore' });
        rows.push({ case: `${kind}: Python databroker-pack 0.3 --fill-external`, secs: py.secs, rss: py.rss });
      } catch (e) {
        console.error(`bench: Python databroker-pack failed: ${String(e.message).split('\n').filter(Boolean).slice(-1)[0]}`);
      }
      rmSync(path.join(work, 'py-pack'), { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
console.log(`| case | seconds | frames/s | MB/s (frame data) | peak RSS MiB |`);
console.log(`|---|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.case} | ${r.secs.toFixed(2)} | ${(FRAMES / r.secs).toFixed(1)} | ${(MB / r.secs).toFixed(0)} | ${r.rss.toFixed(0)} |`);
