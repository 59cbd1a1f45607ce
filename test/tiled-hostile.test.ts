/**
 * Hostile Tiled servers: a node:http server in the test answers Tiled's
 * description and then lies in its search pages (not a list, malformed
 * entries, paging that loops, a page that never ends, run uids that would
 * name paths outside the target). Each pack stops with a typed one-line
 * error (or fails the run), non-zero exit, within its time and memory budget,
 * and writes nothing outside its target. Needs no Python: default suite.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runCliWithin } from './helpers/cli.js';
import { tempDir } from './helpers/files.js';

const entry = (id: string, uid: string) => ({ id, attributes: { specs: [{ name: 'BlueskyRun', version: '3.0' }], metadata: { start: { uid, time: 1, scan_id: 1 } } } });

type Mode = (res: http.ServerResponse, offset: number) => void;

const MODES: [string, Mode, RegExp][] = [
  ['search answer that is not a list', (res) => res.end('{"data": "nope", "meta": {"count": 1}}'), /^pack-stream: E_HTTP: .*not a Tiled search page: 'data' is not a list$/],
  ['entries without ids', (res) => res.end('{"data": [1, {"id": 3}], "meta": {"count": 2}}'), /^pack-stream: E_HTTP: .*not a Tiled search page: an entry without a string 'id'/],
  ['malformed specs', (res) => res.end(JSON.stringify({ data: [{ id: 'a', attributes: { specs: 'BlueskyRun' } }], meta: { count: 1 } })), /^pack-stream: E_HTTP: .*entry "a" has malformed 'specs'$/],
  ['not JSON', (res) => res.end('<html>'), /^pack-stream: E_HTTP: .*not a Tiled search page: not JSON/],
  ['paging that loops', (res) => res.end(JSON.stringify({ data: [entry('a', 'u1')], meta: { count: 1e9 } })), /^pack-stream: E_HTTP: .*returned only entries it had returned before; its paging loops/],
  [
    'a page that never ends',
    (res) => {
      res.write('{"data": [');
      const chunk = `${JSON.stringify(entry('a', 'u'))},`.repeat(1000);
      const more = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', more);
      more();
    },
    /^pack-stream: E_LIMIT: .*more than 67108864 bytes$/,
  ],
];

async function fakeTiled(search: Mode): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.on('error', () => {});
    if (u.pathname === '/api/v1/') return void res.end(JSON.stringify({ api_version: 0, library_version: '0.2.20', formats: {}, authentication: {} }));
    if (u.pathname === '/api/v1/metadata/') return void res.end('{"data": {"id": "", "attributes": {}}}');
    if (u.pathname === '/api/v1/search/') return search(res, Number(u.searchParams.get('page[offset]') ?? 0));
    res.writeHead(404).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

for (const [what, mode, message] of MODES) {
  t.test(`hostile Tiled: ${what}`, async (t) => {
    const srv = await fakeTiled(mode);
    t.teardown(() => srv.close());
    const dir = tempDir();
    const r = await runCliWithin(['pack', `tiled+${srv.url}`, path.join(dir, 'out'), '--all'], 60_000, { env: { TMPDIR: dir } });
    t.notOk(r.killed, 'no hang');
    t.equal(r.code, 1, 'exit 1');
    const lines = r.stderr.trim().split('\n');
    t.equal(lines.length, 1, `one line: ${r.stderr.trim().slice(0, 300)}`);
    t.match(lines[0], message);
    t.ok(r.peakRssMiB < 512, `peak RSS ${r.peakRssMiB.toFixed(0)} MiB under 512`);
    t.notOk(existsSync(path.join(dir, 'out', 'catalog.yml')), 'no catalog.yml');
  });
}

t.test('hostile Tiled: run uids and entry ids that name paths outside the target', async (t) => {
  const srv = await fakeTiled((res) => res.end(JSON.stringify({ data: [entry('..', '../../../evil'), entry('../x', '/tmp/evil2')], meta: { count: 2 } })));
  t.teardown(() => srv.close());
  const dir = tempDir();
  const out = path.join(dir, 'a', 'b', 'out');
  mkdirSync(path.join(dir, 'tmp'));
  const r = await runCliWithin(['pack', `tiled+${srv.url}`, out, '--all'], 60_000, { env: { TMPDIR: path.join(dir, 'tmp') } });
  t.notOk(r.killed, 'no hang');
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /"\.\.\/\.\.\/\.\.\/evil".*E_UNSAFE_PATH|E_UNSAFE_PATH.*"\.\.\/\.\.\/\.\.\/evil"/);
  t.match(r.stderr, /E_UNSAFE_PATH.*\/tmp\/evil2|\/tmp\/evil2.*E_UNSAFE_PATH/);
  t.notOk(existsSync('/tmp/evil2.msgpack'), 'nothing at an absolute uid');
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  const written = walk(dir).filter((f) => !f.startsWith(out + path.sep));
  t.same(written.filter((f) => /evil/.test(f)), [], 'no file named after a uid outside the target');
  t.notOk(existsSync(path.join(out, 'catalog.yml')), 'no run packed, so no catalog.yml');
});
