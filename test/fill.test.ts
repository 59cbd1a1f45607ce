/**
 * --fill-external end to end, without Python: detector files written with the
 * libraries pack-stream uses (h5wasm: AD_HDF5 stacks with gzip, LZ4 and
 * bitshuffle, EPICS timestamps, one file per frame; geotiff: a TIFF series from
 * `%s%s_%6.6d.tiff`; NPY files), runs pointing at them through a source
 * root_map, packed by the CLI in both formats and read back with our decoders.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { NdArray, NdScalar } from '../src/codec/ndarray.js';
import { deepEqual, isPlainDoc, PyFloat, type Doc, type Value } from '../src/codec/values.js';
import { readRecords } from '../src/sources/file-catalog.js';
import { runCli } from './helpers/cli.js';
import { makeArray, rows, writeDetectorRun, writeH5, writeNpy, writeTiff, type RunResource } from './helpers/detector.js';
import { tempDir } from './helpers/files.js';
import { REPO } from './helpers/paths.js';

const ROOT = '/beamline/data';
const TS_SEC = '/entry/instrument/NDAttributes/NDArrayEpicsTSSec';
const TS_NSEC = '/entry/instrument/NDAttributes/NDArrayEpicsTSnSec';

interface Fixture {
  dir: string;
  /** datum_id → what the Python handler returns for it */
  expected: Map<string, NdArray | NdScalar | number | PyFloat>;
  runs: Record<string, string[]>;
}

const res = (spec: string, resource_path: string, resource_kwargs: Doc, datums: Doc[]): RunResource => ({ spec, root: ROOT, resource_path, resource_kwargs, datums });

