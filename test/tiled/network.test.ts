/**
 * Packing from Tiled over a network that drops connections, and from a server
 * that refuses raw assets.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir, treeDigest } from '../helpers/files.js';
import { cuttingProxy, loadRuns, startTiled, tiledPythonOrSkip } from '../helpers/tiled.js';

const tiledPython = tiledPythonOrSkip();
const skip = tiledPython ? false : 'no Python 3.11 for the Tiled virtualenv';

t.test('dropped connections are resumed', { skip }, async (t) => {
  const server = await startTiled(tiledPython as string, { exporter: true });
  t.teardown(() => server.stop());
  const runs = loadRuns(server, { points: 3 });
  const proxy = await cuttingProxy(server.url, /\/api\/v1\/(asset\/bytes|table\/full|container\/full|metadata)\//);
  t.teardown(() => proxy.close());
  const dir = tempDir();
  const env = { TILED_API_KEY: server.apiKey };
  const direct = await runCli(['pack', `tiled+${server.url}`, path.join(dir, 'direct'), '--all', '--copy-external', '--salt', 's'], { env });
  t.equal(direct.code, 0, direct.stderr);
  const cut = await runCli(['pack', `tiled+${proxy.url}`, path.join(dir, 'cut'), '--all', '--copy-external', '--salt', 's'], { env });
  t.equal(cut.code, 0, cut.stderr);
  t.ok(proxy.cuts >= runs.length, `the proxy cut ${proxy.cuts} responses`);
  t.same(await treeDigest(path.join(dir, 'cut', 'documents'), { mtime: false }), await treeDigest(path.join(dir, 'direct', 'documents'), { mtime: false }), 'the same documents');
  t.same(await treeDigest(path.join(dir, 'cut', 'external_files'), { mtime: false }), await treeDigest(path.join(dir, 'direct', 'external_files'), { mtime: false }), 'the same external files');
});

t.test('a server that refuses raw assets fails those runs clearly', { skip }, async (t) => {
  const server = await startTiled(tiledPython as string, { noRawAssets: true });
  t.teardown(() => server.stop());
  const runs = loadRuns(server, { points: 2 });
  const dest = path.join(tempDir(), 'pack');
  const r = await runCli(['pack', `tiled+${server.url}`, dest, '--all', '--copy-external'], { env: { TILED_API_KEY: server.apiKey } });
  t.equal(r.code, 1, 'exit code 1');
  const withFiles = runs.filter((x) => x.key === 'count_npy' || x.key === 'scan_hdf5');
  const failures = readFileSync(path.join(dest, 'failures.tsv'), 'utf8').trim().split('\n');
  t.same(failures.map((l) => l.split('\t')[0]).sort(), withFiles.map((x) => x.uid).sort(), 'the runs with external files failed');
  for (const l of failures) t.match(l, /\tE_AUTH\t.*run \S+: the server refuses to hand out the file \//, 'E_AUTH naming the file');
  t.same(readdirSync(path.join(dest, 'documents')).sort(), runs.filter((x) => !withFiles.includes(x)).map((x) => `${x.uid}.msgpack`).sort(), 'the other runs are packed');
  // Listing needs no download, so the default mode still works.
  const listed = await runCli(['pack', `tiled+${server.url}`, path.join(tempDir(), 'listed'), '--all'], { env: { TILED_API_KEY: server.apiKey } });
  t.equal(listed.code, 0, listed.stderr);
});
