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
import { mkdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { discoverCatalogs } from '../catalogs/discovery.js';
import { userDataDir, type SearchEnv } from '../catalogs/search-path.js';
import { PackStreamError } from '../errors.js';
import { TargetLock } from '../sinks/lock.js';
import { dumpYaml } from '../sinks/catalog-file.js';
import { byCodePoint } from '../sinks/manifests.js';
import { JSONL_DRIVER, MSGPACK_DRIVER, loadYamlFile } from '../sources/catalog-yaml.js';
import { componentProblem, hasControlChars, isWellFormed, MAX_COMPONENT_BYTES, printable, quoted, resolveInside } from '../transforms/safe-names.js';

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

/** Bytes around NAME in the file unpack writes: `databroker_unpack_NAME.yml` and its temporary `.<pid>.<hex>.partial`. */
const NAME_FILE_BYTES = 'databroker_unpack_'.length + '.yml'.length + '.4194304.0123abcd.partial'.length;

/**
 * A catalog name must make a plain file name (`databroker_unpack_NAME.yml`)
 * and a key intake and pack-stream can hold: no separators, `.`/`..`, control
 * characters or lone surrogates, short enough for the file system, and not
 * `__proto__` (which a JavaScript object cannot take as a plain key).
 */
export function checkName(name: string): void {
  const problem = name === '__proto__' ? 'is reserved' : componentProblem(name, NAME_FILE_BYTES);
  if (problem !== undefined) {
    throw new PackStreamError('E_USAGE', `catalog name ${quoted(name)} ${problem}: it must be a plain file name (no slashes or control characters, at most ${MAX_COMPONENT_BYTES - NAME_FILE_BYTES} bytes)`, { subject: printable(name) });
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

const PACK_DRIVERS = new Set([MSGPACK_DRIVER, JSONL_DRIVER]);

/** What unpack takes from a pack's catalog.yml, checked and rebuilt from where the pack is. */
export interface PackedSource {
  driver: string;
  /** Absolute globs of the document files, inside the pack. */
  paths: string[];
  relativePaths: string[];
  /** Relative values made absolute inside the pack; absolute values as the pack gives them. */
  rootMap: Record<string, string>;
  metadata: Obj;
}

/** Refuse a pack's catalog.yml: one line naming the file and what is wrong. */
function refuse(catalogFile: string, what: string): PackStreamError {
  return new PackStreamError('E_BAD_CATALOG', `${catalogFile}: ${what}; refusing to unpack it`, { subject: catalogFile });
}

/**
 * Check plain data from a pack's catalog.yml: strings without control
 * characters or intake template markers (`{{`, `{%`: intake renders them, and
 * its templates can read the environment or run shell commands), no
 * `__proto__` keys, bounded depth and size.
 */
function checkPlainData(v: unknown, where: string, catalogFile: string, budget = { nodes: 10_000 }, depth = 0): void {
  if (--budget.nodes < 0) throw refuse(catalogFile, `${where} is too large for pack metadata`);
  if (depth > 32) throw refuse(catalogFile, `${where} is nested too deeply for pack metadata`);
  if (typeof v === 'string') {
    if (hasControlChars(v) || !isWellFormed(v)) throw refuse(catalogFile, `${where} holds a control character or invalid text`);
    if (/\{\{|\{%/.test(v)) throw refuse(catalogFile, `${where} holds an intake template (${quoted(v, 60)})`);
    return;
  }
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || v instanceof Date) return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkPlainData(x, `${where}[${i}]`, catalogFile, budget, depth + 1));
    return;
  }
  if (isObj(v) && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '__proto__') throw refuse(catalogFile, `${where} has a '__proto__' key`);
      checkPlainData(k, `${where} key ${quoted(k, 60)}`, catalogFile, budget, depth + 1);
      checkPlainData(x, `${where}.${k}`, catalogFile, budget, depth + 1);
    }
    return;
  }
  throw refuse(catalogFile, `${where} is not plain data`);
}

/**
 * The pack's own source, as far as it is trusted: catalog.yml must hold
 * exactly one source, `packed_catalog`, with driver bluesky-msgpack-catalog or
 * bluesky-jsonl-catalog and no args but `paths` and `root_map` (a pack from a
 * stranger must not bring other sources, drivers, queries or handler modules
 * into the user's intake directory). `paths` are rebuilt from the pack's
 * location (its `relative_paths`, which must stay inside it, else the
 * standard `./documents/*.<ext>`); relative root_map values must stay inside
 * the pack. Anything else is E_BAD_CATALOG (E_UNSAFE_PATH for a path that leaves the pack).
 */
export function packedSource(packCatalog: unknown, packPath: string, opts: { cwd?: string; platform?: NodeJS.Platform } = {}): PackedSource {
  const cwd = opts.cwd ?? process.cwd();
  const platform = opts.platform ?? process.platform;
  const catalogFile = path.join(packPath, 'catalog.yml');
  if (!isObj(packCatalog) || !isObj(packCatalog.sources) || !isObj(packCatalog.sources.packed_catalog)) {
    throw new PackStreamError('E_BAD_CATALOG', `${catalogFile} has no 'packed_catalog' source, so it is not a pack's catalog`, { subject: catalogFile });
  }
  const top = Object.keys(packCatalog).filter((k) => k !== 'sources');
  if (top.length) throw refuse(catalogFile, `it has top-level keys a pack's catalog does not have (${top.map((k) => quoted(k, 40)).join(', ')})`);
  const others = Object.keys(packCatalog.sources).filter((k) => k !== 'packed_catalog');
  if (others.length) throw refuse(catalogFile, `it holds sources other than 'packed_catalog' (${others.map((k) => quoted(k, 40)).join(', ')})`);
  const source = packCatalog.sources.packed_catalog;
  const extra = Object.keys(source).filter((k) => !['driver', 'args', 'metadata'].includes(k));
  if (extra.length) throw refuse(catalogFile, `source 'packed_catalog' has keys a pack's source does not have (${extra.map((k) => quoted(k, 40)).join(', ')})`);
  const driver = source.driver;
  if (typeof driver !== 'string' || !PACK_DRIVERS.has(driver)) {
    throw refuse(catalogFile, `source 'packed_catalog' has driver ${quoted(String(driver), 80)}, not ${MSGPACK_DRIVER} or ${JSONL_DRIVER}`);
  }
  const args = source.args ?? {};
  if (!isObj(args)) throw refuse(catalogFile, "source 'packed_catalog' has args that are not a mapping");
  const extraArgs = Object.keys(args).filter((k) => k !== 'paths' && k !== 'root_map');
  if (extraArgs.length) throw refuse(catalogFile, `source 'packed_catalog' has args a pack does not have (${extraArgs.map((k) => quoted(k, 40)).join(', ')})`);
  const metadata = source.metadata ?? {};
  if (!isObj(metadata)) throw refuse(catalogFile, "source 'packed_catalog' has metadata that is not a mapping");
  checkPlainData(metadata, 'metadata', catalogFile);

  const absPack = path.resolve(cwd, packPath);
  const inside = (rel: string, what: string) => {
    try {
      resolveInside(absPack, rel, what);
    } catch (e) {
      const err = e as PackStreamError;
      throw new PackStreamError(err.code, `${catalogFile}: ${err.message}`, { subject: catalogFile, cause: e });
    }
    return pathlibAbsolute(packPath, rel, cwd, platform);
  };
  const ext = driver === MSGPACK_DRIVER ? 'msgpack' : 'jsonl';
  const relativePaths = metadata.relative_paths === undefined ? [`./documents/*.${ext}`] : list(metadata.relative_paths);
  if (relativePaths.length === 0) throw refuse(catalogFile, 'metadata.relative_paths lists no paths');
  const paths = relativePaths.map((r) => inside(r, 'relative_paths entry')).sort(byCodePoint);

  const rootMap: Record<string, string> = {};
  if (args.root_map !== undefined && args.root_map !== null) {
    if (!isObj(args.root_map)) throw refuse(catalogFile, 'root_map is not a mapping');
    checkPlainData(args.root_map, 'root_map', catalogFile);
    for (const [k, v] of Object.entries(args.root_map)) {
      if (typeof v !== 'string') throw refuse(catalogFile, `root_map value of ${quoted(k, 60)} is not a string`);
      // Absolute values name where the external files were when packed without copying (kept, as Python keeps them).
      rootMap[k] = isAbsolute(v, platform) ? v : inside(v, `root_map value of ${quoted(k, 60)}`);
    }
  }
  return { driver, paths, relativePaths, rootMap, metadata: structuredClone(metadata) };
}

/**
 * The catalog YAML document for the pack's `packed_catalog` source under
 * `name`, merged with `existing` (the current source of that name) if given.
 * Pure apart from reading nothing: the steps of databroker-unpack's inplace,
 * from what `packedSource` accepts of the pack's catalog.
 */
export function unpackedCatalogDocument(
  packCatalog: unknown,
  packPath: string,
  name: string,
  existing: Obj | undefined,
  opts: { cwd?: string; platform?: NodeJS.Platform } = {},
): Record<string, unknown> {
  const packed = packedSource(packCatalog, packPath, opts);
  if (existing && existing.driver !== packed.driver) {
    throw new PackStreamError('E_CONFLICT', `cannot merge a source with driver ${packed.driver} into catalog '${name}', whose driver is ${String(existing.driver)}`, { subject: name });
  }
  const metadata: Obj = packed.metadata;
  const args: Obj = { paths: packed.paths, root_map: { ...packed.rootMap } };
  const source: Obj = { args, driver: packed.driver, metadata };

  if (existing) {
    const existingArgs = isObj(existing.args) ? existing.args : {};
    const existingMeta = isObj(existing.metadata) ? existing.metadata : {};
    args.paths = sortedUnion(list(args.paths), list(existingArgs.paths));
    metadata.relative_paths = sortedUnion(list(metadata.relative_paths), list(existingMeta.relative_paths));

    const theirs = isObj(existingArgs.root_map) ? existingArgs.root_map : {};
    const ours = args.root_map as Obj;
    const collisions = Object.keys(ours).filter((k) => Object.hasOwn(theirs, k));
    if (collisions.length) {
      throw new PackStreamError(
        'E_CONFLICT',
        `cannot merge into catalog '${name}': root_map keys ${collisions.sort(byCodePoint).join(', ')} are in both the existing catalog and the pack (was this pack unpacked into '${name}' already?)`,
        { subject: name },
      );
    }
    Object.assign(ours, theirs);
  }
  // Only this source, as databroker-unpack writes it: nothing else of the pack's file is carried over.
  return { sources: { [name]: source } };
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

/**
 * Run `fn` holding the lock of catalog `name` (`databroker_unpack_NAME.yml.lock`
 * beside its YAML), so two unpacks into one name cannot both read the old
 * YAML and the second overwrite the first's merge.
 */
export async function withCatalogLock<T>(name: string, opts: SearchEnv, fn: () => Promise<T>): Promise<T> {
  const dir = userDataDir(opts);
  const file = path.join(dir, `databroker_unpack_${name}.yml.lock`);
  let lock: TargetLock;
  // The first folder mkdir made (undefined when the intake folder was there): removed again when the
  // unpack wrote nothing into it, so a refused unpack leaves no trace.
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true });
    lock = await TargetLock.acquire(file, `catalog '${name}'`);
  } catch (e) {
    await removeEmptyUpTo(dir, created);
    if (e instanceof PackStreamError) throw e;
    throw new PackStreamError('E_TARGET', `cannot write in ${dir}: ${(e as Error).message}`, { subject: dir, cause: e });
  }
  try {
    return await fn();
  } finally {
    await lock.release();
    await removeEmptyUpTo(dir, created);
  }
}

/** rmdir dir and its parents up to and including top, stopping at the first that is not empty. */
async function removeEmptyUpTo(dir: string, top: string | undefined): Promise<void> {
  if (top === undefined) return;
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top || path.dirname(d) === d) return;
  }
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

  return withCatalogLock(name, opts, async () => {
    const { destFile, existing } = await existingSource(name, merge, opts);
    const catalog = unpackedCatalogDocument(await loadYamlFile(catalogFile), packPath, name, existing, { cwd, ...(opts.platform ? { platform: opts.platform } : {}) });
    await replaceFileAtomic(destFile, dumpYaml(catalog));
    return { name, file: destFile, merged: existing !== undefined, catalog };
  });
}
