/**
 * Finding catalogs the way Python databroker does (formats.md §7.8): intake's
 * user and global data directories, INTAKE_PATH and the config file's
 * catalog_path, databroker's v0 config directories; names resolved in
 * databroker's order; `list-catalogs`, `pack --list-catalogs` and
 * `pack NAME` through child processes with a private environment.
 */
import t from 'tap';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { discoverCatalogs, findCatalog, openNamedCatalog } from '../src/catalogs/discovery.js';
import { MongoCatalog } from '../src/sources/mongo-catalog.js';
import {
  catalogSearchPath,
  globalDataDir,
  intakeCatalogPath,
  intakeConfigFile,
  siteDataDir,
  splitIntakePath,
  userDataDir,
  v0ConfigDirs,
} from '../src/catalogs/search-path.js';
import { openSource } from '../src/sources/open.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/files.js';
import { sandbox, type Sandbox } from './helpers/sandbox.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';
import { scalarRun, writeMsgpackRun } from './helpers/runs.js';

function libEnv(sb: Sandbox, extra: Record<string, string | undefined> = {}): { env: NodeJS.ProcessEnv; platform: NodeJS.Platform; cwd: string } {
  const env: NodeJS.ProcessEnv = { PATH: '' };
  for (const [k, v] of Object.entries({ ...sb.env, ...extra })) if (v !== undefined) env[k] = v;
  return { env, platform: 'linux', cwd: sb.root };
}

