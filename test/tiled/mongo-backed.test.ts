/**
 * A Mongo-backed Tiled server: databroker 2's MongoAdapter over the test
 * MongoDB-wire server (mongo-java-server, scripts/mongo-java-server.sh),
 * holding the example catalog's real RunEngine runs. Packing through Tiled
 * gives the documents pack-stream packs from the same MongoDB directly.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir, treeDigest } from '../helpers/files.js';
import { javaMongoSkipReason, startJavaMongo } from '../helpers/java-mongo.js';
import { REPO } from '../helpers/paths.js';
import { sandbox } from '../helpers/sandbox.js';
import { startTiled, tiledPythonOrSkip } from '../helpers/tiled.js';

const tiledPython = tiledPythonOrSkip();
const skip = !tiledPython ? 'no Python 3.11 for the Tiled virtualenv' : javaMongoSkipReason();

t.test('Mongo-backed Tiled runs pack as from MongoDB itself', { skip }, async (t) => {
  const mongo = await startJavaMongo();
  t.teardown(() => mongo.stop());
  const db = `${mongo.uri}ps_tiled`;
  const box = sandbox();
  const unpack = await runCli(['unpack', 'mongo_normalized', path.join(REPO, 'examples', 'catalog'), 'tiledex', '--mongo-uri', db], { env: box.env });
  t.equal(unpack.code, 0, unpack.stderr);
  const server = await startTiled(tiledPython as string, { mongoUri: db });
  t.teardown(() => server.stop());
  const dir = tempDir();
  const env = { ...box.env, TILED_API_KEY: server.apiKey };
  for (const fmt of ['msgpack', 'jsonl']) {
    const viaTiled = await runCli(['pack', server.url, path.join(dir, `tiled-${fmt}`), '--all', '--ignore-external', '--salt', 's', '--format', fmt], { env });
    t.equal(viaTiled.code, 0, viaTiled.stderr);
    const direct = await runCli(['pack', db, path.join(dir, `mongo-${fmt}`), '--all', '--ignore-external', '--salt', 's', '--format', fmt], { env });
    t.equal(direct.code, 0, direct.stderr);
    const a = await treeDigest(path.join(dir, `tiled-${fmt}`, 'documents'), { mtime: false });
    t.equal(Object.keys(a).length, 4, 'four runs');
    t.same(a, await treeDigest(path.join(dir, `mongo-${fmt}`, 'documents'), { mtime: false }), `${fmt}: byte-identical documents`);
  }
  // Default mode lists the runs' files (from their resources) without a local check.
  const listed = await runCli(['pack', server.url, path.join(dir, 'listed'), '--all', '--salt', 's'], { env });
  t.equal(listed.code, 0, listed.stderr);
  t.ok(readdirSync(path.join(dir, 'listed')).some((f) => f.startsWith('external_files_manifest_')), 'external files listed');
  // uid prefixes go through databroker's partial_uid filter here.
  const uids = readdirSync(path.join(dir, 'tiled-msgpack', 'documents')).map((f) => f.replace(/\.msgpack$/, ''));
  const byPrefix = await runCli(['pack', server.url, path.join(dir, 'prefix'), '--uids', '-', '--ignore-external'], { env, input: `${uids[0]!.slice(0, 8)}\n-1\n` });
  t.equal(byPrefix.code, 0, byPrefix.stderr);
  t.ok(readdirSync(path.join(dir, 'prefix', 'documents')).includes(`${uids[0]}.msgpack`), 'found by uid prefix');
});
