/**
 * The pack as a tar stream: through a pipe as ssh carries it, GNU tar's
 * extraction equals the directory export file for file and byte for byte;
 * a reader that goes away stops the export with one line and exit 1; a run
 * larger than the spool cap goes through a temporary file; an external file
 * that changes size fails its run and leaves a readable archive.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import tar from 'tar-stream';
import { TarSink } from '../src/sinks/tar-sink.js';
import { treeDigest, tempDir } from './helpers/files.js';
import { CLI } from './helpers/paths.js';
import { runCli } from './helpers/cli.js';
import { travelCatalog } from './helpers/travel-fixture.js';

const HAS_TAR = spawnSync('tar', ['--version']).status === 0;

/** `sh -c` a pipeline; resolves with exit status and stderr. */
function sh(cmd: string, cwd: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const c = spawn('bash', ['-c', cmd], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stderr, ms: Date.now() - t0 }));
  });
}

const node = JSON.stringify(process.execPath);
const cli = JSON.stringify(CLI);

for (const format of ['msgpack', 'jsonl']) {
  t.test(`pack SRC - | (ssh stand-in) | tar -x equals the directory export (${format})`, { skip: !HAS_TAR && 'no tar' }, async (t) => {
    const f = travelCatalog({ runs: 4 });
    const dirpack = path.join(f.dir, 'dirpack');
    const common = ['--all', '--copy-external', '--salt', 'S', '--format', format];
    const d = await runCli(['pack', f.runs, dirpack, ...common]);
    t.equal(d.code, 0, d.stderr);
    const out = path.join(f.dir, 'x');
    mkdirSync(out);
    // `cat` in a child process stands in for ssh: bytes through a pipe into another process.
    const r = await sh(`set -o pipefail; ${node} ${cli} pack runs - ${common.join(' ')} --pack-path ${JSON.stringify(dirpack)} | cat | tar -xf - -C x`, f.dir);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /packed 4 run\(s\).* into stdout/);
    const want = await treeDigest(dirpack, { mtime: false });
    t.ok(Object.keys(want).some((k) => k.startsWith('external_files/')), 'external files are in the pack');
    t.ok(Object.keys(want).some((k) => k.length > 100), 'a name longer than ustar holds (pax)');
    t.same(await treeDigest(out, { mtime: false }), want, 'same files, same bytes');

    // --tar FILE: the same archive in a file, and catalog.yml is its last entry.
    const r2 = await runCli(['pack', f.runs, '--tar', path.join(f.dir, 'p.tar'), ...common, '--pack-path', dirpack]);
    t.equal(r2.code, 0, r2.stderr);
    const names: string[] = [];
    const ex = tar.extract();
    createReadStream(path.join(f.dir, 'p.tar')).pipe(ex);
    for await (const e of ex) {
      names.push(e.header.name);
      e.resume();
    }
    t.equal(names.at(-1), 'catalog.yml', 'catalog.yml last');
    t.equal(names.length, Object.keys(want).length, 'one entry per file');
    t.notOk(existsSync(path.join(f.dir, 'p.tar.partial')), 'no partial file left');
  });
}

t.test('a run larger than the spool cap goes through a temporary file and comes out the same', { skip: !HAS_TAR && 'no tar' }, async (t) => {
  const f = travelCatalog({ runs: 2, events: 12000 });
  const dirpack = path.join(f.dir, 'dirpack');
  const common = ['--all', '--salt', 'S'];
  t.equal((await runCli(['pack', f.runs, dirpack, ...common])).code, 0);
  const docs = readdirSync(path.join(dirpack, 'documents'));
  t.equal(docs.length, 2);
  t.ok(statSync(path.join(dirpack, 'documents', docs[0]!)).size > 1024 * 1024, 'a run larger than the 1 MiB cap');
  mkdirSync(path.join(f.dir, 'x'));
  const r = await sh(`set -o pipefail; TMPDIR=${JSON.stringify(f.dir)} ${node} ${cli} pack runs - ${common.join(' ')} --spool-cap 1 --pack-path ${JSON.stringify(dirpack)} | tar -xf - -C x`, f.dir);
  t.equal(r.code, 0, r.stderr);
  t.same(await treeDigest(path.join(f.dir, 'x'), { mtime: false }), await treeDigest(dirpack, { mtime: false }));
  t.notOk(readdirSync(f.dir).some((n) => n.startsWith('pack-stream-spool-')), 'spool files removed');
});

t.test('the reader goes away: one line, exit 1, quickly, no stack trace', async (t) => {
  const f = travelCatalog({ runs: 3, bigBytes: 8 * 1024 * 1024 });
  const r = await sh(`${node} ${cli} pack runs - --all --copy-external 2>err.txt | head -c 1000 >/dev/null; echo "exit=\${PIPESTATUS[0]}" >&2; cat err.txt >&2`, f.dir);
  t.match(r.stderr, /exit=1\n/, 'non-zero exit');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('pack-stream:'));
  t.equal(lines.length, 1, `one line: ${r.stderr}`);
  t.match(lines[0], /E_IO: stdout: the reader went away/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.ok(r.ms < 15000, `stopped (${r.ms} ms)`);
  t.comment(r.stderr.trim());
});

t.test('an external file that changes size while it is read fails its run; the archive stays readable', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'grows.bin');
  writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 7));
  const chunks: Buffer[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const out = new Writable({
    highWaterMark: 1024,
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      // Hold the output until the file has been cut short.
      gate.then(() => cb());
    },
  });
  const sink = new TarSink(out, 'test');
  await sink.open();
  const p = sink.addExternalFile('external_files/h/grows.bin', file);
  setTimeout(() => {
    truncateSync(file, 1000);
    release();
  }, 200);
  await t.rejects(p, { code: 'E_IO', message: /grows\.bin changed size while being read/ });
  await sink.writeFile('catalog.yml', 'x: 1\n');
  await sink.finish();
  const ex = tar.extract();
  const sizes: Record<string, number> = {};
  const done = (async () => {
    for await (const e of ex) {
      let n = 0;
      for await (const c of e) n += (c as Buffer).length;
      sizes[e.header.name] = n;
    }
  })();
  ex.end(Buffer.concat(chunks));
  await done;
  t.same(sizes, { 'external_files/h/grows.bin': 8 * 1024 * 1024, 'catalog.yml': 5 }, 'entries whole (the short file padded)');
});
