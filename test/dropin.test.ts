/**
 * The drop-in commands and the first-run behaviour of issue 11, as a user meets
 * them: child processes of the installed launchers (bin/*.cjs), exit codes, one-line
 * errors, what lands on stdout and stderr.
 */
import type { Test } from 'tap';
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/files.js';
import { BIN, REPO } from './helpers/paths.js';
import { scalarRun, writeMsgpackRun } from './helpers/runs.js';
import { sandbox } from './helpers/sandbox.js';

/** databroker-pack's own test pack (vendored with its suite): three runs, one NPY_SEQ image. */
const SIMPLE = path.join(REPO, 'test', 'upstream', 'databroker_pack_tests', 'data', 'simple_catalog');

function oneLine(t: Test, r: CliResult, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  t.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr.trimEnd()}`);
  t.match(r.stderr, pattern);
}

/** A sandboxed intake directory where databroker-unpack placed databroker-pack's test pack as NAME. */
async function unpacked(t: Test, name = 'simple') {
  const sb = sandbox();
  const r = await runCommand('databroker-unpack', ['inplace', SIMPLE, name], { env: sb.env });
  t.equal(r.code, 0, r.stderr);
  return sb;
}

/** Runs with start times out of file-name order: c (newest), a, b (oldest). */
function unorderedRuns(): string {
  const dir = tempDir();
  writeMsgpackRun(path.join(dir, 'a.msgpack'), scalarRun('aaaa-middle', { t0: 1600000100, scanId: 2 }));
  writeMsgpackRun(path.join(dir, 'b.msgpack'), scalarRun('bbbb-oldest', { t0: 1600000000, scanId: 1 }));
  writeMsgpackRun(path.join(dir, 'c.msgpack'), scalarRun('cccc-newest', { t0: 1600000200, scanId: 3 }));
  return dir;
}

t.test('databroker-unpack: options before or after the mode, Placed line on stdout, --list-catalogs bare names', async (t) => {
  const sb = sandbox();
  const a = await runCommand('databroker-unpack', ['--no-merge', 'inplace', SIMPLE, 'first'], { env: sb.env });
  t.equal(a.code, 0, a.stderr);
  const file = path.join(sb.userDir, 'databroker_unpack_first.yml');
  t.equal(a.stdout, `Placed configuration file at ${file}\n`);
  const b = await runCommand('databroker-unpack', ['inplace', SIMPLE, 'second', '--no-merge'], { env: sb.env });
  t.equal(b.code, 0, b.stderr);
  const again = await runCommand('databroker-unpack', ['inplace', '--no-m', SIMPLE, 'first'], { env: sb.env });
  t.equal(again.code, 1, 'a taken name with --no-merge fails');
  t.match(again.stderr, /first/);
  for (const cmd of ['databroker-unpack', 'databroker-pack'] as const) {
    const l = await runCommand(cmd, ['--list-catalogs'], { env: sb.env });
    t.equal(l.code, 0);
    t.equal(l.stdout, 'first\nsecond\n', `${cmd} --list-catalogs prints bare names`);
  }
  const bad = await runCommand('databroker-unpack', ['sideways', SIMPLE, 'x'], { env: sb.env });
  oneLine(t, bad, 2, /'sideways' is invalid .* inplace, mongo_normalized/);
  const v = await runCommand('databroker-unpack', ['-V']);
  t.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('databroker-pack: CATALOG DIRECTORY then options, as databroker-pack 0.3 takes them', async (t) => {
  const sb = await unpacked(t);
  const dest = path.join(tempDir(), 'out');
  const r = await runCommand('databroker-pack', ['simple', dest, '--all', '--copy-external', '--salt', 'SALT'], { env: sb.env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '', 'stdout carries no logs');
  t.same(readdirSync(path.join(dest, 'documents')).length, 3);
  t.match(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'), /3e3b48cf1579c708c4b515de4927d03a: external_files\/3e3b48cf1579c708c4b515de4927d03a/);
  const q = await runCommand('databroker-pack', ['-q', "{'scan_id': 2}", 'simple', path.join(tempDir(), 'q'), '--format', 'JSONL'], { env: sb.env });
  t.equal(q.code, 0, q.stderr);
  const v = await runCommand('databroker-pack', ['-V']);
  t.equal(v.code, 0);
  t.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const missing = await runCommand('databroker-pack', ['simple'], { env: sb.env });
  oneLine(t, missing, 2, /required: catalog, directory/);
});

t.test('--handler-registry in databroker-pack form, with and without --fill-external', async (t) => {
  const sb = await unpacked(t);
  const reg = "{'NPY_SEQ': 'ophyd.sim.NumpySeqHandler'}";
  for (const [cmd, args] of [
    ['databroker-pack', ['simple', '--all', '--fill-external', '--handler-registry', reg]],
    ['databroker-pack', ['simple', '--all', '--copy-external', '--handler-registry', reg]],
    ['pack-stream', ['pack', 'simple', '--all', '--handler-registry', '{"NPY_SEQ": "ophyd.sim:NumpySeqHandler"}']],
  ] as const) {
    const dest = path.join(tempDir(), 'out');
    const full = cmd === 'pack-stream' ? [args[0], args[1], dest, ...args.slice(2)] : [args[0], dest, ...args.slice(1)];
    const r = await runCommand(cmd, full, { env: sb.env });
    t.equal(r.code, 0, `${full.join(' ')}: ${r.stderr}`);
    t.ok(existsSync(path.join(dest, 'catalog.yml')));
  }
  // A spec mapped by class: the site's own spec name read with the NPY_SEQ reader.
  const dir = tempDir();
  cpSync(SIMPLE, path.join(dir, 'pack'), { recursive: true });
  const docs = path.join(dir, 'pack', 'documents');
  for (const f of readdirSync(docs)) {
    const p = path.join(docs, f);
    const b = readFileSync(p);
    const i = b.indexOf('NPY_SEQ');
    if (i >= 0) b.write('NPY_SEX', i); // same length, so the msgpack stays valid
    writeFileSync(p, b);
  }
  const without = await runCommand('pack-stream', ['pack', path.join(dir, 'pack'), path.join(dir, 'o1'), '--all', '--fill-external']);
  t.equal(without.code, 1, 'an unknown spec fails its run');
  const mapped = await runCommand('pack-stream', ['pack', path.join(dir, 'pack'), path.join(dir, 'o2'), '--all', '--fill-external', '--handler-registry', "{'NPY_SEX': 'ophyd.sim.NumpySeqHandler'}"]);
  t.equal(mapped.code, 0, mapped.stderr);
  t.match(mapped.stderr, /filled 1 datums/);
  const unknown = await runCommand('databroker-pack', ['simple', path.join(tempDir(), 'u'), '--all', '--handler-registry', "{'MY_SPEC': 'mylab.handlers.FancyHandler'}"], { env: sb.env });
  oneLine(t, unknown, 2, /mylab\.handlers\.FancyHandler.*--handler MY_SPEC=/);
  const garbled = await runCommand('databroker-pack', ['simple', path.join(tempDir(), 'g'), '--all', '--handler-registry', 'NPY_SEQ=ophyd'], { env: sb.env });
  oneLine(t, garbled, 2, /could not parse --handler-registry/);
});

t.test('abbreviated long options, as argparse takes them', async (t) => {
  const dir = unorderedRuns();
  const dest = path.join(tempDir(), 'out');
  const r = await runCommand('pack-stream', ['pack', dir, dest, '--al', '--lim', '1', '--no-doc', '--form=jsonl']);
  t.equal(r.code, 0, r.stderr);
  t.notOk(existsSync(path.join(dest, 'documents')), '--no-doc is --no-documents');
  t.match(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'), /bluesky-jsonl-catalog/, '--form=jsonl is --format=jsonl');
  const amb = await runCommand('pack-stream', ['pack', dir, path.join(tempDir(), 'x'), '--all', '--co']);
  oneLine(t, amb, 2, /ambiguous option: --co could match --copy-external, --concurrency/);
  const unknown = await runCommand('pack-stream', ['pack', dir, path.join(tempDir(), 'x'), '--alll']);
  t.equal(unknown.stderr, "pack-stream: unknown option '--alll' (did you mean --all?)\n");
  t.equal(unknown.code, 2);
  const dp = await runCommand('databroker-pack', ['x', 'y', '--coppy-external']);
  t.equal(dp.stderr, "databroker-pack: unknown option '--coppy-external' (did you mean --copy-external?)\n");
  t.equal(dp.code, 2);
});

t.test('run order: newest first by start time, in inspect and for --limit, in every command', async (t) => {
  const dir = unorderedRuns();
  const i = await runCommand('pack-stream', ['inspect', dir]);
  t.equal(i.code, 0, i.stderr);
  t.same(i.stdout.split('\n').filter((l) => !l.startsWith('total') && l).map((l) => l.split(' ')[0]), ['cccc-newest', 'aaaa-middle', 'bbbb-oldest']);
  for (const cmd of ['pack-stream', 'databroker-pack'] as const) {
    const dest = path.join(tempDir(), 'out');
    const r = await runCommand(cmd, cmd === 'pack-stream' ? ['pack', dir, dest, '--all', '--limit', '2'] : [dir, dest, '--all', '--limit', '2']);
    t.equal(r.code, 0, r.stderr);
    t.same(readdirSync(path.join(dest, 'documents')).sort(), ['aaaa-middle.msgpack', 'cccc-newest.msgpack'], `${cmd} --limit 2 takes the two newest`);
  }
});

t.test('bad usage: one line, exit 2; failures exit 1', async (t) => {
  const dir = unorderedRuns();
  const xml = path.join(tempDir(), 'xml');
  oneLine(t, await runCommand('pack-stream', ['pack', dir, xml, '--all', '--format', 'xml']), 2, /--format must be msgpack or jsonl, got 'xml'/);
  t.notOk(existsSync(xml), 'nothing written for --format xml');
  oneLine(t, await runCommand('databroker-pack', [dir, xml, '--all', '--format', 'xml']), 2, /--format must be msgpack or jsonl/);
  oneLine(t, await runCommand('pack-stream', ['pack', dir, xml, '-q', "{'plan_name': "]), 2, /E_BAD_QUERY/);
  const full = tempDir();
  writeFileSync(path.join(full, 'x'), 'x');
  oneLine(t, await runCommand('pack-stream', ['pack', dir, full, '--all']), 2, /E_TARGET: target .* is not empty/);
  oneLine(t, await runCommand('pack-stream', ['pack', dir, xml]), 2, /choose exactly one of --all/);
  oneLine(t, await runCommand('pack-stream', ['pack', path.join(dir, 'nope'), xml, '--all']), 1, /E_NO_SOURCE/);
  const none = await runCommand('pack-stream', ['pack', dir, xml, '-q', "{'plan_name': 'nothing'}"]);
  oneLine(t, none, 1, /no runs in .* match the selection/);
  const empty = tempDir();
  oneLine(t, await runCommand('pack-stream', ['pack', empty, xml, '--all']), 1, /holds no runs/);
  oneLine(t, await runCommand('pack-stream', ['pack', empty, xml, '-q', '{}']), 1, /holds no runs/);
});

t.test('a SOURCE naming both an empty directory and a catalog is the catalog', async (t) => {
  const sb = await unpacked(t, 'simple');
  const cwd = tempDir();
  mkdirSync(path.join(cwd, 'simple'));
  const dest = path.join(tempDir(), 'out');
  const r = await runCommand('pack-stream', ['pack', 'simple', dest, '--all'], { env: sb.env, cwd });
  t.equal(r.code, 0, r.stderr);
  t.equal(readdirSync(path.join(dest, 'documents')).length, 3, "the catalog's three runs");
  // A directory that does hold runs is still taken as the path it names.
  writeMsgpackRun(path.join(cwd, 'simple', 'one.msgpack'), scalarRun('local-run'));
  const dest2 = path.join(tempDir(), 'out');
  const l = await runCommand('pack-stream', ['pack', 'simple', dest2, '--all'], { env: sb.env, cwd });
  t.equal(l.code, 0, l.stderr);
  t.same(readdirSync(path.join(dest2, 'documents')), ['local-run.msgpack']);
});

t.test('catalog YAML errors: every driver listed, YAML errors end with the line', async (t) => {
  const dir = tempDir();
  const driver = path.join(dir, 'driver.yml');
  writeFileSync(driver, 'sources:\n  x:\n    driver: csv\n    args: {paths: [a]}\n');
  oneLine(t, await runCommand('pack-stream', ['pack', driver, path.join(dir, 'o'), '--all']), 1, /bluesky-msgpack-catalog, bluesky-jsonl-catalog and bluesky-mongo-normalized-catalog/);
  const bad = path.join(dir, 'bad.yml');
  writeFileSync(bad, 'sources:\n  x:\n    driver: [bluesky\n  y: 1\n');
  const r = await runCommand('pack-stream', ['pack', bad, path.join(dir, 'o'), '--all']);
  oneLine(t, r, 1, /not valid YAML: .*line 4, column \d+: "  y: 1"\n$/);
});

t.test('a MongoDB that does not answer within 2 s is said to be waited for', async (t) => {
  // 10.255.255.1 is unroutable: connecting neither succeeds nor is refused.
  const child = spawn(process.execPath, [path.join(BIN, 'pack-stream.cjs'), 'pack', 'mongodb://10.255.255.1:27017/db', path.join(tempDir(), 'o'), '--all'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const started = Date.now();
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d) => {
      err += d;
      if (err.includes('\n')) resolve();
    });
    setTimeout(resolve, 8000);
  });
  child.kill();
  t.equal(err, 'pack-stream: waiting for MongoDB at 10.255.255.1:27017...\n');
  t.ok(Date.now() - started >= 1900, 'after about 2 s');
});

t.test('verify passes on every mode pack-stream writes, --ignore-external included', async (t) => {
  const modes = [[], ['--copy-external'], ['--ignore-external'], ['--fill-external'], ['--no-documents'], ['--no-documents', '--copy-external']];
  for (const format of ['msgpack', 'jsonl']) {
    for (const m of modes) {
      const dest = path.join(tempDir(), 'p');
      const p = await runCommand('pack-stream', ['pack', path.join(REPO, 'examples', 'catalog'), dest, '--all', '--format', format, ...m]);
      t.equal(p.code, 0, p.stderr);
      const v = await runCommand('pack-stream', ['verify', dest]);
      t.equal(v.code, 0, `verify ${format} ${m.join(' ')}: ${v.stdout}${v.stderr}`);
    }
  }
});

t.test('launchers: committed with the execute bit, old Node gets one line and exit 2', async (t) => {
  for (const name of ['pack-stream', 'databroker-pack', 'databroker-unpack']) {
    t.ok(statSync(path.join(BIN, `${name}.cjs`)).mode & 0o100, `${name} is executable`);
    const ls = spawnSync('git', ['ls-files', '-s', `bin/${name}.cjs`], { cwd: REPO, encoding: 'utf8' });
    if (ls.status === 0 && ls.stdout) t.match(ls.stdout, /^100755 /, `${name} is committed as 100755`);
  }
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { engines: { node: string }; bin: Record<string, string> };
  t.match(readFileSync(path.join(BIN, 'launch.cjs'), 'utf8'), new RegExp(`REQUIRED = \\[${pkg.engines.node.replace('>=', '').replace('.', ', ')}\\]`), 'launcher and engines agree');
  t.same(Object.keys(pkg.bin).sort(), ['databroker-pack', 'databroker-unpack', 'pack-stream']);
  const old = ['/usr/bin/node', '/usr/local/bin/node'].find((n) => {
    const v = spawnSync(n, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (v.status !== 0) return false;
    const [a, b] = v.stdout.trim().split('.').map(Number) as [number, number];
    return a < 22 || (a === 22 && b < 19);
  });
  if (!old) {
    t.comment('no Node older than 22.19 on this machine: the old-Node message is not tried');
    return;
  }
  for (const name of ['pack-stream', 'databroker-pack'] as const) {
    const r = await runCommand(name, ['pack', 'x', 'y', '--all'], { node: old });
    oneLine(t, r, 2, new RegExp(`^${name}: needs Node.js >= 22.19 \\(this is v\\d+`));
  }
});

t.test('--version and --help load neither MongoDB, HDF5, YAML nor the pipeline', async (t) => {
  // Node's module hooks see every module loaded, ESM and CommonJS alike.
  const hook = path.join(tempDir(), 'hook.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } });
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(seen) + '\\n'));
`,
  );
  for (const [name, args] of [['pack-stream', ['--version']], ['pack-stream', ['pack', '--help']], ['databroker-pack', ['-V']], ['databroker-unpack', ['--help']]] as const) {
    const r = await runCommand(name, [...args], { env: { NODE_OPTIONS: `--import ${hook}` } });
    t.equal(r.code, 0, r.stderr);
    const loaded = JSON.parse(/LOADED (.*)/.exec(r.stderr)?.[1] ?? '[]') as string[];
    t.ok(loaded.some((u) => u.includes('commander')), 'commander is loaded');
    for (const heavy of ['mongodb', 'h5wasm', 'yaml', 'cli-progress', 'geotiff', '/pipeline/', '/sources/']) {
      t.notOk(loaded.some((u) => u.includes(heavy)), `${name} ${args.join(' ')} does not load ${heavy}`);
    }
  }
});

t.test('progress on a terminal: bars with totals for --all, no copy bar when nothing is copied', { skip: spawnSync('script', ['--version']).status === 0 ? false : 'no script(1) for a pseudo-terminal' }, async (t) => {
  const dest = path.join(tempDir(), 'out');
  const cmd = `${process.execPath} ${path.join(BIN, 'pack-stream.cjs')} pack ${path.join(REPO, 'examples', 'catalog')} ${dest} --all`;
  const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '120' } });
  t.equal(r.status, 0, r.stdout);
  t.match(r.stdout, /runs\s+\S*[█░]+\S* 4\/4 \(0 failed\)/, 'the runs bar has its total');
  t.notMatch(r.stdout, /copied/, 'no copied bar (or summary) in manifest mode');
  const dest2 = path.join(tempDir(), 'out');
  const r2 = spawnSync('script', ['-qfec', `${cmd.replace(dest, dest2)} --copy-external`, '/dev/null'], { encoding: 'utf8' });
  t.equal(r2.status, 0, r2.stdout);
  t.match(r2.stdout, /copied\s+4 files/, 'a copied line with --copy-external');
});