function write(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function fileSource(name: string, paths: string, driver = 'bluesky-msgpack-catalog'): string {
  return `sources:\n  ${name}:\n    args:\n      paths:\n      - ${paths}\n      root_map: {}\n    driver: ${driver}\n`;
}

/** What databroker-unpack (PyYAML) writes for simple_catalog unpacked as NAME. */
function pythonUnpacked(name: string, dir: string): string {
  const h = 'f8483b80395561ac779a5425da6646ca';
  return `sources:
  ${name}:
    args:
      paths:
      - ${dir}/documents/*.msgpack
      root_map:
        ${h}: ${dir}/external_files/${h}
    driver: bluesky-msgpack-catalog
    metadata:
      generated_by:
        library: databroker_pack
        version: 0.1.4.post13.dev0+g0e655dc
      relative_paths:
      - ./documents/*.msgpack
`;
}

const MONGO_YAML = `sources:
  beamline:
    args:
      asset_registry_db: mongodb://user:secret@db.example:27017/databroker_beamline
      metadatastore_db: mongodb://user:secret@db.example:27017/databroker_beamline
      root_map: {}
    driver: bluesky-mongo-normalized-catalog
`;

const V0_CONFIG = `description: an old-style config
metadatastore:
  module: databroker.headersource.mongo
  class: MDS
  config:
    host: mongo.example
    port: 27017
    database: mds_legacy
    timezone: US/Eastern
assets:
  module: databroker.assets.mongo
  class: Registry
  config:
    host: mongo.example
    port: 27017
    database: assets_legacy
`;

t.test('intake user data directory (appdirs)', async (t) => {
  t.equal(userDataDir({ env: { XDG_DATA_HOME: '/x/data', HOME: '/home/u' }, platform: 'linux' }), '/x/data/intake');
  t.equal(userDataDir({ env: { HOME: '/home/u' }, platform: 'linux' }), '/home/u/.local/share/intake');
  t.equal(userDataDir({ env: { HOME: '/home/u', XDG_DATA_HOME: '' }, platform: 'linux' }), '/home/u/.local/share/intake', 'empty counts as unset');
  t.equal(userDataDir({ env: { HOME: '/Users/u' }, platform: 'darwin' }), '/Users/u/Library/Application Support/intake');
  t.equal(userDataDir({ env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local', USERPROFILE: 'C:\\Users\\u' }, platform: 'win32' }), 'C:\\Users\\u\\AppData\\Local\\intake\\intake');
  t.equal(userDataDir({ env: { XDG_DATA_HOME: 'rel', HOME: '/h' }, platform: 'linux', cwd: '/work' }), '/work/rel/intake', 'relative to the working directory');
});

t.test('intake global data directory', async (t) => {
  const noConda = { PATH: '' };
  t.equal(await globalDataDir({ env: { ...noConda, VIRTUAL_ENV: '/venvs/a', CONDA_PREFIX: '/conda/b' }, platform: 'linux' }), '/venvs/a/share/intake', 'VIRTUAL_ENV first');
  t.equal(await globalDataDir({ env: { ...noConda, CONDA_PREFIX: '/conda/b' }, platform: 'linux' }), '/conda/b/share/intake');
  t.equal(await globalDataDir({ env: { ...noConda, XDG_DATA_DIRS: '/opt/share/:/usr/share' }, platform: 'linux' }), '/opt/share/intake', 'first XDG_DATA_DIRS entry');
  t.equal(await globalDataDir({ env: { ...noConda }, platform: 'linux' }), '/usr/local/share/intake', 'appdirs default');
  t.equal(await globalDataDir({ env: { ...noConda, VIRTUAL_ENV: '', XDG_DATA_DIRS: '/s' }, platform: 'linux' }), '/s/intake', 'an empty VIRTUAL_ENV falls through to the site directory');
  t.equal(siteDataDir({ env: {}, platform: 'darwin' }), '/Library/Application Support/intake');

  // conda on PATH but no environment active: intake asks `conda info --json`.
  const dir = tempDir();
  const bin = path.join(dir, 'bin');
  write(path.join(bin, 'conda'), `#!/bin/sh\n[ "$1 $2" = "info --json" ] || exit 3\necho '{"default_prefix": "${dir}/miniconda", "other": 1}'\n`);
  chmodSync(path.join(bin, 'conda'), 0o755);
  t.equal(await globalDataDir({ env: { PATH: bin }, platform: 'linux' }), path.join(dir, 'miniconda', 'share', 'intake'));
  t.equal(await globalDataDir({ env: { PATH: bin, XDG_DATA_DIRS: '/s' }, platform: 'linux', askConda: false }), '/s/intake', 'askConda: false skips it');
  write(path.join(bin, 'conda'), '#!/bin/sh\nexit 1\n');
  t.equal(await globalDataDir({ env: { PATH: bin, XDG_DATA_DIRS: '/s' }, platform: 'linux' }), '/s/intake', 'a failing conda falls back');

  t.same(await catalogSearchPath({ env: { HOME: '/h', VIRTUAL_ENV: '/v', PATH: '' }, platform: 'linux' }), ['/h/.local/share/intake', '/v/share/intake']);
});

t.test('intake catalog_path: INTAKE_PATH and the config file', async (t) => {
  t.same(splitIntakePath('path1:path2', 'linux'), ['path1', 'path2']);
  t.same(splitIntakePath('memory://a:memory://b', 'linux'), ['memory://a', 'memory://b']);
  t.same(splitIntakePath('/abs/a:/abs/b', 'linux'), ['/abs/a:/abs/b'], 'intake does not split before a slash');
  t.same(splitIntakePath('', 'linux'), ['']);
  t.same(splitIntakePath('C:\\a;D:\\b', 'win32'), ['C:\\a', 'D:\\b']);

  const sb = sandbox();
  t.equal(intakeConfigFile(libEnv(sb)), path.join(sb.env.INTAKE_CONF_DIR!, 'conf.yaml'));
  t.equal(intakeConfigFile({ env: { HOME: '/h' }, platform: 'linux' }), '/h/.intake/conf.yaml');
  t.same(await intakeCatalogPath(libEnv(sb)), { entries: [], from: 'default' }, 'no config file');
  const conf = write(path.join(sb.env.INTAKE_CONF_DIR!, 'conf.yaml'), 'catalog_path:\n- /from/conf\n- rel/dir\nport: 5000\n');
  t.same(await intakeCatalogPath(libEnv(sb)), { entries: ['/from/conf', 'rel/dir'], from: conf });
  t.same((await intakeCatalogPath(libEnv(sb, { INTAKE_PATH: 'a:b' }))).entries, ['a', 'b'], 'INTAKE_PATH wins');
  const other = write(path.join(sb.root, 'other.yaml'), 'catalog_path: one:two\n');
  t.same((await intakeCatalogPath(libEnv(sb, { INTAKE_CONF_FILE: other }))).entries, ['one', 'two'], 'INTAKE_CONF_FILE, string value split');
  write(conf, 'catalog_path: [unclosed\n');
  const broken = await intakeCatalogPath(libEnv(sb));
  t.same(broken.entries, []);
  t.match(broken.warning, /was ignored/);
});

t.test('databroker v0 config directories', async (t) => {
  t.same(await v0ConfigDirs({ env: { HOME: '/h', VIRTUAL_ENV: '/v' }, platform: 'linux' }), ['/h/.config/databroker', '/v/etc/databroker', '/etc/databroker']);
  const dir = tempDir();
  const bin = path.join(dir, 'env', 'bin');
  write(path.join(bin, 'python3'), '#!/bin/sh\n');
  chmodSync(path.join(bin, 'python3'), 0o755);
  t.same(await v0ConfigDirs({ env: { HOME: '/h', PATH: bin }, platform: 'linux' }), ['/h/.config/databroker', path.join(dir, 'env', 'etc', 'databroker'), '/etc/databroker'], "python3 on PATH gives sys.prefix");
  t.same(await v0ConfigDirs({ env: { APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, platform: 'win32' }), ['C:\\Users\\u\\AppData\\Roaming\\databroker']);
});

t.test('discovery: every place, databroker precedence, problems reported', async (t) => {
  const sb = sandbox();
  const intakePathDir = path.join(sb.root, 'intake-path');
  const confDir = path.join(sb.root, 'from-conf');
  write(path.join(sb.userDir, 'a.yml'), fileSource('user_cat', '/data/u/*.msgpack'));
  write(path.join(sb.userDir, 'b.yaml'), fileSource('user_jsonl', '/data/j/*.jsonl', 'bluesky-jsonl-catalog') + fileSource('second_in_file', '/x/*.msgpack').replace('sources:\n', ''));
  write(path.join(sb.userDir, 'ignored.txt'), fileSource('not_yaml', '/x'));
  write(path.join(sb.globalDir, 'g.yml'), fileSource('global_cat', '/data/g/*.msgpack') + fileSource('user_cat', '/data/dup/*.msgpack').replace('sources:\n', ''));
  write(path.join(sb.globalDir, 'mongo.yml'), MONGO_YAML);
  write(path.join(intakePathDir, 'p.yml'), fileSource('path_cat', "'{{ CATALOG_DIR }}/docs/*.msgpack'"));
  write(path.join(confDir, 'single.yml'), fileSource('conf_cat', '/data/c/*.msgpack'));
  write(path.join(sb.userDir, 'broken.yml'), 'sources: [unclosed\n');
  write(path.join(sb.env.HOME!, '.config', 'databroker', 'legacy.yml'), V0_CONFIG);
  write(path.join(sb.env.HOME!, '.config', 'databroker', '_legacy_config.yml'), V0_CONFIG);
  write(path.join(sb.env.VIRTUAL_ENV!, 'etc', 'databroker', 'global_cat.yml'), V0_CONFIG);
  write(path.join(sb.env.INTAKE_CONF_DIR!, 'conf.yaml'), `catalog_path:\n- ${path.join(confDir, 'single.yml')}\n`);

  const env = libEnv(sb, { INTAKE_PATH: path.relative(sb.root, intakePathDir) });
  const found = await discoverCatalogs(env);
  const byName = Object.fromEntries(found.catalogs.map((c) => [c.name, c]));
  const mine = found.catalogs.filter((c) => c.file.startsWith(sb.root)).map((c) => c.name);
  t.same(mine, ['beamline', 'global_cat', 'legacy', 'path_cat', 'second_in_file', 'user_cat', 'user_jsonl'], 'sorted by name; INTAKE_PATH replaces the config file');
  t.equal(byName.user_cat!.location, '/data/u/*.msgpack', 'the user directory wins over the global one');
  t.equal(byName.global_cat!.kind, 'databroker-v0', 'v0 configs come before intake YAML');
  t.equal(byName.global_cat!.driver, 'bluesky-mongo-normalized-catalog');
  t.equal(byName.legacy!.location, 'mongodb://mongo.example:27017/mds_legacy');
  t.equal(byName.user_jsonl!.driver, 'bluesky-jsonl-catalog');
  t.equal(byName.path_cat!.location, path.join(intakePathDir, 'docs', '*.msgpack'), '{{ CATALOG_DIR }} expanded');
  t.equal(byName.beamline!.location, 'mongodb://user:***@db.example:27017/databroker_beamline', 'password hidden');
  t.notOk(byName._legacy_config, '_legacy_config is not a catalog');
  t.same(found.shadowed.map((c) => `${c.name}@${path.basename(c.file)}`).sort(), ['global_cat@g.yml', 'user_cat@g.yml']);
  t.ok(found.warnings.some((w) => /broken\.yml was skipped/.test(w)), 'unreadable YAML reported');
  t.ok(found.warnings.some((w) => /'user_cat' is defined in .*a\.yml and again in .*g\.yml/.test(w)), 'duplicate reported');

  const withConf = await discoverCatalogs(libEnv(sb));
  t.ok(withConf.catalogs.some((c) => c.name === 'conf_cat'), "the config file's catalog_path (a YAML file entry)");
  t.notOk(withConf.catalogs.some((c) => c.name === 'path_cat'));

  t.equal((await findCatalog('user_jsonl', env))?.file, path.join(sb.userDir, 'b.yaml'));
  t.equal(await findCatalog('nope', env), undefined);
  const beamline = await openNamedCatalog('beamline', env);
  t.ok(beamline instanceof MongoCatalog, 'a Mongo catalog by name is a MongoCatalog (connecting on first use)');
  t.notMatch(beamline.description, /secret/, 'its description hides the password');
  await beamline.close?.();
  await t.rejects(openNamedCatalog('legacy', env), { code: 'E_UNSUPPORTED', message: /v0 config.*MongoDB/ });
  await t.rejects(openNamedCatalog('nope', env), { code: 'E_NO_SOURCE', message: /unknown catalog 'nope'.*known catalogs: .*user_cat/ });
});

t.test('list-catalogs and pack --list-catalogs find catalogs unpacked by either tool', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const simple = path.join(VECTORS, 'simple_catalog');
  const un = await runCli(['unpack', 'inplace', path.join(VECTORS, 'polartools_scalar'), 'ours'], { env: sb.env });
  t.equal(un.code, 0, un.stderr);
  write(path.join(sb.userDir, 'databroker_unpack_theirs.yml'), pythonUnpacked('theirs', simple));
  write(path.join(sb.globalDir, 'mongo.yml'), MONGO_YAML);

  const list = await runCli(['list-catalogs'], { env: sb.env });
  t.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split('\n').filter((l) => l.includes(sb.root));
  t.equal(lines.length, 3);
  t.match(lines[0], /^beamline\s+bluesky-mongo-normalized-catalog\s+mongodb:\/\/user:\*\*\*@db\.example:27017\/databroker_beamline\s+\S*mongo\.yml$/);
  t.match(lines[1], new RegExp(`^ours\\s+bluesky-msgpack-catalog\\s+${VECTORS}/polartools_scalar/documents/\\*\\.msgpack\\s+\\S*databroker_unpack_ours\\.yml$`));
  t.match(lines[2], new RegExp(`^theirs\\s+bluesky-msgpack-catalog\\s+${simple}/documents/\\*\\.msgpack\\s+\\S*databroker_unpack_theirs\\.yml$`));
  t.notMatch(list.stdout, /secret/, 'no password printed');

  const viaPack = await runCli(['pack', '--list-catalogs'], { env: sb.env });
  t.equal(viaPack.code, 0);
  t.equal(viaPack.stdout, list.stdout, 'pack --list-catalogs prints the same');

  const json = await runCli(['list-catalogs', '--json'], { env: sb.env });
  const data = JSON.parse(json.stdout) as { catalogs: { name: string; driver: string; file: string }[]; searched: { userDataDir: string } };
  t.equal(data.searched.userDataDir, sb.userDir);
  t.same(data.catalogs.filter((c) => c.file.startsWith(sb.root)).map((c) => c.name), ['beamline', 'ours', 'theirs']);

  const empty = sandbox();
  const none = await runCli(['list-catalogs'], { env: empty.env });
  t.equal(none.code, 0);
  t.match(none.stderr, new RegExp(`no catalogs found \\(searched ${empty.userDir}`));
});

t.test('pack NAME packs from a named catalog', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  const simple = path.join(VECTORS, 'simple_catalog');
  write(path.join(sb.userDir, 'databroker_unpack_theirs.yml'), pythonUnpacked('theirs', simple));
  t.equal((await runCli(['unpack', 'inplace', path.join(VECTORS, 'another_simple_catalog'), 'ours'], { env: sb.env })).code, 0);
  write(path.join(sb.globalDir, 'mongo.yml'), MONGO_YAML);

  for (const name of ['theirs', 'ours']) {
    const dest = path.join(sb.root, `packed-${name}`);
    const r = await runCli(['pack', name, dest, '--all', '--copy-external'], { env: sb.env });
    t.equal(r.code, 0, `${name}: ${r.stderr}`);
    t.match(r.stderr, /packed 3 run\(s\), 16 documents .*copied 1 external files/);
    const v = await runCli(['verify', dest], { env: sb.env });
    t.equal(v.code, 0, v.stdout + v.stderr);
  }
  const byUid = await runCli(['pack', 'theirs', path.join(sb.root, 'one'), '--uids', '-'], { env: sb.env, input: '6ae80362\n' });
  t.equal(byUid.code, 0, byUid.stderr);
  t.match(byUid.stderr, /packed 1 run/);

  // An unreachable server (fail fast: the URI sets a short server selection timeout).
  write(path.join(sb.globalDir, 'mongo.yml'), MONGO_YAML.replaceAll('/databroker_beamline', '/databroker_beamline?serverSelectionTimeoutMS=200'));
  const mongo = await runCli(['pack', 'beamline', path.join(sb.root, 'm'), '--all'], { env: sb.env });
  t.equal(mongo.code, 1);
  t.match(mongo.stderr, /E_IO: cannot connect to MongoDB at mongodb:\/\/user:\*\*\*@db\.example:27017\/databroker_beamline/);
  t.notMatch(mongo.stderr, /secret/);

  const unknown = await runCli(['pack', 'no_such_catalog', path.join(sb.root, 'u'), '--all'], { env: sb.env });
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /E_NO_SOURCE: unknown catalog 'no_such_catalog'.*known catalogs: .*ours.*theirs/);

  const usage = await runCli(['pack', 'theirs'], { env: sb.env });
  t.equal(usage.code, 2, 'pack without DEST is a usage error');
});

t.test('openSource: paths first, then names', { skip: SKIP_VECTORS }, async (t) => {
  const sb = sandbox();
  write(path.join(sb.userDir, 'databroker_unpack_polar.yml'), pythonUnpacked('polar', path.join(VECTORS, 'simple_catalog')));
  const saved = { ...process.env };
  t.teardown(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });
  for (const [k, v] of Object.entries(sb.env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const byName = await openSource('polar');
  t.match(byName.description, /databroker_unpack_polar\.yml#polar/);
  let n = 0;
  for await (const _ of byName.runs()) n++;
  t.equal(n, 3, 'the named catalog reads args.paths');

  // An empty directory of that name in the working directory does not hide the catalog;
  // one that holds run files is the path it names.
  const cwd = process.cwd();
  const dir = tempDir();
  mkdirSync(path.join(dir, 'polar'));
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  t.match((await openSource('polar')).description, /databroker_unpack_polar\.yml#polar/, 'an empty ./polar: the catalog');
  writeMsgpackRun(path.join(dir, 'polar', 'one.msgpack'), scalarRun('one'));
  const byPath = await openSource('polar');
  t.equal(byPath.description, path.join(dir, 'polar'), 'a ./polar with run files: the directory');
});
