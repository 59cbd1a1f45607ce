/**
 * Both directions on the RunEngine corpus (scripts/make_catalog.py --corpus
 * full, as a msgpack and a JSONL catalog), for each external-file mode:
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
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { catalogData, compareDocumentFiles, contentDigest, externalManifestHashes, manifestEntries } from '../helpers/compare-packs.js';
import { listTree, tempDir } from '../helpers/files.js';
import { REPO } from '../helpers/paths.js';
import { pythonOrSkip, runPython } from '../helpers/python.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';
const SALT = 'interop-salt';
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const MODES: Record<string, string[]> = { manifest: [], copy: ['--copy-external'], ignore: ['--ignore-external'] };

/** argv: source catalog.yml, source name, pack catalog.yml. Compares every run's canonical documents. */
const READ = String.raw`
import sys, json, intake
import numpy as np
def enc(o):
    if isinstance(o, np.ndarray): return ['ndarray', o.dtype.str, o.tolist()]
    if isinstance(o, np.generic): return ['numpy', o.dtype.str, o.item()]
    raise TypeError(repr(o))
def docs(run):
    out = []
    for name, doc in run.canonical(fill='no'):
        doc = dict(doc)
        if name == 'resource': doc.pop('root')
        out.append(json.dumps([name, doc], default=enc))
    return out
src = intake.open_catalog(sys.argv[1])[sys.argv[2]]
pk = intake.open_catalog(sys.argv[3])['packed_catalog']
rep = {'src': sorted(src), 'pack': sorted(pk), 'docs': 0, 'mismatch': [], 'names': set()}
seq = lambda xs: [x for x in xs if x.startswith(('["start"', '["event', '["stop"'))]
for uid in sorted(src):
    a, b = docs(src[uid]), docs(pk[uid])
    if sorted(a) != sorted(b) or seq(a) != seq(b): rep['mismatch'].append(uid)
    rep['docs'] += len(b)
    rep['names'].update(json.loads(x)[0] for x in b)
rep['names'] = sorted(rep['names'])
print(json.dumps(rep))
`;

function databrokerPack(catalogDir: string, name: string, dest: string, format: string, args: string[], home: string) {
  const exe = path.join(path.dirname(python as string), 'databroker-pack');
  const r = spawnSync(exe, [name, dest, '--all', '--salt', SALT, '--format', format, ...args], {
    encoding: 'utf8',
    env: { ...process.env, INTAKE_PATH: catalogDir, HOME: home, PYTHONWARNINGS: 'ignore' },
  });
  return { code: r.status, stderr: r.stderr };
}

/** Files other than catalog.yml and the manifests. */
const payload = (files: string[]) => files.filter((f) => f !== 'catalog.yml' && !/^(documents|external_files)_manifest_.*\.txt$|^documents_manifest\.txt$/.test(f));

async function sameOutput(t: Tap.Test, py: string, ours: string, format: 'msgpack' | 'jsonl', what: string) {
  const pyFiles = await listTree(py);
  const ourFiles = await listTree(ours);
  t.same(payload(ourFiles), payload(pyFiles), `${what}: the same document and external files`);
  t.same(ourFiles.filter((f) => /manifest/.test(f)).every((f) => /_\d+\.txt$/.test(f)), true, `${what}: our manifests are chunked (_N.txt)`);
  t.same(pyFiles.filter((f) => /manifest/.test(f)).some((f) => /_\d+\.txt$/.test(f)), false, `${what}: databroker-pack's are not`);

  const verdicts: Record<string, number> = {};
  const bad: string[] = [];
  for (const f of payload(pyFiles).filter((f) => f.startsWith('documents/'))) {
    const v = compareDocumentFiles(readFileSync(path.join(py, f)), readFileSync(path.join(ours, f)), format);
    verdicts[v] = (verdicts[v] ?? 0) + 1;
    if (v !== 'identical' && v !== 'stream-order') bad.push(`${f}: ${v}`);
  }
  t.same(bad, [], `${what}: document files byte-identical, or differing only in stream order (${JSON.stringify(verdicts)})`);
  t.ok((verdicts.identical ?? 0) >= 8, `${what}: the single-stream runs are byte-identical`);

  const ext = (d: string) => contentDigest(d).then((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('external_files/'))));
  t.same(await ext(ours), await ext(py), `${what}: copied external files byte-identical`);

  t.same(manifestEntries(ours, /^documents_manifest.*\.txt$/), manifestEntries(py, /^documents_manifest.*\.txt$/), `${what}: documents manifest entries`);
  const hashes = externalManifestHashes(py);
  t.same(externalManifestHashes(ours), hashes, `${what}: external manifests for the same root hashes`);
  for (const h of hashes) {
    const re = new RegExp(`^external_files_manifest_${h}(_\\d+)?\\.txt$`);
    t.same(manifestEntries(ours, re), manifestEntries(py, re), `${what}: external manifest ${h.slice(0, 8)}… entries`);
  }

  const a = catalogData(ours);
  const b = catalogData(py);
  t.same(a.data, b.data, `${what}: catalog.yml equal as data (pack directory aside)`);
  t.same(a.generatedBy, { library: 'pack-stream', version: VERSION }, `${what}: generated_by names pack-stream`);
  t.same(b.generatedBy, { library: 'databroker_pack', version: '0.3.0' }, `${what}: databroker-pack's names itself`);
}

