#!/usr/bin/env node
/**
 * One huge record: time and peak RSS of `pack` and `inspect` on a run whose one
 * event holds an array of MB megabytes (small ints), as msgpack and as JSONL.
 * Reading a record must be linear in its size (issue 10, point 8).
 *
 *   npm run build && node bench/huge-record.bench.mjs [--mb 100] [--cli dist/cli/main.js]
 *
 * Prints one table: wall and CPU seconds and peak RSS (MiB) per command and format.
 *
 * Measured on the 2-core development machine while it ran about 10 other jobs (load
 * average 12-20), so wall seconds are inflated; CPU seconds are the better guide.
 *
 * Before (main at ee39292, issue 10 point 8: quadratic framing and decoding):
 *   --mb 100: pack msgpack 109.6 s wall, 494 MiB; inspect msgpack 76.8 s, 1335 MiB;
 *             pack jsonl 49.5 s, 1336 MiB; inspect jsonl 23.9 s, 1175 MiB
 *   --mb 25:  pack msgpack 3.2 CPU s, 221 MiB; inspect msgpack 1.9 CPU s, 330 MiB;
 *             pack jsonl 1.6 CPU s, 431 MiB; inspect jsonl 0.9 CPU s, 392 MiB
 * After (RecordScanner, doubling buffers, JSONL cut at newline bytes, skims):
 *   --mb 100: pack msgpack 10.8 s wall / 1.4 CPU s, 390 MiB; inspect msgpack 8.0 / 0.8, 293 MiB;
 *             pack jsonl 21.3 / 2.4, 503 MiB; inspect jsonl 9.6 / 1.1, 390 MiB
 *   --mb 25:  pack msgpack 0.7 CPU s, 177 MiB; inspect msgpack 0.5, 152 MiB;
 *             pack jsonl 0.9, 201 MiB; inspect jsonl 0.5, 175 MiB
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, opt, timed } from './common.mjs';

const MB = Number(opt('mb', 100));
const cli = path.resolve(opt('cli', CLI));
const uid = 'huge-record-run';

const str = (s) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
const f64 = (x) => { const b = Buffer.alloc(9); b[0] = 0xcb; b.writeDoubleBE(x, 1); return b; };
const map = (n) => Buffer.from([0x80 | n]);
const arr = (n) => Buffer.from([0x90 | n]);

function msgpackRun(file, n) {
  const fd = openSync(file, 'w');
  const rec = (...parts) => writeSync(fd, Buffer.concat([arr(2), ...parts]));
  rec(str('start'), map(3), str('uid'), str(uid), str('time'), f64(1600000000.5), str('scan_id'), Buffer.from([1]));
  rec(str('descriptor'), map(4), str('uid'), str('d1'), str('run_start'), str(uid), str('name'), str('primary'), str('data_keys'), map(1), str('det'), map(2), str('dtype'), str('array'), str('shape'), arr(1), Buffer.from([0xce, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]));
  // one canonical one-row event_page: data.det is [[n small ints]]
  const head = Buffer.alloc(5);
  head[0] = 0xdd;
  head.writeUInt32BE(n, 1);
  writeSync(fd, Buffer.concat([arr(2), str('event_page'), map(7), str('time'), arr(1), f64(1600000001.5), str('uid'), arr(1), str('e1'), str('seq_num'), arr(1), Buffer.from([1]), str('descriptor'), str('d1'), str('filled'), map(0), str('data'), map(1), str('det'), arr(1), head]));
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = i & 0x7f;
  for (let left = n; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  writeSync(fd, Buffer.concat([str('timestamps'), map(1), str('det'), arr(1), f64(1600000001.5)]));
  rec(str('stop'), map(4), str('uid'), str('s1'), str('run_start'), str(uid), str('time'), f64(1600000002.5), str('exit_status'), str('success'));
  closeSync(fd);
}

function jsonlRun(file, bytes) {
  const fd = openSync(file, 'w');
  writeSync(fd, `["start", {"uid": "${uid}", "time": 1600000000.5, "scan_id": 1}]\n`);
  writeSync(fd, `["descriptor", {"uid": "d1", "run_start": "${uid}", "name": "primary", "data_keys": {"det": {"dtype": "array", "shape": [1]}}}]\n`);
  writeSync(fd, '["event_page", {"time": [1600000001.5], "uid": ["e1"], "seq_num": [1], "descriptor": "d1", "filled": {}, "data": {"det": [[');
  const block = Buffer.from('7, '.repeat(1 << 18));
  for (let left = bytes; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  writeSync(fd, `7]]}, "timestamps": {"det": [1600000001.5]}}]\n["stop", {"uid": "s1", "run_start": "${uid}", "time": 1600000002.5, "exit_status": "success"}]\n`);
  closeSync(fd);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'pack-stream-huge-'));
try {
  const rows = [];
  for (const format of ['msgpack', 'jsonl']) {
    const src = path.join(work, format);
    mkdirSync(src);
    const file = path.join(src, `${uid}.${format}`);
    if (format === 'msgpack') msgpackRun(file, MB * 1e6);
    else jsonlRun(file, MB * 1e6);
    rows.push([`pack (${format} → ${format})`, timed(process.execPath, [cli, 'pack', src, path.join(work, `out-${format}`), '--all', '--format', format])]);
    rows.push([`inspect (${format})`, timed(process.execPath, [cli, 'inspect', src])]);
    rmSync(path.join(work, `out-${format}`), { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  }
  console.log(`one ${MB} MB record (${cli})`);
  console.log('| command | wall s | CPU s | peak RSS MiB |');
  console.log('|---|---|---|---|');
  for (const [name, r] of rows) console.log(`| ${name} | ${r.secs.toFixed(1)} | ${r.cpu.toFixed(1)} | ${r.rss.toFixed(0)} |`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
