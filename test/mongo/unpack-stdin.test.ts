/**
 * `pack-stream unpack mongo_normalized - NAME` reading stdin through a pipe,
 * as ssh carries it, into a real server (FerretDB, or MONGODB_URI):
 * - a tar pack with copied external files: the files land in --external-dir,
 *   the catalog YAML's root_map points there, and MongoDB holds the pack's
 *   documents (canonical order, types and key order included);
 * - a JSONL and a msgpack document stream (`pack SRC - --documents-only`):
 *   MongoDB holds the source's documents.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { MongoClient } from 'mongodb';
import { MongoCatalog } from '../../src/sources/mongo-catalog.js';
import { openSource } from '../../src/sources/open.js';
import { CLI } from '../helpers/paths.js';
import { treeDigest } from '../helpers/files.js';
import { docsOf, firstDifference, runsOf, sandbox, uniqueDb } from '../helpers/mongo-fixtures.js';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';
import { travelCatalog } from '../helpers/travel-fixture.js';

/** `bash -c` a pipeline; resolves with its exit status and stderr. */
function sh(cmd: string, cwd: string, env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('bash', ['-c', cmd], { cwd, env: { ...process.env, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

const ps = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`;

if (skipUnlessMongo(t)) {
  const server = await startMongo();
  t.teardown(() => server.stop());
  const client = new MongoClient(server.uri);
  t.teardown(() => client.close());
  const dbs: string[] = [];
  t.teardown(async () => {
    for (const d of dbs) await client.db(d).dropDatabase().catch(() => {});
  });

  /** Every run of `want` is in `got` with the same canonical documents. */
  async function sameRuns(t: Test, wantCat: Parameters<typeof runsOf>[0], gotCat: Parameters<typeof runsOf>[0]) {
    const want = await runsOf(wantCat);
    const got = await runsOf(gotCat);
    t.same(got.map((r) => r.uid).sort(), want.map((r) => r.uid).sort(), 'the same runs');
    for (const w of want) {
      const g = got.find((r) => r.uid === w.uid);
      if (!g) continue;
      t.equal(firstDifference(await docsOf(w), await docsOf(g)), null, `run ${w.uid}: the same documents in canonical order`);
    }
    t.ok(want.length >= 3, 'several runs compared');
  }

  await t.test('a tar pack on stdin, external files into --external-dir', async (t) => {
    const f = travelCatalog({ runs: 3 });
    const sb = sandbox();
    const db = uniqueDb('stdintar');
    dbs.push(db);
    const uri = server.dbUri(db);
    const ext = path.join(f.dir, 'ext');
    // The same pack as a directory, to compare with (same salt: same root hashes).
    const dirpack = path.join(f.dir, 'dirpack');
    const d = await sh(`${ps} pack runs ${JSON.stringify(dirpack)} --all --copy-external --salt S`, f.dir, sb.env);
    t.equal(d.code, 0, d.stderr);
    const r = await sh(`set -o pipefail; ${ps} pack runs - --all --copy-external --salt S | cat | ${ps} unpack mongo_normalized - viatar --mongo-uri ${JSON.stringify(uri)} --external-dir ${JSON.stringify(ext)}`, f.dir, sb.env);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /stored 3 run\(s\)/);
    t.same(await treeDigest(ext, { mtime: false }), await treeDigest(path.join(dirpack, 'external_files'), { mtime: false }), 'external files land in --external-dir, byte for byte');

    const yaml = parse(readFileSync(path.join(sb.userDir, 'databroker_unpack_viatar.yml'), 'utf8'), { version: '1.1' });
    const entry = yaml.sources.viatar;
    t.equal(entry.driver, 'bluesky-mongo-normalized-catalog');
    t.equal(entry.args.metadatastore_db, uri);
    const roots = Object.entries(entry.args.root_map as Record<string, string>);
    t.ok(roots.length >= 1, 'root_map kept');
    for (const [k, v] of roots) t.equal(v, path.join(ext, k), `root ${k} points into --external-dir`);

    const pack = await openSource(dirpack);
    const mongo = MongoCatalog.fromUri(uri);
    t.teardown(() => mongo.close());
    await sameRuns(t, pack, mongo);
    await pack.close?.();
  });

  for (const format of ['jsonl', 'msgpack']) {
    await t.test(`a ${format} document stream on stdin`, async (t) => {
      const f = travelCatalog({ runs: 4 });
      const sb = sandbox();
      const db = uniqueDb(`stdin${format}`);
      dbs.push(db);
      const uri = server.dbUri(db);
      const r = await sh(`set -o pipefail; ${ps} pack runs - --all --documents-only --format ${format} | cat | ${ps} unpack mongo_normalized - via${format} --mongo-uri ${JSON.stringify(uri)}`, f.dir, sb.env);
      t.equal(r.code, 0, r.stderr);
      t.match(r.stderr, /stored 4 run\(s\)/);
      const yaml = parse(readFileSync(path.join(sb.userDir, `databroker_unpack_via${format}.yml`), 'utf8'), { version: '1.1' });
      t.equal(yaml.sources[`via${format}`].args.metadatastore_db, uri);
      const source = await openSource(f.runs);
      const mongo = MongoCatalog.fromUri(uri);
      t.teardown(() => mongo.close());
      await sameRuns(t, source, mongo);
      await source.close?.();
      // A re-run of the same stream stores nothing new.
      const again = await sh(`set -o pipefail; ${ps} pack runs - --all --documents-only --format ${format} | ${ps} unpack mongo_normalized - via${format} --mongo-uri ${JSON.stringify(uri)}`, f.dir, sb.env);
      t.equal(again.code, 0, again.stderr);
      t.match(again.stderr, / 0 documents inserted/);
    });
  }
}
