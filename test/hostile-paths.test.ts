/**
 * Names and paths from hostile input (issue 10, points 1, 5, 12, 13), through
 * the built CLI as a user runs it: the bad run fails with E_UNSAFE_PATH on one
 * line, the other runs are packed, nothing appears outside DEST, the sources
 * are untouched, and it all finishes well within a time budget.
 */
import type { Test } from 'tap';
import t from 'tap';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { runCli, runCliWithin, type CliResult } from './helpers/cli.js';
import { makeArray, writeDetectorRun, writeNpy, writeTiff } from './helpers/detector.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { sandbox } from './helpers/sandbox.js';
import { scalarRun, writeJsonlRun, writeMsgpackRun } from './helpers/runs.js';

/** Generous: each command takes about a second; a hang or a blow-up takes far longer. */
const BUDGET_MS = 60_000;

/** Every file and directory under `dir` (relative, directories with a trailing slash). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(rel);
    }
  }
  await walk(dir);
  return out.sort();
}

/** What appeared under `root` outside `dest` since `before`. */
async function newOutside(root: string, dest: string, before: string[]): Promise<string[]> {
  const destRel = path.relative(root, dest);
  const had = new Set(before);
  return (await tree(root)).filter((p) => !had.has(p) && p !== `${destRel}/` && !p.startsWith(`${destRel}/`));
}

/** Generous too: the CLI needs about 100 MiB; a name or path must never make it grow. */
const RSS_BUDGET_MIB = 512;

/** Run the CLI within the time budget (killed if it overruns) and the memory budget. */
async function timedCli(t: Test, args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<CliResult> {
  const r = await runCliWithin(args, BUDGET_MS, opts);
  t.ok(!r.killed && r.ms < BUDGET_MS, `finished within ${BUDGET_MS / 1000} s`);
  t.ok(r.peakRssMiB < RSS_BUDGET_MIB, `peak RSS ${r.peakRssMiB.toFixed(0)} MiB < ${RSS_BUDGET_MIB} MiB`);
  return r;
}

/** stderr lines naming failed runs: `  <uid>: E_CODE: message`. */
function failureLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('  '));
}

t.test('a start uid that is not a safe file name fails its run (point 1)', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  mkdirSync(runs);
  for (let i = 0; i < 3; i++) writeMsgpackRun(path.join(runs, `good-${i}.msgpack`), scalarRun(`good-${i}`, { scanId: i + 1, t0: 1600000000 + i * 100 }));
  const evil: Record<string, string> = {
    'up.msgpack': '../../../escaped',
    'abs.msgpack': path.join(root, 'abs-escape', 'x'),
    'dotdot.msgpack': '..',
    'long.msgpack': 'u'.repeat(300),
    'newline.jsonl': 'a\nb',
    'nul.msgpack': 'a\u0000b',
  };
  let i = 10;
  for (const [file, uid] of Object.entries(evil)) {
    const recs = scalarRun(uid, { t0: 1600000000 + i++ * 100 });
    if (file.endsWith('.jsonl')) writeJsonlRun(path.join(runs, file), recs);
    else writeMsgpackRun(path.join(runs, file), recs);
  }
  // DEST three levels down, so '../../../escaped' would land inside root where we can see it.
  const dest = path.join(root, 'a', 'b', 'c', 'out');
  mkdirSync(path.dirname(dest), { recursive: true });
  const before = await tree(root);
  const sources = await treeDigest(runs);

  for (const format of ['msgpack', 'jsonl']) {
    const out = `${dest}-${format}`;
    const r = await timedCli(t, ['pack', runs, out, '--all', '--format', format]);
    t.equal(r.code, 1, `${format}: exit code 1 (some runs failed)`);
    t.equal(r.stdout, '', 'nothing on stdout');
    const lines = failureLines(r.stderr);
    t.equal(lines.length, Object.keys(evil).length, 'one line per refused run');
    for (const l of lines) t.match(l, /^ {2}.+: E_UNSAFE_PATH: run uid ".*" (contains a path separator|is a relative directory reference|is too long for a file name \(300 bytes; at most \d+\)|contains a control character), so it cannot be used as a file name$/);
    t.match(r.stderr, /"a\\nb" contains a control character/, 'the newline is shown escaped, not printed');
    t.notOk(r.stderr.includes('\u0000'), 'no raw NUL printed');
    t.same(readdirSync(path.join(out, 'documents')).sort(), [0, 1, 2].map((n) => `good-${n}.${format}`), 'only the good runs are in documents/, no folders');
    const tsv = readFileSync(path.join(out, 'failures.tsv'), 'utf8').split('\n').filter(Boolean);
    t.equal(tsv.length, Object.keys(evil).length, 'failures.tsv has one line per refused run');
    for (const l of tsv) t.match(l, /^[^\t]+\tE_UNSAFE_PATH\t[^\t]+$/, 'three tab-separated fields on one line');
    t.ok(existsSync(path.join(out, 'catalog.yml')), 'catalog.yml written for the good runs');
  }
  t.same(await newOutside(root, path.dirname(dest), before), [], 'nothing written outside DEST');
  t.notOk(existsSync(path.join(root, 'a', 'escaped.msgpack')), 'no escaped.msgpack above DEST');
  t.same(await treeDigest(runs), sources, 'sources untouched');
});

