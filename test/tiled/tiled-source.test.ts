/**
 * Packing from a real Tiled server over HTTP on 127.0.0.1 (the built CLI, as a
 * user runs it), read back by Python databroker 1.2.5 and compared with what
 * the server holds: start and stop, every stream's seq_num, time, data and
 * timestamps, and the external arrays.
 */
import type { Test } from 'tap';
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { tempDir, treeDigest } from '../helpers/files.js';
import { pythonOrSkip } from '../helpers/python.js';
import { dumpPack, dumpServer, loadRuns, startTiled, tiledPythonOrSkip, type LoadedRun, type TiledServer } from '../helpers/tiled.js';

const tiledPython = tiledPythonOrSkip();
const packPython = pythonOrSkip();

function pack(server: TiledServer, dest: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(['pack', `tiled+${server.url}`, dest, ...args], { env: { TILED_API_KEY: server.apiKey, ...env } });
}

function pythonReadsPackEqual(t: Test, server: TiledServer, runs: LoadedRun[], dest: string) {
  if (!packPython) return;
  const uids = runs.map((r) => r.uid);
  const want = dumpServer(server, uids);
  const got = dumpPack(packPython, path.join(dest, 'catalog.yml'), uids);
  for (const r of runs) {
    t.same(got[r.uid]!.start, want[r.uid]!.start, `${r.key}: start equals the server's`);
    t.same(got[r.uid]!.stop, want[r.uid]!.stop, `${r.key}: stop equals the server's`);
    t.same(Object.keys(got[r.uid]!.streams).sort(), Object.keys(want[r.uid]!.streams).sort(), `${r.key}: same streams`);
    for (const [name, s] of Object.entries(want[r.uid]!.streams)) {
      t.same(got[r.uid]!.streams[name], s, `${r.key}/${name}: seq_num, time, data (external arrays too) and timestamps equal the server's`);
    }
  }
}

for (const exporter of [true, false]) {
  t.test(`SQL-backed runs ${exporter ? 'through the json-seq exporter' : 'rebuilt from tables'}`, { skip: tiledPython ? false : 'no Python 3.11 for the Tiled virtualenv' }, async (t) => {
    const server = await startTiled(tiledPython as string, { exporter });
    t.teardown(() => server.stop());
    const runs = loadRuns(server, { points: 3 });
    const dir = tempDir();

    for (const mode of ['--copy-external', '--fill-external']) {
      const dest = path.join(dir, mode);
      const r = await pack(server, dest, ['--all', mode, '--salt', 's']);
      t.equal(r.code, 0, `${mode}: exit 0 (${r.stderr})`);
      t.notMatch(r.stderr, server.apiKey, 'the key is never printed');
      pythonReadsPackEqual(t, server, runs, dest);
      const cat = parseYaml(readFileSync(path.join(dest, 'catalog.yml'), 'utf8')) as { sources: { packed_catalog: { metadata: { tiled: { rebuilt_runs: Record<string, string> } } } } };
      t.same(Object.values(cat.sources.packed_catalog.metadata.tiled.rebuilt_runs), runs.map(() => (exporter ? 'json-seq exporter' : 'tables')), 'catalog.yml says how each run was rebuilt');
    }

    // Default mode: the files are listed where the server has them.
    const listed = path.join(dir, 'manifest');
    const r = await pack(server, listed, ['--all', '--salt', 's']);
    t.equal(r.code, 0, r.stderr);
    const manifests = readdirSync(listed).filter((f) => f.startsWith('external_files_manifest_'));
    const lines = manifests.flatMap((f) => readFileSync(path.join(listed, f), 'utf8').split('\n').filter(Boolean)).sort();
    t.equal(lines.length, 1 + 3, 'one HDF5 file and three NPY files listed');
    t.ok(lines.every((l) => l.startsWith(server.detectorDir)), 'listed at their paths on the server');

    // Stable uids: the same server gives the same documents twice.
    const again = path.join(dir, 'again');
    t.equal((await pack(server, again, ['--all', '--copy-external', '--salt', 's'])).code, 0);
    t.same(await treeDigest(path.join(again, 'documents'), { mtime: false }), await treeDigest(path.join(dir, '--copy-external', 'documents'), { mtime: false }), 'same documents, byte for byte');

    // Selection: queries go to the server where Tiled can express them.
    const q = path.join(dir, 'q');
    t.equal((await pack(server, q, ['-q', "{'plan_name': 'count', 'num_points': {'$gte': 3}}", '--ignore-external'])).code, 0);
    t.same(readdirSync(path.join(q, 'documents')).sort(), runs.filter((x) => x.key.startsWith('count')).map((x) => `${x.uid}.msgpack`).sort(), '-q with $eq and a comparison');
    const u = path.join(dir, 'uids');
    const scan = runs.find((x) => x.key === 'scan_hdf5')!;
    const base = runs.find((x) => x.key === 'scan_baseline')!;
    t.equal((await runCli(['pack', `tiled+${server.url}`, u, '--uids', '-', '--ignore-external'], { env: { TILED_API_KEY: server.apiKey }, input: `${scan.scan_id}\n${base.uid.slice(0, 8)}\n-1\n` })).code, 0);
    const newest = runs[runs.length - 1]!;
    t.same(readdirSync(path.join(u, 'documents')).sort(), [...new Set([scan.uid, base.uid, newest.uid])].map((x) => `${x}.msgpack`).sort(), '--uids: scan_id, uid prefix, negative index');

    // A wrong key is one line, and never printed.
    const bad = await pack(server, path.join(dir, 'bad'), ['--all'], { TILED_API_KEY: 'wrongkey0123' });
    t.equal(bad.code, 1);
    t.equal(bad.stderr.trim().split('\n').length, 1, `one line: ${bad.stderr}`);
    t.match(bad.stderr, /E_AUTH.*API key.*--api-key or TILED_API_KEY/);
    t.notMatch(bad.stderr, 'wrongkey0123');
  });
}
