/**
 * Intake catalog YAML files as databroker writes and reads them, for file-based
 * drivers. Paths are resolved so a catalog keeps working after it is moved:
 * `metadata.relative_paths` (what databroker-pack writes) wins over the absolute
 * `args.paths`, relative paths and root_map values resolve against the YAML's
 * folder, and intake's `{{ CATALOG_DIR }}` template is expanded.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PackStreamError } from '../errors.js';
import type { Format } from '../types.js';
import { FileCatalog } from './file-catalog.js';
import { readRegularText } from './regular-file.js';

export const MSGPACK_DRIVER = 'bluesky-msgpack-catalog';
export const JSONL_DRIVER = 'bluesky-jsonl-catalog';
export const MONGO_DRIVER = 'bluesky-mongo-normalized-catalog';
/** Every driver pack-stream reads, for messages about one it does not. */
export const KNOWN_DRIVERS_TEXT = `${MSGPACK_DRIVER}, ${JSONL_DRIVER} and ${MONGO_DRIVER}`;

const DRIVER_ALIASES: Record<string, string> = {
  'databroker._drivers.msgpack.BlueskyMsgpackCatalog': MSGPACK_DRIVER,
  'databroker._drivers.jsonl.BlueskyJSONLCatalog': JSONL_DRIVER,
  'databroker._drivers.mongo_normalized.BlueskyMongoCatalog': MONGO_DRIVER,
};

export interface CatalogSourceEntry {
  name: string;
  driver: string;
  args: Record<string, unknown>;
  metadata: Record<string, unknown>;
  /** The YAML file it came from. */
  file: string;
}

/** Catalog YAML files are small; a larger one is refused rather than read. */
const MAX_YAML_BYTES = 64 * 1024 * 1024;

/** Load a YAML file the way PyYAML's safe_load reads it (YAML 1.1 scalars). */
/** The yaml library's error as one line that ends with the offending line and its text, not a dangling `column 6:`. */
function yamlErrorLine(e: unknown, text: string): string {
  const first = ((e as Error).message ?? String(e)).split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const pos = (e as { linePos?: { line: number; col: number }[] }).linePos?.[0];
  if (!pos) return first;
  const line = text.split(/\r?\n/)[pos.line - 1] ?? '';
  return `${first}, at line ${pos.line}, column ${pos.col}: ${JSON.stringify(line)}`;
}

export async function loadYamlFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readRegularText(file, 'catalog file', MAX_YAML_BYTES);
  } catch (e) {
    if (e instanceof PackStreamError) throw e;
    throw new PackStreamError('E_NO_SOURCE', `cannot read ${file}: ${(e as Error).message}`, { subject: file, cause: e });
  }
  try {
    return parse(text, { version: '1.1', schema: 'yaml-1.1', uniqueKeys: false });
  } catch (e) {
    throw new PackStreamError('E_BAD_CATALOG', `${file} is not valid YAML: ${yamlErrorLine(e, text)}`, { subject: file, cause: e });
  }
}

export async function readCatalogSources(file: string): Promise<CatalogSourceEntry[]> {
  const data = await loadYamlFile(file);
  const sources = (data as { sources?: unknown } | null)?.sources;
  if (sources === null || typeof sources !== 'object' || Array.isArray(sources)) {
    throw new PackStreamError('E_BAD_CATALOG', `${file} has no 'sources' mapping, so it is not an intake catalog`, { subject: file });
  }
  return Object.entries(sources as Record<string, unknown>).map(([name, s]) => {
    const src = (s ?? {}) as Record<string, unknown>;
    const driverRaw = String(src.driver ?? '');
    return {
      name,
      driver: DRIVER_ALIASES[driverRaw] ?? driverRaw,
      args: (src.args ?? {}) as Record<string, unknown>,
      metadata: (src.metadata ?? {}) as Record<string, unknown>,
      file,
    };
  });
}

/** intake renders {{ CATALOG_DIR }} with a trailing separator. */
function expand(value: string, dir: string): string {
  return value.replace(/\{\{\s*CATALOG_DIR\s*\}\}/g, dir.endsWith(path.sep) ? dir : dir + path.sep);
}

function asList(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map(String);
  return [];
}

export function resolvedRootMap(entry: CatalogSourceEntry): Record<string, string> {
  const dir = path.dirname(path.resolve(entry.file));
  const out: Record<string, string> = {};
  const rm = entry.args.root_map;
  if (rm && typeof rm === 'object') {
    for (const [k, v] of Object.entries(rm as Record<string, unknown>)) {
      const val = expand(String(v), dir);
      out[k] = path.isAbsolute(val) ? val : path.resolve(dir, val);
    }
  }
  return out;
}

/** The fixed folder part of a glob pattern. */
function globBase(p: string): string {
  const i = p.search(/[*?[{]/);
  return path.dirname(i < 0 ? p : p.slice(0, i) + 'x');
}

/**
 * The glob patterns of a file-based source, absolute. A pack's
 * `metadata.relative_paths`, resolved against the YAML's folder, win while
 * their folders exist there (so a moved or copied pack reads its own files);
 * otherwise `args.paths` (e.g. a catalog databroker-unpack wrote elsewhere).
 */
export function resolvedPaths(entry: CatalogSourceEntry): string[] {
  const dir = path.dirname(path.resolve(entry.file));
  const resolve = (list: string[]) =>
    list.map((p) => {
      const val = expand(p, dir);
      return path.isAbsolute(val) ? path.normalize(val) : path.resolve(dir, val);
    });
  const args = resolve(asList(entry.args.paths));
  const rel = resolve(asList(entry.metadata.relative_paths));
  if (rel.length && rel.every((p) => existsSync(globBase(p)))) return rel;
  if (args.length) return args;
  if (rel.length) return rel;
  throw new PackStreamError('E_BAD_CATALOG', `${entry.file}: source '${entry.name}' has no paths`, { subject: entry.file });
}

export function formatOfDriver(driver: string): Format | undefined {
  if (driver === MSGPACK_DRIVER) return 'msgpack';
  if (driver === JSONL_DRIVER) return 'jsonl';
  return undefined;
}

export function fileCatalogFromEntry(entry: CatalogSourceEntry): FileCatalog {
  const format = formatOfDriver(entry.driver);
  if (!format) {
    if (entry.driver === MONGO_DRIVER) {
      throw new PackStreamError('E_UNSUPPORTED', `catalog '${entry.name}' (${entry.file}) lives in MongoDB (driver ${MONGO_DRIVER}); pack-stream cannot read MongoDB catalogs yet`, { subject: entry.name });
    }
    throw new PackStreamError('E_BAD_CATALOG', `catalog '${entry.name}' in ${entry.file} uses driver '${entry.driver}'; pack-stream reads ${KNOWN_DRIVERS_TEXT}`, { subject: entry.name });
  }
  const query = entry.args.query;
  return new FileCatalog({
    patterns: resolvedPaths(entry),
    format,
    rootMap: resolvedRootMap(entry),
    description: `${entry.file}#${entry.name}`,
    ...(query && typeof query === 'object' ? { query: query as never } : {}),
  });
}
