/**
 * `pack-stream unpack inplace` against databroker-unpack's behaviour
 * (formats.md §7.8): the YAML written for each vector equals, as YAML data,
 * what databroker-unpack writes (hand-written expectations below), merging is
 * the default, refused merges write nothing, and the pack is never modified.
 * Every run uses a temporary HOME / XDG_DATA_HOME / VIRTUAL_ENV.
 */
import { realpathSync } from 'node:fs';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { pathlibAbsolute, unpackedCatalogDocument, unpackInplace } from '../src/pipeline/unpack-inplace.js';
import { runCli } from './helpers/cli.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { sandbox, type Sandbox } from './helpers/sandbox.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';

const SIMPLE_HASH = 'f8483b80395561ac779a5425da6646ca';
const ANOTHER_HASH = '6dd0c365fe571bb2a00c63e1623fa298';

function readYaml(file: string): unknown {
  return parse(readFileSync(file, 'utf8'), { version: '1.1' });
}

function unpack(sb: Sandbox, packPath: string, name: string, extra: string[] = [], cwd?: string) {
  return runCli(['unpack', 'inplace', packPath, name, ...extra], { env: sb.env, ...(cwd ? { cwd } : {}) });
}

// --- what databroker-unpack writes, per vector, written out by hand ---------

function expectedSimple(name: string, dir: string) {
  return {
    sources: {
      [name]: {
        args: {
          paths: [`${dir}/documents/*.msgpack`],
          root_map: { [SIMPLE_HASH]: `${dir}/external_files/${SIMPLE_HASH}` },
        },
        driver: 'bluesky-msgpack-catalog',
        metadata: {
          generated_by: { library: 'databroker_pack', version: '0.1.4.post13.dev0+g0e655dc' },
          relative_paths: ['./documents/*.msgpack'],
        },
      },
    },
  };
}

function expectedAnother(name: string, dir: string) {
  return {
    sources: {
      [name]: {
        args: {
          paths: [`${dir}/documents/*.msgpack`],
          root_map: { [ANOTHER_HASH]: `${dir}/external_files/${ANOTHER_HASH}` },
        },
        driver: 'bluesky-msgpack-catalog',
        metadata: {
          generated_by: { library: 'databroker_pack', version: '0.1.4.post14+gf7fce64' },
          relative_paths: ['./documents/*.msgpack'],
        },
      },
    },
  };
}

function expectedPolar(name: string, dir: string) {
  return {
    sources: {
      [name]: {
        args: { paths: [`${dir}/documents/*.msgpack`], root_map: {} },
        driver: 'bluesky-msgpack-catalog',
        metadata: {
          generated_by: { library: 'databroker_pack', version: '0.3.0' },
          relative_paths: ['./documents/*.msgpack'],
        },
      },
    },
  };
}

/** simple_catalog, then another_simple_catalog merged into the same name. */
function expectedMerged(name: string, simple: string, another: string) {
  return {
    sources: {
      [name]: {
        args: {
          paths: [`${another}/documents/*.msgpack`, `${simple}/documents/*.msgpack`],
          root_map: {
            [ANOTHER_HASH]: `${another}/external_files/${ANOTHER_HASH}`,
            [SIMPLE_HASH]: `${simple}/external_files/${SIMPLE_HASH}`,
          },
        },
        driver: 'bluesky-msgpack-catalog',
        // The source written is the newly unpacked pack's, so its metadata wins.
        metadata: {
          generated_by: { library: 'databroker_pack', version: '0.1.4.post14+gf7fce64' },
          relative_paths: ['./documents/*.msgpack'],
        },
      },
    },
  };
}

t.test('pathlib absolute: joins, drops "." and repeated slashes, keeps ".."', async (t) => {
  t.equal(pathlibAbsolute('/data/pack', './documents/*.msgpack', '/cwd', 'linux'), '/data/pack/documents/*.msgpack');
  t.equal(pathlibAbsolute('pack/', './documents/*.msgpack', '/cwd', 'linux'), '/cwd/pack/documents/*.msgpack');
  t.equal(pathlibAbsolute('./pack//', 'external_files/abc', '/cwd', 'linux'), '/cwd/pack/external_files/abc');
  t.equal(pathlibAbsolute('../x/pack', 'documents/*.jsonl', '/cwd/sub', 'linux'), '/cwd/sub/../x/pack/documents/*.jsonl');
  t.equal(pathlibAbsolute('/data/pack', '/elsewhere/files', '/cwd', 'linux'), '/elsewhere/files', 'an absolute part replaces what is before it');
  t.equal(pathlibAbsolute('.', 'documents', '/cwd', 'linux'), '/cwd/documents');
});