async function fixture(): Promise<Fixture> {
  const dir = tempDir();
  const data = path.join(dir, 'data');
  const runs = path.join(dir, 'runs');
  const expected = new Map<string, NdArray | NdScalar | number | PyFloat>();
  const out: Record<string, string[]> = {};
  const expect = (ids: string[], values: (NdArray | NdScalar | number | PyFloat)[]) => ids.forEach((id, i) => expected.set(id, values[i]!));

  // AD_HDF5: several frames per file, one chunk per frame, three compressions
  const gz = makeArray('<u2', [6, 4, 5], (i) => (i * 2654435761) % 65521);
  const lz = makeArray('<i4', [3, 3, 4], (i) => (i % 7) * -100000 + i);
  const bs = makeArray('<f4', [2, 8, 8], (i) => Math.sin(i) * 1000);
  await writeH5(path.join(data, 'h5', 'gzip_000000.h5'), [{ path: '/entry/data/data', data: gz, chunks: [1, 4, 5], compression: 'gzip', compression_opts: 4 }]);
  await writeH5(path.join(data, 'h5', 'lz4_000000.h5'), [{ path: '/entry/data/data', data: lz, chunks: [1, 3, 4], compression: 32004, compression_opts: [0] }]);
  await writeH5(path.join(data, 'h5', 'bshuf_000000.h5'), [{ path: '/entry/data/data', data: bs, chunks: [1, 8, 8], compression: 32008, compression_opts: [0, 2] }]);
  out.h5 = writeDetectorRun(runs, 'run-h5', [
    res('AD_HDF5', 'h5/gzip_000000.h5', { frame_per_point: 2 }, [{ point_number: 0 }, { point_number: 1 }, { point_number: 2 }]),
    res('AD_HDF5', 'h5/lz4_000000.h5', { frame_per_point: 1 }, [{ point_number: 0 }, { point_number: 2 }]),
    res('AD_HDF5_SWMR', 'h5/bshuf_000000.h5', { frame_per_point: 1 }, [{ point_number: 1 }]),
  ]);
  expect(out.h5, [rows(gz, 0, 2), rows(gz, 2, 4), rows(gz, 4, 6), rows(lz, 0, 1), rows(lz, 2, 3), rows(bs, 1, 2)]);

  // AD_HDF5_TS: EPICS seconds + nanoseconds * 1e-9, squeezed
  const sec = makeArray('<u4', [4], (i) => 1700000000 + i);
  const nsec = makeArray('<u4', [4], (i) => [5, 999999999, 500000000, 0][i]!);
  await writeH5(path.join(data, 'h5', 'ts_000000.h5'), [
    { path: '/entry/data/data', data: makeArray('|u1', [4, 2, 2], (i) => i) },
    { path: TS_SEC, data: sec },
    { path: TS_NSEC, data: nsec },
  ]);
  const ts = (i: number) => (sec.item(i) as number) + (nsec.item(i) as number) * 1e-9;
  out.ts = writeDetectorRun(runs, 'run-ts', [
    res('AD_HDF5_TS', 'h5/ts_000000.h5', { frame_per_point: 1 }, [{ point_number: 0 }, { point_number: 1 }]),
    res('AD_HDF5_TS', 'h5/ts_000000.h5', { frame_per_point: 2 }, [{ point_number: 1 }]),
  ]);
  expect(out.ts, [ts(0), ts(1), NdArray.fromTypedArray(new Float64Array([ts(2), ts(3)]))]);

  // AD_HDF5_SINGLE: one file per frame
  const frames = [0, 1, 2, 3].map((j) => makeArray('|u1', [1, 3, 3], (i) => j * 10 + i));
  for (let j = 0; j < 4; j++) await writeH5(path.join(data, 'single', `img_${String(j).padStart(6, '0')}.h5`), [{ path: '/entry/data/data', data: frames[j]! }]);
  out.single = writeDetectorRun(runs, 'run-single', [res('AD_HDF5_SINGLE', 'single', { template: '%s%s_%6.6d.h5', filename: 'img', frame_per_point: 2 }, [{ point_number: 0 }, { point_number: 1 }])]);
  const stacked = (a: NdArray[]) => new NdArray(a[0]!.dtype, [a.length, ...a[0]!.shape], Buffer.concat(a.map((x) => x.data)));
  expect(out.single, [stacked([frames[0]!, frames[1]!]), stacked([frames[2]!, frames[3]!])]);

  // AD_TIFF: a series from the area-detector template
  const tiffs = [0, 1, 2, 3, 4, 5].map((j) => makeArray('<u2', [5, 7], (i) => j * 1000 + i * 3));
  tiffs.forEach((a, j) => writeTiff(path.join(data, 'tiff', `scan_${String(j).padStart(6, '0')}.tiff`), a));
  out.tiff = writeDetectorRun(runs, 'run-tiff', [res('AD_TIFF', 'tiff', { template: '%s%s_%6.6d.tiff', filename: 'scan', frame_per_point: 3 }, [{ point_number: 0 }, { point_number: 1 }])]);
  expect(out.tiff, [stacked(tiffs.slice(0, 3)), stacked(tiffs.slice(3, 6))]);

  // NPY_SEQ (ophyd.sim) and npy (one file)
  const npys = [0, 1, 2].map((j) => makeArray('<f8', [3, 2], (i) => j + i / 4));
  npys.forEach((a, j) => writeNpy(path.join(data, 'npy', `abc123_${j}.npy`), a));
  const one = makeArray('<i2', [2, 3], (i) => -i);
  writeNpy(path.join(data, 'npy', 'single.npy'), one);
  out.npy = writeDetectorRun(runs, 'run-npy', [
    res('NPY_SEQ', 'npy/abc123', {}, [{ index: 0 }, { index: 1 }, { index: 2 }]),
    res('npy', 'npy/single.npy', {}, [{}]),
  ]);
  expect(out.npy, [...npys, one]);

  writeFileSync(path.join(dir, 'catalog.yml'), `sources:\n  detectors:\n    driver: bluesky-msgpack-catalog\n    args:\n      paths:\n      - ${runs}/*.msgpack\n      root_map:\n        ${ROOT}: ${data}\n`);
  return { dir, expected, runs: out };
}

/** datum_id → the value an event of the pack holds for it, and the names of every document. */
async function collect(dest: string, format: 'msgpack' | 'jsonl') {
  const values = new Map<string, Value>();
  const names = new Set<string>();
  for (const f of readdirSync(path.join(dest, 'documents'))) {
    for await (const p of readRecords(path.join(dest, 'documents', f), format)) {
      names.add(p.name);
      if (p.name !== 'event_page') continue;
      const filled = p.doc.filled as Doc;
      const data = p.doc.data as Doc;
      if (!isPlainDoc(filled) || !Array.isArray(filled.img)) continue;
      values.set(String(filled.img[0]), (data.img as Value[])[0]!);
    }
  }
  return { values, names };
}

function sameValue(got: Value | undefined, want: NdArray | NdScalar | number | PyFloat, format: 'msgpack' | 'jsonl'): boolean {
  if (format === 'jsonl') {
    const w = want instanceof NdArray || want instanceof NdScalar ? want.toJsonValue() : want;
    return deepEqual(got, w instanceof PyFloat || typeof w === 'number' ? (Number.isInteger(Number(w)) ? new PyFloat(Number(w)) : Number(w)) : w);
  }
  if (want instanceof NdArray) {
    const a = NdArray.fromMsgpackValue(got);
    return a !== undefined && a.equals(want);
  }
  if (want instanceof NdScalar) return deepEqual(got, want);
  const n = typeof got === 'number' ? got : got instanceof PyFloat ? got.value : NaN;
  return Object.is(n, Number(want)) && (!Number.isInteger(n) || got instanceof PyFloat);
}

