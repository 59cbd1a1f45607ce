/**
 * Hostile run files (issue 10, points 2, 7, 8, 9, 10, 11): each crafted here,
 * run through the built CLI in a child process. A bad run fails alone with a
 * one-line typed error, the good runs are still packed, the sources are
 * unchanged, nothing appears outside DEST, and the child stays within a time
 * and peak-RSS budget; `inspect` and `verify` give typed errors too.
 */
import type { Test } from 'tap';
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { BSON } from 'mongodb';
import { decodeStored, toBson } from '../src/codec/bson.js';
import { MsgpackEncoder, decode as decodeMsgpack, encode as encodeMsgpack } from '../src/codec/msgpack.js';
import { jsonlRecord, parsePyJson, stringifyPyJson } from '../src/codec/pyjson.js';
import { deepEqual, docKeys, type Doc, type Value } from '../src/codec/values.js';
import { PackStreamError } from '../src/errors.js';
import { readMsgpackRecords } from '../src/sources/msgpack-records.js';
import { CLI } from './helpers/paths.js';
import { listTree, tempDir, treeDigest } from './helpers/files.js';
import { encodeMsgpack as encodeRun, scalarRun, writeJsonlRun, writeMsgpackRun, type Rec } from './helpers/runs.js';

const TIME = '/usr/bin/time';
const HAS_TIME = existsSync(TIME);

interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak RSS of the child in MiB, and its CPU seconds (user + system); undefined without /usr/bin/time. */
  rssMiB: number | undefined;
  cpuSecs: number | undefined;
  secs: number;
}

/** Run the built CLI in a child process, under /usr/bin/time for its peak RSS. */
function runMeasured(args: string[]): Promise<Measured> {
  const marker = 'pack-stream-test-peak-rss-kb=';
  // Without tap's coverage hooks (which it adds to every child it sees spawned): they slow the child several times and would blur the budgets.
  const plain = ['env', '-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', process.execPath, CLI, ...args];
  const [cmd, argv] = HAS_TIME ? [TIME, ['-f', `${marker}%M %U %S`, ...plain]] : [plain[0]!, plain.slice(1)];
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      let rssMiB: number | undefined;
      let cpuSecs: number | undefined;
      const at = stderr.lastIndexOf(marker);
      if (HAS_TIME && at >= 0) {
        const [kb, user, sys] = stderr.slice(at + marker.length).trim().split(' ').map(Number);
        rssMiB = kb! / 1024;
        cpuSecs = user! + sys!;
        // /usr/bin/time adds "Command exited with non-zero status N" before its line.
        stderr = stderr.slice(0, at).replace(/Command exited with non-zero status \d+\n$/, '').replace(/Command terminated by signal \d+\n$/, '');
      }
      resolve({ code, signal, stdout, stderr, rssMiB, cpuSecs, secs });
    });
  });
}

/**
 * Wall time guards against hangs only (the test machine may be busy); CPU time
 * (user + system) is what tells linear from quadratic work.
 */
interface Budget {
  secs: number;
  cpuSecs?: number;
  rssMiB: number;
}
const SMALL: Budget = { secs: 60, rssMiB: 400 };

function withinBudget(t: Test, r: Measured, budget: Budget, what: string): void {
  t.equal(r.signal, null, `${what}: not killed by a signal`);
  t.ok(r.secs < budget.secs, `${what}: ${r.secs.toFixed(1)} s < ${budget.secs} s`);
  if (budget.cpuSecs !== undefined && r.cpuSecs !== undefined) t.ok(r.cpuSecs < budget.cpuSecs, `${what}: ${r.cpuSecs.toFixed(1)} CPU s < ${budget.cpuSecs} s`);
  if (r.rssMiB !== undefined) t.ok(r.rssMiB < budget.rssMiB, `${what}: peak RSS ${r.rssMiB.toFixed(0)} MiB < ${budget.rssMiB} MiB`);
  t.notMatch(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `${what}: no stack trace`);
}

/** A catalog directory holding three good runs in runs/. */
function catalogDir(): string {
  const dir = tempDir('pack-stream-hostile-');
  mkdirSync(path.join(dir, 'runs'));
  for (let i = 0; i < 3; i++) writeMsgpackRun(path.join(dir, 'runs', `good-${i}.msgpack`), scalarRun(`good-${i}`, { scanId: i + 1, t0: 1600000000 + i * 100 }));
  return dir;
}

