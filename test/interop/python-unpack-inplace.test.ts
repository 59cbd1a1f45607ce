/**
 * Unpack in place, both ways, with one private XDG_DATA_HOME shared by the two
 * tools (test/helpers/sandbox.ts):
 *
 * - `pack-stream unpack inplace`, then Python's `databroker.catalog[NAME]`
 *   finds the catalog and reads every run equal to the source, images filled;
 * - `databroker-unpack inplace` of databroker-pack's pack, then `pack-stream
 *   pack NAME` finds it by name and packs what databroker-pack packs from it.
 */
import t from 'tap';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { envWith, makeCorpus, MODES, pythonReads, pythonTool, SALT, packWithBoth } from '../helpers/interop.js';
import { pythonOrSkip } from '../helpers/python.js';
import { sandbox } from '../helpers/sandbox.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';

t.test('unpack inplace between pack-stream and databroker', { skip: SKIP }, async (t) => {
  const dir = tempDir();
  const runs = makeCorpus(t, python as string, dir, ['msgpack', 'jsonl']);
  const sb = sandbox();
  const pyEnv = envWith(sb.env);

  for (const [format, mode] of [['msgpack', 'copy'], ['jsonl', 'manifest']] as const) {
    const corpus = path.join(dir, `corpus-${format}`);
    const srcYaml = path.join(corpus, 'catalog.yml');
    const args = ['--format', format, ...MODES[mode]!];

    await t.test(`pack-stream unpack inplace, Python reads (${format}, ${mode})`, async (t) => {
      const pack = path.join(dir, `ps-${format}`);
      const name = `ours_${format}`;
      t.equal((await runCli(['pack', srcYaml, pack, '--all', ...args], { env: sb.env })).code, 0, 'pack-stream pack');
      const u = await runCli(['unpack', 'inplace', pack, name], { env: sb.env });
      t.equal(u.code, 0, 'pack-stream unpack inplace', { stderr: u.stderr });
      pythonReads(t, srcYaml, `databroker:${name}`, `databroker.catalog['${name}']`, runs, { env: pyEnv, images: true });
    });

    await t.test(`databroker-unpack inplace, pack-stream packs it by name (${format}, ${mode})`, async (t) => {
      const pack = path.join(dir, `py-${format}`);
      const name = `theirs_${format}`;
      const p = pythonTool(python as string, 'databroker-pack', ['example', pack, '--all', '--salt', SALT, ...args], { ...pyEnv, INTAKE_PATH: corpus });
      t.equal(p.code, 0, 'databroker-pack', { stderr: p.stderr.slice(-2000) });
      const u = pythonTool(python as string, 'databroker-unpack', ['inplace', pack, name], pyEnv);
      t.equal(u.code, 0, 'databroker-unpack inplace', { stderr: u.stderr.slice(-2000) });

      const ours = path.join(dir, `re-${format}`);
      const theirs = path.join(dir, `py2-${format}`);
      await packWithBoth(t, { pyName: name, pyEnv, oursSource: name, oursEnv: sb.env, py: theirs, ours, format, mode, what: `pack of the unpacked ${name}` });
      pythonReads(t, srcYaml, path.join(ours, 'catalog.yml'), 'Python reads it', runs, { images: true });
    });
  }
});
