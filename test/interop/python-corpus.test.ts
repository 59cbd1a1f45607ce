/**
 * Both directions on the RunEngine corpus (scripts/make_catalog.py --corpus
 * full, as a msgpack and a JSONL catalog), for each external-file mode
 * (--fill-external included) and across formats:
 *
 * - same input, same output: Python databroker-pack and pack-stream pack the
 *   corpus with the same --salt; the packs agree file by file (document files
 *   byte for byte up to databroker's per-process stream order, copied files
 *   byte for byte, manifests with the same entries, catalog.yml equal as data);
 * - Python reads pack-stream: databroker opens our pack and every run's
 *   canonical(fill='no') equals the source's, resource roots aside;
 * - pack-stream reads Python: our re-pack of databroker-pack's pack agrees file
 *   by file with databroker-pack's own re-pack of it, and Python reads it back
 *   equal to the source.
 */
import t from 'tap';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { envWith, makeCorpus, MODES, pythonReads, pythonTool, SALT, sameOutput } from '../helpers/interop.js';
import { pythonOrSkip } from '../helpers/python.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';

t.test('databroker-pack and pack-stream on the RunEngine corpus', { skip: SKIP }, async (t) => {
  const dir = tempDir();
  const home = path.join(dir, 'home');
  const runs = makeCorpus(t, python as string, dir, ['msgpack', 'jsonl']);
  const databrokerPack = (catalogDir: string, name: string, dest: string, format: string, args: string[]) =>
    pythonTool(python as string, 'databroker-pack', [name, dest, '--all', '--salt', SALT, '--format', format, ...args], envWith({ INTAKE_PATH: catalogDir, HOME: home }));

  // Each source format in each mode, and each across formats, so that both
  // encoders write every document (same-format packs copy unchanged records).
  type Case = [source: 'msgpack' | 'jsonl', format: 'msgpack' | 'jsonl', mode: string];
  const cases: Case[] = [
    ...['manifest', 'copy', 'ignore', 'fill'].map((m): Case => ['msgpack', 'msgpack', m]),
    ...['manifest', 'copy', 'ignore'].map((m): Case => ['jsonl', 'jsonl', m]),
    ['msgpack', 'jsonl', 'manifest'],
    ['jsonl', 'msgpack', 'copy'],
    ['msgpack', 'jsonl', 'fill'],
  ];
  for (const [source, format, mode] of cases) {
    const corpus = path.join(dir, `corpus-${source}`);
    const args = MODES[mode]!;
    const tag = `${source}-${format}-${mode}`;
    await t.test(`${source} catalog to ${format} pack, ${mode}`, async (t) => {
      const py = path.join(dir, `py-${tag}`);
      const ours = path.join(dir, `ps-${tag}`);
      const p = databrokerPack(corpus, 'example', py, format, args);
      t.equal(p.code, 0, 'databroker-pack exits 0', { stderr: p.stderr.slice(-2000) });
      const r = await runCli(['pack', path.join(corpus, 'catalog.yml'), ours, '--all', '--salt', SALT, '--format', format, ...args]);
      t.equal(r.code, 0, 'pack-stream exits 0', { stderr: r.stderr });
      await sameOutput(t, py, ours, format, 'same input');
      pythonReads(t, path.join(corpus, 'catalog.yml'), path.join(ours, 'catalog.yml'), 'Python reads pack-stream', runs, { images: mode === 'manifest' || mode === 'copy', filled: mode === 'fill' });

      // Re-pack databroker-pack's pack with both tools (Python finds it by name).
      const rePy = path.join(dir, `py2-${tag}`);
      const reOurs = path.join(dir, `re-${tag}`);
      const p2 = databrokerPack(py, 'packed_catalog', rePy, format, args);
      t.equal(p2.code, 0, 'databroker-pack re-pack exits 0', { stderr: p2.stderr.slice(-2000) });
      const r2 = await runCli(['pack', path.join(py, 'catalog.yml'), reOurs, '--all', '--salt', SALT, '--format', format, ...args]);
      t.equal(r2.code, 0, 'pack-stream re-pack exits 0', { stderr: r2.stderr });
      await sameOutput(t, rePy, reOurs, format, 're-pack of databroker-pack\'s pack');
      pythonReads(t, path.join(corpus, 'catalog.yml'), path.join(reOurs, 'catalog.yml'), 'Python reads the re-pack', runs, { images: mode === 'manifest' || mode === 'copy', filled: mode === 'fill' });
    });
  }
});