t.test('fill every built-in reader, msgpack and JSONL', async (t) => {
  const fx = await fixture();
  for (const format of ['msgpack', 'jsonl'] as const) {
    const dest = path.join(fx.dir, `pack-${format}`);
    const r = await runCli(['pack', path.join(fx.dir, 'catalog.yml'), dest, '--all', '--fill-external', '--format', format, '--concurrency', '3']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, new RegExp(`packed 5 run\\(s\\).*filled ${fx.expected.size} datums`));
    const { values, names } = await collect(dest, format);
    t.notOk(names.has('resource') || names.has('datum_page') || names.has('datum'), `${format}: no resources or datums`);
    t.same([...names].sort(), ['descriptor', 'event_page', 'start', 'stop']);
    for (const [run, ids] of Object.entries(fx.runs)) {
      for (const id of ids) t.ok(sameValue(values.get(id), fx.expected.get(id)!, format), `${format} ${run}: datum ${id} filled with the handler's data`);
    }
    const cat = parse(readFileSync(path.join(dest, 'catalog.yml'), 'utf8'));
    t.same(cat.sources.packed_catalog.args.root_map, {}, 'root_map is {}');
    t.same(readdirSync(dest).filter((f) => f.startsWith('external_files')), [], 'no external-file manifests or copies');
  }
});

t.test('the sample catalog (NPY_SEQ images from ophyd.sim) fills', async (t) => {
  const dest = path.join(tempDir(), 'filled');
  const r = await runCli(['pack', 'examples/catalog', dest, '--all', '--fill-external'], { cwd: REPO });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /packed 4 run\(s\), 30 documents .*filled 4 datums/);
  const { values } = await collect(dest, 'msgpack');
  t.equal(values.size, 4);
  for (const [id, v] of values) {
    const a = NdArray.fromMsgpackValue(v)!;
    const n = id.split('/').pop();
    const file = path.join(REPO, 'examples', 'catalog', 'external', `00f91b_${n}.npy`);
    t.equal(a.dtype, '<f8');
    t.same(a.shape, [10, 10]);
    t.ok(readFileSync(file).subarray(-800).equals(a.data), `${id}: the bytes of ${path.basename(file)}`);
  }
});