t.test('the document for a pack, without and with an existing source', async (t) => {
  const pack = {
    sources: {
      packed_catalog: {
        args: { paths: ['/old/place/documents/*.msgpack'], root_map: { h1: 'external_files/h1', h2: '/abs/root' } },
        driver: 'bluesky-msgpack-catalog',
        metadata: { generated_by: { library: 'pack-stream', version: '0.1.0' }, relative_paths: ['./documents/*.msgpack'] },
      },
    },
  };
  const before = structuredClone(pack);
  const doc = unpackedCatalogDocument(pack, '/new/pack', 'mine', undefined, { cwd: '/cwd', platform: 'linux' });
  t.same(pack, before, 'the input is not modified');
  t.same(doc, {
    sources: {
      mine: {
        args: { paths: ['/new/pack/documents/*.msgpack'], root_map: { h1: '/new/pack/external_files/h1', h2: '/abs/root' } },
        driver: 'bluesky-msgpack-catalog',
        metadata: { generated_by: { library: 'pack-stream', version: '0.1.0' }, relative_paths: ['./documents/*.msgpack'] },
      },
    },
  });

  const existing = {
    args: { paths: ['/z/documents/*.msgpack', '/a/documents/*.msgpack'], root_map: { h3: '/r3' } },
    driver: 'bluesky-msgpack-catalog',
    metadata: { relative_paths: ['./documents/*.msgpack', './more/*.msgpack'] },
  };
  const merged = unpackedCatalogDocument(pack, '/new/pack', 'mine', existing, { cwd: '/cwd', platform: 'linux' }) as { sources: { mine: { args: { paths: string[]; root_map: object }; metadata: { relative_paths: string[] } } } };
  t.same(merged.sources.mine.args.paths, ['/a/documents/*.msgpack', '/new/pack/documents/*.msgpack', '/z/documents/*.msgpack'], 'paths: sorted union');
  t.same(merged.sources.mine.metadata.relative_paths, ['./documents/*.msgpack', './more/*.msgpack'], 'relative_paths: sorted union');
  t.same(merged.sources.mine.args.root_map, { h1: '/new/pack/external_files/h1', h2: '/abs/root', h3: '/r3' }, 'root_map: both');

  t.throws(() => unpackedCatalogDocument(pack, '/p', 'mine', { ...existing, args: { ...existing.args, root_map: { h2: '/x' } } }), { code: 'E_CONFLICT', message: /root_map keys h2/ });
  t.throws(() => unpackedCatalogDocument(pack, '/p', 'mine', { ...existing, driver: 'bluesky-jsonl-catalog' }), { code: 'E_CONFLICT', message: /driver/ });
  t.throws(() => unpackedCatalogDocument({ sources: { other: {} } }, '/p', 'mine', undefined), { code: 'E_BAD_CATALOG' });
});

t.test('each vector unpacks to what databroker-unpack writes', { skip: SKIP_VECTORS }, async (t) => {
  const cases: [string, (name: string, dir: string) => unknown][] = [
    ['simple_catalog', expectedSimple],
    ['another_simple_catalog', expectedAnother],
    ['polartools_scalar', expectedPolar],
  ];
  for (const [vector, expected] of cases) {
    const sb = sandbox();
    const dir = path.join(VECTORS, vector);
    const before = await treeDigest(dir);
    const r = await unpack(sb, dir, 'mycat');
    t.equal(r.code, 0, `${vector}: exit 0`);
    t.equal(r.stdout, '', 'nothing on stdout');
    const file = path.join(sb.userDir, 'databroker_unpack_mycat.yml');
    t.match(r.stderr, file, 'says where the file went');
    t.same(readYaml(file), expected('mycat', dir), `${vector}: same YAML data`);
    t.same(readdirSync(sb.userDir), ['databroker_unpack_mycat.yml'], 'no temporary files left');
    t.same(await treeDigest(dir), before, `${vector}: pack untouched`);
  }
});

