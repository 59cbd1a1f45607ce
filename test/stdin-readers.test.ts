/**
 * Reading packs and document streams from stdin, as the far side of an ssh
 * pipe does: the library's own extraction equals the directory export; a
 * document stream carries runs between sources; a cut stream loses only the
 * run it cut; hostile archives are refused by every reader, leaving nothing.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import { treeDigest, tempDir } from './helpers/files.js';
import { CLI } from './helpers/paths.js';
import { runCli } from './helpers/cli.js';
import { travelCatalog } from './helpers/travel-fixture.js';

/** Run the CLI with `input` (bytes) on stdin. */
function cliWithInput(args: string[], input: Buffer, env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd: cwd ?? process.cwd(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    c.stdin.on('error', () => {});
    c.stdin.end(input);
  });
}

async function makeTar(entries: { name: string; type?: 'file' | 'symlink' | 'link' | 'character-device' | 'fifo' | 'directory'; body?: string; linkname?: string }[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}) };
      p.entry(header, e.type === 'file' || e.type === undefined ? (e.body ?? 'x') : '', (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

t.test('unpack inplace - NAME --dir DIR: the extraction equals the directory export; inspect -, verify -, pack - read it too', async (t) => {
  const f = travelCatalog({ runs: 3 });
  const dirpack = path.join(f.dir, 'dirpack');
  const common = ['--all', '--copy-external', '--salt', 'S'];
  t.equal((await runCli(['pack', f.runs, dirpack, ...common])).code, 0);
  const tarred = await cliWithInput(['pack', f.runs, '-', ...common, '--pack-path', dirpack], Buffer.alloc(0));
  t.equal(tarred.code, 0, tarred.stderr);
  const env = { XDG_DATA_HOME: path.join(f.dir, 'xdg'), HOME: f.dir };
  const target = path.join(f.dir, 'unpacked');
  const u = await cliWithInput(['unpack', 'inplace', '-', 'moved', '--dir', target], tarred.stdout, env);
  t.equal(u.code, 0, u.stderr);
  t.same(await treeDigest(target, { mtime: false }), await treeDigest(dirpack, { mtime: false }), 'file for file, byte for byte');
  t.ok(existsSync(path.join(f.dir, 'xdg', 'intake', 'databroker_unpack_moved.yml')), 'the catalog is known by name');

  const ins = await cliWithInput(['inspect', '-'], tarred.stdout);
  t.equal(ins.code, 0, ins.stderr);
  t.match(ins.stdout.toString(), /total: 3 runs/);
  const ver = await cliWithInput(['verify', '-'], tarred.stdout);
  t.equal(ver.code, 0, ver.stderr);
  t.match(ver.stderr, /stdin: 3 run\(s\).*OK/);
  const re = await cliWithInput(['pack', '-', path.join(f.dir, 'repacked'), '--all', '--copy-external'], tarred.stdout);
  t.equal(re.code, 0, re.stderr);
  t.equal(readdirSync(path.join(f.dir, 'repacked', 'documents')).length, 3);
  t.equal(readdirSync(path.join(f.dir, 'repacked', 'external_files')).length, 2, 'the copied files of the pack on stdin are packed again');
});

t.test('unpack inplace - extracts straight into DIR: nothing beside it, a refused archive leaves an empty DIR empty', async (t) => {
  const f = travelCatalog({ runs: 2 });
  const dirpack = path.join(f.dir, 'dirpack');
  t.equal((await runCli(['pack', f.runs, dirpack, '--all', '--copy-external', '--salt', 'S'])).code, 0);
  const tarred = await cliWithInput(['pack', f.runs, '-', '--all', '--copy-external', '--salt', 'S', '--pack-path', dirpack], Buffer.alloc(0));
  t.equal(tarred.code, 0, tarred.stderr);
  const parent = path.join(f.dir, 'parent');
  const given = path.join(parent, 'given');
  mkdirSync(given, { recursive: true });
  // As for a user given /data/packs/NAME but not /data/packs: only DIR is writable (not checkable as root).
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) chmodSync(parent, 0o555);
  t.teardown(() => chmodSync(parent, 0o755));
  const env = { XDG_DATA_HOME: path.join(f.dir, 'xdg'), HOME: f.dir };
  const bad = await cliWithInput(['unpack', 'inplace', '-', 'cut', '--dir', given], tarred.stdout.subarray(0, tarred.stdout.length - 1024), env);
  t.equal(bad.code, 1, bad.stderr);
  t.same(readdirSync(given), [], 'a refused archive: DIR is left as it was, empty');
  const u = await cliWithInput(['unpack', 'inplace', '-', 'given', '--dir', given], tarred.stdout, env);
  t.equal(u.code, 0, u.stderr);
  t.same(readdirSync(parent), ['given'], 'nothing was written beside DIR');
  t.same(await treeDigest(given, { mtime: false }), await treeDigest(dirpack, { mtime: false }), 'DIR holds the pack, file for file');
});

for (const format of ['jsonl', 'msgpack']) {
  t.test(`--documents-only streams (${format}) are a SOURCE on stdin; a cut stream loses only the run it cut`, async (t) => {
    const f = travelCatalog({ runs: 4 });
    const direct = path.join(f.dir, 'direct');
    t.equal((await runCli(['pack', f.runs, direct, '--all', '--salt', 'S', '--format', format])).code, 0);
    const stream = await cliWithInput(['pack', f.runs, '-', '--all', '--documents-only', '--format', format], Buffer.alloc(0));
    t.equal(stream.code, 0, stream.stderr);
    if (format === 'jsonl') t.match(stream.stdout.toString().split('\n')[0], /^\["start", \{/, 'suitcase-jsonl lines');
    const via = path.join(f.dir, 'via');
    const r = await cliWithInput(['pack', '-', via, '--all', '--salt', 'S', '--format', format], stream.stdout);
    t.equal(r.code, 0, r.stderr);
    const a = await treeDigest(direct, { mtime: false });
    const b = await treeDigest(via, { mtime: false });
    delete a['catalog.yml'];
    delete b['catalog.yml'];
    t.same(b, a, 'the same pack as packing the source directly (catalog.yml aside: it names its own directory)');

    // Cut inside the third run of the stream (of four, newest first: run-3, run-2, run-1, run-0).
    const thirdUid = 'run-1-' + 'x'.repeat(20);
    const at = stream.stdout.indexOf(Buffer.from(`${thirdUid}-ev1`));
    t.ok(at > 0);
    const cut = await cliWithInput(['pack', '-', path.join(f.dir, 'cut'), '--all', '--format', format], stream.stdout.subarray(0, at));
    t.equal(cut.code, 1, 'a lost run is a failure');
    t.match(cut.stderr, new RegExp(`${thirdUid}: .*cut inside run|${thirdUid}: .*ended inside run`));
    t.equal(readdirSync(path.join(f.dir, 'cut', 'documents')).length, 2, 'the two whole runs before it are packed');
    t.match(readFileSync(path.join(f.dir, 'cut', 'failures.tsv'), 'utf8'), thirdUid);
  });
}

t.test('hostile archives are refused by every reader, and nothing is left looking complete', async (t) => {
  const f = travelCatalog({ runs: 1 });
  const good = (await cliWithInput(['pack', f.runs, '-', '--all', '--copy-external'], Buffer.alloc(0))).stdout;
  const base = [{ name: 'documents/a.msgpack', body: 'x' }];
  const cases: [string, Buffer, RegExp][] = [
    ['absolute name', await makeTar([...base, { name: '/tmp/pwned' }]), /"\/tmp\/pwned" refused: absolute path/],
    ['.. component', await makeTar([...base, { name: 'documents/../../pwned' }]), /"documents\/\.\.\/\.\.\/pwned" refused: '\.\.' component/],
    ['symlink escape', await makeTar([{ name: 'external_files', type: 'symlink', linkname: '/etc' }, { name: 'external_files/passwd' }]), /"external_files" refused: a symbolic link/],
    ['hard link escape', await makeTar([...base, { name: 'documents/b.msgpack', type: 'link', linkname: '../../etc/passwd' }]), /"documents\/b\.msgpack" refused: a hard link/],
    ['device node', await makeTar([...base, { name: 'documents/null', type: 'character-device' }]), /"documents\/null" refused: a character-device entry/],
    ['fifo', await makeTar([...base, { name: 'documents/fifo', type: 'fifo' }]), /"documents\/fifo" refused: a fifo entry/],
    ['entry twice', await makeTar([...base, ...base]), /appears twice/],
    ['truncated in an entry', good.subarray(0, Math.floor(good.length / 2)), /E_BAD_ARCHIVE: .*(cut off|cannot be read)/],
    ['cut at an entry boundary', good.subarray(0, good.length - 1024), /E_BAD_ARCHIVE: .*cut off/],
  ];
  const readers: [string, (dir: string) => string[]][] = [
    ['unpack inplace', (dir) => ['unpack', 'inplace', '-', 'evil', '--dir', path.join(dir, 'target')]],
    ['unpack mongo_normalized', (dir) => ['unpack', 'mongo_normalized', '-', 'evil', '--external-dir', path.join(dir, 'target'), '--mongo-uri', 'mongodb://127.0.0.1:1/x']],
    ['pack -', (dir) => ['pack', '-', path.join(dir, 'target'), '--all']],
    ['inspect -', () => ['inspect', '-']],
    ['verify -', () => ['verify', '-']],
  ];
  for (const [what, archive, message] of cases) {
    for (const [reader, args] of readers) {
      const dir = tempDir();
      const tmp = path.join(dir, 'tmp');
      mkdirSync(tmp);
      const r = await cliWithInput(args(dir), archive, { TMPDIR: tmp, XDG_DATA_HOME: path.join(dir, 'xdg') });
      t.equal(r.code, 1, `${what} / ${reader}: exit 1`);
      const lines = r.stderr.trim().split('\n');
      t.equal(lines.length, 1, `${what} / ${reader}: one line (${r.stderr.trim()})`);
      t.match(lines[0], message, `${what} / ${reader}: names the entry`);
      t.notOk(existsSync(path.join(dir, 'target')), `${what} / ${reader}: no target left`);
      t.same(readdirSync(tmp), [], `${what} / ${reader}: no temporary files left`);
      t.same(readdirSync(dir).filter((n) => n.includes('extract')), [], `${what} / ${reader}: no staging left`);
      t.notOk(existsSync(path.join(dir, 'xdg', 'intake')), `${what} / ${reader}: no catalog registered`);
    }
  }
  writeFileSync(path.join(f.dir, 'ok'), '');
});