/** One run with one external resource, filled with one datum. */
function resourceRun(dir: string, uid: string, spec: string, rootDir: string, resourcePath: string, kwargs: Record<string, unknown> = {}, datum: Record<string, unknown> = {}): void {
  writeDetectorRun(dir, uid, [{ spec, root: rootDir, resource_path: resourcePath, resource_kwargs: kwargs as never, datums: [datum as never] }]);
}

t.test('control characters and escapes in external file paths (point 5)', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  const data = path.join(root, 'data');
  const outside = path.join(root, 'outside');
  const frame = makeArray('<u2', [2, 3], (i) => i * 7);
  // Real files at every path the hostile resources name, so only the name can stop them.
  writeNpy(path.join(data, 'ok.npy'), frame);
  writeNpy(path.join(data, 'x\n', 'etc', 'shadow\ny.npy'), frame);
  writeNpy(path.join(outside, 'secret.npy'), frame);
  writeTiff(path.join(outside, 'secret_000000.tiff'), frame);
  mkdirSync(path.join(data, 'frames')); // so that the kernel can walk frames/../..
  mkdirSync(runs);
  for (let i = 0; i < 2; i++) writeMsgpackRun(path.join(runs, `plain-${i}.msgpack`), scalarRun(`plain-${i}`, { t0: 1600000000 + i * 100 }));
  resourceRun(runs, 'good-ext', 'npy', data, 'ok.npy');
  resourceRun(runs, 'evil-newline', 'npy', data, 'x\n/etc/shadow\ny.npy');
  resourceRun(runs, 'evil-dotdot', 'npy', data, '../outside/secret.npy');
  resourceRun(runs, 'evil-absolute', 'npy', data, path.join(outside, 'secret.npy'));
  resourceRun(runs, 'evil-template', 'AD_TIFF', data, 'frames', { template: '%s%s_%6.6d.tiff', filename: '../../outside/secret', frame_per_point: 1 }, { point_number: 0 });
  resourceRun(runs, 'evil-noroot', 'npy', '', `${data}/../outside/secret.npy`);
  const evil = ['evil-dotdot', 'evil-absolute', 'evil-newline', 'evil-template', 'evil-noroot'];
  const before = await tree(root);
  const sources = await treeDigest(root);

  for (const mode of ['manifest', 'copy', 'fill']) {
    const dest = path.join(root, `out-${mode}`);
    const args = ['pack', runs, dest, '--all', ...(mode === 'copy' ? ['--copy-external'] : mode === 'fill' ? ['--fill-external'] : [])];
    const r = await timedCli(t, args);
    t.equal(r.code, 1, `${mode}: exit code 1`);
    const lines = failureLines(r.stderr);
    t.same(lines.map((l) => l.trim().split(':')[0]).sort(), evil.sort(), `${mode}: exactly the hostile runs failed`);
    for (const l of lines) t.match(l, /E_UNSAFE_PATH: .*(contains a control character|is not inside its resource root|has a '\.\.' part and no resource root to stay in)/, `${mode}: one-line E_UNSAFE_PATH: ${l}`);
    t.same(readdirSync(path.join(dest, 'documents')).sort(), ['good-ext.msgpack', 'plain-0.msgpack', 'plain-1.msgpack'], `${mode}: the other runs are packed`);
    const manifests = readdirSync(dest).filter((f) => f.startsWith('external_files_manifest_'));
    if (mode === 'fill') t.same(manifests, [], 'fill: no external manifests');
    else {
      t.equal(manifests.length, 1, `${mode}: one external manifest (one root)`);
      const lines = readFileSync(path.join(dest, manifests[0]!), 'utf8').split('\n');
      if (mode === 'manifest') t.same(lines, [path.join(data, 'ok.npy')], 'manifest: only the good file, inside its root');
      else {
        t.equal(lines.length, 1);
        t.match(lines[0], /^external_files\/[0-9a-f]{32}\/ok\.npy$/, 'copy: only the good file, inside external_files/<HASH>/');
        t.same((await tree(path.join(dest, 'external_files'))).filter((p) => !p.endsWith('/')).map((p) => path.basename(p)), ['ok.npy'], 'copy: only the good file copied');
      }
    }
  }
  t.same((await tree(root)).filter((p) => !/^out-(manifest|copy|fill)(\/|$)/.test(p)), before, 'nothing written outside DEST');
  const after = await treeDigest(root);
  t.same(Object.fromEntries(Object.entries(after).filter(([k]) => !k.startsWith('out-'))), sources, 'sources and the files they name untouched');
});

