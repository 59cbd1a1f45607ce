/**
 * --fill-external against the Python handlers. Python writes detector files in
 * the layouts area detectors write (h5py with gzip+shuffle, LZ4, bitshuffle and
 * Blosc from hdf5plugin; tifffile series from `%s%s_%6.6d.tiff`; numpy NPY
 * files of many dtypes); pack-stream packs runs pointing at them with
 * --fill-external; Python decodes the packs (msgpack with msgpack-numpy, JSONL
 * with json) and compares every filled datum, value for value and dtype for
 * dtype, with what area-detector-handlers, ophyd.sim and databroker's handlers
 * return for the same datum. databroker also opens the filled msgpack pack.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeDetectorRun, type RunResource } from '../helpers/detector.js';
import { tempDir } from '../helpers/files.js';
import { pythonOrSkip, runPython } from '../helpers/python.js';

const python = pythonOrSkip();
const SKIP = python ? false : 'no Python virtualenv (run scripts/pyenv.sh or set PACK_STREAM_BUILD_VENV=1)';
const ROOT = '/beamline/data';

/** Writes the detector files into argv[1] and prints the runs (one resource each) as JSON. */
const GENERATE = String.raw`
import sys, os, json
import numpy as np, h5py, hdf5plugin, tifffile
out = sys.argv[1]
rng = np.random.default_rng(7)
runs = []
def run(name, spec, resource_path, rk, datums, fails=None, shape=()):
    runs.append({'uid': name, 'spec': spec, 'resource_path': resource_path, 'resource_kwargs': rk, 'datums': datums, 'fails': fails, 'shape': list(shape)})
def h5(path, key, data, libver='earliest', **kw):
    os.makedirs(os.path.dirname(os.path.join(out, path)), exist_ok=True)
    with h5py.File(os.path.join(out, path), 'w', libver=libver) as f:
        f.create_dataset(key, data=data, **kw)
    return path
D = '/entry/data/data'
# AD_HDF5: several frames per file, one chunk per frame
h5('h5/gzip.h5', D, rng.integers(0, 65535, (8, 16, 12), dtype='u2'), chunks=(1, 16, 12), compression='gzip', compression_opts=4, shuffle=True)
run('h5-gzip-shuffle', 'AD_HDF5', 'h5/gzip.h5', {'frame_per_point': 2}, [{'point_number': i} for i in range(4)], shape=(2, 16, 12))
run('h5-partial', 'AD_HDF5', 'h5/gzip.h5', {'frame_per_point': 3}, [{'point_number': 2}])
h5('h5/lz4.h5', D, rng.integers(-2**31, 2**31 - 1, (4, 8, 8), dtype='i4'), chunks=(1, 8, 8), **hdf5plugin.LZ4())
run('h5-lz4', 'AD_HDF5', 'h5/lz4.h5', {'frame_per_point': 1}, [{'point_number': i} for i in range(4)])
h5('h5/bshuf.h5', D, rng.standard_normal((3, 8, 8)).astype('f4'), libver='latest', chunks=(1, 8, 8), **hdf5plugin.Bitshuffle(cname='lz4'))
run('h5-bitshuffle-swmr', 'AD_HDF5_SWMR', 'h5/bshuf.h5', {'frame_per_point': 1}, [{'point_number': i} for i in range(3)])
h5('h5/blosc.h5', D, rng.standard_normal((2, 5, 6)), chunks=(1, 5, 6), **hdf5plugin.Blosc(cname='zstd', clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
run('h5-blosc-zstd', 'AD_HDF5', 'h5/blosc.h5', {}, [{'point_number': 0}, {'point_number': 1}])
h5('h5/be.h5', D, np.arange(2 * 3 * 4, dtype='>u2').reshape(2, 3, 4) * 1000)
run('h5-big-endian', 'AD_HDF5', 'h5/be.h5', {'frame_per_point': 1}, [{'point_number': 0}, {'point_number': 1}])
h5('h5/tpx.h5', '/entry/instrument/detector/data', rng.integers(0, 2**32 - 1, (2, 4, 4), dtype='u4'))
run('tpx', 'TPX_HDF5', 'h5/tpx.h5', {'frame_per_point': 1}, [{'point_number': 1}])
# EPICS timestamps
NDA = '/entry/instrument/NDAttributes/'
with h5py.File(os.path.join(out, 'h5/ts.h5'), 'w') as f:
    f[D] = np.zeros((4, 2, 2), 'u1')
    f[NDA + 'NDArrayEpicsTSSec'] = np.array([1043000000, 1043000001, 1043000002, 1043000003], 'u4')
    f[NDA + 'NDArrayEpicsTSnSec'] = np.array([5, 999999999, 123456789, 0], 'u4')
run('ts-scalar', 'AD_HDF5_TS', 'h5/ts.h5', {'frame_per_point': 1}, [{'point_number': i} for i in range(4)])
run('ts-array', 'AD_HDF5_TS', 'h5/ts.h5', {'frame_per_point': 2}, [{'point_number': 0}, {'point_number': 1}])
with h5py.File(os.path.join(out, 'h5/ts_f4.h5'), 'w') as f:
    f[NDA + 'NDArrayEpicsTSSec'] = np.array([10.5, 11.25, 12, 13], 'f4')
    f[NDA + 'NDArrayEpicsTSnSec'] = np.array([5e8, 2.5e8, 1, 0], 'f4')
run('ts-f4-swmr', 'AD_HDF5_SWMR_TS', 'h5/ts_f4.h5', {'frame_per_point': 1}, [{'point_number': 0}, {'point_number': 2}])
with h5py.File(os.path.join(out, 'h5/ts_i2.h5'), 'w') as f:
    f[NDA + 'NDArrayEpicsTSSec'] = np.array([100, 101, 102, 103], 'i2')
    f[NDA + 'NDArrayEpicsTSnSec'] = np.array([5e8, 2.5e8, 1e3, 7], 'f4')
run('ts-i2-f4', 'AD_HDF5_TS', 'h5/ts_i2.h5', {'frame_per_point': 2}, [{'point_number': 0}, {'point_number': 1}])
# AD_HDF5_SINGLE: one file per frame, as AD writes it (1, H, W)
for j in range(4):
    h5('single/img_%06d.h5' % j, D, rng.integers(-300, 300, (1, 6, 5), dtype='i2'))
run('h5-single', 'AD_HDF5_SINGLE', 'single', {'template': '%s%s_%6.6d.h5', 'filename': 'img', 'frame_per_point': 2}, [{'point_number': 0}, {'point_number': 1}])
# AD_TIFF series
def tiffs(sub, n, make, **kw):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    for j in range(n):
        tifffile.imwrite(os.path.join(out, sub, 'scan_%06d.tiff' % j), make(j), **kw)
tiffs('tiff/u2', 6, lambda j: rng.integers(0, 65535, (6, 7), dtype='u2'))
run('tiff-u2', 'AD_TIFF', 'tiff/u2', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan', 'frame_per_point': 1}, [{'point_number': i} for i in range(6)], shape=(1, 6, 7))
run('tiff-fpp3', 'AD_TIFF', 'tiff/u2', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan', 'frame_per_point': 3}, [{'point_number': 0}, {'point_number': 1}])
tiffs('tiff/be', 2, lambda j: rng.standard_normal((5, 4)).astype('>f4'), byteorder='>')
run('tiff-big-endian-f4', 'AD_TIFF', 'tiff/be', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}, {'point_number': 1}])
tiffs('tiff/zlib', 2, lambda j: rng.integers(0, 4000, (9, 8), dtype='u2'), compression='zlib')
run('tiff-deflate', 'AD_TIFF', 'tiff/zlib', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}, {'point_number': 1}])
tiffs('tiff/i4', 1, lambda j: rng.integers(-2**31, 2**31 - 1, (3, 3), dtype='i4'))
run('tiff-i4', 'AD_TIFF', 'tiff/i4', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}])
tiffs('tiff/rgb', 1, lambda j: rng.integers(0, 255, (4, 5, 3), dtype='u1'), photometric='rgb')
run('tiff-rgb', 'AD_TIFF', 'tiff/rgb', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}])
tiffs('tiff/planar', 1, lambda j: rng.integers(0, 65535, (3, 4, 5), dtype='u2'), photometric='rgb', planarconfig='separate')
run('tiff-planar', 'AD_TIFF', 'tiff/planar', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}])
tiffs('tiff/pages', 2, lambda j: rng.integers(0, 255, (3, 4, 5), dtype='u1'), photometric='minisblack')
run('tiff-pages', 'AD_TIFF', 'tiff/pages', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan', 'frame_per_point': 2}, [{'point_number': 0}])
tiffs('tiff/tiled', 1, lambda j: rng.integers(0, 65535, (40, 37), dtype='u2'), tile=(16, 16), compression='zlib')
run('tiff-tiled-deflate', 'AD_TIFF', 'tiff/tiled', {'template': '%s%s_%6.6d.tiff', 'filename': 'scan'}, [{'point_number': 0}])
# NPY_SEQ (ophyd.sim) and npy, across dtypes
os.makedirs(os.path.join(out, 'npy'), exist_ok=True)
arrays = [
    rng.standard_normal((3, 4)),
    np.array([[1.0, 2.0], [np.nan, -0.0]]),
    np.arange(6, dtype='>i4').reshape(2, 3),
    rng.random((3, 3)) > 0.5,
    np.asfortranarray(np.arange(12, dtype='u2').reshape(3, 4)),
    np.array(['ab', 'c\u00e9', ''], dtype='<U2'),
    np.array(2.5, dtype='f4'),
    np.array([1.5, 65504, -0.25], dtype='<f2'),
    np.array([[1e-7, 1e17], [123.456, 5.0]], dtype='f4'),
]
for j, a in enumerate(arrays):
    np.save(os.path.join(out, 'npy', 'a1b2c3_%d.npy' % j), a)
run('npy-seq', 'NPY_SEQ', 'npy/a1b2c3', {}, [{'index': j} for j in range(len(arrays))])
np.save(os.path.join(out, 'npy', 'single.npy'), np.array([2**64 - 1, 0, 12345678901234567], dtype='u8'))
run('npy-file', 'npy', 'npy/single.npy', {}, [{}])
# a filter pack-stream cannot decode
h5('h5/sz3.h5', D, rng.standard_normal((2, 8, 8)).astype('f4'), chunks=(1, 8, 8), **hdf5plugin.SZ3(absolute=1e-3))
run('h5-sz3', 'AD_HDF5', 'h5/sz3.h5', {'frame_per_point': 1}, [{'point_number': 0}], fails='E_UNSUPPORTED')
print(json.dumps(runs))
`;