function pythonReads(t: Tap.Test, srcYaml: string, pack: string, what: string, runs: number) {
  const r = runPython(python as string, READ, [srcYaml, 'example', path.join(pack, 'catalog.yml')], { HOME: tempDir() });
  t.equal(r.code, 0, `${what}: Python exits 0`, { stderr: r.stderr.slice(-3000) });
  const rep = JSON.parse(r.stdout.trim().split('\n').pop()!) as { src: string[]; pack: string[]; docs: number; mismatch: string[]; names: string[] };
  t.equal(rep.pack.length, runs, `${what}: databroker lists all ${runs} runs`);
  t.same(rep.pack, rep.src, `${what}: the same uids as the source`);
  t.same(rep.mismatch, [], `${what}: every run's canonical documents equal the source's (${rep.docs} documents)`);
  t.same(rep.names, ['datum_page', 'descriptor', 'event_page', 'resource', 'start', 'stop'], `${what}: resources and datums included`);
}

t.test('databroker-pack and pack-stream on the RunEngine corpus', { skip: SKIP }, async (t) => {
  const dir = tempDir();
  const scratch = tempDir(); // ophyd.sim mkdtemp()s at import
  const home = path.join(dir, 'home');
  for (const format of ['msgpack', 'jsonl'] as const) {
    const gen = spawnSync(python as string, [path.join(REPO, 'scripts', 'make_catalog.py'), path.join(dir, `corpus-${format}`), '--corpus', 'full', '--format', format], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: scratch, PYTHONWARNINGS: 'ignore' },
    });
    t.equal(gen.status, 0, `make_catalog.py --format ${format}`, { stderr: gen.stderr.slice(-3000) });
  }
  const runs = readdirSync(path.join(dir, 'corpus-msgpack', 'documents')).length;
  t.ok(runs >= 14, `corpus of ${runs} runs`);

  for (const format of ['msgpack', 'jsonl'] as const) {
    const corpus = path.join(dir, `corpus-${format}`);
    for (const [mode, args] of Object.entries(MODES)) {
      await t.test(`${format}, ${mode}`, async (t) => {
        const py = path.join(dir, `py-${format}-${mode}`);
        const ours = path.join(dir, `ps-${format}-${mode}`);
        const p = databrokerPack(corpus, 'example', py, format, args, home);
        t.equal(p.code, 0, 'databroker-pack exits 0', { stderr: p.stderr.slice(-2000) });
        const r = await runCli(['pack', path.join(corpus, 'catalog.yml'), ours, '--all', '--salt', SALT, '--format', format, ...args]);
        t.equal(r.code, 0, 'pack-stream exits 0', { stderr: r.stderr });
        await sameOutput(t, py, ours, format, 'same input');
        pythonReads(t, path.join(corpus, 'catalog.yml'), ours, 'Python reads pack-stream', runs);

        // Re-pack databroker-pack's pack with both tools (Python finds it by name).
        const rePy = path.join(dir, `py2-${format}-${mode}`);
        const reOurs = path.join(dir, `re-${format}-${mode}`);
        const p2 = databrokerPack(py, 'packed_catalog', rePy, format, args, home);
        t.equal(p2.code, 0, 'databroker-pack re-pack exits 0', { stderr: p2.stderr.slice(-2000) });
        const r2 = await runCli(['pack', path.join(py, 'catalog.yml'), reOurs, '--all', '--salt', SALT, '--format', format, ...args]);
        t.equal(r2.code, 0, 'pack-stream re-pack exits 0', { stderr: r2.stderr });
        await sameOutput(t, rePy, reOurs, format, 're-pack of databroker-pack\'s pack');
        pythonReads(t, path.join(corpus, 'catalog.yml'), reOurs, 'Python reads the re-pack', runs);
      });
    }
  }
});
