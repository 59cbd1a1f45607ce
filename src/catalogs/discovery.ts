/**
 * The catalogs Python databroker knows by name, found the way `databroker.catalog`
 * finds them (formats.md §7.8): databroker's v0 config files first, then every
 * source of every `*.yaml`/`*.yml` file in intake's user and global data
 * directories and on intake's `catalog_path`. (Catalogs that Python packages
 * register as entry points cannot be seen from outside Python.)
 *
 * A name resolves to the first definition in that order, as databroker's
 * ChainMap does; later definitions are reported as shadowed.
 */
import { glob, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PackStreamError } from '../errors.js';
import { byCodePoint } from '../sinks/manifests.js';
import {
  fileCatalogFromEntry,
  formatOfDriver,
  KNOWN_DRIVERS_TEXT,
  loadYamlFile,
  MONGO_DRIVER,
  readCatalogSources,
  resolvedPaths,
  resolvedRootMap,
  type CatalogSourceEntry,
} from '../sources/catalog-yaml.js';
import { MongoCatalog } from '../sources/mongo-catalog.js';
import type { Catalog } from '../types.js';
import { expandUser, globalDataDir, intakeCatalogPath, userDataDir, v0ConfigDirs, type SearchEnv } from './search-path.js';

export interface DiscoveredCatalog {
  name: string;
  /** The intake driver, e.g. bluesky-msgpack-catalog; for v0 configs, the driver databroker would use. */
  driver: string;
  /** A source in an intake catalog YAML, or a databroker v0 config file. */
  kind: 'intake' | 'databroker-v0';
  /** The YAML file that defines it. */
  file: string;
  /** Where its data is: file globs, or a MongoDB URI with any password hidden. */
  location: string;
  /** The intake source (kind 'intake'). */
  entry?: CatalogSourceEntry;
}

export interface CatalogSearchDirs {
  userDataDir: string;
  globalDataDir: string;
  catalogPath: string[];
  v0ConfigDirs: string[];
}

export interface CatalogDiscovery {
  /** One per name, the definition databroker uses, sorted by name. */
  catalogs: DiscoveredCatalog[];
  /** Later definitions of a name already found (Python intake refuses to load YAML duplicates). */
  shadowed: DiscoveredCatalog[];
  /** Files that could not be read, and other things a user should know. */
  warnings: string[];
  searched: CatalogSearchDirs;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Files in `dir` with the given suffix, sorted. */
async function filesWithSuffix(dir: string, suffix: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.filter((n) => n.endsWith(suffix)).sort(byCodePoint)) {
    const f = path.join(dir, n);
    try {
      if ((await stat(f)).isFile()) out.push(f);
    } catch {
      // vanished
    }
  }
  return out;
}

async function globFiles(pattern: string): Promise<string[]> {
  if (!/[*?[\]]/.test(pattern)) {
    try {
      return (await stat(pattern)).isFile() ? [pattern] : [];
    } catch {
      return [];
    }
  }
  const out: string[] = [];
  for await (const f of glob(pattern)) out.push(path.resolve(f));
  return out.sort(byCodePoint);
}

/** intake's load_combo_catalog(): the YAML files behind databroker.catalog, in order. */
async function intakeYamlFiles(dirs: CatalogSearchDirs, s: SearchEnv): Promise<string[]> {
  const files: string[] = [];
  for (const dir of [dirs.userDataDir, dirs.globalDataDir]) {
    if (!(await isDir(dir))) continue;
    files.push(...(await filesWithSuffix(dir, '.yaml')), ...(await filesWithSuffix(dir, '.yml')));
  }
  const cwd = s.cwd ?? process.cwd();
  for (const entry of dirs.catalogPath) {
    if (entry === '') continue;
    const p = path.resolve(cwd, expandUser(entry, s));
    // intake's test has no dot: any entry ending in "yaml" or "yml" is a file (glob).
    if (entry.endsWith('yaml') || entry.endsWith('yml')) files.push(...(await globFiles(p)));
    else files.push(...(await filesWithSuffix(p, '.yaml')), ...(await filesWithSuffix(p, '.yml')));
  }
  return [...new Set(files)];
}

