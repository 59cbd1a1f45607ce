/**
 * A pack read over HTTP from a node:http server on 127.0.0.1 that cuts
 * connections part-way through every document file and external file on
 * first request: the pack read over HTTP equals the local one, every cut was
 * resumed with a Range request (counted), the authentication header is sent
 * and never printed, and the options that work on a local pack work on the URL.
 */
import t from 'tap';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from './helpers/cli.js';
import { treeDigest } from './helpers/files.js';
import { serveDirectory } from './helpers/http-server.js';
import { travelCatalog } from './helpers/travel-fixture.js';

const TOKEN = 'Bearer s3cret-token-value';

function withoutCatalog(d: Record<string, string>): Record<string, string> {
  const { ['catalog.yml']: _drop, ...rest } = d;
  return rest;
}

t.test('a pack over HTTP with dropped connections equals the local pack', async (t) => {
  const f = travelCatalog({ runs: 3, bigBytes: 3 * 1024 * 1024 });
  const dirpack = path.join(f.dir, 'dirpack');
  t.equal((await runCli(['pack', f.runs, dirpack, '--all', '--copy-external', '--salt', 'S'])).code, 0);
  const cutFiles = new Set<string>();
  const srv = await serveDirectory(dirpack, {
    require: ['Authorization', TOKEN],
    // The first request for each document file and external file is cut half-way.
    drop: (rel, n) => {
      if (n !== 1 || !/^(documents|external_files)\//.test(rel)) return undefined;
      cutFiles.add(rel);
      return Math.floor(statSync(path.join(dirpack, rel)).size / 2);
    },
  });
  t.teardown(() => srv.close());
  const url = `${srv.url}`;
  const header = ['--header', `Authorization: ${TOKEN}`];

  const local = path.join(f.dir, 'local');
  const remote = path.join(f.dir, 'remote');
  t.equal((await runCli(['pack', dirpack, local, '--all', '--copy-external', '--salt', 'T'])).code, 0);
  const r = await runCli(['pack', url, remote, '--all', '--copy-external', '--salt', 'T', ...header]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stderr, /s3cret/, 'the header value is never printed');
  t.same(withoutCatalog(await treeDigest(remote, { mtime: false })), withoutCatalog(await treeDigest(local, { mtime: false })), 'same files, same bytes (catalog.yml names its own directory)');
  t.ok(existsSync(path.join(remote, 'catalog.yml')));
  const bigOnes = [...cutFiles].filter((p) => p.startsWith('external_files/') && statSync(path.join(dirpack, p)).size > 1024 * 1024);
  t.equal(bigOnes.length, 3, 'three large external files were cut');
  t.ok([...cutFiles].some((p) => p.startsWith('documents/')), 'document files were cut');
  t.equal(srv.stats.drops, cutFiles.size, `every cut counted (${srv.stats.drops})`);
  t.equal(srv.stats.ranged, srv.stats.drops, 'each cut resumed by one Range request');

  // No header: refused, one line, nothing written.
  const anon = await runCli(['pack', url, path.join(f.dir, 'anon'), '--all']);
  t.equal(anon.code, 1);
  t.match(anon.stderr, /^pack-stream: E_AUTH: .*HTTP 401/);
  t.equal(anon.stderr.trim().split('\n').length, 1, 'one line');
  t.notOk(existsSync(path.join(f.dir, 'anon')));

  // The options of a local pack work on the URL.
  const fillLocal = await runCli(['pack', dirpack, path.join(f.dir, 'fill-local'), '--all', '--fill-external']);
  const fillRemote = await runCli(['pack', url, path.join(f.dir, 'fill-remote'), '--all', '--fill-external', ...header]);
  t.equal(fillRemote.code, 0, fillRemote.stderr);
  t.equal(fillLocal.code, 0, fillLocal.stderr);
  t.same(withoutCatalog(await treeDigest(path.join(f.dir, 'fill-remote'), { mtime: false })), withoutCatalog(await treeDigest(path.join(f.dir, 'fill-local'), { mtime: false })), '--fill-external');
  const q = await runCli(['pack', url, path.join(f.dir, 'q'), '-q', '{"scan_id": 2}', ...header]);
  t.equal(q.code, 0, q.stderr);
  t.equal(readdirSync(path.join(f.dir, 'q', 'documents')).length, 1, '-q');
  writeFileSync(path.join(f.dir, 'uids.txt'), `run-0-${'x'.repeat(20)}\n3\n`);
  const u = await runCli(['pack', url, path.join(f.dir, 'u'), '--uids', path.join(f.dir, 'uids.txt'), ...header]);
  t.equal(u.code, 0, u.stderr);
  t.equal(readdirSync(path.join(f.dir, 'u', 'documents')).length, 2, '--uids');
  const ins = await runCli(['inspect', url, ...header]);
  t.equal(ins.code, 0, ins.stderr);
  t.match(ins.stdout, /total: 3 runs/, 'inspect URL');
  const ver = await runCli(['verify', url, ...header]);
  t.equal(ver.code, 0, ver.stderr);
  t.match(ver.stderr, /3 run\(s\).*OK/, 'verify URL');
  const env = { XDG_DATA_HOME: path.join(f.dir, 'xdg'), HOME: f.dir };
  const unpacked = path.join(f.dir, 'unpacked');
  const up = await runCli(['unpack', 'inplace', url, 'fromhttp', '--dir', unpacked, ...header], { env });
  t.equal(up.code, 0, up.stderr);
  t.same(await treeDigest(unpacked, { mtime: false }), await treeDigest(dirpack, { mtime: false }), 'unpack inplace URL --dir: the pack as served');
  t.ok(existsSync(path.join(f.dir, 'xdg', 'intake', 'databroker_unpack_fromhttp.yml')));
});