/** A small real pack (two scalar runs, msgpack) made by the CLI. */
async function makePack(root: string): Promise<string> {
  const runs = path.join(root, 'pack-src');
  mkdirSync(runs, { recursive: true });
  for (let i = 0; i < 2; i++) writeMsgpackRun(path.join(runs, `run-${i}.msgpack`), scalarRun(`run-${i}`, { t0: 1600000000 + i * 100 }));
  const pack = path.join(root, 'pack');
  const r = await runCli(['pack', runs, pack, '--all']);
  if (r.code !== 0) throw new Error(r.stderr);
  return pack;
}

/** The one `pack-stream: ...` line of a refused command (and nothing else on stderr). */
function oneLine(t: Test, r: CliResult): string {
  const lines = r.stderr.split('\n').filter(Boolean);
  t.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  return lines[0] ?? '';
}

// A server that is not there fails fast, so an old build that tried to connect shows here as a wrong message, not a hang.
const NO_MONGO = 'mongodb://127.0.0.1:9/{database}?serverSelectionTimeoutMS=500';

t.test('unpack NAME is checked as intake and the file system require (point 12)', async (t) => {
  const sb = sandbox();
  const pack = await makePack(sb.root);
  const packDigest = await treeDigest(pack);
  const before = await tree(sb.root);
  const bad: [string, RegExp][] = [
    ['__proto__', /is reserved/],
    ['n'.repeat(300), /is too long for a file name \(300 bytes; at most 208\)/],
    ['a\nb', /contains a control character/],
    ['..', /is a relative directory reference/],
    ['a/b', /contains a path separator/],
    ['', /is empty/],
  ];
  for (const [name, why] of bad) {
    for (const mode of ['inplace', 'mongo_normalized']) {
      const r = await timedCli(t, ['unpack', mode, pack, name, ...(mode === 'mongo_normalized' ? ['--mongo-uri', NO_MONGO] : [])], { env: sb.env });
      t.equal(r.code, 2, `${mode} ${JSON.stringify(name.slice(0, 20))}: usage error, exit 2`);
      const line = oneLine(t, r);
      t.match(line, /^pack-stream: E_USAGE: catalog name ".*" /);
      t.match(line, why);
    }
  }
  // A name that makes a file name but not a MongoDB database name.
  const dotted = await timedCli(t, ['unpack', 'mongo_normalized', pack, 'my.cat', '--mongo-uri', NO_MONGO], { env: sb.env });
  t.equal(dotted.code, 2);
  t.match(oneLine(t, dotted), /^pack-stream: E_USAGE: catalog name "my\.cat" makes the database name "databroker_my\.cat", which MongoDB does not allow/);
  t.same(await tree(sb.root), before, 'nothing written anywhere (no intake file, no stray directory)');
  t.same(await treeDigest(pack), packDigest, 'the pack is untouched');

  // The longest allowed name works, and so does an ordinary one with a dot.
  const longest = 'n'.repeat(208);
  for (const name of [longest, 'beamline.2024']) {
    const ok = await timedCli(t, ['unpack', 'inplace', pack, name], { env: sb.env });
    t.equal(ok.code, 0, ok.stderr);
    const written = readFileSync(path.join(sb.userDir, `databroker_unpack_${name}.yml`), 'utf8');
    t.match(written, `${name}:`, 'the source is written under the name');
  }
});