interface Expect {
  /** The failed run's uid (or file name stem) and code. */
  uid: string;
  code: string;
  /** The message after the code. */
  message: RegExp;
  args?: string[];
  budget?: Budget;
  /** Check verify on a pack holding the hostile file (default true). */
  verify?: boolean;
  /** Runs packed (the good ones). */
  packed?: number;
}

/**
 * pack, inspect and verify on a catalog with one hostile file: the hostile run
 * fails alone with one typed line; the rest as promised.
 */
async function expectRunFails(t: Test, dir: string, e: Expect): Promise<void> {
  const runs = path.join(dir, 'runs');
  const before = await treeDigest(runs);
  const bad = Object.keys(before).find((f) => !f.startsWith('good-'))!;
  const dest = path.join(dir, 'out');
  const budget = e.budget ?? SMALL;
  // A pack in the hostile file's format, so that verify reads it as such below.
  const r = await runMeasured(['pack', runs, dest, '--all', '--format', bad.endsWith('.jsonl') ? 'jsonl' : 'msgpack', ...(e.args ?? [])]);
  t.equal(r.code, 1, 'pack exits 1');
  withinBudget(t, r, budget, 'pack');
  t.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.split('\n').filter((l) => /^ {2}\S+: E_/.test(l));
  t.equal(lines.length, 1, `one failed run: ${r.stderr}`);
  t.ok(lines[0]?.startsWith(`  ${e.uid}: ${e.code}: `), `the failure line names the run and the code: ${lines[0]}`);
  t.match(lines[0] ?? '', e.message, 'the failure names the file and the problem');
  t.match(readFileSync(path.join(dest, 'failures.tsv'), 'utf8'), e.message, 'failure recorded in the pack');
  const docs = readdirSync(path.join(dest, 'documents'));
  t.equal(docs.length, e.packed ?? 3, 'the good runs are packed');
  t.ok(existsSync(path.join(dest, 'catalog.yml')), 'catalog.yml written');
  t.notOk((await listTree(dest)).some((f) => f.endsWith('.partial')), 'no partial files left');
  t.same(readdirSync(dir).sort(), ['out', 'runs'], 'nothing written outside DEST');
  t.same(await treeDigest(runs), before, 'sources unchanged');

  const ins = await runMeasured(['inspect', runs, ...(e.args ?? [])]);
  t.equal(ins.code, 1, 'inspect exits 1');
  withinBudget(t, ins, budget, 'inspect');
  t.match(ins.stdout, `ERROR ${e.code}: `, 'inspect gives the code');
  t.match(ins.stdout, e.message, 'inspect names the problem');

  if (e.verify === false) return;
  // The hostile file inside a pack: verify reports it.
  copyFileSync(path.join(runs, bad), path.join(dest, 'documents', bad));
  const ver = await runMeasured(['verify', dest, ...(e.args ?? [])]);
  t.equal(ver.code, 1, 'verify exits 1');
  withinBudget(t, ver, budget, 'verify');
  t.match(ver.stdout, e.message, 'verify names the problem');
}

// ---------------------------------------------------------------- crafted bytes

const mpStr = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const startRecord = (uid: string) => encodeRun([['start', { uid, time: 1600000500.5, scan_id: 9 }]]);

/** A run file whose second record is `(name, {x: <bytes>})`, followed by `tail` (empty strs by default). */
function runWithValue(uid: string, value: Buffer, tail: Buffer = Buffer.alloc(64, 0xa0)): Buffer {
  return Buffer.concat([startRecord(uid), Buffer.from([0x92]), mpStr('descriptor'), Buffer.from([0x81]), mpStr('x'), value, tail]);
}

