/**
 * Python databroker reads what pack-stream writes: for msgpack and JSONL packs
 * in each external-file mode, intake opens <pack>/catalog.yml and every run's
 * canonical documents, dumped by Python's json, equal pack-stream's own reading
 * of the pack line for line; and filled reads of the image run give the frames.
 */
import type { Test } from 'tap';
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonlRecord } from '../../src/codec/pyjson.js';
import { openSource } from '../../src/sources/open.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { REPO, SKIP_VECTORS, VECTORS } from '../helpers/paths.js';
import { pythonOrSkip, runPython } from '../helpers/python.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';

const DUMP = `
import sys, json, intake
cat = intake.open_catalog(sys.argv[1])['packed_catalog']
out = open(sys.argv[2], 'w')
for uid in sorted(cat):
    run = cat[uid]
    for name, doc in run.documents(fill='no'):
        out.write(json.dumps((name, doc)) + '\\n')
    if sys.argv[3] == 'fill' and 'img' in run.primary.to_dask():
        img = run.primary.read()['img'].values
        out.write(json.dumps(['frames', [list(img.shape), float(img[-1].ravel()[0])]]) + '\\n')
out.close()
`;

async function ours(pack: string): Promise<string> {
  const cat = await openSource(pack);
  const runs = [];
  for await (const r of cat.runs()) runs.push(r);
  runs.sort((a, b) => (a.uid < b.uid ? -1 : 1));
  let s = '';
  for (const r of runs) for await (const p of r.documents()) s += jsonlRecord(p.name, p.doc);
  return s;
}

async function check(t: Test, source: string, args: string[], fill: boolean) {
  const dest = path.join(tempDir(), 'pack');
  const r = await runCli(['pack', source, dest, '--all', ...args], { cwd: REPO });
  t.equal(r.code, 0, r.stderr);
  const dump = path.join(tempDir(), 'py.jsonl');
  const py = runPython(python as string, DUMP, [path.join(dest, 'catalog.yml'), dump, fill ? 'fill' : 'no'], { HOME: tempDir() });
  t.equal(py.code, 0, py.stderr.slice(-3000));
  const got = readFileSync(dump, 'utf8');
  const lines = got.split('\n').filter((l) => l !== '' && !l.startsWith('["frames"'));
  const mine = (await ours(dest)).split('\n').filter(Boolean);
  // Python orders a run's streams by set order (varies per process): compare the
  // documents as a multiset, and the events and stops as a sequence.
  t.same([...lines].sort(), [...mine].sort(), `Python reads the same documents (${args.join(' ')})`);
  const seq = (ls: string[]) => ls.filter((l) => /^\["(event_page|stop|start)"/.test(l));
  t.same(seq(lines), seq(mine), 'in the same order');
  return got;
}

t.test('Python databroker reads pack-stream packs', { skip: SKIP }, async (t) => {
  for (const args of [['--copy-external'], [], ['--format', 'jsonl', '--copy-external'], ['--format', 'jsonl'], ['--ignore-external']]) {
    const got = await check(t, path.join(REPO, 'examples', 'catalog'), args, !args.includes('--ignore-external'));
    if (!args.includes('--ignore-external')) t.match(got, /\["frames", \[\[4, 10, 10\], 3000\.0\]\]/, 'image frames read through the pack root_map');
  }
});

t.test('Python reads re-packed vectors', { skip: SKIP || SKIP_VECTORS }, async (t) => {
  await check(t, path.join(VECTORS, 'simple_catalog'), ['--copy-external'], false);
  await check(t, path.join(VECTORS, 'polartools_scalar'), ['--format', 'jsonl'], false);
  await check(t, path.join(VECTORS, 'tutorials_jsonl'), ['--ignore-external'], false);
});