t.test("a hostile pack catalog.yml is refused by unpack, nothing of it is copied (point 13)", async (t) => {
  const sb = sandbox();
  const good = await makePack(sb.root);
  const original = parse(readFileSync(path.join(good, 'catalog.yml'), 'utf8')) as { sources: { packed_catalog: Record<string, any> } };
  // A directory next to the pack that hostile paths point at (it holds a run, so reading it would show).
  const elsewhere = path.join(sb.root, 'elsewhere');
  mkdirSync(elsewhere);
  writeMsgpackRun(path.join(elsewhere, 'other.msgpack'), scalarRun('other'));

  const variant = (edit: (c: any) => void): Record<string, unknown> => {
    const c = structuredClone(original) as any;
    edit(c);
    return c;
  };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['an extra source of another driver', variant((c) => (c.sources.shadow = { driver: 'textfiles', args: { urlpath: '/etc/shadow' } })), /E_BAD_CATALOG: .*catalog\.yml: it holds sources other than 'packed_catalog' \("shadow"\); refusing to unpack it$/],
    ['another driver', variant((c) => (c.sources.packed_catalog.driver = 'intake.source.textfiles.TextFilesSource')), /E_BAD_CATALOG: .*has driver "intake\.source\.textfiles\.TextFilesSource", not bluesky-msgpack-catalog or bluesky-jsonl-catalog; refusing/],
    ['a handler registry arg', variant((c) => (c.sources.packed_catalog.args.handler_registry = { NPY_SEQ: 'evil.module.Handler' })), /E_BAD_CATALOG: .*has args a pack does not have \("handler_registry"\); refusing/],
    ['intake plugins', variant((c) => (c.plugins = { source: [{ module: 'evil' }] })), /E_BAD_CATALOG: .*top-level keys a pack's catalog does not have \("plugins"\); refusing/],
    ['a template in metadata', variant((c) => (c.sources.packed_catalog.metadata.note = "{{ shell('touch /tmp/pwned') }}")), /E_BAD_CATALOG: .*metadata\.note holds an intake template/],
    ['relative_paths leaving the pack', variant((c) => (c.sources.packed_catalog.metadata.relative_paths = ['../elsewhere/*.msgpack'])), /E_UNSAFE_PATH: .*catalog\.yml: relative_paths entry "\.\.\/elsewhere\/\*\.msgpack" leads out of/],
    ['a root_map value leaving the pack', variant((c) => (c.sources.packed_catalog.args.root_map = { abc: '../../../etc' })), /E_UNSAFE_PATH: .*root_map value of "abc" "\.\.\/\.\.\/\.\.\/etc" leads out of/],
  ];
  for (const [what, catalog, message] of cases) {
    const pack = path.join(sb.root, `pack-${what.replace(/\W+/g, '-')}`);
    cpSync(good, pack, { recursive: true });
    writeFileSync(path.join(pack, 'catalog.yml'), stringify(catalog));
    const packDigest = await treeDigest(pack);
    const before = await tree(sb.root);
    for (const mode of ['inplace', 'mongo_normalized']) {
      const r = await timedCli(t, ['unpack', mode, pack, 'hostile', ...(mode === 'mongo_normalized' ? ['--mongo-uri', NO_MONGO] : [])], { env: sb.env });
      t.equal(r.code, 1, `${what} (${mode}): exit 1`);
      t.match(oneLine(t, r), message, `${what} (${mode}): one line naming the problem`);
    }
    t.same(await tree(sb.root), before, `${what}: nothing written (no intake file)`);
    t.same(await treeDigest(pack), packDigest, `${what}: the pack is untouched`);
  }

  // A pack whose args.paths point elsewhere: the written paths are rebuilt from where the pack is.
  const moved = path.join(sb.root, 'pack-moved');
  cpSync(good, moved, { recursive: true });
  writeFileSync(path.join(moved, 'catalog.yml'), stringify(variant((c) => (c.sources.packed_catalog.args.paths = [path.join(elsewhere, '*.msgpack')]))));
  const r = await timedCli(t, ['unpack', 'inplace', moved, 'moved'], { env: sb.env });
  t.equal(r.code, 0, r.stderr);
  const written = parse(readFileSync(path.join(sb.userDir, 'databroker_unpack_moved.yml'), 'utf8')) as { sources: Record<string, { args: { paths: string[] } }> };
  t.same(Object.keys(written), ['sources'], 'only sources is written');
  t.same(Object.keys(written.sources), ['moved'], 'only the one source');
  t.same(written.sources.moved!.args.paths, [path.join(moved, 'documents', '*.msgpack')], 'paths point into the pack, not where the file said');
  const listed = await timedCli(t, ['inspect', 'moved', '--json'], { env: sb.env });
  t.equal(listed.code, 0, listed.stderr);
  t.notOk(listed.stdout.includes('"other"'), 'the run elsewhere is not reachable through the catalog');
});

