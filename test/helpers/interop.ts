/**
 * Shared steps of the Python interop suites: the RunEngine corpus, the Python
 * command-line tools, the file-by-file pack comparison and the Python-side
 * read-back of a catalog against its source.
 */
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { runCli } from './cli.js';
import { catalogData, compareDocumentFiles, externalManifestHashes, manifestEntries } from './compare-packs.js';
import { listTree, tempDir, treeDigest } from './files.js';
import { REPO } from './paths.js';
import { VENV_PYTHON } from './python.js';

export const SALT = 'interop-salt';
export const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
export const MODES: Record<string, string[]> = { manifest: [], copy: ['--copy-external'], ignore: ['--ignore-external'], fill: ['--fill-external'] };

/** process.env with a sandbox's variables applied (undefined removes one). */
export function envWith(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONWARNINGS: 'ignore' };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Writes the full RunEngine corpus as `dir/corpus-<format>` (source name `example`); returns the run count. */
export function makeCorpus(t: Test, python: string, dir: string, formats: readonly ('msgpack' | 'jsonl')[]): number {
  const scratch = tempDir(); // ophyd.sim mkdtemp()s at import
  for (const format of formats) {
    const gen = spawnSync(python, [path.join(REPO, 'scripts', 'make_catalog.py'), path.join(dir, `corpus-${format}`), '--corpus', 'full', '--format', format], {
      encoding: 'utf8',
      env: envWith({ TMPDIR: scratch }),
    });
    t.equal(gen.status, 0, `make_catalog.py --format ${format}`, { stderr: gen.stderr.slice(-3000) });
  }
  const runs = readdirSync(path.join(dir, `corpus-${formats[0]}`, 'documents')).length;
  t.ok(runs >= 14, `corpus of ${runs} runs`);
  return runs;
}

/** A console script of the venv (databroker-pack, databroker-unpack). */
export function pythonTool(python: string, tool: string, args: string[], env: NodeJS.ProcessEnv): { code: number | null; stderr: string } {
  const r = spawnSync(path.join(path.dirname(python), tool), args, { encoding: 'utf8', env });
  return { code: r.status, stderr: r.stderr };
}

/** Files other than catalog.yml and the manifests. */
const payload = (files: string[]) => files.filter((f) => f !== 'catalog.yml' && !/^(documents|external_files)_manifest_.*\.txt$|^documents_manifest\.txt$/.test(f));

/**
 * databroker-pack's pack `py` and pack-stream's pack `ours`, of the same input
 * with the same salt, agree file by file.
 */
export async function sameOutput(t: Test, py: string, ours: string, format: 'msgpack' | 'jsonl', what: string): Promise<void> {
  const pyFiles = await listTree(py);
  const ourFiles = await listTree(ours);
  t.same(payload(ourFiles), payload(pyFiles), `${what}: the same document and external files`);
  t.ok(payload(pyFiles).some((f) => f.startsWith('documents/')), `${what}: there are document files`);
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

  const ext = (d: string) => treeDigest(d, { mtime: false }).then((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('external_files/'))));
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

/**
 * databroker-pack (finding the catalog `pyName` through `pyEnv`) and
 * pack-stream (reading `oursSource`) pack the same runs with the same salt,
 * format and external-file mode into `py` and `ours`; the packs must agree file
 * by file (sameOutput).
 */
export async function packWithBoth(
  t: Test,
  o: { pyName: string; pyEnv: NodeJS.ProcessEnv; oursSource: string; oursEnv?: Record<string, string | undefined>; py: string; ours: string; format: 'msgpack' | 'jsonl'; mode: string; what: string },
): Promise<void> {
  const args = ['--all', '--salt', SALT, '--format', o.format, ...MODES[o.mode]!];
  const p = pythonTool(VENV_PYTHON, 'databroker-pack', [o.pyName, o.py, ...args], o.pyEnv);
  t.equal(p.code, 0, `${o.what}: databroker-pack ${o.pyName} exits 0`, { stderr: p.stderr.slice(-2000) });
  const r = await runCli(['pack', o.oursSource, o.ours, ...args], o.oursEnv ? { env: o.oursEnv } : {});
  t.equal(r.code, 0, `${o.what}: pack-stream pack ${o.oursSource} exits 0`, { stderr: r.stderr });
  await sameOutput(t, o.py, o.ours, o.format, o.what);
}