t.test('a missing or unreadable frame fails its run, naming the file and the datum', async (t) => {
  const fx = await fixture();
  const gone = path.join(fx.dir, 'data', 'tiff', 'scan_000004.tiff');
  rmSync(gone);
  // a file that is not HDF5 at all
  writeFileSync(path.join(fx.dir, 'data', 'h5', 'lz4_000000.h5'), 'not an HDF5 file');

  const dest = path.join(fx.dir, 'pack');
  const r = await runCli(['pack', path.join(fx.dir, 'catalog.yml'), dest, '--all', '--fill-external']);
  t.equal(r.code, 1);
  t.match(r.stderr, /packed 3 run\(s\)/, 'the other runs are packed');
  t.match(r.stderr, new RegExp(`run-tiff: E_MISSING_FILE: datum run-tiff-res0/1 \\(resource run-tiff-res0, spec AD_TIFF\\): external file ${gone.replace(/[.]/g, '\\.')} is missing`));
  t.match(r.stderr, /run-h5: E_HANDLER: datum run-h5-res1\/0 \(resource run-h5-res1, spec AD_HDF5\): cannot open .*lz4_000000\.h5 as HDF5: HDF5 [\d.]+: .*signature/);
  t.notMatch(r.stderr, /HDF5-DIAG|#00/, 'HDF5 error stacks are condensed to one line');
  t.match(readFileSync(path.join(dest, 'failures.tsv'), 'utf8'), /run-tiff\tE_MISSING_FILE\t/);
  t.notOk(existsSync(path.join(dest, 'documents', 'run-tiff.msgpack')), 'the failed run leaves no document file');

  const strict = await runCli(['pack', path.join(fx.dir, 'catalog.yml'), path.join(fx.dir, 'strict'), '--all', '--fill-external', '--strict']);
  t.equal(strict.code, 1);
  t.match(strict.stderr, /pack-stream: E_(MISSING_FILE|HANDLER): datum run-(tiff|h5)-res/);
  t.notOk(existsSync(path.join(fx.dir, 'strict', 'catalog.yml')), '--strict stops the export');
});

t.test('a spec without a reader, and --handler SPEC=./module.js', async (t) => {
  const dir = tempDir();
  const frames = [0, 1].map((j) => makeArray('<u2', [2, 3], (i) => 100 * j + i));
  frames.forEach((a, j) => writeFileSync(path.join(dir, `raw_${j}.bin`), a.data));
  writeDetectorRun(path.join(dir, 'runs'), 'run-raw', [{ spec: 'MY_RAW', root: dir, resource_path: 'raw', resource_kwargs: { shape: [2, 3] }, datums: [{ index: 0 }, { index: 1 }] }]);
  writeDetectorRun(path.join(dir, 'runs'), 'run-cbf', [{ spec: 'AD_CBF', root: dir, resource_path: 'cbf', resource_kwargs: { template: '%s%s_%d.cbf', filename: 'f' }, datums: [{ point_number: 0 }] }]);
  const dist = path.join(REPO, 'dist', 'index.js');
  writeFileSync(path.join(dir, 'raw-handler.mjs'), `
import { readFileSync } from 'node:fs';
import { NdArray } from ${JSON.stringify(dist)};
export default class RawHandler {
  constructor(path, kwargs) { this.path = path; this.shape = kwargs.shape; }
  file(index) { return \`\${this.path}_\${index}.bin\`; }
  read({ index }) { return new NdArray('<u2', this.shape, readFileSync(this.file(index))); }
  filesForDatum({ index }) { return [this.file(index)]; }
}
`);
  writeFileSync(path.join(dir, 'typed-handler.mjs'), `
import { readFileSync } from 'node:fs';
export const handler = (path) => ({ read: ({ index }) => { const b = readFileSync(\`\${path}_\${index}.bin\`); return new Uint16Array(b.buffer, b.byteOffset, b.length / 2); } });
`);

  const noReader = await runCli(['pack', 'runs', 'out1', '--all', '--fill-external', '--handler', 'MY_RAW=./raw-handler.mjs'], { cwd: dir });
  t.equal(noReader.code, 1);
  t.match(noReader.stderr, /run-cbf: E_NO_HANDLER: datum run-cbf-res0\/0 .*cannot read AD_CBF data .*--handler AD_CBF=\.\/my-handler\.js/);
  const { values } = await collect(path.join(dir, 'out1'), 'msgpack');
  t.ok(NdArray.fromMsgpackValue(values.get('run-raw-res0/1'))!.equals(frames[1]!), 'the module handler (a class) filled the frame');

  const typed = await runCli(['pack', 'runs/run-raw.msgpack', 'out2', '--all', '--fill-external', '--format', 'jsonl', '--handler', 'MY_RAW=./typed-handler.mjs'], { cwd: dir });
  t.equal(typed.code, 0, typed.stderr);
  const got = await collect(path.join(dir, 'out2'), 'jsonl');
  t.ok(deepEqual(got.values.get('run-raw-res0/0'), [0, 1, 2, 3, 4, 5]), 'a typed array from a factory becomes a 1-d array');

  const listing = await runCli(['pack', 'runs/run-raw.msgpack', 'out3', '--all', '--handler', 'MY_RAW=./raw-handler.mjs'], { cwd: dir });
  t.equal(listing.code, 0, listing.stderr);
  const manifest = readdirSync(path.join(dir, 'out3')).find((f) => f.startsWith('external_files_manifest_'))!;
  t.equal(readFileSync(path.join(dir, 'out3', manifest), 'utf8'), `${dir}/raw_0.bin\n${dir}/raw_1.bin`, 'the module lists files for manifests too');

  const missing = await runCli(['pack', 'runs', 'out4', '--all', '--fill-external', '--handler', 'MY_RAW=./nope.mjs'], { cwd: dir });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /E_USAGE: --handler MY_RAW=\.\/nope\.mjs: cannot load .*nope\.mjs/);
  const notBuiltin = await runCli(['pack', 'runs', 'out5', '--all', '--handler', 'MY_RAW=NOPE'], { cwd: dir });
  t.equal(notBuiltin.code, 2);
  t.match(notBuiltin.stderr, /'NOPE' is not a built-in handler/);
  const noDocs = await runCli(['pack', 'runs', 'out6', '--all', '--fill-external', '--no-documents'], { cwd: dir });
  t.equal(noDocs.code, 2);
  t.match(noDocs.stderr, /cannot be combined with --no-documents/);
});
