/**
 * MongoDB, both ways, against Python, on mongo-java-server (FerretDB v1, the
 * server of test/mongo, cannot hold the arrays inside arrays that every
 * bluesky start document has, so Python's suitcase-mongo cannot write into it):
 *
 * - `pack-stream unpack mongo_normalized`, then Python's `databroker.catalog[NAME]`
 *   (a BlueskyMongoCatalog, from the YAML pack-stream wrote) reads every run
 *   equal to the source, images filled through the root_map;
 * - `databroker-unpack mongo_normalized` of databroker-pack's pack, then
 *   `pack-stream pack NAME` packs from that database what databroker-pack packs.
 */
import t from 'tap';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { envWith, makeCorpus, MODES, pythonReads, pythonTool, SALT, packWithBoth } from '../helpers/interop.js';
import { javaMongoSkipReason, startJavaMongo } from '../helpers/java-mongo.js';
import { pythonOrSkip } from '../helpers/python.js';
import { sandbox } from '../helpers/sandbox.js';

const python = pythonOrSkip();
const SKIP = python ? javaMongoSkipReason() : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';

t.test('unpack mongo_normalized between pack-stream and databroker', { skip: SKIP }, async (t) => {
  const server = await startJavaMongo();
  t.teardown(() => server.stop());
  const dir = tempDir();
  const runs = makeCorpus(t, python as string, dir, ['msgpack', 'jsonl']);
  const sb = sandbox();
  const pyEnv = envWith(sb.env);

  for (const format of ['msgpack', 'jsonl'] as const) {
    const corpus = path.join(dir, `corpus-${format}`);
    const srcYaml = path.join(corpus, 'catalog.yml');
    const mode = 'copy';
    const args = ['--format', format, ...MODES[mode]!];

    await t.test(`pack-stream unpack mongo_normalized, Python reads (${format} pack)`, async (t) => {
      const pack = path.join(dir, `ps-${format}`);
      const name = `ours_${format}`;
      t.equal((await runCli(['pack', srcYaml, pack, '--all', ...args], { env: sb.env })).code, 0, 'pack-stream pack');
      const u = await runCli(['unpack', 'mongo_normalized', pack, name, '--mongo-uri', `${server.uri}ps_${format}`], { env: sb.env });
      t.equal(u.code, 0, 'pack-stream unpack mongo_normalized', { stderr: u.stderr });
      const rep = pythonReads(t, srcYaml, `databroker:${name}`, `databroker.catalog['${name}']`, runs, { env: pyEnv, images: true });
      t.equal(rep.catalog, 'BlueskyMongoCatalog', 'read by BlueskyMongoCatalog');
    });

    await t.test(`databroker-unpack mongo_normalized, pack-stream packs it (${format} pack)`, async (t) => {
      const pack = path.join(dir, `py-${format}`);
      const name = `theirs_${format}`;
      const p = pythonTool(python as string, 'databroker-pack', ['example', pack, '--all', '--salt', SALT, ...args], { ...pyEnv, INTAKE_PATH: corpus });
      t.equal(p.code, 0, 'databroker-pack', { stderr: p.stderr.slice(-2000) });
      const u = pythonTool(python as string, 'databroker-unpack', ['mongo_normalized', pack, name, '--mongo-uri', `${server.uri}py_${format}`], pyEnv);
      t.equal(u.code, 0, 'databroker-unpack mongo_normalized', { stderr: u.stderr.slice(-2000) });

      const ours = path.join(dir, `re-${format}`);
      const theirs = path.join(dir, `py2-${format}`);
      await packWithBoth(t, { pyName: name, pyEnv, oursSource: name, oursEnv: sb.env, py: theirs, ours, format, mode, what: `pack of the MongoDB catalog ${name}` });
      pythonReads(t, srcYaml, path.join(ours, 'catalog.yml'), 'Python reads it', runs, { images: true });
    });
  }
});
