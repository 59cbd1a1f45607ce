/**
 * Hostile queries (issue 10, points 6 and 7), through the built CLI as a user
 * runs it: a catastrophic-backtracking regex (in -q or in a catalog's own
 * args.query) finishes at once, a pattern the linear-time engine cannot honour
 * is a one-line E_BAD_QUERY, and deep nesting in a query or a start document
 * is a typed E_LIMIT instead of a RangeError with a stack trace. Each command
 * runs under a time and memory budget, and the sources stay untouched.
 */
import type { Test } from 'tap';
import t from 'tap';
import { readdirSync, writeFileSync, mkdirSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runCliWithin, type BudgetedResult } from './helpers/cli.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { encodeMsgpack, scalarRun, writeMsgpackRun, type Rec } from './helpers/runs.js';

/** Each command takes about a second; the backtracking engine took minutes. */
const BUDGET_MS = 30_000;
const RSS_BUDGET_MIB = 400;

/** The regex of the issue: exponential in a backtracking engine on 'aaa…a!'. */
const EVIL = '^(a+)+$';

function runWithNote(uid: string, note: string, i: number): Rec[] {
  const recs = scalarRun(uid, { scanId: i + 1, t0: 1600000000 + i * 100 });
  recs[0]![1].note = note;
  return recs;
}

/** A folder `runs/` of three runs: one whose note matches EVIL, one that backtracks, one plain. */
function notesDir(): string {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'runs'));
  writeMsgpackRun(path.join(dir, 'runs', 'match.msgpack'), runWithNote('match', 'a'.repeat(35), 0));
  writeMsgpackRun(path.join(dir, 'runs', 'evil.msgpack'), runWithNote('evil', `${'a'.repeat(35)}!`, 1));
  writeMsgpackRun(path.join(dir, 'runs', 'plain.msgpack'), runWithNote('plain', 'b', 2));
  return dir;
}

function catalogYml(dir: string, query: string): string {
  const file = path.join(dir, 'catalog.yml');
  writeFileSync(
    file,
    ['sources:', '  evil_catalog:', '    driver: bluesky-msgpack-catalog', '    args:', '      paths:', `      - ${path.join(dir, 'runs', '*.msgpack')}`, `      query: ${query}`, ''].join('\n'),
  );
  return file;
}

async function within(t: Test, args: string[]): Promise<BudgetedResult> {
  const r = await runCliWithin(args, BUDGET_MS);
  t.notOk(r.killed, `finished within ${BUDGET_MS / 1000} s (took ${r.ms} ms)`);
  t.ok(r.peakRssMiB < RSS_BUDGET_MIB, `peak RSS ${r.peakRssMiB.toFixed(0)} MiB < ${RSS_BUDGET_MIB} MiB`);
  t.notMatch(r.stderr, /RangeError|\n\s+at /, 'no stack trace');
  return r;
}

function packed(dest: string): string[] {
  return readdirSync(path.join(dest, 'documents')).sort();
}

t.test('a catastrophic-backtracking $regex in -q finishes at once (point 6)', async (t) => {
  const dir = notesDir();
  const before = await treeDigest(path.join(dir, 'runs'));
  const dest = path.join(dir, 'out');
  const r = await within(t, ['pack', path.join(dir, 'runs'), dest, '-q', `{'note': {'$regex': '${EVIL}'}}`]);
  t.equal(r.code, 0, r.stderr);
  t.same(packed(dest), ['match.msgpack'], 'only the matching run');
  const r2 = await within(t, ['pack', path.join(dir, 'runs'), path.join(dir, 'out2'), '-q', `{'note': {'$regex': '/^A+$/i'}}`]);
  t.equal(r2.code, 0, r2.stderr);
  t.same(packed(path.join(dir, 'out2')), ['match.msgpack'], 'flags still apply');
  t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources untouched');
});

t.test("the same regex in a catalog's own args.query: pack --all and inspect finish at once (point 6)", async (t) => {
  const dir = notesDir();
  const before = await treeDigest(path.join(dir, 'runs'));
  const cat = catalogYml(dir, `{note: {$regex: '${EVIL}'}}`);
  const dest = path.join(dir, 'out');
  const r = await within(t, ['pack', cat, dest, '--all']);
  t.equal(r.code, 0, r.stderr);
  t.same(packed(dest), ['match.msgpack']);
  const i = await within(t, ['inspect', cat, '--json']);
  t.equal(i.code, 0, i.stderr);
  t.match(i.stdout, /"uid":\s*"match"/);
  t.notMatch(i.stdout, /"uid":\s*"evil"/);
  t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources untouched');
});

