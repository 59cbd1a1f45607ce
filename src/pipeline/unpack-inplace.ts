/**
 * unpack_inplace: make a pack known to databroker by name, without moving it.
 * Writes `databroker_unpack_<NAME>.yml` into intake's user data directory with
 * the structure databroker-unpack writes (formats.md §7.8): absolute `paths`
 * rebuilt from `metadata.relative_paths`, absolute `root_map` values, the
 * pack's metadata kept; merging into an existing name by default.
 *
 * Every check (name taken, drivers equal, root_map keys disjoint) runs before
 * anything is written, the YAML is replaced atomically, and the pack itself is
 * only read.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { discoverCatalogs } from '../catalogs/discovery.js';
import { userDataDir, type SearchEnv } from '../catalogs/search-path.js';
import { PackStreamError } from '../errors.js';
import { dumpYaml } from '../sinks/catalog-file.js';
import { byCodePoint } from '../sinks/manifests.js';
import { loadYamlFile } from '../sources/catalog-yaml.js';

export interface UnpackOptions extends SearchEnv {
  /** Merge into an existing catalog of the same name (default true, as databroker-unpack). */
  merge?: boolean;
}

export interface UnpackResult {
  name: string;
  /** The catalog YAML written. */
  file: string;
  /** Whether an existing catalog of that name was merged. */
  merged: boolean;
  /** The whole YAML document written. */
  catalog: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

function list(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return [v];
  return [];
}

/** Python's sorted(set(...)) over strings. */
function sortedUnion(...lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort(byCodePoint);
}

/**
 * `str(pathlib.Path(base, rel).absolute())` on POSIX: joins, prefixes the
 * working directory when relative, drops `.` parts and repeated slashes, and
 * (unlike path.resolve) keeps `..` and symlinks as they are.
 */
export function pathlibAbsolute(base: string, rel: string, cwd: string = process.cwd(), platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return path.win32.resolve(cwd, base, rel);
  const joined = rel.startsWith('/') ? rel : `${base}/${rel}`;
  const abs = joined.startsWith('/') ? joined : `${cwd}/${joined}`;
  const lead = /^\/\/(?!\/)/.test(abs) ? '//' : '/';
  return lead + abs.split('/').filter((p) => p !== '' && p !== '.').join('/');
}

function isAbsolute(p: string, platform: NodeJS.Platform): boolean {
  return platform === 'win32' ? path.win32.isAbsolute(p) : p.startsWith('/');
}

/** A catalog name must make a plain file name. */
export function checkName(name: string): void {
  if (name === '' || /[/\\\0]/.test(name) || name === '.' || name === '..') {
    throw new PackStreamError('E_USAGE', `'${name}' cannot be a catalog name: it must be a plain file name (no slashes)`, { subject: name });
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Replace `file` whole: write a temporary sibling, then rename over it. */
export async function replaceFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new PackStreamError('E_TARGET', `cannot write ${file}: ${(e as Error).message}`, { subject: file, cause: e });
  }
}

/**
 * The catalog YAML document for the pack's `packed_catalog` source under
 * `name`, merged with `existing` (the current source of that name) if given.
 * Pure apart from reading nothing: the steps of databroker-unpack's inplace.
 */
export function unpackedCatalogDocument(
  packCatalog: unknown,
  packPath: string,
  name: string,
  existing: Obj | undefined,
  opts: { cwd?: string; platform?: NodeJS.Platform } = {},
): Record<string, unknown> {
  const cwd = opts.cwd ?? process.cwd();
  const platform = opts.platform ?? process.platform;
  const catalogFile = path.join(packPath, 'catalog.yml');
  if (!isObj(packCatalog) || !isObj(packCatalog.sources) || !isObj(packCatalog.sources.packed_catalog)) {
    throw new PackStreamError('E_BAD_CATALOG', `${catalogFile} has no 'packed_catalog' source, so it is not a pack's catalog`, { subject: catalogFile });
  }
  const catalog = structuredClone(packCatalog) as Obj & { sources: Obj };
  const source = catalog.sources.packed_catalog as Obj;
  delete catalog.sources.packed_catalog;

  if (existing && existing.driver !== source.driver) {
    throw new PackStreamError('E_CONFLICT', `cannot merge a source with driver ${String(source.driver)} into catalog '${name}', whose driver is ${String(existing.driver)}`, { subject: name });
  }
  if (!isObj(source.args)) source.args = {};
  const args = source.args as Obj;
  const metadata = isObj(source.metadata) ? source.metadata : undefined;

  const relative = list(metadata?.relative_paths);
  if (relative.length) args.paths = relative.map((r) => pathlibAbsolute(packPath, r, cwd, platform)).sort(byCodePoint);

  if (existing) {
    const existingArgs = isObj(existing.args) ? existing.args : {};
    const existingMeta = isObj(existing.metadata) ? existing.metadata : {};
    args.paths = sortedUnion(list(args.paths), list(existingArgs.paths));
    const meta = metadata ?? (source.metadata = {} as Obj);
    (meta as Obj).relative_paths = sortedUnion(list((meta as Obj).relative_paths), list(existingMeta.relative_paths));
  }

  if (isObj(args.root_map)) {
    const rootMap = args.root_map;
    for (const [k, v] of Object.entries(rootMap)) {
      if (typeof v === 'string' && !isAbsolute(v, platform)) rootMap[k] = pathlibAbsolute(packPath, v, cwd, platform);
    }
  }

  if (existing) {
    const existingArgs = isObj(existing.args) ? existing.args : {};
    const theirs = isObj(existingArgs.root_map) ? existingArgs.root_map : {};
    const ours = isObj(args.root_map) ? args.root_map : (args.root_map = {} as Obj);
    const collisions = Object.keys(ours).filter((k) => Object.hasOwn(theirs, k));
    if (collisions.length) {
      throw new PackStreamError(
        'E_CONFLICT',
        `cannot merge into catalog '${name}': root_map keys ${collisions.sort(byCodePoint).join(', ')} are in both the existing catalog and the pack (was this pack unpacked into '${name}' already?)`,
        { subject: name },
      );
    }
    Object.assign(ours as Obj, theirs);
  }

  catalog.sources[name] = source;
  return catalog;
}

/**
 * Where unpack writes catalog `name`, and the source to merge into if that
 * name is taken: E_EXISTS without merging, or when the name is defined
 * outside the user-writable file (databroker-unpack's rules).
 */
export async function existingSource(name: string, merge: boolean, opts: SearchEnv = {}): Promise<{ destFile: string; existing: Obj | undefined }> {
  const destFile = path.join(userDataDir(opts), `databroker_unpack_${name}.yml`);
  const { catalogs } = await discoverCatalogs(opts);
  const taken = catalogs.find((c) => c.name === name);
  if (!taken) return { destFile, existing: undefined };
  if (!merge) throw new PackStreamError('E_EXISTS', `a catalog named '${name}' already exists (${taken.file})`, { subject: name });
  if (!(await isFile(destFile))) {
    throw new PackStreamError('E_EXISTS', `a catalog named '${name}' exists (${taken.file}) but not in the user-writable location ${destFile}; pick a different catalog name`, { subject: name });
  }
  const current = await loadYamlFile(destFile);
  const src = isObj(current) && isObj(current.sources) ? current.sources[name] : undefined;
  if (!isObj(src)) throw new PackStreamError('E_BAD_CATALOG', `${destFile} has no source named '${name}' to merge into`, { subject: destFile });
  return { destFile, existing: src };
}

/** unpack_inplace(path, name, merge): returns where the catalog YAML was written. */
export async function unpackInplace(packPath: string, name: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  checkName(name);
  const merge = opts.merge ?? true;
  const cwd = opts.cwd ?? process.cwd();
  const absPack = path.resolve(cwd, packPath);
  try {
    if (!(await stat(absPack)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new PackStreamError('E_NO_SOURCE', `${packPath} is not a directory`, { subject: packPath });
  }
  const catalogFile = path.join(absPack, 'catalog.yml');
  if (!(await isFile(catalogFile))) throw new PackStreamError('E_NO_SOURCE', `could not find 'catalog.yml' in ${packPath}`, { subject: packPath });

  const { destFile, existing } = await existingSource(name, merge, opts);
  const catalog = unpackedCatalogDocument(await loadYamlFile(catalogFile), packPath, name, existing, { cwd, ...(opts.platform ? { platform: opts.platform } : {}) });
  await replaceFileAtomic(destFile, dumpYaml(catalog));
  return { name, file: destFile, merged: existing !== undefined, catalog };
}
