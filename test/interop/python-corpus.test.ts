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
import { tempDir } from '../helpers/files.js';
import { envWith, makeCorpus, packWithBoth, pythonReads } from '../helpers/interop.js';
import { pythonOrSkip } from '../helpers/python.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';

t.test('databroker-pack and pack-stream on the RunEngine corpus', { skip: SKIP }, async (t) => {
  const dir = tempDir();
  const home = path.join(dir, 'home');
  const runs = makeCorpus(t, python as string, dir, ['msgpack', 'jsonl']);

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
    const tag = `${source}-${format}-${mode}`;
    await t.test(`${source} catalog to ${format} pack, ${mode}`, async (t) => {
      const py = path.join(dir, `py-${tag}`);
      const ours = path.join(dir, `ps-${tag}`);
      const pyEnv = envWith({ INTAKE_PATH: corpus, HOME: home });
      await packWithBoth(t, { pyName: 'example', pyEnv, oursSource: path.join(corpus, 'catalog.yml'), py, ours, format, mode, what: 'same input' });
      pythonReads(t, path.join(corpus, 'catalog.yml'), path.join(ours, 'catalog.yml'), 'Python reads pack-stream', runs, { images: mode === 'manifest' || mode === 'copy', filled: mode === 'fill' });

      // Re-pack databroker-pack's pack with both tools (Python finds it by name).
      const rePy = path.join(dir, `py2-${tag}`);
      const reOurs = path.join(dir, `re-${tag}`);
      const rePyEnv = envWith({ INTAKE_PATH: py, HOME: home });
      await packWithBoth(t, { pyName: 'packed_catalog', pyEnv: rePyEnv, oursSource: path.join(py, 'catalog.yml'), py: rePy, ours: reOurs, format, mode, what: "re-pack of databroker-pack's pack" });
      pythonReads(t, path.join(corpus, 'catalog.yml'), path.join(reOurs, 'catalog.yml'), 'Python reads the re-pack', runs, { images: mode === 'manifest' || mode === 'copy', filled: mode === 'fill' });
    });
  }
});
