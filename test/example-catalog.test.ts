/**
 * The README's main job: packing the sample catalog that ships in the repo
 * (real RunEngine output with NPY_SEQ image files) with --copy-external.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { readRecords } from '../src/sources/file-catalog.js';
import { openSource } from '../src/sources/open.js';
import { deepEqual, withField } from '../src/codec/values.js';
import { rootHash } from '../src/transforms/root-hash.js';
import type { DocPair } from '../src/types.js';
import { runCli } from './helpers/cli.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { REPO } from './helpers/paths.js';

const EXAMPLE = path.join(REPO, 'examples', 'catalog');

t.test('pack-stream pack examples/catalog DEST --all --copy-external', async (t) => {
  const before = await treeDigest(EXAMPLE);
  const dest = path.join(tempDir(), 'example-pack');
  const r = await runCli(['pack', 'examples/catalog', dest, '--all', '--copy-external', '--salt', 'SALT'], { cwd: REPO });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /packed 4 run\(s\), 32 documents .* copied 4 external files/);
  t.same(await treeDigest(EXAMPLE), before, 'the sample catalog is untouched');
  const hash = rootHash('/tmp/pack-stream-example-images', 'SALT');
  const cat = parse(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'), { version: '1.1' });
  t.same(cat.sources.packed_catalog.args.root_map, { [hash]: `external_files/${hash}` });
  t.same(readdirSync(path.join(dest, 'external_files', hash)).sort(), ['00f91b_0.npy', '00f91b_1.npy', '00f91b_2.npy', '00f91b_3.npy']);
  for (const f of readdirSync(path.join(dest, 'external_files', hash))) {
    t.same(readFileSync(path.join(dest, 'external_files', hash, f)), readFileSync(path.join(EXAMPLE, 'external', f)), `${f} copied intact`);
  }
  // every run's canonical documents come out equal, resource roots aside
  const source = await openSource(EXAMPLE);
  let runs = 0;
  for await (const run of source.runs()) {
    runs++;
    const want: DocPair[] = [];
    for await (const p of run.documents()) want.push(p.name === 'resource' ? { name: p.name, doc: withField(p.doc, 'root', hash) } : p);
    const got: DocPair[] = [];
    for await (const p of readRecords(path.join(dest, 'documents', `${run.uid}.msgpack`), 'msgpack')) got.push(p);
    t.equal(got.length, want.length, `${run.uid}: document count`);
    t.ok(got.every((p, i) => p.name === want[i]!.name && deepEqual(p.doc, want[i]!.doc)), `${run.uid}: documents equal`);
  }
  t.equal(runs, 4);
  // and the pack itself is a source: packing it again finds the copied files
  const again = await runCli(['pack', dest, path.join(tempDir(), 'again'), '--all', '--copy-external'], { cwd: REPO });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /copied 4 external files/);
});

t.test('inspect counts every external file and its bytes', async (t) => {
  const r = await runCli(['inspect', 'examples/catalog', '--json'], { cwd: REPO });
  t.equal(r.code, 0, r.stderr);
  const text = r.stdout;
  t.match(text, /"files":\s*4/);
  t.match(text, /"bytes":\s*3712/, '4 files of 928 bytes');
});

t.test('a reader that goes away early (| head) is no error', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" dist/cli/main.js inspect examples/catalog --json | head -c 10 >/dev/null; echo "status=\${PIPESTATUS[0]}"`], { cwd: REPO, encoding: 'utf8' });
  t.match(r.stdout, /status=0/);
  t.notMatch(r.stderr, /EPIPE|Unhandled/);
});