t.test('a relative PATH is made absolute the way pathlib does', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const r = await unpack(sb, './simple_catalog/', 'rel', [], VECTORS);
  t.equal(r.code, 0, r.stderr);
  // the child's working directory is the real path (getcwd resolves symlinks, as in Python)
  t.same(readYaml(path.join(sb.userDir, 'databroker_unpack_rel.yml')), expectedSimple('rel', path.join(realpathSync(VECTORS), 'simple_catalog')));
});

t.test('without XDG_DATA_HOME the file goes to ~/.local/share/intake', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  sb.env.XDG_DATA_HOME = undefined;
  const r = await unpack(sb, path.join(VECTORS, 'polartools_scalar'), 'home');
  t.equal(r.code, 0, r.stderr);
  const file = path.join(sb.env.HOME!, '.local', 'share', 'intake', 'databroker_unpack_home.yml');
  t.same(readYaml(file), expectedPolar('home', path.join(VECTORS, 'polartools_scalar')));
});

t.test('merging simple_catalog and another_simple_catalog into one name', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const simple = path.join(VECTORS, 'simple_catalog');
  const another = path.join(VECTORS, 'another_simple_catalog');
  t.equal((await unpack(sb, simple, 'both')).code, 0);
  const r = await unpack(sb, another, 'both');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /merged/);
  t.same(readYaml(path.join(sb.userDir, 'databroker_unpack_both.yml')), expectedMerged('both', simple, another));

  // The merged catalog reads both packs' runs.
  const inspect = await runCli(['inspect', 'both', '--json'], { env: sb.env });
  t.equal(inspect.code, 0, inspect.stderr);
  t.equal(JSON.parse(inspect.stdout).totals.runs, 6, 'six runs through the merged name');
});

t.test('a refused merge writes nothing', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const simple = path.join(VECTORS, 'simple_catalog');
  t.equal((await unpack(sb, simple, 'dup')).code, 0);
  const file = path.join(sb.userDir, 'databroker_unpack_dup.yml');
  const before = readFileSync(file, 'utf8');

  const again = await unpack(sb, simple, 'dup');
  t.equal(again.code, 1, 'same root_map key twice: refused');
  t.match(again.stderr, new RegExp(`E_CONFLICT: .*root_map keys ${SIMPLE_HASH}`));
  t.equal(readFileSync(file, 'utf8'), before, 'file unchanged');

  // A JSONL pack cannot merge into a msgpack catalog.
  const jsonlPack = path.join(sb.root, 'jsonl-pack');
  mkdirSync(jsonlPack);
  writeFileSync(
    path.join(jsonlPack, 'catalog.yml'),
    'sources:\n  packed_catalog:\n    args:\n      paths:\n      - /x/documents/*.jsonl\n      root_map: {}\n    driver: bluesky-jsonl-catalog\n    metadata:\n      relative_paths:\n      - ./documents/*.jsonl\n',
  );
  const mixed = await unpack(sb, jsonlPack, 'dup');
  t.equal(mixed.code, 1, 'driver mismatch: refused');
  t.match(mixed.stderr, /E_CONFLICT: cannot merge a source with driver bluesky-jsonl-catalog into catalog 'dup', whose driver is bluesky-msgpack-catalog/);
  t.equal(readFileSync(file, 'utf8'), before, 'file unchanged');
  t.same(readdirSync(sb.userDir), ['databroker_unpack_dup.yml'], 'no temporary files left');
});

t.test('--no-merge on an existing name exits 1 and lists the catalogs', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  t.equal((await unpack(sb, path.join(VECTORS, 'simple_catalog'), 'first')).code, 0);
  t.equal((await unpack(sb, path.join(VECTORS, 'polartools_scalar'), 'second')).code, 0);
  const file = path.join(sb.userDir, 'databroker_unpack_first.yml');
  const before = readFileSync(file, 'utf8');
  const r = await unpack(sb, path.join(VECTORS, 'another_simple_catalog'), 'first', ['--no-merge']);
  t.equal(r.code, 1);
  t.match(r.stderr, /E_EXISTS: a catalog named 'first' already exists/);
  t.match(r.stderr, /catalogs that exist on this system are:\n {2}first\n {2}second\n/);
  t.equal(readFileSync(file, 'utf8'), before, 'file unchanged');
  t.equal(r.stdout, '');

  // --no-merge with a new name is fine.
  t.equal((await unpack(sb, path.join(VECTORS, 'another_simple_catalog'), 'third', ['--no-merge'])).code, 0);
});