/**
 * argv: source catalog.yml, source name, target, image check. The target is a
 * pack's catalog.yml (source `packed_catalog`) or `databroker:NAME`
 * (databroker.catalog[NAME]). Compares every run's canonical documents, resource
 * roots aside; `images` also reads the image streams filled; `filled` compares
 * a filled pack with the source's filled documents, resources and datums aside.
 */
const READ = String.raw`
import sys, json
import numpy as np
from event_model import NumpyEncoder
enc = NumpyEncoder().default  # numpy values as JSON and MongoDB get them
def docs(run, fill='no'):
    out = []
    for name, doc in run.canonical(fill=fill):
        if fill == 'yes' and name in ('resource', 'datum', 'datum_page'): continue
        doc = dict(doc)
        if name == 'resource': doc.pop('root')
        out.append(json.dumps([name, doc], default=enc))
    return out
import intake
src = intake.open_catalog(sys.argv[1])[sys.argv[2]]
target = sys.argv[3]
if target.startswith('databroker:'):
    import databroker
    pk = databroker.catalog[target[len('databroker:'):]]
else:
    pk = intake.open_catalog(target)['packed_catalog']
rep = {'src': sorted(src), 'pack': sorted(pk), 'docs': 0, 'mismatch': [], 'names': set(), 'images': {}, 'catalog': type(pk).__name__}
seq = lambda xs: [x for x in xs if x.startswith(('["start"', '["event', '["stop"'))]
for uid in sorted(src):
    a, b = docs(src[uid], 'yes' if sys.argv[4] == 'filled' else 'no'), docs(pk[uid])
    if sorted(a) != sorted(b) or seq(a) != seq(b): rep['mismatch'].append(uid)
    rep['docs'] += len(b)
    rep['names'].update(json.loads(x)[0] for x in b)
    if sys.argv[4] == 'images':
        for stream in pk[uid]:
            for key in ('img', 'img_b'):
                ds = pk[uid][stream].read()
                if key in ds:
                    want = src[uid][stream].read()[key].values
                    got = ds[key].values
                    rep['images'][uid + ':' + key] = bool(got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want))
rep['names'] = sorted(rep['names'])
print(json.dumps(rep))
`;

export interface ReadReport {
  src: string[];
  pack: string[];
  docs: number;
  mismatch: string[];
  names: string[];
  images: Record<string, boolean>;
  /** The Python class that read the target. */
  catalog: string;
}

/** Python reads `target` (see READ) and compares it with the source catalog. */
export function pythonReads(
  t: Test,
  srcYaml: string,
  target: string,
  what: string,
  runs: number,
  opts: { env?: NodeJS.ProcessEnv; images?: boolean; filled?: boolean } = {},
): ReadReport {
  const args = [srcYaml, 'example', target, opts.filled ? 'filled' : opts.images ? 'images' : 'no'];
  const r = spawnSync(VENV_PYTHON, ['-c', READ, ...args], { encoding: 'utf8', env: opts.env ?? envWith({ HOME: tempDir() }), maxBuffer: 1 << 26 });
  t.equal(r.status, 0, `${what}: Python exits 0`, { stderr: r.stderr.slice(-3000) });
  const rep = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ReadReport;
  t.equal(rep.pack?.length, runs, `${what}: databroker lists all ${runs} runs`);
  t.same(rep.pack, rep.src, `${what}: the same uids as the source`);
  t.same(rep.mismatch, [], `${what}: every run's canonical documents equal the source's (${rep.docs} documents)`);
  if (opts.filled) t.same(rep.names, ['descriptor', 'event_page', 'start', 'stop'], `${what}: filled, so no resources or datums`);
  else t.same(rep.names, ['datum_page', 'descriptor', 'event_page', 'resource', 'start', 'stop'], `${what}: resources and datums included`);
  if (opts.images) {
    const imgs = Object.entries(rep.images ?? {});
    t.ok(imgs.length >= 2, `${what}: ${imgs.length} image streams read filled`);
    t.same(imgs.filter(([, ok]) => !ok).map(([k]) => k), [], `${what}: filled images equal the source's`);
  }
  return rep;
}
