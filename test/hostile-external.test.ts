/**
 * External data from a stranger (issue 10, points 3 and 4), through the CLI in
 * a child process under a time and memory budget: special files in place of
 * datum files (a FIFO, links to /dev/zero and /dev/null, a directory) in copy,
 * fill and manifest modes, and resource kwargs that would list or read without
 * end. Each hostile run fails alone with one line naming the file or kwarg;
 * the good runs are packed, nothing appears outside DEST and the sources are
 * unchanged.
 */
import type { Test } from 'tap';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PyFloat, type Doc } from '../src/codec/values.js';
import { runCliBudgeted, DEFAULT_BUDGET, type BudgetResult } from './helpers/budget.js';
import { makeArray, writeDetectorRun, writeNpy, writeTiff, writeH5 } from './helpers/detector.js';
import { listTree, tempDir } from './helpers/files.js';

const POSIX = process.platform !== 'win32';
const HAS_MKFIFO = POSIX && (() => {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return existsSync('/usr/bin/mkfifo') || existsSync('/bin/mkfifo');
  }
})();

interface Fixture {
  dir: string;
  runs: string;
  data: string;
  dest: string;
}

/** Three good NPY_SEQ runs with real frames, and a place for a hostile one. */
function fixture(): Fixture {
  const dir = tempDir();
  const runs = path.join(dir, 'runs');
  const data = path.join(dir, 'data');
  for (let i = 0; i < 3; i++) {
    writeNpy(path.join(data, 'good', `img${i}_0.npy`), makeArray('<u2', [4, 5], (k) => k + i));
    writeDetectorRun(runs, `good-${i}`, [{ spec: 'NPY_SEQ', root: data, resource_path: `good/img${i}`, resource_kwargs: {}, datums: [{ index: 0 }] }]);
  }
  mkdirSync(path.join(data, 'evil'), { recursive: true });
  return { dir, runs, data, dest: path.join(dir, 'pack') };
}

/**
 * Every path under `dir` except `skip`, with its type and, for regular files,
 * size, mtime and sha256: never following links nor opening special files.
 */
