/**
 * Turn a SOURCE argument into a Catalog: a catalog YAML (optionally `FILE#NAME`),
 * a pack directory (its catalog.yml), a directory of run files, a glob, a
 * single run file, a `mongodb://host/db` URI (a mongo_normalized database), or
 * (when it is none of these) a catalog name that Python databroker knows
 * (src/catalogs/discovery.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { findCatalog, openDiscoveredCatalog, openNamedCatalog } from '../catalogs/discovery.js';
import { PackStreamError } from '../errors.js';
import type { Catalog } from '../types.js';
import { fileCatalogFromEntry, MONGO_DRIVER, readCatalogSources, resolvedRootMap } from './catalog-yaml.js';
import { FileCatalog, formatOfFile } from './file-catalog.js';
import { MongoCatalog } from './mongo-catalog.js';
import { isMongoUri } from './mongo-connection.js';
import { isTiledUri, probeTiled, TiledCatalog, type TiledOptions } from './tiled-catalog.js';
import { documentStreamCatalog, landStream, LandedCatalog } from './stdin-source.js';
import { landHttpPack, type HttpPackOptions } from './http-pack.js';
import { isHttpUrl, safeUrl } from '../net/http.js';

async function kind(p: string): Promise<'file' | 'dir' | null> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

export async function openCatalogYaml(file: string, name?: string): Promise<Catalog> {
  const entries = await readCatalogSources(file);
  let entry;
  if (name !== undefined) {
    entry = entries.find((e) => e.name === name);
    if (!entry) throw new PackStreamError('E_NO_SOURCE', `${file} has no source named '${name}' (it has: ${entries.map((e) => e.name).join(', ') || 'none'})`, { subject: name });
  } else if (entries.length === 1) {
    entry = entries[0]!;
  } else {
    throw new PackStreamError('E_BAD_CATALOG', `${file} holds ${entries.length} sources (${entries.map((e) => e.name).join(', ')}); name one as ${file}#NAME`, { subject: file });
  }
  if (entry.driver === MONGO_DRIVER) return MongoCatalog.fromArgs(entry.args, `${file}#${entry.name}`, resolvedRootMap(entry));
  return fileCatalogFromEntry(entry);
}

/** True when a directory holds a run file (`.msgpack` / `.jsonl`) at its top level. */
async function hasRunFiles(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).some((f) => formatOfFile(f) !== undefined);
  } catch {
    return false;
  }
}

/** A SOURCE that could be a catalog name: no path separator, not `.`-relative, not empty. */
function nameLike(source: string): boolean {
  return source !== '' && !/[/\\]/.test(source) && !source.startsWith('.');
}

/** Options only some sources use (a Tiled server's key, what the export does with external files). */
export interface SourceOptions extends TiledOptions {
  /** Look SOURCE up as a catalog name before trying it as a path (databroker-pack's CATALOG argument is a name). */
  preferName?: boolean;
}

/** `-`: a tar pack or a document stream on stdin, landed in a temporary directory removed on close(). */
export async function openStdin(input: NodeJS.ReadableStream | AsyncIterable<Buffer> = process.stdin): Promise<Catalog> {
  const landed = await landStream(input as AsyncIterable<Buffer>);
  try {
    const inner = landed.kind === 'tar' ? await openSource(landed.dir) : documentStreamCatalog(landed.dir, landed.kind === 'jsonl' ? 'jsonl' : 'msgpack');
    return new LandedCatalog(inner, landed);
  } catch (e) {
    await landed.cleanup();
    throw e;
  }
}

/** A pack over HTTP(S), landed in a temporary directory removed on close(). */
export async function openHttpPack(url: string, opts: HttpPackOptions = {}): Promise<Catalog> {
  const landed = await landHttpPack(url, opts);
  try {
    const inner = await openSource(landed.dir);
    return new LandedCatalog(inner, { kind: 'http', where: safeUrl(url), dir: landed.dir, lost: [], cleanup: landed.cleanup });
  } catch (e) {
    await landed.cleanup();
    throw e;
  }
}

export async function openSource(source: string, opts: SourceOptions = {}): Promise<Catalog> {
  if (source === '-') return openStdin();
  if (isMongoUri(source)) return MongoCatalog.fromUri(source);
  if (isTiledUri(source) || (/^https?:\/\//i.test(source) && (await probeTiled(source)))) return TiledCatalog.open(source, opts);
  // Not a Tiled server: a pack's directory served as static files.
  if (isHttpUrl(source)) return openHttpPack(source, { ...opts.http, ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) });
  if (opts.preferName && nameLike(source)) {
    const named = await findCatalog(source);
    if (named) return openDiscoveredCatalog(named);
  }
  const hash = source.lastIndexOf('#');
  if (hash > 0 && /\.ya?ml$/.test(source.slice(0, hash))) {
    return openCatalogYaml(path.resolve(source.slice(0, hash)), source.slice(hash + 1));
  }
  const abs = path.resolve(source);
  const k = await kind(abs);
  if (k === 'file') {
    if (/\.ya?ml$/.test(abs)) return openCatalogYaml(abs);
    if (formatOfFile(abs)) return new FileCatalog({ patterns: [abs], description: abs });
    throw new PackStreamError('E_NO_SOURCE', `${source} is neither a catalog YAML nor a .msgpack/.jsonl run file`, { subject: source });
  }
  if (k === 'dir') {
    for (const f of ['catalog.yml', 'catalog.yaml']) {
      if ((await kind(path.join(abs, f))) === 'file') return openCatalogYaml(path.join(abs, f));
    }
    // A directory with no run files does not hide a catalog of the same name (an empty ./simple and catalog 'simple').
    if (nameLike(source) && !(await hasRunFiles(abs))) {
      const named = await findCatalog(source);
      if (named) return openDiscoveredCatalog(named);
    }
    const escaped = abs.replace(/[*?[\]{}]/g, '[$&]');
    return new FileCatalog({ patterns: [`${escaped}/*.msgpack`, `${escaped}/*.jsonl`], description: abs });
  }
  if (/[*?[\]{}]/.test(source)) return new FileCatalog({ patterns: [abs], description: source });
  // Not a path: a catalog name, as Python databroker knows it.
  if (!/[/\\]/.test(source) && source !== '') return openNamedCatalog(source);
  throw new PackStreamError('E_NO_SOURCE', `unknown catalog '${source}': no such file, directory or catalog`, { subject: source });
}
