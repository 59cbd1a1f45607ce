import t from 'tap';
import { pyPercentFormat } from '../src/transforms/pyformat.js';
import { HandlerRegistry, osPathJoin, resourceFilePath } from '../src/transforms/handlers.js';
import type { Doc } from '../src/codec/values.js';
import { forEachDatumFile } from '../src/transforms/resources.js';

t.test("Python %-format for area-detector templates", async (t) => {
  t.equal(pyPercentFormat('%s%s_%6.6d.tiff', ['/data/', 'img', 7]), '/data/img_000007.tiff');
  t.equal(pyPercentFormat('%s%s_%05d.h5', ['/d/', 'f', 42]), '/d/f_00042.h5');
  t.equal(pyPercentFormat('%s%s_%d.cbf', ['/d/', 'f', -3]), '/d/f_-3.cbf');
  t.equal(pyPercentFormat('%5d|%-5d|%+d|%%', [1, 2, 3]), '    1|2    |+3|%');
  t.equal(pyPercentFormat('%.3s', ['abcdef']), 'abc');
  t.equal(pyPercentFormat('%3.2d', [5]), ' 05');
  t.throws(() => pyPercentFormat('%s%s', ['a']), { code: 'E_HANDLER' });
  t.throws(() => pyPercentFormat('%s', ['a', 'b']), { code: 'E_HANDLER' });
  // hostile templates: bounded widths, typed errors for wrong argument types
  t.equal(pyPercentFormat('%4096d', [1]).length, 4096, 'a width up to PATH_MAX');
  t.throws(() => pyPercentFormat('%4097d', [1]), { code: 'E_LIMIT', message: /a width of 4097 is more than 4096/ });
  t.throws(() => pyPercentFormat('%.99999999999999999999d', [1]), { code: 'E_LIMIT', message: /precision/ });
  t.throws(() => pyPercentFormat('%*d', [99999, 1]), { code: 'E_LIMIT' });
  t.equal(pyPercentFormat('%*d|%-*d|', [3, 7, 3, 8]), '  7|8  |', '* widths');
  t.throws(() => pyPercentFormat('%*d', ['x', 1]), { code: 'E_HANDLER', message: /an integer is required/ });
  t.throws(() => pyPercentFormat('%x', ['abc']), { code: 'E_HANDLER', message: /an integer is required, not string/ });
  t.throws(() => pyPercentFormat('%x', [1.5]), { code: 'E_HANDLER', message: /not float/ });
  t.throws(() => pyPercentFormat('%d', [NaN]), { code: 'E_HANDLER' });
  t.throws(() => pyPercentFormat('%f', ['x']), { code: 'E_HANDLER' });
  t.equal(pyPercentFormat('%.200f', [0.5]).length, 102, 'toFixed precision clamped to 100 digits');
  t.equal(pyPercentFormat('%d', [7.9]), '7', '%d truncates a float, as Python does');
  t.throws(() => pyPercentFormat(`${'z'.repeat(500)}%s%s`, ['a']), { code: 'E_HANDLER', message: /"z{80}"\.\.\./ }, 'a long template is cut short in messages');
});

const res = (spec: string, kw: Doc, root = '/root', rp = 'sub/file'): Doc => ({ spec, root, resource_path: rp, resource_kwargs: kw, uid: 'r1' });

t.test('file lists per spec, as the Python handlers compute them', async (t) => {
  const reg = new HandlerRegistry();
  const list = async (r: Doc, datums: Doc[], rootMap: Record<string, string> = {}) => {
    const { filePath } = resourceFilePath(r, rootMap);
    const l = reg.lister(r, filePath);
    const out = [...l.resourceFiles()];
    for (const d of datums) await forEachDatumFile(l.filesForDatum(d), reg.limits.filesPerDatum, (f) => out.push(f));
    return out;
  };
  t.same(await list(res('NPY_SEQ', {}, '/save', 'abc123'), [{ index: 0 }, { index: 1 }]), ['/save/abc123_0.npy', '/save/abc123_1.npy']);
  t.same(await list(res('AD_HDF5', { frame_per_point: 1 }, '/data', 'x.h5'), [{ point_number: 0 }]), ['/data/x.h5', '/data/x.h5']);
  t.same(await list(res('AD_TIFF', { template: '%s%s_%6.6d.tiff', filename: 'img', frame_per_point: 2 }, '/data', 'dir'), [{ point_number: 1 }]), ['/data/dir/img_000002.tiff', '/data/dir/img_000003.tiff']);
  t.same(await list(res('AD_HDF5_SINGLE', { template: '%s%s_%d.h5', filename: 'f', frame_per_point: 1 }, '/d', 'dir/'), [{ point_number: 4 }]), ['/d/dir/f_4.h5']);
  t.same(await list(res('AD_CBF', { template: '%s%s_%d.cbf', filename: 'f', frame_per_point: 1, initial_number: 1 }, '/d', 'p'), [{ point_number: 0 }]), ['/d/p/f_1.cbf']);
  t.same(await list(res('AD_SPE', { template: '%s%s_%d.spe', filename: 'f', frame_per_point: 1 }, '/d', 'p'), [{ point_number: 2 }]), ['/d/p/f_2.spe']);
  t.same(await list(res('XSP3', {}, '/d', 'x.h5'), [{ frame: 0, channel: 1 }]), ['/d/x.h5', '/d/x.h5']);
  t.same(await list(res('NPY_SEQ', {}, 'ORIG', 'abc'), [{ index: 0 }], { ORIG: '/moved/here' }), ['/moved/here/abc_0.npy'], 'source root_map applied');
  t.same(await list(res('npy', {}, '/ignored', '/abs/file.npy'), []), ['/abs/file.npy'], 'an absolute resource_path discards the root (os.path.join)');
  t.throws(() => reg.lister(res('AD_HDF5_lambda', {}), '/x'), { code: 'E_NO_HANDLER', message: /--handler AD_HDF5_lambda=/ });
  reg.alias('AD_HDF5_lambda', 'AD_HDF5');
  t.same(await list(res('AD_HDF5_lambda', {}, '/', 'home/x.h5'), []), ['/home/x.h5']);
  t.throws(() => reg.alias('X', 'NOPE'), { code: 'E_USAGE' });
  t.throws(() => reg.lister(res('AD_TIFF', {}), '/x'), { code: 'E_HANDLER', message: /template/ });
  t.equal(osPathJoin('a', 'b'), 'a/b');
  t.equal(osPathJoin('a/', 'b'), 'a/b');
  t.equal(osPathJoin('', 'b'), 'b');
});
