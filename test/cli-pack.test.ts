/**
 * The `pack-stream pack` command as a user runs it: child processes, exit
 * codes, one-line errors naming the thing, good runs packed anyway, sources
 * untouched.
 */
import type { Test } from 'tap';
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from './helpers/cli.js';
import { listTree, tempDir, treeDigest } from './helpers/files.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';
import { encodeMsgpack, scalarRun, writeJsonlRun, writeMsgpackRun } from './helpers/runs.js';

function catalogDir(): string {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'runs'));
  for (let i = 0; i < 3; i++) writeMsgpackRun(path.join(dir, 'runs', `good-${i}.msgpack`), scalarRun(`good-${i}`, { scanId: i + 1, t0: 1600000000 + i * 100 }));
  return dir;
}

async function expectFailure(t: Test, dir: string, args: string[], pattern: RegExp, goodRuns: number) {
  const before = await treeDigest(path.join(dir, 'runs'));
  const dest = path.join(dir, 'out');
  const r = await runCli(['pack', path.join(dir, 'runs'), dest, ...args]);
  t.equal(r.code, 1, 'exit code 1');
  t.match(r.stderr, pattern, 'error names the problem');
  t.equal(r.stdout, '', 'nothing on stdout');
  t.same(await treeDigest(path.join(dir, 'runs')), before, 'sources untouched');
  if (goodRuns > 0) {
    t.equal(readdirSync(path.join(dest, 'documents')).filter((f) => f.endsWith('.msgpack')).length, goodRuns, 'good runs still packed');
    t.ok(existsSync(path.join(dest, 'catalog.yml')), 'catalog.yml written for the good runs');
    t.notOk((await listTree(dest)).some((f) => f.endsWith('.partial')), 'no partial files left');
    t.match(readFileSync(path.join(dest, 'failures.tsv'), 'utf8'), pattern, 'failure recorded in the pack');
  }
  return r;
}