/** A MongoDB URI without its password. */
export function hidePassword(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Where an intake source's data is, for listings. */
export function entryLocation(entry: CatalogSourceEntry): string {
  if (formatOfDriver(entry.driver)) {
    try {
      return resolvedPaths(asDatabrokerReadsIt(entry)).join(' ');
    } catch {
      return '';
    }
  }
  const mds = asString(entry.args.metadatastore_db);
  if (mds !== undefined) {
    const assets = asString(entry.args.asset_registry_db);
    return assets !== undefined && assets !== mds ? `${hidePassword(mds)} ${hidePassword(assets)}` : hidePassword(mds);
  }
  const url = asString(entry.args.urlpath) ?? asString(entry.args.uri) ?? asString(entry.args.url);
  return url !== undefined ? hidePassword(url) : '';
}

/**
 * databroker reads a named file catalog from `args.paths`; `metadata.relative_paths`
 * is only a note for unpack (resolved against an unpacked catalog's YAML file,
 * it would point into intake's directory).
 */
export function asDatabrokerReadsIt(entry: CatalogSourceEntry): CatalogSourceEntry {
  if (!('relative_paths' in entry.metadata) || entry.args.paths === undefined) return entry;
  const metadata = { ...entry.metadata };
  delete metadata.relative_paths;
  return { ...entry, metadata };
}

interface V0Mongo {
  host?: unknown;
  port?: unknown;
  database?: unknown;
  uri?: unknown;
  directory?: unknown;
}

function describeV0(name: string, file: string, config: unknown): DiscoveredCatalog {
  const cfg = (config ?? {}) as Record<string, unknown>;
  const mds = (cfg.metadatastore ?? {}) as Record<string, unknown>;
  const module = asString(mds.module) ?? '';
  const driver = module === 'databroker.headersource.mongo' ? MONGO_DRIVER : `databroker-v0 ${module || '(no metadatastore.module)'}`;
  const c = (mds.config ?? {}) as V0Mongo;
  let location = '';
  if (typeof c.uri === 'string') location = `${hidePassword(c.uri)}${c.database !== undefined ? ` database ${String(c.database)}` : ''}`;
  else if (c.host !== undefined || c.database !== undefined) location = `mongodb://${String(c.host ?? 'localhost')}${c.port !== undefined ? `:${String(c.port)}` : ''}/${String(c.database ?? '')}`;
  else if (typeof c.directory === 'string') location = c.directory;
  return { name, driver, kind: 'databroker-v0', file, location };
}

/** databroker's list_configs() over the v0 directories, first directory winning. */
async function v0Catalogs(dirs: string[], s: SearchEnv, warnings: string[]): Promise<DiscoveredCatalog[]> {
  const env = s.env ?? process.env;
  const special = env.DATABROKER_TEST_MODE !== undefined ? '_test_legacy_config' : '_legacy_config';
  const out: DiscoveredCatalog[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    for (const file of await filesWithSuffix(dir, '.yml')) {
      const name = path.basename(file).slice(0, -'.yml'.length);
      if (name === special) continue;
      if (seen.has(name)) {
        warnings.push(`databroker v0 config '${name}' in ${file} is hidden by an earlier one`);
        continue;
      }
      seen.add(name);
      let config: unknown;
      try {
        config = await loadYamlFile(file);
      } catch (e) {
        warnings.push(`databroker v0 config ${file} cannot be read: ${(e as Error).message}`);
      }
      out.push(describeV0(name, file, config));
    }
  }
  return out;
}

export async function catalogSearchDirs(s: SearchEnv = {}): Promise<CatalogSearchDirs & { warnings: string[] }> {
  const catalogPath = await intakeCatalogPath(s);
  return {
    userDataDir: userDataDir(s),
    globalDataDir: await globalDataDir(s),
    catalogPath: catalogPath.entries,
    v0ConfigDirs: await v0ConfigDirs(s),
    warnings: catalogPath.warning ? [catalogPath.warning] : [],
  };
}

/** Every catalog Python databroker would list (apart from Python entry points). */
export async function discoverCatalogs(s: SearchEnv = {}): Promise<CatalogDiscovery> {
  const { warnings, ...searched } = await catalogSearchDirs(s);
  const found: DiscoveredCatalog[] = await v0Catalogs(searched.v0ConfigDirs, s, warnings);
  for (const file of await intakeYamlFiles(searched, s)) {
    let entries: CatalogSourceEntry[];
    try {
      entries = await readCatalogSources(file);
    } catch (e) {
      warnings.push(`${file} was skipped: ${(e as Error).message}`);
      continue;
    }
    for (const entry of entries) {
      found.push({ name: entry.name, driver: entry.driver, kind: 'intake', file, location: entryLocation(entry), entry });
    }
  }
  const winners = new Map<string, DiscoveredCatalog>();
  const shadowed: DiscoveredCatalog[] = [];
  for (const c of found) {
    const first = winners.get(c.name);
    if (!first) {
      winners.set(c.name, c);
      continue;
    }
    shadowed.push(c);
    warnings.push(`catalog '${c.name}' is defined in ${first.file} and again in ${c.file}; the first is used (Python intake refuses to load duplicate names)`);
  }
  const catalogs = [...winners.values()].sort((a, b) => byCodePoint(a.name, b.name));
  return { catalogs, shadowed, warnings, searched };
}

/** The catalog databroker would open for `name`, or undefined. */
export async function findCatalog(name: string, s: SearchEnv = {}): Promise<DiscoveredCatalog | undefined> {
  return (await discoverCatalogs(s)).catalogs.find((c) => c.name === name);
}

/** A discovered catalog as a pack-stream Catalog (file-based drivers; MongoDB comes with its own source). */
export function openDiscoveredCatalog(c: DiscoveredCatalog): Catalog {
  if (c.driver === MONGO_DRIVER && c.kind === 'intake' && c.entry) {
    return MongoCatalog.fromArgs(c.entry.args, `catalog '${c.name}' (${c.location || c.file})`, resolvedRootMap(c.entry));
  }
  if (c.kind === 'databroker-v0' || !c.entry) {
    const hint =
      c.driver === MONGO_DRIVER
        ? `; to read its MongoDB databases, describe them in an intake YAML source with driver ${MONGO_DRIVER} (metadatastore_db, asset_registry_db), or pass a mongodb:// URI when both are one database`
        : '';
    throw new PackStreamError('E_UNSUPPORTED', `catalog '${c.name}' is a databroker v0 config (${c.file}) with ${c.driver}, which pack-stream cannot read${hint}`, { subject: c.name });
  }
  if (!formatOfDriver(c.driver)) {
    throw new PackStreamError('E_BAD_CATALOG', `catalog '${c.name}' in ${c.file} uses driver '${c.driver}'; pack-stream reads ${KNOWN_DRIVERS_TEXT}`, { subject: c.name });
  }
  return fileCatalogFromEntry(asDatabrokerReadsIt(c.entry));
}

/** Open a catalog by the name Python databroker knows it by. */
export async function openNamedCatalog(name: string, s: SearchEnv = {}): Promise<Catalog> {
  const { catalogs, searched } = await discoverCatalogs(s);
  const c = catalogs.find((x) => x.name === name);
  if (!c) {
    const where = [searched.userDataDir, searched.globalDataDir, ...searched.catalogPath.filter(Boolean), ...searched.v0ConfigDirs].join(', ');
    const known = catalogs.map((x) => x.name);
    throw new PackStreamError(
      'E_NO_SOURCE',
      `unknown catalog '${name}': no such file or directory, and no catalog of that name in ${where}` + (known.length ? ` (known catalogs: ${known.join(', ')})` : ' (no catalogs found)'),
      { subject: name },
    );
  }
  return openDiscoveredCatalog(c);
}