/**
 * argv: data dir, runs JSON file, pack dir, format. Compares every filled datum
 * with the Python handler's result; prints a JSON report.
 */
const VERIFY = String.raw`
import sys, os, json, math, glob
import numpy as np, msgpack, msgpack_numpy, hdf5plugin, yaml
from area_detector_handlers import handlers as adh
from ophyd.sim import NumpySeqHandler
from databroker.assets.handlers import NpyHandler
data, runs_file, pack, fmt = sys.argv[1:5]
REG = {
    'AD_HDF5': adh.AreaDetectorHDF5Handler, 'AD_HDF5_SWMR': adh.AreaDetectorHDF5SWMRHandler, 'TPX_HDF5': adh.TimepixHDF5Handler,
    'AD_HDF5_TS': adh.AreaDetectorHDF5TimestampHandler, 'AD_HDF5_SWMR_TS': adh.AreaDetectorHDF5SWMRTimestampHandler,
    'AD_HDF5_SINGLE': adh.AreaDetectorHDF5SingleHandler, 'AD_TIFF': adh.AreaDetectorTiffHandler,
    'NPY_SEQ': NumpySeqHandler, 'npy': NpyHandler,
}
def expected(run, dk):
    # a fresh handler per datum, built as databroker's Filler builds it
    h = REG[run['spec']](os.path.join(data, run['resource_path']), **run['resource_kwargs'])
    v = h(**dk)
    return v.compute() if hasattr(v, 'compute') else v
def strict(a, b):
    if type(a) is not type(b): return False
    if isinstance(a, list): return len(a) == len(b) and all(strict(x, y) for x, y in zip(a, b))
    if isinstance(a, float): return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    return a == b
def same(got, want):
    if fmt == 'jsonl':
        return strict(got, want.tolist() if hasattr(want, 'tolist') else want), 'json'
    if isinstance(want, np.ndarray):
        ok = isinstance(got, np.ndarray) and got.dtype.str == want.dtype.str and got.shape == want.shape and np.array_equal(got, want, equal_nan=want.dtype.kind == 'f')
        return ok, (getattr(got, 'dtype', None) and got.dtype.str, getattr(got, 'shape', None), want.dtype.str, want.shape)
    if isinstance(want, float):  # np.float64 is a float
        return type(got) is float and got == want, (type(got).__name__, got, want)
    ok = isinstance(got, np.generic) and got.dtype.str == want.dtype.str and got == want
    return ok, (type(got).__name__, type(want).__name__)
runs = json.load(open(runs_file))
report = {'checked': 0, 'mismatches': [], 'names': set(), 'missing': []}
for run in runs:
    if run['fails']: continue
    path = os.path.join(pack, 'documents', '%s.%s' % (run['uid'], fmt))
    if fmt == 'msgpack':
        docs = list(msgpack.Unpacker(open(path, 'rb'), object_hook=msgpack_numpy.decode, raw=False))
    else:
        docs = [json.loads(line) for line in open(path)]
    got = {}
    for name, doc in docs:
        report['names'].add(name)
        if name == 'event_page':
            got[doc['filled']['img'][0]] = doc['data']['img'][0]
    for i, dk in enumerate(run['datums']):
        did = '%s-res0/%d' % (run['uid'], i)
        if did not in got:
            report['missing'].append(did); continue
        ok, why = same(got[did], expected(run, dk))
        report['checked'] += 1
        if not ok: report['mismatches'].append([did, repr(why)])
report['names'] = sorted(report['names'])
report['root_map'] = yaml.safe_load(open(os.path.join(pack, 'catalog.yml')))['sources']['packed_catalog']['args']['root_map']
if fmt == 'msgpack':
    import intake
    cat = intake.open_catalog(os.path.join(pack, 'catalog.yml'))['packed_catalog']
    db = {}
    for uid in ['h5-gzip-shuffle', 'tiff-u2', 'ts-scalar']:
        run = next(r for r in runs if r['uid'] == uid)
        img = cat[uid].primary.read()['img'].values
        want = np.stack([np.asarray(expected(run, dk)) for dk in run['datums']])
        db[uid] = bool(img.shape == want.shape and np.array_equal(img, want))
    report['databroker'] = db
print(json.dumps(report))
`;