function snapshot(dir: string, skip: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (p === skip) continue;
      const s = lstatSync(p);
      const rel = path.relative(dir, p);
      if (s.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else if (s.isFile()) out[rel] = `file:${s.size}:${s.mtimeMs}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      else out[rel] = `${s.isSymbolicLink() ? 'link' : s.isFIFO() ? 'fifo' : 'other'}:${s.mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

const MODES: Record<string, string[]> = { manifest: [], copy: ['--copy-external'], fill: ['--fill-external'] };

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function withinBudget(t: Test, r: BudgetResult): void {
  t.equal(r.killed, null, `finished within ${DEFAULT_BUDGET.seconds} s and ${DEFAULT_BUDGET.rssMb} MiB (${r.seconds.toFixed(1)} s, peak ${r.peakRssMb?.toFixed(0) ?? '?'} MiB)`);
  t.ok(r.seconds < DEFAULT_BUDGET.seconds, 'time budget');
  if (r.peakRssMb !== null) t.ok(r.peakRssMb < DEFAULT_BUDGET.rssMb, 'memory budget');
}

/**
 * Pack the fixture (with the hostile run 'evil' in it) in `mode`, and check:
 * exit 1, one line for 'evil' matching every pattern, the three good runs
 * packed (and their frames copied or filled), nothing outside DEST changed.
 */
async function packExpectingFailure(t: Test, fx: Fixture, mode: string, extra: string[], patterns: RegExp[]): Promise<BudgetResult> {
  const before = snapshot(fx.dir, fx.dest);
  const r = await runCliBudgeted(['pack', fx.runs, fx.dest, '--all', ...MODES[mode]!, ...extra]);
  withinBudget(t, r);
  t.equal(r.code, 1, 'exit code 1');
  t.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('  evil: '));
  t.equal(lines.length, 1, 'one line for the hostile run');
  for (const p of patterns) t.match(lines[0] ?? r.stderr, p, `the message says ${p}`);
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace');
  t.same(snapshot(fx.dir, fx.dest), before, 'nothing outside DEST changed, sources untouched');
  const docs = readdirSync(path.join(fx.dest, 'documents')).sort();
  t.same(docs, ['good-0.msgpack', 'good-1.msgpack', 'good-2.msgpack'], 'the good runs are packed');
  t.ok(existsSync(path.join(fx.dest, 'catalog.yml')), 'catalog.yml written');
  const tree = await listTree(fx.dest);
  t.notOk(tree.some((f) => f.endsWith('.partial')), 'no partial files');
  t.match(readFileSync(path.join(fx.dest, 'failures.tsv'), 'utf8'), /^evil\t/m, 'failure recorded');
  if (mode === 'copy') {
    t.same(tree.filter((f) => f.startsWith('external_files/')).map((f) => path.basename(f)).sort(), ['img0_0.npy', 'img1_0.npy', 'img2_0.npy'], 'only the good frames copied');
  }
  return r;
}

const SPECIAL: Record<string, { make: (p: string) => void; kind: RegExp; skip?: string | false }> = {
  'a FIFO': { make: (p) => execFileSync('mkfifo', [p]), kind: /is a FIFO, not a regular file/, skip: HAS_MKFIFO ? false : 'no mkfifo' },
  'a link to /dev/zero': { make: (p) => symlinkSync('/dev/zero', p), kind: /-> \/dev\/zero is a character device, not a regular file/, skip: existsSync('/dev/zero') ? false : 'no /dev/zero' },
  'a directory': { make: (p) => mkdirSync(p), kind: /is a directory, not a regular file/ },
  'a link to /dev/null': { make: (p) => symlinkSync('/dev/null', p), kind: /-> \/dev\/null is a character device, not a regular file/, skip: existsSync('/dev/null') ? false : 'no /dev/null' },
};

for (const [what, special] of Object.entries(SPECIAL)) {
  t.test(`a datum file that is ${what}`, { skip: POSIX ? special.skip ?? false : 'POSIX special files' }, async (t) => {
    for (const mode of Object.keys(MODES)) {
      await t.test(mode, async (t) => {
        const fx = fixture();
        writeDetectorRun(fx.runs, 'evil', [{ spec: 'NPY_SEQ', root: fx.data, resource_path: 'evil/img', resource_kwargs: {}, datums: [{ index: 0 }] }]);
        const file = path.join(fx.data, 'evil', 'img_0.npy');
        special.make(file);
        await packExpectingFailure(t, fx, mode, [], [/E_NOT_REGULAR: /, new RegExp(`external file ${escape(file)}`), special.kind, /datum evil-res0\/0/]);
      });
    }
  });
}

t.test('special files reached through every built-in reader, with --fill-external', { skip: HAS_MKFIFO ? false : 'no mkfifo' }, async (t) => {
  const cases: [string, Doc, Doc, string][] = [
    ['AD_HDF5', { frame_per_point: 1 }, { point_number: 0 }, 'evil/frames.h5'],
    ['AD_HDF5_SINGLE', { template: '%s%s_%d.h5', filename: 'f', frame_per_point: 1 }, { point_number: 0 }, 'evil/f_0.h5'],
    ['AD_TIFF', { template: '%s%s_%6.6d.tiff', filename: 'img', frame_per_point: 1 }, { point_number: 0 }, 'evil/img_000000.tiff'],
    ['npy', {}, {}, 'evil/one.npy'],
  ];
  for (const [spec, rk, dk, rel] of cases) {
    await t.test(spec, async (t) => {
      const fx = fixture();
      const resourcePath = spec === 'AD_HDF5' || spec === 'npy' ? rel : path.dirname(rel);
      writeDetectorRun(fx.runs, 'evil', [{ spec, root: fx.data, resource_path: resourcePath, resource_kwargs: rk, datums: [dk] }]);
      execFileSync('mkfifo', [path.join(fx.data, rel)]);
      await packExpectingFailure(t, fx, 'fill', [], [/E_NOT_REGULAR: /, new RegExp(`${escape(path.join(fx.data, rel))} is a FIFO`), /datum evil-res0\/0/]);
    });
  }
});

/** A hostile resource for the 'evil' run. */
function evilRun(fx: Fixture, spec: string, rk: Doc, datums: Doc[] = [{ point_number: 0 }]): void {
  writeDetectorRun(fx.runs, 'evil', [{ spec, root: fx.data, resource_path: 'evil', resource_kwargs: rk, datums }]);
}

t.test('resource kwargs that would list a billion files', async (t) => {
  const tiff = { template: '%s%s_%6.6d.tiff', filename: 'img' };
  for (const mode of Object.keys(MODES)) {
    await t.test(`AD_TIFF frame_per_point 1000000000, ${mode}`, async (t) => {
      const fx = fixture();
      evilRun(fx, 'AD_TIFF', { ...tiff, frame_per_point: 1_000_000_000 });
      await packExpectingFailure(t, fx, mode, [], [/E_LIMIT: /, /resource evil-res0 \(spec AD_TIFF\)/, /frame_per_point 1000000000 makes 1000000000 files per datum, more than the limit of 100000 \(--max-files-per-datum\)/]);
    });
    await t.test(`AD_CBF initial_number -1000000000, ${mode}`, async (t) => {
      const fx = fixture();
      evilRun(fx, 'AD_CBF', { template: '%s%s_%6.6d.cbf', filename: 'img', frame_per_point: 1, initial_number: -1_000_000_000 });
      await packExpectingFailure(t, fx, mode, [], [/E_LIMIT: /, /resource evil-res0 \(spec AD_CBF\)/, /initial_number -1000000000 with frame_per_point 1 makes 1000000002 files per datum/]);
    });
  }
});

t.test('kwargs Python refuses, and limits set on the command line', async (t) => {
  const tiff = { template: '%s%s_%6.6d.tiff', filename: 'img' };
  const cases: [string, string, Doc, string[], RegExp[], Doc[]?][] = [
    ['frame_per_point 1e9 as a float', 'AD_TIFF', { ...tiff, frame_per_point: new PyFloat(1e9) }, [], [/E_HANDLER: /, /frame_per_point must be an integer, got 1000000000\.0/]],
    ['frame_per_point NaN', 'AD_TIFF', { ...tiff, frame_per_point: NaN }, [], [/E_HANDLER: /, /frame_per_point must be an integer, got nan/i]],
    ['frame_per_point 1.5', 'AD_HDF5', { frame_per_point: 1.5 }, ['--fill-external'], [/E_HANDLER: /, /frame_per_point must be an integer, got 1\.5/]],
    ['frame_per_point 2^62', 'AD_TIFF', { ...tiff, frame_per_point: 2n ** 62n }, [], [/E_LIMIT: /, /frame_per_point 4611686018427387904 is beyond 2\^53/]],
    ['point_number 2^52 with frame_per_point 4', 'AD_TIFF', { ...tiff, frame_per_point: 4 }, [], [/E_LIMIT: /, /point_number 4503599627370496 with frame_per_point 4 gives frame numbers beyond 2\^53/], [{ point_number: 2 ** 52 }]],
    ['a template width of 999999999', 'AD_TIFF', { template: '%s%s_%999999999d.tiff', filename: 'img', frame_per_point: 1 }, [], [/E_LIMIT: /, /a width of 999999999 is more than 4096/]],
    ['a template precision of 999999999', 'AD_SPE', { template: '%s%s_%.999999999d.spe', filename: 'img' }, [], [/E_LIMIT: /, /a precision of 999999999 is more than 4096/]],
    ['a file name longer than PATH_MAX', 'AD_TIFF', { template: '%s%s_%d.tiff', filename: 'x'.repeat(5000), frame_per_point: 1 }, [], [/E_LIMIT: /, /makes a path of \d+ characters, longer than any file path can be \(4096\)/]],
    ['3 frames per point over --max-files-per-datum 2', 'AD_TIFF', { ...tiff, frame_per_point: 3 }, ['--max-files-per-datum', '2'], [/E_LIMIT: /, /frame_per_point 3 makes 3 files per datum, more than the limit of 2 \(--max-files-per-datum\)/]],
    ['5 datums over --max-files-per-resource 4', 'AD_TIFF', { ...tiff, frame_per_point: 1 }, ['--max-files-per-resource', '4'], [/E_LIMIT: /, /datum evil-res0\/4 \(resource evil-res0, spec AD_TIFF\): the resource's datums list more than 4 files \(--max-files-per-resource\)/], [0, 1, 2, 3, 4].map((point_number) => ({ point_number }))],
  ];
  for (const [name, spec, rk, extra, patterns, datums] of cases) {
    await t.test(name, async (t) => {
      const fx = fixture();
      evilRun(fx, spec, rk, datums);
      const mode = extra[0] === '--fill-external' ? 'fill' : 'manifest';
      await packExpectingFailure(t, fx, mode, extra.filter((a) => a !== '--fill-external'), patterns);
    });
  }
});

t.test('an Eiger prefix with glob characters is matched literally', async (t) => {
  const fx = fixture();
  // Node's glob would take `**` as "every directory below", here the whole file system
  writeDetectorRun(fx.runs, 'evil', [{ spec: 'AD_EIGER', root: '/', resource_path: '**/master', resource_kwargs: {}, datums: [{ seq_id: 1 }] }]);
  const r = await runCliBudgeted(['pack', fx.runs, fx.dest, '--all']);
  withinBudget(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(readdirSync(path.join(fx.dest, 'documents')).length, 4, 'every run packed; the prefix matched nothing');
});

t.test('reads bounded by the file and by --max-datum-bytes', async (t) => {
  await t.test('an NPY header promising more than the file holds', async (t) => {
    const fx = fixture();
    const file = path.join(fx.data, 'evil', 'img_0.npy');
    writeNpy(file, makeArray('<u2', [4, 5], (k) => k));
    const bytes = readFileSync(file);
    writeFileSync(file, Buffer.from(bytes.toString('latin1').replace("'shape': (4, 5)", "'shape': (99999999999, 5)"), 'latin1'));
    writeDetectorRun(fx.runs, 'evil', [{ spec: 'NPY_SEQ', root: fx.data, resource_path: 'evil/img', resource_kwargs: {}, datums: [{ index: 0 }] }]);
    await packExpectingFailure(t, fx, 'fill', [], [/E_HANDLER: /, /img_0\.npy is not a readable NPY file: data is truncated \(\d+ of 999999999990 bytes\)/]);
  });
  await t.test('an NPY header longer than numpy reads', async (t) => {
    const fx = fixture();
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
    pre.writeUInt32LE(0xfffffff0, 8);
    writeFileSync(path.join(fx.data, 'evil', 'img_0.npy'), pre);
    writeDetectorRun(fx.runs, 'evil', [{ spec: 'NPY_SEQ', root: fx.data, resource_path: 'evil/img', resource_kwargs: {}, datums: [{ index: 0 }] }]);
    await packExpectingFailure(t, fx, 'fill', [], [/E_HANDLER: /, /longer than numpy's max_header_size \(10000\)/]);
  });
  await t.test('NPY, TIFF and HDF5 frames over --max-datum-bytes', async (t) => {
    const frame = makeArray('<u2', [16, 16], (k) => k); // 512 bytes; a datum of two is over the limit
    for (const spec of ['NPY_SEQ', 'AD_TIFF', 'AD_HDF5']) {
      await t.test(spec, async (t) => {
        const fx = fixture();
        const evil = path.join(fx.data, 'evil');
        if (spec === 'NPY_SEQ') {
          writeNpy(path.join(evil, 'img_0.npy'), makeArray('<u2', [2, 16, 16], (k) => k));
          writeDetectorRun(fx.runs, 'evil', [{ spec, root: fx.data, resource_path: 'evil/img', resource_kwargs: {}, datums: [{ index: 0 }] }]);
        } else if (spec === 'AD_TIFF') {
          writeTiff(path.join(evil, 'img_000000.tiff'), frame);
          writeTiff(path.join(evil, 'img_000001.tiff'), frame);
          evilRun(fx, spec, { template: '%s%s_%6.6d.tiff', filename: 'img', frame_per_point: 2 });
        } else {
          await writeH5(path.join(evil, 'frames.h5'), [{ path: '/entry/data/data', data: makeArray('<u2', [2, 16, 16], (k) => k) }]);
          writeDetectorRun(fx.runs, 'evil', [{ spec, root: fx.data, resource_path: 'evil/frames.h5', resource_kwargs: { frame_per_point: 2 }, datums: [{ point_number: 0 }] }]);
        }
        // the good frames are 40 bytes; the evil datum is 1024
        await packExpectingFailure(t, fx, 'fill', ['--max-datum-bytes', '1000'], [/E_LIMIT: /, /datum evil-res0\/0/, /limit of 1000 bytes per datum \(--max-datum-bytes\)/]);
      });
    }
  });
  await t.test('an HDF5 chunk larger than the limit, though the datum is small', async (t) => {
    const fx = fixture();
    await writeH5(path.join(fx.data, 'evil', 'frames.h5'), [{ path: '/entry/data/data', data: makeArray('<u2', [2, 16, 16], (k) => k), chunks: [2, 16, 16] }]);
    writeDetectorRun(fx.runs, 'evil', [{ spec: 'AD_HDF5', root: fx.data, resource_path: 'evil/frames.h5', resource_kwargs: { frame_per_point: 1 }, datums: [{ point_number: 0 }] }]);
    await packExpectingFailure(t, fx, 'fill', ['--max-datum-bytes', '1000'], [/E_LIMIT: /, /dataset \/entry\/data\/data is stored in chunks of 1024 bytes, more than the limit of 1000 bytes per datum/]);
  });
  await t.test('a TIFF whose pages loop back', async (t) => {
    const fx = fixture();
    const file = path.join(fx.data, 'evil', 'img_000000.tiff');
    writeTiff(file, makeArray('<u2', [4, 4], (k) => k));
    const b = readFileSync(file);
    // classic TIFF: the first IFD's "next IFD" offset follows its entries; point it back at itself
    const le = b.toString('latin1', 0, 2) === 'II';
    const ifd = le ? b.readUInt32LE(4) : b.readUInt32BE(4);
    const n = le ? b.readUInt16LE(ifd) : b.readUInt16BE(ifd);
    if (le) b.writeUInt32LE(ifd, ifd + 2 + n * 12);
    else b.writeUInt32BE(ifd, ifd + 2 + n * 12);
    writeFileSync(file, b);
    evilRun(fx, 'AD_TIFF', { template: '%s%s_%6.6d.tiff', filename: 'img', frame_per_point: 1 });
    await packExpectingFailure(t, fx, 'fill', [], [/E_HANDLER: /, /img_000000\.tiff: page 1 points back to an earlier page/]);
  });
});

t.test('a user handler module is not called on a special file it lists', { skip: HAS_MKFIFO ? false : 'no mkfifo' }, async (t) => {
  const fx = fixture();
  const module = path.join(fx.dir, 'raw-handler.mjs');
  // reads synchronously, as a user module might: on a FIFO this would block the whole process
  writeFileSync(module, [
    "import { readFileSync } from 'node:fs';",
    'export default class Raw {',
    '  constructor(p) { this.p = p; }',
    '  filesForDatum() { return [this.p]; }',
    '  read() { return new Uint8Array(readFileSync(this.p)); }',
    '}',
  ].join('\n'));
  writeDetectorRun(fx.runs, 'evil', [{ spec: 'RAW', root: fx.data, resource_path: 'evil/frames.raw', resource_kwargs: {}, datums: [{}] }]);
  execFileSync('mkfifo', [path.join(fx.data, 'evil', 'frames.raw')]);
  await packExpectingFailure(t, fx, 'fill', ['--handler', `RAW=${module}`], [/E_NOT_REGULAR: /, /frames\.raw is a FIFO/, /datum evil-res0\/0 \(resource evil-res0, spec RAW\)/]);
});
