/**
 * Golden tests against packs and JSONL runs written by the Python tools:
 * re-packing gives equal documents (byte-identical where unchanged), the
 * root-hash vector, and databroker-pack's root_map for every mode.
 */
import type { Test } from 'tap';
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { exportCatalog, type ExportOptions } from '../src/pipeline/export.js';
import { openSource } from '../src/sources/open.js';
import { readRecords } from '../src/sources/file-catalog.js';
import { rootHash } from '../src/transforms/root-hash.js';
import { unpackDatumPage, unpackEventPage, eventAsRow, datumAsRow, type DatumRow, type EventRow } from '../src/transforms/pages.js';
import { deepEqual, withField, type Doc } from '../src/codec/values.js';
import type { DocPair, Format } from '../src/types.js';
import { listTree, tempDir, treeDigest } from './helpers/files.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';

const HASH = '3e3b48cf1579c708c4b515de4927d03a';
const ORIG = 'f8483b80395561ac779a5425da6646ca';

async function records(file: string, format: Format): Promise<DocPair[]> {
  const out: DocPair[] = [];
  for await (const r of readRecords(file, format)) out.push(r);
  return out;
}

async function pack(t: Test, source: string, opts: ExportOptions) {
  const dest = path.join(tempDir(), 'pack');
  const before = await treeDigest(path.dirname(source.replace(/#.*/, '')));
  const summary = await exportCatalog(await openSource(source), dest, opts);
  t.same(await treeDigest(path.dirname(source.replace(/#.*/, ''))), before, 'source untouched');
  const catalog = parse(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'), { version: '1.1' });
  return { dest, summary, catalog, source: catalog.sources.packed_catalog };
}

t.test('root hash vector', async (t) => {
  t.equal(rootHash(ORIG, 'SALT'), HASH);
});

t.test('re-packing Python msgpack packs', { skip: SKIP_VECTORS }, async (t) => {
  for (const name of ['simple_catalog', 'another_simple_catalog', 'polartools_scalar']) {
    t.test(name, async (t) => {
      const src = path.join(VECTORS, name);
      const { dest, summary, source } = await pack(t, src, { salt: 'SALT', external: 'copy' });
      t.equal(summary.failures.length, 0);
      t.equal(source.driver, 'bluesky-msgpack-catalog');
      t.same(source.metadata.relative_paths, ['./documents/*.msgpack']);
      t.equal(source.metadata.generated_by.library, 'pack-stream');
      t.same(source.args.paths, [path.join(dest, 'documents', '*.msgpack')]);
      const files = readdirSync(path.join(src, 'documents')).sort();
      t.same(readdirSync(path.join(dest, 'documents')).sort(), files);
      for (const f of files) {
        const a = await records(path.join(src, 'documents', f), 'msgpack');
        const b = await records(path.join(dest, 'documents', f), 'msgpack');
        t.equal(b.length, a.length, `${f}: same number of documents`);
        for (let i = 0; i < a.length; i++) {
          const want = a[i]!.name === 'resource' ? withField(a[i]!.doc, 'root', rootHash(String(a[i]!.doc.root), 'SALT')) : a[i]!.doc;
          t.equal(b[i]!.name, a[i]!.name);
          t.ok(deepEqual(b[i]!.doc, want), `${f}#${i} ${a[i]!.name} equal`);
          if (a[i]!.name !== 'resource') t.same(b[i]!.raw, a[i]!.raw, `${f}#${i} byte-identical`);
        }
      }
    });
  }
});

t.test('root_map per external-file mode matches databroker-pack (test_cli.test_root_map)', { skip: SKIP_VECTORS }, async (t) => {
  const src = path.join(VECTORS, 'simple_catalog');
  const mapped = path.join(src, 'external_files', ORIG);
  const cases: [string, ExportOptions, Record<string, string>][] = [
    ['default', {}, { [HASH]: mapped }],
    ['--copy-external', { external: 'copy' }, { [HASH]: `external_files/${HASH}` }],
    ['--no-documents', { noDocuments: true }, { [ORIG]: mapped }],
    ['--no-documents --copy-external', { noDocuments: true, external: 'copy' }, { [ORIG]: `external_files/${HASH}` }],
    ['--ignore-external', { external: 'ignore' }, {}],
  ];
  for (const [label, opts, want] of cases) {
    const { dest, source } = await pack(t, src, { salt: 'SALT', ...opts });
    t.same(source.args.root_map, want, label);
    const tree = await listTree(dest);
    if (opts.noDocuments) t.notOk(tree.some((f) => f.startsWith('documents')), `${label}: no documents`);
    else t.equal(tree.filter((f) => f.startsWith('documents/')).length, 3);
    const manifest = path.join(dest, `external_files_manifest_${HASH}_0.txt`);
    if (opts.external === 'ignore') t.notOk(tree.some((f) => f.startsWith('external_files')), `${label}: nothing external`);
    else if (opts.external === 'copy') {
      t.equal(readFileSync(manifest, 'utf8'), `external_files/${HASH}/4d0d22_0.npy`, `${label}: copied files, relative, no trailing newline`);
      t.same(readFileSync(path.join(dest, 'external_files', HASH, '4d0d22_0.npy')), readFileSync(path.join(mapped, '4d0d22_0.npy')));
    } else t.equal(readFileSync(manifest, 'utf8'), path.join(mapped, '4d0d22_0.npy'), `${label}: source paths`);
    if (!opts.noDocuments) {
      t.equal(readFileSync(path.join(dest, 'documents_manifest_0.txt'), 'utf8').split('\n').filter(Boolean).length, 3);
      t.match(readFileSync(path.join(dest, 'documents_manifest_0.txt'), 'utf8'), /^(documents\/[-0-9a-f]+\.msgpack\n){3}$/);
    }
  }
});

t.test('manifests are chunked', { skip: SKIP_VECTORS }, async (t) => {
  const { dest } = await pack(t, path.join(VECTORS, 'simple_catalog'), { salt: 'SALT', manifestChunk: 2 });
  const tree = await listTree(dest);
  t.same(tree.filter((f) => f.startsWith('documents_manifest')), ['documents_manifest_0.txt', 'documents_manifest_1.txt']);
  t.equal(readFileSync(path.join(dest, 'documents_manifest_1.txt'), 'utf8').split('\n').length, 2);
});

t.test('re-packing suitcase-jsonl runs', { skip: SKIP_VECTORS }, async (t) => {
  const dir = path.join(VECTORS, 'tutorials_jsonl');
  // the 'newton' spec (computed data) has no file rule: those runs fail with the fix in the message
  const dflt = await pack(t, dir, { salt: 'SALT', format: 'jsonl' });
  t.equal(dflt.summary.failures.length, 4);
  for (const f of dflt.summary.failures) t.match(f.message, /no handler for resource spec 'newton'.*--handler newton=/);
  t.equal(dflt.summary.runsDone, 4);

  const { dest, summary } = await pack(t, dir, { salt: 'SALT', format: 'jsonl', external: 'ignore' });
  t.equal(summary.failures.length, 0);
  for (const f of readdirSync(dir)) {
    const a = await records(path.join(dir, f), 'jsonl');
    const b = await records(path.join(dest, 'documents', f), 'jsonl');
    const rows = (rs: DocPair[], kind: 'event' | 'datum') =>
      rs.flatMap((r): (EventRow | DatumRow)[] =>
        kind === 'event'
          ? r.name === 'event' ? [eventAsRow(r.doc)] : r.name === 'event_page' ? [...unpackEventPage(r.doc)] : []
          : r.name === 'datum' ? [datumAsRow(r.doc)] : r.name === 'datum_page' ? [...unpackDatumPage(r.doc)] : [],
      );
    t.ok(deepEqual(rows(b, 'event') as unknown as Doc[], rows(a, 'event') as unknown as Doc[]), `${f}: same events`);
    t.ok(deepEqual(rows(b, 'datum') as unknown as Doc[], rows(a, 'datum') as unknown as Doc[]), `${f}: same datums`);
    t.ok(b.filter((r) => r.name === 'datum_page').every((r) => (r.doc.datum_id as unknown[]).length <= 5), 'datum pages of at most 5');
    for (const name of ['start', 'descriptor', 'stop']) {
      t.same(b.filter((r) => r.name === name).map((r) => r.raw), a.filter((r) => r.name === name).map((r) => r.raw), `${f}: ${name} lines byte-identical`);
    }
    t.equal(b[0]!.name, 'start');
    t.equal(b[b.length - 1]!.name, 'stop');
  }
  // the same runs packed as msgpack read back equal too
  const mp = await pack(t, dir, { salt: 'SALT', format: 'msgpack', external: 'ignore' });
  for (const f of readdirSync(dir)) {
    const a = await records(path.join(dest, 'documents', f), 'jsonl');
    const b = await records(path.join(mp.dest, 'documents', f.replace('.jsonl', '.msgpack')), 'msgpack');
    t.ok(a.length === b.length && a.every((r, i) => r.name === b[i]!.name && deepEqual(r.doc, b[i]!.doc)), `${f}: msgpack and jsonl packs hold equal documents`);
  }
});

t.test('a pack can be packed again after being moved', { skip: SKIP_VECTORS }, async (t) => {
  const first = await pack(t, path.join(VECTORS, 'simple_catalog'), { salt: 'SALT', external: 'copy' });
  const moved = path.join(tempDir(), 'moved');
  const { cp } = await import('node:fs/promises');
  await cp(first.dest, moved, { recursive: true });
  const again = await pack(t, moved, { salt: 'X', external: 'copy' });
  t.equal(again.summary.runsDone, 3);
  t.equal(again.summary.filesCopied, 1, 'external file found through the moved pack root_map');
});

t.test('a copied pack reads its own documents, and an unpacked catalog YAML its args.paths', { skip: SKIP_VECTORS }, async (t) => {
  const { cp, rm, writeFile, mkdir } = await import('node:fs/promises');
  const first = await pack(t, path.join(VECTORS, 'simple_catalog'), { salt: 'SALT' });
  const copy = path.join(tempDir(), 'copy');
  await cp(first.dest, copy, { recursive: true });
  await rm(path.join(copy, 'documents', readdirSync(path.join(copy, 'documents'))[0]!));
  const runs = [];
  for await (const r of (await openSource(copy)).runs()) runs.push(r.location);
  t.equal(runs.length, 2, 'the copy, not the original, is read');
  t.ok(runs.every((l) => l.startsWith(copy)));
  const elsewhere = path.join(tempDir(), 'intake');
  await mkdir(elsewhere);
  const yml = path.join(elsewhere, 'databroker_unpack_x.yml');
  await writeFile(yml, `sources:\n  x:\n    driver: bluesky-msgpack-catalog\n    args:\n      paths:\n      - ${path.join(first.dest, 'documents', '*.msgpack')}\n    metadata:\n      relative_paths:\n      - ./documents/*.msgpack\n`);
  let n = 0;
  for await (const r of (await openSource(yml)).runs()) if (r.location.startsWith(first.dest)) n++;
  t.equal(n, 3, 'absolute args.paths used when relative_paths do not resolve next to the YAML');
});