t.test('a name that exists outside the user directory cannot be merged into', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const global = path.join(sb.env.VIRTUAL_ENV!, 'share', 'intake');
  mkdirSync(global, { recursive: true });
  writeFileSync(path.join(global, 'site.yml'), `sources:\n  shared:\n    args:\n      paths:\n      - /nowhere/*.msgpack\n    driver: bluesky-msgpack-catalog\n`);
  const r = await unpack(sb, path.join(VECTORS, 'simple_catalog'), 'shared');
  t.equal(r.code, 1);
  t.match(r.stderr, /exists .* but not in the user-writable location/);
  t.notOk(existsSync(path.join(sb.userDir, 'databroker_unpack_shared.yml')), 'nothing written');
});

t.test('bad input', async (t) => {
  const sb = sandbox();
  const notPack = path.join(sb.root, 'empty');
  mkdirSync(notPack);
  const r1 = await unpack(sb, notPack, 'x');
  t.equal(r1.code, 1);
  t.match(r1.stderr, /E_NO_SOURCE: could not find 'catalog.yml' in/);
  const r2 = await unpack(sb, path.join(sb.root, 'missing'), 'x');
  t.equal(r2.code, 1);
  t.match(r2.stderr, /E_NO_SOURCE: .*missing is not a directory/);
  const r3 = await unpack(sb, notPack, 'a/b');
  t.equal(r3.code, 2, 'a name with a slash is a usage error');
  const r4 = await runCli(['unpack', 'inplace', notPack], { env: sb.env });
  t.equal(r4.code, 2, 'missing NAME is a usage error');
  t.notOk(existsSync(sb.userDir), 'nothing created');
});

t.test('the library call, and a moved pack', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const first = path.join(sb.root, 'first');
  cpSync(path.join(VECTORS, 'simple_catalog'), first, { recursive: true });
  const moved = path.join(sb.root, 'elsewhere', 'moved');
  mkdirSync(path.dirname(moved));
  cpSync(first, moved, { recursive: true });
  const result = await unpackInplace(moved, 'lib', sb.search);
  t.equal(result.file, path.join(sb.userDir, 'databroker_unpack_lib.yml'));
  t.equal(result.merged, false);
  t.same(readYaml(result.file), expectedSimple('lib', moved), 'paths point at where the pack is now');
  await t.rejects(unpackInplace(moved, 'lib', { ...sb.search, merge: false }), { code: 'E_EXISTS' });
  const packed = await runCli(['pack', 'lib', path.join(sb.root, 'repacked'), '--all', '--copy-external'], { env: sb.env });
  t.equal(packed.code, 0, packed.stderr);
  t.match(packed.stderr, /packed 3 run\(s\).*copied 1 external files/);
});

// Optional: compare with the real databroker-unpack when the reference venv exists.
const venv = path.join(process.env.PACK_STREAM_CACHE ?? path.join(os.homedir(), '.cache', 'pack-stream'), 'venv');
const pyUnpack = path.join(venv, 'bin', 'databroker-unpack');
const SKIP_PY = SKIP_VECTORS || (existsSync(pyUnpack) ? false : `no databroker-unpack at ${pyUnpack}`);

t.test('same YAML data as the real databroker-unpack', { skip: SKIP_PY }, async (t) => {
  const ours = sandbox();
  const theirs = sandbox();
  const steps: [string, string][] = [
    ['simple_catalog', 'a'],
    ['polartools_scalar', 'b'],
    ['another_simple_catalog', 'a'],
  ];
  for (const [vector, name] of steps) {
    const dir = path.join(VECTORS, vector);
    t.equal((await unpack(ours, dir, name)).code, 0);
    const py = spawnSync(pyUnpack, ['inplace', dir, name], {
      env: { ...process.env, ...Object.fromEntries(Object.entries(theirs.env).filter(([, v]) => v !== undefined)), PATH: `${path.join(venv, 'bin')}:/usr/bin:/bin` },
      encoding: 'utf8',
    });
    t.equal(py.status, 0, py.stderr);
  }
  for (const name of ['a', 'b']) {
    const f = `databroker_unpack_${name}.yml`;
    t.same(readYaml(path.join(ours.userDir, f)), readYaml(path.join(theirs.userDir, f)), `${f}: same data`);
  }
});