t.test('2: length headers claiming more than the file holds', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['bin32 of 3 GiB', Buffer.concat([Buffer.from([0xc6]), u32(3 * 2 ** 30)]), /needs at least 32212254\d\d bytes/],
    ['str32 of 4 GiB', Buffer.concat([Buffer.from([0xdb]), u32(2 ** 32 - 1)]), /needs at least 42949673\d\d bytes/],
    ['array32 of 2^32-1 items', Buffer.concat([Buffer.from([0xdd]), u32(2 ** 32 - 1)]), /needs at least 42949673\d\d bytes/],
    ['map32 of 2^32-1 pairs', Buffer.concat([Buffer.from([0xdf]), u32(2 ** 32 - 1)]), /needs at least 85899346\d\d bytes/],
  ];
  for (const [what, value, need] of cases) {
    await t.test(what, async (t) => {
      const dir = catalogDir();
      writeFileSync(path.join(dir, 'runs', 'claim.msgpack'), runWithValue('claim', value));
      await expectRunFails(t, dir, { uid: 'claim', code: 'E_TRUNCATED', message: new RegExp(`claim\\.msgpack is truncated: the record at byte \\d+ ${need.source}`) });
    });
  }
  await t.test('in the start document itself', async (t) => {
    const dir = catalogDir();
    const start = Buffer.concat([Buffer.from([0x92]), mpStr('start'), Buffer.from([0x82]), mpStr('uid'), mpStr('first'), mpStr('x'), Buffer.from([0xc6]), u32(3 * 2 ** 30), Buffer.alloc(10)]);
    writeFileSync(path.join(dir, 'runs', 'first.msgpack'), start);
    await expectRunFails(t, dir, { uid: 'first', code: 'E_TRUNCATED', message: /.*first\.msgpack is truncated: the record at byte 0 needs at least 32212254\d\d bytes/ });
  });
});

t.test('2: records and lines beyond --max-record-size', async (t) => {
  const big: Rec[] = scalarRun('big');
  big[1]![1] = { ...big[1]![1], configuration: { blob: 'x'.repeat(3 << 20) } };
  for (const format of ['msgpack', 'jsonl'] as const) {
    await t.test(format, async (t) => {
      const dir = catalogDir();
      const file = path.join(dir, 'runs', `big.${format}`);
      if (format === 'msgpack') writeMsgpackRun(file, big);
      else writeJsonlRun(file, big);
      const message = format === 'msgpack' ? /big\.msgpack: the record at byte \d+ is at least \d+ bytes, more than the limit of 1048576/ : /big\.jsonl: line 2 is longer than the limit of 1048576 bytes/;
      await expectRunFails(t, dir, { uid: 'big', code: 'E_LIMIT', message, args: ['--max-record-size', '1M'] });
      // Within the default limit the same run packs.
      const ok = await runMeasured(['pack', path.join(dir, 'runs'), path.join(tempDir(), 'ok'), '--all']);
      t.equal(ok.code, 0, `packs under the default limit: ${ok.stderr}`);
    });
  }
  const r = await runMeasured(['pack', '--max-record-size', 'lots', tempDir(), path.join(tempDir(), 'x'), '--all']);
  t.equal(r.code, 2, 'a bad size is a usage error');
  t.match(r.stderr, /--max-record-size: 'lots' is not a size/);
});

// ---------------------------------------------------------------- 7: depth

function nestedMsgpack(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
}

t.test('7: deep nesting in msgpack and JSONL fails its run with E_LIMIT', async (t) => {
  await t.test('msgpack, 50,000 levels', async (t) => {
    const dir = catalogDir();
    writeFileSync(path.join(dir, 'runs', 'deep.msgpack'), runWithValue('deep', nestedMsgpack(50000), Buffer.alloc(0)));
    await expectRunFails(t, dir, { uid: 'deep', code: 'E_LIMIT', message: /.*deep\.msgpack: the record at byte \d+: nesting deeper than 1000 levels/ });
  });
  await t.test('JSONL, 50,000 levels', async (t) => {
    const dir = catalogDir();
    const p = path.join(dir, 'runs', 'deep.jsonl');
    writeJsonlRun(p, scalarRun('deep'));
    const lines = readFileSync(p, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"configuration": {}', `"configuration": {"x": ${'['.repeat(50000)}${']'.repeat(50000)}}`);
    writeFileSync(p, lines.join('\n'));
    await expectRunFails(t, dir, { uid: 'deep', code: 'E_LIMIT', message: /.*deep\.jsonl: line 2: nesting deeper than 1000 levels/ });
  });
  await t.test('900 levels are fine, in both formats', async (t) => {
    const dir = catalogDir();
    let v: Value = null;
    for (let i = 0; i < 900; i++) v = [v];
    const run = scalarRun('deep-ok');
    run[1]![1] = { ...run[1]![1], configuration: { x: v } };
    writeMsgpackRun(path.join(dir, 'runs', 'deep-ok.msgpack'), run);
    for (const format of ['msgpack', 'jsonl']) {
      const r = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, `ok-${format}`), '--all', '--format', format]);
      t.equal(r.code, 0, `${format}: ${r.stderr}`);
    }
    const back = await runMeasured(['pack', path.join(dir, 'ok-jsonl'), path.join(dir, 'ok-back'), '--all']);
    t.equal(back.code, 0, 'the JSONL pack reads back');
    t.same(readFileSync(path.join(dir, 'ok-back', 'documents', 'deep-ok.msgpack')), readFileSync(path.join(dir, 'runs', 'deep-ok.msgpack')), 'and round-trips byte for byte');
  });
});

