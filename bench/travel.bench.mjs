#!/usr/bin/env node
/**
 * Packs that travel: the same export as a directory, as a tar to /dev/null,
 * through a pipe into `unpack inplace -` (as over ssh), and read over HTTP
 * from a local node:http server; then peak RSS for a run larger than the
 * spool cap and for large external files, which should stay flat.
 *
 *   npm run build && node bench/travel.bench.mjs [--runs 8] [--events 20000] [--file-mb 16]
 *                                               [--big-gb 0] [--big-events 400000] [--repeat 5]
 *
 * --big-gb G adds the memory rows for external files of G GiB each (sparse
 * files, so the disk is not filled; reads still move every byte) and a run of
 * --big-events events. Default sizes keep the bench to a minute or two.
 * The directory export and the tar to /dev/null are run --repeat times,
 * alternating, and their medians compared (one run moves by tens of percent
 * on a loaded 2-core machine; the median of alternating runs does not).
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CLI, opt } from './common.mjs';
import { MsgpackEncoder, PyFloat } from '../dist/index.js';

const RUNS = Number(opt('runs', 8));
const EVENTS = Number(opt('events', 20000));
const FILE_MB = Number(opt('file-mb', 16));
const BIG_GB = Number(opt('big-gb', 0));
const BIG_EVENTS = Number(opt('big-events', 400000));
const REPEAT = Math.max(1, Number(opt('repeat', 5)));

const work = mkdtempSync(path.join(opt('tmp', os.tmpdir()), 'pack-stream-travel-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

/** A run file with `events` scalar events and one NPY_SEQ datum per `filesEvery` events pointing at a file under root. */
function writeRun(dir, uid, r, events, root, files) {
  const e = new MsgpackEncoder(1 << 20);
  const t0 = 1600000000 + r * 1000;
  e.record('start', { uid, time: t0 + 0.25, scan_id: r + 1, plan_name: 'scan', versions: { bluesky: '1.6.0' } });
  const keys = ['det1', 'det2', 'm1', 'temp', 'i0', 'i1', 'energy', 'count'];
  const dataKeys = Object.fromEntries(keys.map((k) => [k, { source: `SIM:${k}`, dtype: 'number', shape: [] }]));
  if (files) dataKeys.img = { source: 'SIM:img', dtype: 'array', shape: [], external: 'FILESTORE:' };
  e.record('descriptor', { run_start: uid, time: t0 + 0.5, data_keys: dataKeys, uid: `${uid}-d`, configuration: {}, name: 'primary', hints: {}, object_keys: {} });
  if (files) {
    e.record('resource', { spec: 'NPY_SEQ', root, resource_path: `r${r}/img`, resource_kwargs: {}, path_semantics: 'posix', uid: `${uid}-res`, run_start: uid });
    e.record('datum_page', { resource: `${uid}-res`, datum_id: Array.from({ length: files }, (_, i) => `${uid}-res/${i}`), datum_kwargs: { index: Array.from({ length: files }, (_, i) => i) } });
  }
  const fd = openSync(path.join(dir, `${uid}.msgpack`), 'w');
  writeSync(fd, e.take());
  for (let i = 0; i < events; i++) {
    const data = {};
    const ts = {};
    for (const k of keys) {
      data[k] = [new PyFloat(i * 0.5 + k.length)];
      ts[k] = [t0 + 1 + i];
    }
    if (files && i < files) {
      data.img = [`${uid}-res/${i}`];
      ts.img = [t0 + 1 + i];
    }
    e.record('event_page', { time: [t0 + 1 + i], uid: [`${uid}-e${i}`], seq_num: [i + 1], descriptor: `${uid}-d`, filled: {}, data, timestamps: ts });
    if ((i & 1023) === 1023) writeSync(fd, e.take());
  }
  e.record('stop', { run_start: uid, time: t0 + 2 + events, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: events } });
  writeSync(fd, e.take());
  closeSync(fd);
}

/** An external file of `bytes`: written with data (small) or sparse (huge). */
function writeExternal(file, bytes, sparse) {
  mkdirSync(path.dirname(file), { recursive: true });
  if (sparse) {
    writeFileSync(file, '');
    truncateSync(file, bytes);
    return;
  }
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const fd = openSync(file, 'w');
  for (let left = bytes; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(block.length, left));
  closeSync(fd);
}

function catalog(name, { runs, events, files, fileBytes, sparse }) {
  const dir = path.join(work, name);
  const root = path.join(dir, 'data');
  mkdirSync(path.join(dir, 'runs'), { recursive: true });
  for (let r = 0; r < runs; r++) {
    const uid = `${name}-${String(r).padStart(4, '0')}-0000-0000-000000000000`;
    writeRun(path.join(dir, 'runs'), uid, r, events, root, files);
    for (let i = 0; i < files; i++) writeExternal(path.join(root, `r${r}`, `img_${i}.npy`), fileBytes, sparse);
  }
  return dir;
}