t.test('filled packs decode in Python to what the Python handlers return', { skip: SKIP }, async (t) => {
  const dir = tempDir();
  const data = path.join(dir, 'data');
  const scratch = tempDir(); // ophyd.sim mkdtemp()s at import
  const gen = runPython(python as string, GENERATE, [data], { TMPDIR: scratch });
  t.equal(gen.code, 0, gen.stderr.slice(-3000));
  const runs = JSON.parse(gen.stdout) as { uid: string; spec: string; resource_path: string; resource_kwargs: Record<string, never>; datums: Record<string, never>[]; fails: string | null; shape: number[] }[];
  const runsFile = path.join(dir, 'runs.json');
  writeFileSync(runsFile, gen.stdout);
  for (const r of runs) {
    const res: RunResource = { spec: r.spec, root: ROOT, resource_path: r.resource_path, resource_kwargs: r.resource_kwargs, datums: r.datums };
    writeDetectorRun(path.join(dir, 'runs'), r.uid, [res], { shape: r.shape });
  }
  writeFileSync(path.join(dir, 'catalog.yml'), `sources:\n  detectors:\n    driver: bluesky-msgpack-catalog\n    args:\n      paths:\n      - ${dir}/runs/*.msgpack\n      root_map:\n        ${ROOT}: ${data}\n`);
  const total = runs.filter((r) => !r.fails).reduce((n, r) => n + r.datums.length, 0);

  for (const format of ['msgpack', 'jsonl'] as const) {
    const pack = path.join(dir, `pack-${format}`);
    const r = await runCli(['pack', path.join(dir, 'catalog.yml'), pack, '--all', '--fill-external', '--format', format]);
    t.equal(r.code, 1, 'the run with an unsupported filter fails, the others are packed');
    t.match(r.stderr, new RegExp(`packed ${runs.length - 1} run\\(s\\).*filled ${total} datums`));
    t.match(r.stderr, /h5-sz3: E_UNSUPPORTED: datum h5-sz3-res0\/0 \(resource h5-sz3-res0, spec AD_HDF5\): .*h5\/sz3\.h5: dataset \/entry\/data\/data is compressed with .*\(filter id 32024\)/, 'the error names the filter, the file and the datum');
    const py = runPython(python as string, VERIFY, [data, runsFile, pack, format], { TMPDIR: scratch, HOME: tempDir() });
    t.equal(py.code, 0, py.stderr.slice(-3000));
    const report = JSON.parse(py.stdout.trim().split('\n').pop()!);
    t.equal(report.checked, total, `${format}: every datum compared (${report.checked})`);
    t.same(report.missing, [], `${format}: every datum filled`);
    t.same(report.mismatches, [], `${format}: equal to the Python handlers, value for value and dtype for dtype`);
    t.same(report.names, ['descriptor', 'event_page', 'start', 'stop'], `${format}: no resources or datums`);
    t.same(report.root_map, {}, `${format}: root_map {}`);
    if (format === 'msgpack') t.same(report.databroker, { 'h5-gzip-shuffle': true, 'tiff-u2': true, 'ts-scalar': true }, 'databroker reads the filled pack');
  }
});