t.test('inspect and verify do not look at files outside their root, and print names escaped', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  const data = path.join(root, 'data');
  const frame = makeArray('<u2', [2, 3], (i) => i);
  writeNpy(path.join(data, 'ok.npy'), frame);
  writeNpy(path.join(root, 'outside', 'secret.npy'), frame);
  resourceRun(runs, 'good-ext', 'npy', data, 'ok.npy');
  writeMsgpackRun(path.join(runs, 'loud.msgpack'), scalarRun('loud', { plan: '\u001b]0;pwned\u0007\u001b[2J', t0: 1600000100 }));
  resourceRun(runs, 'evil-up', 'npy', data, '../outside/secret.npy');
  const sources = await treeDigest(root);

  const inspected = await timedCli(t, ['inspect', runs]);
  t.equal(inspected.code, 0, inspected.stderr);
  t.notOk(inspected.stdout.includes('\u001b'), 'no raw escape sequence reaches the terminal');
  t.match(inspected.stdout, /loud .*\\x1b\]0;pwned\\x07\\x1b\[2J/, 'the plan name is shown escaped');
  t.match(inspected.stdout, /^evil-up .*0 external files \(0 B\), 1 refused \(outside their root or with control characters\)$/m, 'the file outside its root is refused, not sized');
  const json = await timedCli(t, ['inspect', runs, '--json']);
  const evil = (JSON.parse(json.stdout) as { runs: { uid: string; external: object }[] }).runs.find((r) => r.uid === 'evil-up');
  t.match(evil?.external, { files: 0, unsafe: 1 }, 'JSON: unsafe counted');

  // A pack whose catalog and documents were edited to point out of it.
  const pack = path.join(root, 'pack');
  const packed = await timedCli(t, ['pack', runs, pack, '--uids', '-', '--copy-external'], { input: 'good-ext\n' });
  t.equal(packed.code, 0, packed.stderr);
  const catalog = parse(readFileSync(path.join(pack, 'catalog.yml'), 'utf8')) as any;
  const hash = Object.keys(catalog.sources.packed_catalog.args.root_map)[0]!;
  writeDetectorRun(path.join(pack, 'documents'), 'evil-up', [{ spec: 'npy', root: hash, resource_path: '../../../outside/secret.npy', resource_kwargs: {}, datums: [{}] }]);
  catalog.sources.packed_catalog.args.root_map.evilkey = '../../..';
  writeFileSync(path.join(pack, 'catalog.yml'), stringify(catalog));
  const verified = await timedCli(t, ['verify', pack]);
  t.equal(verified.code, 1);
  t.match(verified.stdout, /^unsafe-path: root_map maps "evilkey" to "\.\.\/\.\.\/\.\.", which leads out of the pack \(not looked at\)$/m);
  t.match(verified.stdout, /^unsafe-path: documents\/evil-up\.msgpack: resource "evil-up-res0": resource path ".*\/outside\/secret\.npy" is not inside its resource root ".*external_files\/[0-9a-f]{32}", so it is refused \(not looked at\)$/m);
  t.same(Object.fromEntries(Object.entries(await treeDigest(root)).filter(([k]) => !k.startsWith('pack/'))), sources, 'sources untouched');
});

t.test('a resource root holding an intake template fails its run; catalog.yml stays plain', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  const data = path.join(root, 'data');
  const templated = path.join(root, "{{ env('HOME') }}");
  const frame = makeArray('<u2', [2, 3], (i) => i);
  writeNpy(path.join(data, 'ok.npy'), frame);
  writeNpy(path.join(templated, 'ok.npy'), frame); // a real file, so only the name can stop it
  resourceRun(runs, 'good-ext', 'npy', data, 'ok.npy');
  resourceRun(runs, 'evil-root', 'npy', templated, 'ok.npy');
  const sources = await treeDigest(root);
  for (const extra of [[], ['--no-documents']]) {
    const dest = path.join(root, `out${extra.join('')}`);
    const r = await timedCli(t, ['pack', runs, dest, '--all', ...extra]);
    t.equal(r.code, 1, `${extra.join(' ') || 'default'}: exit 1`);
    const lines = failureLines(r.stderr);
    t.equal(lines.length, 1);
    t.match(lines[0], /^ {2}evil-root: E_UNSAFE_PATH: resource "evil-root-res0": resource root ".*\{\{ env\('HOME'\) \}\}" holds an intake template marker/);
    const catalog = readFileSync(path.join(dest, 'catalog.yml'), 'utf8');
    t.notOk(/\{\{|\{%/.test(catalog), 'no template in catalog.yml');
    t.match(catalog, data, 'the good root is there');
  }
  t.same(Object.fromEntries(Object.entries(await treeDigest(root)).filter(([k]) => !k.startsWith('out'))), sources, 'sources untouched');
});