t.test('patterns the linear-time engine cannot honour are a clear E_BAD_QUERY', async (t) => {
  const dir = notesDir();
  const cases: [string, RegExp][] = [
    ['(a)\\\\1', /backreference/],
    ['a(?=b)', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?P<x>a)(?P=x)', /backreference/],
    ['a++', /possessive/],
    ['a{1001}', /repeat/],
    ['(', /missing closing \)/],
  ];
  for (const [pattern, why] of cases) {
    const dest = path.join(dir, `out-${cases.findIndex((c) => c[0] === pattern)}`);
    const r = await within(t, ['pack', path.join(dir, 'runs'), dest, '-q', `{'note': {'$regex': '${pattern}'}}`]);
    t.equal(r.code, 2, `${pattern}: exit 2 (a bad -q is bad usage)`);
    t.match(r.stderr, /^pack-stream: E_BAD_QUERY: \$regex /, `${pattern}: E_BAD_QUERY`);
    t.match(r.stderr, why, `${pattern}: says why`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${pattern}: one line`);
    t.notOk(existsSync(path.join(dest, 'documents')), `${pattern}: nothing packed`);
  }
  // In a catalog's query the error names the catalog.
  const cat = catalogYml(dir, "{note: {$regex: '(a)\\1'}}");
  const r = await within(t, ['inspect', cat]);
  t.equal(r.code, 1);
  t.match(r.stderr, /E_BAD_QUERY: catalog .*catalog\.yml#evil_catalog: its query: \$regex "\(a\)\\\\1": a backreference/);
});

function nested(depth: number, open: string, close: string, inner: string): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

t.test('a query nested 50,000 levels deep is a typed E_LIMIT (point 7)', async (t) => {
  const dir = notesDir();
  const queries = [
    `{'note': ${nested(50_000, '[', ']', '1')}}`, // Python-literal lists
    nested(15_000, '{"a":', '}', '1'), // JSON dicts (the argument length caps the depth)
    `{'note': ${nested(10_000, 'dict(a=', ')', '1')}}`,
  ];
  for (const q of queries) {
    const r = await within(t, ['pack', path.join(dir, 'runs'), path.join(dir, 'out'), '-q', q]);
    t.equal(r.code, 2, 'exit 2 (a bad -q is bad usage)');
    t.match(r.stderr, /^pack-stream: E_LIMIT: cannot parse query .*: it nests deeper than 1000 levels at character \d+\n$/, 'E_LIMIT, one line');
    t.ok(r.stderr.length < 400, 'the message quotes the query briefly');
  }
  // 1000 levels (dict, dict, list and 997 more lists) is within the limit.
  const deepList = nested(997, '[', ']', "'x'");
  const ok = await within(t, ['pack', path.join(dir, 'runs'), path.join(dir, 'ok'), '-q', `{'note': {'$nin': [${deepList}]}}`]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(packed(path.join(dir, 'ok')).length, 3);
});

/**
 * A run whose start document holds `deep`: `[[…[{x: 1}]…]]`, `depth` lists deep.
 * Spliced in as bytes (fixarray headers), since the test's own encoder is
 * recursive too.
 */
function writeDeepRun(file: string, uid: string, depth: number, i: number): void {
  const recs = scalarRun(uid, { scanId: i + 1, t0: 1600000000 + i * 100 });
  recs[0]![1].deep = 'DEEP-PLACEHOLDER';
  const bytes = encodeMsgpack(recs);
  const marker = Buffer.concat([Buffer.from([0xa0 | 16]), Buffer.from('DEEP-PLACEHOLDER')]);
  const at = bytes.indexOf(marker);
  const deep = Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x81, 0xa1, 0x78, 0x01])]);
  writeFileSync(file, Buffer.concat([bytes.subarray(0, at), deep, bytes.subarray(at + marker.length)]));
}

t.test('a query compared with a 3,000-level document fails that run only, typed (point 7)', async (t) => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'runs'));
  for (let i = 0; i < 3; i++) {
    const recs = scalarRun(`good-${i}`, { scanId: i + 1, t0: 1600000000 + i * 100 });
    recs[0]![1].deep = [{ x: 1 }];
    writeMsgpackRun(path.join(dir, 'runs', `good-${i}.msgpack`), recs);
  }
  writeDeepRun(path.join(dir, 'runs', 'deep999.msgpack'), 'deep999', 999, 5);
  writeDeepRun(path.join(dir, 'runs', 'deep3000.msgpack'), 'deep3000', 3000, 6);
  const before = await treeDigest(path.join(dir, 'runs'));
  const dest = path.join(dir, 'out');
  const r = await within(t, ['pack', path.join(dir, 'runs'), dest, '-q', "{'deep.x': 1}"]);
  t.equal(r.code, 1, 'exit 1: one run failed');
  t.same(packed(dest), ['good-0.msgpack', 'good-1.msgpack', 'good-2.msgpack'], 'the matching runs are packed; 999 levels are searched and do not match');
  // The matcher's limit, or the reader's own depth limit when it has one.
  t.match(r.stderr, /\n {2}deep3000: (E_LIMIT|E_CORRUPT): .*deep3000\.msgpack.*deeper than 1000 levels/, 'the deep run failed, typed, naming its file');
  t.match(readFileSync(path.join(dest, 'failures.tsv'), 'utf8'), /deep3000\t(E_LIMIT|E_CORRUPT)\t/, 'and is listed in failures.tsv');
  t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources untouched');
});