t.test('7: decoders, comparers and encoders have a depth limit (typed errors, no RangeError)', async (t) => {
  let deep: Value = null;
  for (let i = 0; i < 3000; i++) deep = [deep];
  let deep2: Value = null;
  for (let i = 0; i < 3000; i++) deep2 = [deep2];
  const fails = (f: () => unknown, code: string, message: RegExp, what: string) => {
    try {
      f();
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(e instanceof PackStreamError && e.code === code && message.test(e.message), `${what}: ${String(e)}`);
    }
  };
  const limit = (f: () => unknown, what: string) => fails(f, 'E_LIMIT', /nesting deeper than 1000 levels/, what);
  limit(() => decodeMsgpack(nestedMsgpack(50000)), 'msgpack decoder');
  limit(() => parsePyJson('['.repeat(50000) + ']'.repeat(50000)), 'JSON parser');
  limit(() => deepEqual(deep, deep2), 'deepEqual');
  limit(() => encodeMsgpack(deep), 'msgpack encoder');
  limit(() => stringifyPyJson(deep), 'JSON encoder');
  fails(() => toBson(deep), 'E_ENCODE', /nesting deeper than 1000 levels/, 'BSON encoder');
  // BSON from the server, 1,500 documents deep.
  let bson = BSON.serialize({ v: 1 });
  for (let i = 0; i < 1500; i++) {
    const body = Buffer.concat([Buffer.from([0x03]), Buffer.from('d\0'), bson]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(body.length + 5);
    bson = Buffer.concat([size, body, Buffer.from([0])]);
  }
  fails(() => decodeStored(bson, 'run_start'), 'E_LIMIT', /^run_start: nesting deeper than 1000 levels/, 'BSON decoder');
});

// ---------------------------------------------------------------- 8: huge records

// Sizes and budgets per format. Before issue 10 (quadratic), packing took about 5 CPU
// seconds for the 32 MB msgpack record and about 10 and 1 GB for the 64 MB JSONL line;
// now under 1 and 2 CPU seconds, in a few hundred MiB.
const HUGE = { msgpack: 32e6, jsonl: 64e6 };
const HUGE_BUDGET = { msgpack: { secs: 120, cpuSecs: 3, rssMiB: 500 }, jsonl: { secs: 120, cpuSecs: 5, rssMiB: 700 } };

/** A run whose one event holds an array of `n` small ints, written without holding it. */
function hugeMsgpackRun(file: string, uid: string, n: number): void {
  const fd = openSync(file, 'w');
  writeSync(fd, encodeRun(scalarRun(uid, { events: 0 }).slice(0, 2)));
  writeSync(fd, Buffer.concat([Buffer.from([0x92]), mpStr('event_page'), Buffer.from([0x87]), mpStr('time'), Buffer.from([0x91, 0xcb]), Buffer.alloc(8)]));
  writeSync(fd, Buffer.concat([mpStr('uid'), Buffer.from([0x91]), mpStr(`${uid}-e`), mpStr('seq_num'), Buffer.from([0x91, 1]), mpStr('descriptor'), mpStr(`${uid}-desc`)]));
  writeSync(fd, Buffer.concat([mpStr('filled'), Buffer.from([0x80]), mpStr('data'), Buffer.from([0x81]), mpStr('det'), Buffer.from([0x91, 0xdd]), u32(n)]));
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = i & 0x7f;
  for (let left = n; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  writeSync(fd, Buffer.concat([mpStr('timestamps'), Buffer.from([0x81]), mpStr('det'), Buffer.from([0x91, 0xcb]), Buffer.alloc(8)]));
  writeSync(fd, encodeRun(scalarRun(uid, { events: 0 }).slice(-1)));
  closeSync(fd);
}

function hugeJsonlRun(file: string, uid: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const recs = scalarRun(uid, { events: 0 });
  writeJsonlRun(file, recs.slice(0, 2));
  const head = readFileSync(file);
  writeSync(fd, head);
  writeSync(fd, `["event_page", {"time": [1600000001.5], "uid": ["${uid}-e"], "seq_num": [1], "descriptor": "${uid}-desc", "filled": {}, "data": {"det": [[`);
  const block = Buffer.from('7, '.repeat(1 << 18));
  for (let left = bytes; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  writeSync(fd, `7]]}, "timestamps": {"det": [1600000001.5]}}]\n`);
  const stop = recs[recs.length - 1]!;
  writeSync(fd, jsonlRecord(stop[0], stop[1]));
  closeSync(fd);
}

t.test('8: one huge record is read in linear time and bounded memory', async (t) => {
  for (const format of ['msgpack', 'jsonl'] as const) {
    await t.test(format, async (t) => {
      const dir = tempDir('pack-stream-huge-');
      mkdirSync(path.join(dir, 'runs'));
      const file = path.join(dir, 'runs', `huge.${format}`);
      if (format === 'msgpack') hugeMsgpackRun(file, 'huge', HUGE.msgpack);
      else hugeJsonlRun(file, 'huge', HUGE.jsonl);
      const budget = HUGE_BUDGET[format];
      const dest = path.join(dir, 'out');
      const r = await runMeasured(['pack', path.join(dir, 'runs'), dest, '--all', '--format', format]);
      t.equal(r.code, 0, `packs: ${r.stderr}`);
      withinBudget(t, r, budget, `pack ${HUGE[format] / 1e6} MB ${format} record`);
      t.same(readFileSync(path.join(dest, 'documents', `huge.${format}`)), readFileSync(file), 'byte for byte');
      const ins = await runMeasured(['inspect', dest]);
      t.equal(ins.code, 0, 'inspect');
      withinBudget(t, ins, budget, 'inspect');
      const ver = await runMeasured(['verify', dest]);
      t.equal(ver.code, 0, 'verify');
      withinBudget(t, ver, budget, 'verify');
    });
  }
});

// ---------------------------------------------------------------- 9: invalid text

/** Encode a run, then overwrite the bytes of `marker` (same length) in it. */
function patchedRun(recs: Rec[], marker: string, bytes: number[]): Buffer {
  const buf = encodeRun(recs);
  const at = buf.indexOf(Buffer.from(marker));
  if (at < 0 || bytes.length !== marker.length) throw new Error('bad patch');
  Buffer.from(bytes).copy(buf, at);
  return buf;
}

t.test('9: invalid text fails its run', async (t) => {
  await t.test('invalid UTF-8 in a JSONL line', async (t) => {
    const dir = catalogDir();
    const p = path.join(dir, 'runs', 'badtext.jsonl');
    writeJsonlRun(p, scalarRun('badtext', { plan: 'MARK' }));
    const buf = readFileSync(p);
    Buffer.from([0x6d, 0xff, 0xfe, 0x6b]).copy(buf, buf.indexOf('MARK'));
    writeFileSync(p, buf);
    await expectRunFails(t, dir, { uid: 'badtext', code: 'E_CORRUPT', message: /.*badtext\.jsonl: line 1 is not valid UTF-8/ });
  });
  await t.test('invalid UTF-8 inside an event_page that passes through undecoded', async (t) => {
    const dir = catalogDir();
    const recs = scalarRun('badpage');
    recs[2]![1] = { ...recs[2]![1], data: { det: ['MARK'] } };
    writeFileSync(path.join(dir, 'runs', 'badpage.msgpack'), patchedRun(recs, 'MARK', [0x41, 0xc3, 0x28, 0x41]));
    await expectRunFails(t, dir, { uid: 'badpage', code: 'E_CORRUPT', message: /.*badpage\.msgpack is not a readable msgpack run file \(byte \d+\): a str at offset \d+ is not valid UTF-8/ });
  });
  await t.test('a non-string map key inside an event_page that passes through undecoded', async (t) => {
    const dir = catalogDir();
    const recs = scalarRun('intkey');
    recs[2]![1] = { ...recs[2]![1], data: { det: [{ K: 1 }] } };
    // fixstr "K" (0xa1 0x4b) becomes uint8 7 (0xcc 0x07): same length, an int key.
    const buf = encodeRun(recs);
    const at = buf.indexOf(Buffer.from([0x81, 0xa1, 0x4b, 0x01]));
    buf[at + 1] = 0xcc;
    buf[at + 2] = 0x07;
    writeFileSync(path.join(dir, 'runs', 'intkey.msgpack'), buf);
    await expectRunFails(t, dir, { uid: 'intkey', code: 'E_CORRUPT', message: /.*intkey\.msgpack is not a readable msgpack run file \(byte \d+\): a map key at offset \d+ is not a str or bin/ });
  });
  await t.test('a lone surrogate escape: JSONL keeps it (Python does), msgpack refuses it (Python cannot encode it)', async (t) => {
    const dir = catalogDir();
    const p = path.join(dir, 'runs', 'lone.jsonl');
    writeJsonlRun(p, scalarRun('lone', { plan: 'MARK' }));
    writeFileSync(p, readFileSync(p, 'utf8').replace('"MARK"', '"a\\ud800b"'));
    const m = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'm'), '--all']);
    t.equal(m.code, 1, 'to msgpack: exit 1');
    withinBudget(t, m, SMALL, 'pack');
    t.match(m.stderr, /\n {2}lone: E_ENCODE: cannot encode start lone as msgpack: the string "a\\ud800b" holds a lone surrogate, which is not valid UTF-8\n/);
    t.equal(readdirSync(path.join(dir, 'm', 'documents')).length, 3, 'the good runs are packed');
    const j = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'j'), '--all', '--format', 'jsonl']);
    t.equal(j.code, 0, `to JSONL: ${j.stderr}`);
    t.match(readFileSync(path.join(dir, 'j', 'documents', 'lone.jsonl'), 'utf8'), /"plan_name": "a\\ud800b"/, 'written back as the same escape');
  });
});