/** Run `bash -c cmd` under /usr/bin/time; wall seconds and peak RSS (MiB) of the pack-stream process(es) measured by GNU time. */
function run(cmd, env = {}) {
  return new Promise((resolve, reject) => {
    const rssFile = path.join(work, `rss-${Math.random().toString(36).slice(2)}`);
    const t = process.hrtime.bigint();
    const c = spawn('bash', ['-c', `set -o pipefail; ${cmd.replaceAll('PACKSTREAM', `/usr/bin/time -a -o ${rssFile} -f %M ${process.execPath} ${CLI}`)}`], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} failed (${code}): ${err.slice(-1500)}`));
      const rss = readFileSync(rssFile, 'utf8').trim().split('\n').map((l) => Number(l) / 1024);
      resolve({ secs, rss: Math.max(...rss), rssEach: rss });
    });
  });
}

function dirBytes(dir) {
  let n = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else n += statSync(p).size;
    }
  };
  walk(dir);
  return n;
}

/** A static file server for the pack, with Range, in this process. */
function serve(root) {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    const file = path.join(root, rel);
    let size;
    try {
      size = statSync(file).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, { 'content-length': String(size - start), ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
    createReadStream(file, { start }).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() })));
}

const rows = [];
function row(what, r, bytes) {
  rows.push([what, r.secs.toFixed(2), (bytes / 1e6 / r.secs).toFixed(0), r.rss.toFixed(0)]);
  console.error(`  ${what}: ${r.secs.toFixed(2)} s, ${r.rss.toFixed(0)} MiB`);
}

const src = catalog('main', { runs: RUNS, events: EVENTS, files: 2, fileBytes: FILE_MB * 1024 * 1024, sparse: false });
const common = `--all --copy-external --salt S`;
console.error(`catalog: ${RUNS} runs x ${EVENTS} events, ${RUNS * 2} external files of ${FILE_MB} MiB`);
// Warm the page cache once so the first row is not charged for it.
await run(`PACKSTREAM pack ${src}/runs - ${common} > /dev/null`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ds = [];
const trs = [];
for (let i = 0; i < REPEAT; i++) {
  rmSync(`${work}/dirpack`, { recursive: true, force: true });
  ds.push(await run(`PACKSTREAM pack ${src}/runs ${work}/dirpack ${common}`));
  trs.push(await run(`PACKSTREAM pack ${src}/runs - ${common} > /dev/null`));
}
const med = (rs) => ({ secs: median(rs.map((r) => r.secs)), rss: median(rs.map((r) => r.rss)) });
const d = med(ds);
const tr = med(trs);
const total = dirBytes(`${work}/dirpack`);
console.error(`  directory export s: ${ds.map((r) => r.secs.toFixed(2)).join(' ')}; tar to /dev/null s: ${trs.map((r) => r.secs.toFixed(2)).join(' ')}`);
row(`directory export (median of ${REPEAT})`, d, total);
row(`tar to /dev/null (median of ${REPEAT})`, tr, total);
const pipe = await run(`PACKSTREAM pack ${src}/runs - ${common} | cat | PACKSTREAM unpack inplace - benchpack --dir ${work}/piped`, { XDG_DATA_HOME: path.join(work, 'xdg') });
row('tar | cat | unpack inplace - (as over ssh)', pipe, total);
const srv = await serve(`${work}/dirpack`);
const h = await run(`PACKSTREAM pack ${srv.url} ${work}/fromhttp ${common}`);
row('pack over HTTP (127.0.0.1) into a directory', h, total);
srv.close();

// Memory: peak RSS should not grow with the size of a run beyond the spool cap,
// nor with the size of external files (through tar, a directory, and HTTP).
const mem = [];
const memRow = (what, r) => mem.push([what, r.rss.toFixed(0)]);
const runSizes = BIG_GB ? [60000, BIG_EVENTS] : [60000, 240000];
for (const events of runSizes) {
  const dir = catalog(`memrun${events}`, { runs: 1, events, files: 1, fileBytes: 1 << 20, sparse: false });
  const mib = (statSync(path.join(dir, 'runs', readdirSync(path.join(dir, 'runs'))[0])).size / 2 ** 20).toFixed(0);
  memRow(`tar, one run of ${mib} MiB (spool cap 8 MiB)`, await run(`PACKSTREAM pack ${dir}/runs - --all --spool-cap 8 > /dev/null`));
  memRow(`directory, one run of ${mib} MiB`, await run(`PACKSTREAM pack ${dir}/runs ${work}/memrun${events}-dir --all`));
}
const fileSizes = BIG_GB ? [2 ** 30, BIG_GB * 2 ** 30] : [64 * 2 ** 20, 256 * 2 ** 20];
for (const bytes of fileSizes) {
  const label = bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / 2 ** 20} MiB`;
  const dir = catalog(`memfile${bytes}`, { runs: 1, events: 2000, files: 2, fileBytes: bytes, sparse: bytes >= 2 ** 30 });
  memRow(`tar, 2 external files of ${label}`, await run(`PACKSTREAM pack ${dir}/runs - --all --copy-external > /dev/null`));
  const packDir = `${work}/memfile${bytes}-pack`;
  memRow(`directory, 2 external files of ${label}`, await run(`PACKSTREAM pack ${dir}/runs ${packDir} --all --copy-external`));
  const s = await serve(packDir);
  memRow(`HTTP, 2 external files of ${label}`, await run(`PACKSTREAM pack ${s.url} ${work}/memfile${bytes}-http --all --copy-external`, { TMPDIR: work }));
  s.close();
  rmSync(packDir, { recursive: true, force: true });
  rmSync(`${work}/memfile${bytes}-http`, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\n| ${['what', 's', 'MB/s', 'peak RSS MiB'].join(' | ')} |\n|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
console.log(`\n(pack size ${(total / 1e6).toFixed(0)} MB; tar/directory time ratio of the medians ${(tr.secs / d.secs).toFixed(2)}; limit 1.10)\n`);
console.log(`| memory case | peak RSS MiB |\n|---|---|`);
for (const m of mem) console.log(`| ${m.join(' | ')} |`);