t.test('version and help', async (t) => {
  const v = await runCli(['-V']);
  t.equal(v.code, 0);
  t.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const h = await runCli(['pack', '--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /--copy-external/);
});

t.test('a truncated run file', async (t) => {
  const dir = catalogDir();
  const bytes = encodeMsgpack(scalarRun('trunc'));
  writeFileSync(path.join(dir, 'runs', 'trunc.msgpack'), bytes.subarray(0, bytes.length - 7));
  await expectFailure(t, dir, ['--all'], /trunc\.msgpack is truncated/, 3);
});

t.test('a corrupt run file', async (t) => {
  const dir = catalogDir();
  const bytes = Buffer.from(encodeMsgpack(scalarRun('corrupt')));
  bytes[200] = 0xc1; // a byte msgpack never uses
  writeFileSync(path.join(dir, 'runs', 'corrupt.msgpack'), bytes);
  await expectFailure(t, dir, ['--all'], /corrupt\.msgpack is not a readable msgpack run file/, 3);
});

t.test('a corrupt JSONL run file', async (t) => {
  const dir = catalogDir();
  const p = path.join(dir, 'runs', 'bad.jsonl');
  writeJsonlRun(p, scalarRun('badjson'));
  writeFileSync(p, readFileSync(p, 'utf8').replace('"descriptor"', '"descriptor'));
  await expectFailure(t, dir, ['--all'], /bad\.jsonl: line 2 is not valid JSON/, 3);
});

t.test('a first record that is not start', async (t) => {
  const dir = catalogDir();
  writeMsgpackRun(path.join(dir, 'runs', 'nostart.msgpack'), scalarRun('nostart').slice(1));
  await expectFailure(t, dir, ['--all'], /nostart\.msgpack: the first document is a 'descriptor', not a 'start'/, 3);
});

t.test('a missing external file', async (t) => {
  const dir = catalogDir();
  const root = path.join(dir, 'images');
  mkdirSync(root);
  writeMsgpackRun(path.join(dir, 'runs', 'img.msgpack'), scalarRun('img', { resource: { root } }));
  const r = await expectFailure(t, dir, ['--all', '--copy-external'], /external file .*images\/img_0\.npy is missing/, 3);
  t.match(r.stderr, /img:/, 'failed run uid listed');
  // present file: the same run packs, in both copy and manifest mode
  writeFileSync(path.join(root, 'img_0.npy'), 'x');
  for (const mode of [['--copy-external'], []]) {
    const dest = path.join(tempDir(), 'ok');
    const ok = await runCli(['pack', path.join(dir, 'runs'), dest, '--all', ...mode]);
    t.equal(ok.code, 0, `packs once the file exists ${mode.join(' ')}`);
  }
});

t.test('a bad query', async (t) => {
  const dir = catalogDir();
  for (const q of [`{'plan_name': `, `{'a': {'$foo': 1}}`, `{'a': __import__('os').system('true')}`]) {
    const dest = path.join(dir, 'out-q');
    const r = await runCli(['pack', path.join(dir, 'runs'), dest, '-q', q]);
    t.equal(r.code, 2, `${q}: a bad query is a usage error`);
    t.match(r.stderr, /^pack-stream: E_BAD_QUERY: .+\n$/, 'one line');
    t.notOk(existsSync(dest), 'no target created');
  }
  const none = await runCli(['pack', path.join(dir, 'runs'), path.join(dir, 'none'), '-q', `{'plan_name': 'nothing'}`]);
  t.equal(none.code, 1, 'empty selection fails');
  t.match(none.stderr, /no runs .* match/);
});

t.test('an unknown catalog', async (t) => {
  const r = await runCli(['pack', '/no/such/catalog', path.join(tempDir(), 'x'), '--all']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^pack-stream: E_NO_SOURCE: unknown catalog '\/no\/such\/catalog'.*\n$/);
});

t.test('a non-empty or unwritable target', async (t) => {
  const dir = catalogDir();
  const dest = path.join(dir, 'full');
  mkdirSync(dest);
  writeFileSync(path.join(dest, 'keep.txt'), 'precious');
  const r = await runCli(['pack', path.join(dir, 'runs'), dest, '--all']);
  t.equal(r.code, 2, 'a non-empty target is a usage error');
  t.match(r.stderr, /E_TARGET: target .*full is not empty/);
  t.same(readdirSync(dest), ['keep.txt'], 'nothing written into it');
  const file = path.join(dir, 'afile');
  writeFileSync(file, '');
  const r2 = await runCli(['pack', path.join(dir, 'runs'), file, '--all']);
  t.match(r2.stderr, /exists and is not a directory/);
});

t.test('usage errors exit 2', async (t) => {
  const dir = catalogDir();
  const r = await runCli(['pack', path.join(dir, 'runs'), path.join(dir, 'o')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /exactly one of --all, -q\/--query or --uids/);
  const r2 = await runCli(['pack', path.join(dir, 'runs'), path.join(dir, 'o'), '--all', '--copy-external', '--ignore-external']);
  t.equal(r2.code, 2);
});

t.test('--uids with prefixes, scan_ids, negative indexes and comments', async (t) => {
  const dir = catalogDir();
  const uids = '# a comment\n\ngood-0\n  2  \n-1\n';
  const dest = path.join(dir, 'u');
  const r = await runCli(['pack', path.join(dir, 'runs'), dest, '--uids', '-'], { input: uids });
  t.equal(r.code, 0, r.stderr);
  t.same(readdirSync(path.join(dest, 'documents')).sort(), ['good-0.msgpack', 'good-1.msgpack', 'good-2.msgpack']);
  const amb = await runCli(['pack', path.join(dir, 'runs'), path.join(dir, 'u2'), '--uids', '-'], { input: 'good\ngood-1\n' });
  t.equal(amb.code, 1);
  t.match(amb.stderr, /Multiple matches to partial uid 'good': good-2, good-1, good-0/);
  t.equal(readdirSync(path.join(dir, 'u2', 'documents')).length, 1, 'the unambiguous uid is still packed');
});

t.test('--strict stops at the first failure', async (t) => {
  const dir = catalogDir();
  writeMsgpackRun(path.join(dir, 'runs', 'a-nostart.msgpack'), scalarRun('x').slice(1));
  const dest = path.join(dir, 'strict');
  const r = await runCli(['pack', path.join(dir, 'runs'), dest, '--all', '--strict']);
  t.equal(r.code, 1);
  t.match(r.stderr, /not a 'start'/);
  t.notOk(existsSync(path.join(dest, 'catalog.yml')), 'no catalog.yml: the pack is not complete');
});

t.test('queries, --limit and --format jsonl from the command line', async (t) => {
  const dir = catalogDir();
  const dest = path.join(dir, 'q');
  const r = await runCli(['pack', path.join(dir, 'runs'), dest, '-q', `{'scan_id': {'$gte': 2}}`, '-q', `{'plan_name': 'count'}`, '--format', 'JSONL', '--limit', '1']);
  t.equal(r.code, 0, r.stderr);
  t.same(readdirSync(path.join(dest, 'documents')), ['good-2.jsonl'], '--limit takes the newest');
  t.match(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'), /driver: bluesky-jsonl-catalog/);
});

t.test('the vector pack through the CLI with --handler for a site spec', { skip: SKIP_VECTORS }, async (t) => {
  const dest = path.join(tempDir(), 'v');
  const r = await runCli(['pack', path.join(VECTORS, 'tutorials_jsonl'), dest, '--all', '--handler', 'newton=npy', '--format', 'jsonl']);
  // newton resources point at "/" with an empty path: mapped onto `npy`, their file is the
  // root "/" itself, a directory, which is not external data, so those runs fail (Python
  // would list it); without the mapping they would fail with E_NO_HANDLER
  t.equal(r.code, 1, r.stderr);
  const failed = r.stderr.split('\n').filter((l) => /^ {2}\S+: /.test(l));
  t.equal(failed.length, 4, 'the four newton runs fail');
  for (const l of failed) t.match(l, /E_NOT_REGULAR: external file \/ is a directory, not a regular file \(needed by resource /);
  t.equal(readdirSync(path.join(dest, 'documents')).length, 4, 'the other runs are packed');
  const bad = await runCli(['pack', path.join(VECTORS, 'tutorials_jsonl'), path.join(tempDir(), 'w'), '--all', '--handler', 'newton=NOPE']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /'NOPE' is not a built-in handler/);
});