// ---------------------------------------------------------------- 10: "0" and __proto__

t.test('10: top-level "0" and "__proto__" keys round-trip like any other key', async (t) => {
  const dir = tempDir('pack-stream-keys-');
  mkdirSync(path.join(dir, 'runs'));
  const recs = scalarRun('keys');
  const enc = new MsgpackEncoder();
  const startMap = new Map<string, Value>([['uid', 'keys'], ['time', 1600000000.5], ['0', 'zero'], ['__proto__', { polluted: true }], ['scan_id', 1], ['12', [1]]]);
  enc.encode(['start', startMap] as unknown as Value);
  for (const [name, doc] of recs.slice(1)) {
    if (name === 'descriptor') enc.encode([name, new Map<string, Value>([...Object.entries(doc), ['0', 0], ['__proto__', 'p']])] as unknown as Value);
    else enc.record(name, doc);
  }
  const src = path.join(dir, 'runs', 'keys.msgpack');
  writeFileSync(src, enc.take());
  const before = await treeDigest(path.join(dir, 'runs'));
  const ms = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'ms'), '--all']);
  t.equal(ms.code, 0, `packs: ${ms.stderr}`);
  t.same(readFileSync(path.join(dir, 'ms', 'documents', 'keys.msgpack')), readFileSync(src), 'msgpack pack: byte for byte');
  const js = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'js'), '--all', '--format', 'jsonl']);
  t.equal(js.code, 0, `packs as JSONL: ${js.stderr}`);
  const text = readFileSync(path.join(dir, 'js', 'documents', 'keys.jsonl'), 'utf8');
  t.match(text, /^\["start", \{"uid": "keys", "time": 1600000000\.5, "0": "zero", "__proto__": \{"polluted": true\}, "scan_id": 1, "12": \[1\]\}\]\n/, 'JSONL keeps the key order');
  t.match(text, /"0": 0, "__proto__": "p"\}\]\n/, 'descriptor too');
  const back = await runMeasured(['pack', path.join(dir, 'js'), path.join(dir, 'back'), '--all']);
  t.equal(back.code, 0, 'the JSONL pack packs back to msgpack');
  t.same(readFileSync(path.join(dir, 'back', 'documents', 'keys.msgpack')), readFileSync(src), 'identical to the source');
  const ins = await runMeasured(['inspect', path.join(dir, 'runs')]);
  t.equal(ins.code, 0, 'inspect reads it');
  t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources unchanged');
  // In process: no prototype was touched.
  for await (const pair of readMsgpackRecords(src)) {
    t.equal(Object.getPrototypeOf(pair.doc), Object.prototype, `${pair.name}: a plain document`);
    if (pair.name === 'start') {
      t.same(docKeys(pair.doc), ['uid', 'time', '0', '__proto__', 'scan_id', '12']);
      t.same(pair.doc.__proto__ as Doc, { polluted: true }, '__proto__ is an own key');
    }
  }
  t.equal(({} as { polluted?: boolean }).polluted, undefined, 'Object.prototype untouched');
});

// ---------------------------------------------------------------- 11: two files, one uid

t.test('11: two run files with the same uid', async (t) => {
  await t.test('identical copies: one packed, both named', async (t) => {
    const dir = catalogDir();
    writeMsgpackRun(path.join(dir, 'runs', 'a-twin.msgpack'), scalarRun('twin'));
    writeMsgpackRun(path.join(dir, 'runs', 'b-twin.msgpack'), scalarRun('twin'));
    const r = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'out'), '--all']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /pack-stream: warning: run twin is in .*a-twin\.msgpack and .*b-twin\.msgpack: .*a-twin\.msgpack was used; .*b-twin\.msgpack holds the same documents\n/);
    t.equal(readdirSync(path.join(dir, 'out', 'documents')).length, 4);
  });
  await t.test('the first copy truncated: the intact one is packed', async (t) => {
    const dir = catalogDir();
    const bytes = encodeRun(scalarRun('twin'));
    writeFileSync(path.join(dir, 'runs', 'a-twin.msgpack'), bytes.subarray(0, bytes.length - 9));
    writeFileSync(path.join(dir, 'runs', 'b-twin.msgpack'), bytes);
    const before = await treeDigest(path.join(dir, 'runs'));
    const r = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'out'), '--all']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /warning: run twin is in .*a-twin\.msgpack and .*b-twin\.msgpack: .*b-twin\.msgpack was used; .*a-twin\.msgpack is unreadable \(E_TRUNCATED: /);
    t.same(readFileSync(path.join(dir, 'out', 'documents', 'twin.msgpack')), bytes, 'the intact copy');
    t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources unchanged');
  });
  await t.test('both readable but different: the run fails naming both', async (t) => {
    const dir = catalogDir();
    writeMsgpackRun(path.join(dir, 'runs', 'a-twin.msgpack'), scalarRun('twin'));
    writeJsonlRun(path.join(dir, 'runs', 'b-twin.jsonl'), scalarRun('twin', { events: 4 }));
    await expectRunFails(t, dir, { uid: 'twin', code: 'E_DUPLICATE', message: /run twin is in both .*a-twin\.msgpack and .*b-twin\.jsonl, which differ \(from document \d+ on\); neither was used/, verify: false });
  });
  await t.test('the same run as msgpack and JSONL holds the same documents', async (t) => {
    const dir = catalogDir();
    writeMsgpackRun(path.join(dir, 'runs', 'a-twin.msgpack'), scalarRun('twin'));
    writeJsonlRun(path.join(dir, 'runs', 'b-twin.jsonl'), scalarRun('twin'));
    const u = await runMeasured(['pack', path.join(dir, 'runs'), path.join(dir, 'out2'), '--all']);
    t.equal(u.code, 0, u.stderr);
    t.match(u.stderr, /warning: run twin is in .*: .*a-twin\.msgpack was used; .*b-twin\.jsonl holds the same documents/);
  });
});
