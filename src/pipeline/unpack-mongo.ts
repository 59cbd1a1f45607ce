/**
 * unpack_mongo_normalized: copy the runs of a pack (or of any SOURCE: run
 * files, a catalog by name or YAML, another MongoDB) into a mongo_normalized
 * database, and write `databroker_unpack_<NAME>.yml` pointing at it, as
 * databroker-unpack does (formats.md §7.8):
 *
 * - the URI defaults to `mongodb://localhost:27017/{database}`, `{database}`
 *   becoming `databroker_<NAME>`, and must name a database;
 * - the YAML source has driver `bluesky-mongo-normalized-catalog`,
 *   `metadatastore_db` = `asset_registry_db` = the URI, and the pack's root_map
 *   made absolute; the pack's metadata is kept;
 * - merging into an existing name (the default) needs that source to be a
 *   Mongo catalog on the same URI, and root_map keys that do not collide
 *   (unlike Python, a key mapped to the same path is no collision, so that
 *   unpacking the same pack again is a no-op instead of an error).
 *
 * Every check runs before a document is written; documents go in through
 * MongoNormalizedWriter (bulk, idempotent, start last); the YAML is written
 * after the copy, atomically, unless no run could be stored.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Doc } from '../codec/values.js';
import { describeError, errorCode, PackStreamError } from '../errors.js';
import { dumpYaml } from '../sinks/catalog-file.js';
import { MongoNormalizedWriter, type Conflict, type MongoWriterOptions, type WriteCounts } from '../sinks/mongo-normalized.js';
import { MONGO_DRIVER, formatOfDriver, loadYamlFile } from '../sources/catalog-yaml.js';
import { FileCatalog, isBrokenRun } from '../sources/file-catalog.js';
import { connectDatabase, hidePassword, isConnectionError, requireDatabase } from '../sources/mongo-connection.js';
import { openSource } from '../sources/open.js';
import type { Catalog } from '../types.js';
import type { RunFailure } from './export.js';
import { printable, quoted } from '../transforms/safe-names.js';
import { checkName, existingSource, withCatalogLock, packedSource, replaceFileAtomic, unpackedCatalogDocument, type UnpackOptions, type UnpackResult } from './unpack-inplace.js';

/** databroker-unpack's default `--mongo-uri`. */
export const DEFAULT_MONGO_URI = 'mongodb://localhost:27017/{database}';

export interface UnpackMongoOptions extends UnpackOptions {
  /** MongoDB URI naming a database; `{database}` becomes `databroker_<NAME>`. */
  mongoUri?: string;
  /** Only the runs whose start matches this query. */
  query?: Doc;
  /** Stop at the first failed run. */
  strict?: boolean;
  signal?: AbortSignal;
  /** Batch sizes and retry time of the writer. */
  writer?: Omit<MongoWriterOptions, 'signal' | 'onBatch'>;
  onProgress?: (p: UnpackMongoProgress) => void;
}

export interface UnpackMongoProgress extends WriteCounts {
  runsDone: number;
  runsFailed: number;
  currentRun?: string;
}

export interface UnpackMongoResult extends UnpackResult {
  /** The database URI (as given, password included: it is what the YAML holds). */
  uri: string;
  runsDone: number;
  totals: WriteCounts;
  failures: RunFailure[];
  conflicts: Conflict[];
  /** Indexes the server could not create, and similar. */
  warnings: string[];
  /** Whether the catalog YAML was written (not when every run failed). */
  wroteCatalog: boolean;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The URI databroker-unpack would use. */
export function mongoUriFor(name: string, uri: string = DEFAULT_MONGO_URI): string {
  const out = uri.replaceAll('{database}', `databroker_${name}`);
  const db = requireDatabase(out);
  // MongoDB's rules for database names (any platform): no / \\ . space " $ * < > : | ?, under 64 bytes.
  if (uri.includes('{database}') && (/[/\\. "$*<>:|?\0]/.test(db) || Buffer.byteLength(db) >= 64)) {
    throw new PackStreamError('E_USAGE', `catalog name ${quoted(name)} makes the database name ${quoted(db)}, which MongoDB does not allow (no / \\ . space " $ * < > : | ?, under 64 bytes); pick another name or give --mongo-uri with a database`, { subject: printable(name) });
  }
  return out;
}

/** The parsed catalog.yml when SOURCE is a pack directory (it has a `packed_catalog` source). */
async function packCatalogFile(source: string, cwd: string): Promise<{ file: string; doc: unknown } | undefined> {
  const file = path.join(path.resolve(cwd, source), 'catalog.yml');
  try {
    if (!(await stat(file)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  const doc = await loadYamlFile(file);
  return isObj(doc) && isObj(doc.sources) && isObj(doc.sources.packed_catalog) ? { file, doc } : undefined;
}

/**
 * The catalog YAML document databroker-unpack mongo_normalized writes: the
 * pack's catalog with `packed_catalog` replaced by a Mongo source `name`,
 * merged into `existing` when given. `pack` is the pack's parsed catalog.yml
 * and its directory, or undefined for a SOURCE that is not a pack.
 */
export function mongoCatalogDocument(
  pack: { catalog: unknown; path: string } | undefined,
  rootMap: Record<string, string>,
  name: string,
  uri: string,
  existing: Obj | undefined,
  opts: { cwd?: string; platform?: NodeJS.Platform } = {},
): Record<string, unknown> {
  if (existing) {
    const args = isObj(existing.args) ? existing.args : {};
    if (existing.driver !== MONGO_DRIVER) {
      throw new PackStreamError('E_CONFLICT', `catalog '${name}' has driver ${String(existing.driver)}, so a MongoDB-backed catalog cannot be merged into it`, { subject: name });
    }
    for (const k of ['metadatastore_db', 'asset_registry_db']) {
      if (args[k] !== uri) {
        throw new PackStreamError('E_CONFLICT', `catalog '${name}' has ${k} ${hidePassword(String(args[k]))}, which is not the requested ${hidePassword(uri)}`, { subject: name });
      }
    }
  }
  let catalog: Obj & { sources: Obj };
  let source: Obj;
  if (pack) {
    // Steps 3 and 5 of unpack inplace (paths and root_map made absolute), without merging.
    catalog = unpackedCatalogDocument(pack.catalog, pack.path, name, undefined, opts) as Obj & { sources: Obj };
    source = catalog.sources[name] as Obj;
  } else {
    catalog = { sources: {} };
    source = { args: { root_map: { ...rootMap } } };
  }
  const srcArgs = isObj(source.args) ? source.args : {};
  const ours: Obj = isObj(srcArgs.root_map) ? { ...srcArgs.root_map } : {};
  if (existing) {
    const theirs = isObj(existing.args) && isObj(existing.args.root_map) ? existing.args.root_map : {};
    // The same key with the same value is this source unpacked again (a re-run changes nothing).
    const collisions = Object.keys(ours).filter((k) => Object.hasOwn(theirs, k) && theirs[k] !== ours[k]);
    if (collisions.length) {
      throw new PackStreamError(
        'E_CONFLICT',
        `cannot merge into catalog '${name}': root_map keys ${collisions.sort().join(', ')} map to different paths in the existing catalog and in this source`,
        { subject: name },
      );
    }
    Object.assign(ours, theirs);
  }
  const mongoSource: Obj = { ...structuredClone(source), driver: MONGO_DRIVER, args: { metadatastore_db: uri, asset_registry_db: uri, root_map: ours } };
  catalog.sources[name] = mongoSource;
  return catalog;
}

/** unpack_mongo_normalized(path, uri, name, merge) for any SOURCE, holding the catalog name's lock. */
export async function unpackMongoNormalized(source: string, name: string, opts: UnpackMongoOptions = {}): Promise<UnpackMongoResult> {
  checkName(name);
  mongoUriFor(name, opts.mongoUri); // a name MongoDB refuses is a usage error before anything is written
  return withCatalogLock(name, opts, () => unpackMongoLocked(source, name, opts));
}

async function unpackMongoLocked(source: string, name: string, opts: UnpackMongoOptions): Promise<UnpackMongoResult> {
  const merge = opts.merge ?? true;
  const cwd = opts.cwd ?? process.cwd();
  const uri = mongoUriFor(name, opts.mongoUri);
  const { destFile, existing } = await existingSource(name, merge, opts);

  const pack = await packCatalogFile(source, cwd);
  const platformOpt = opts.platform ? { platform: opts.platform } : {};
  let catalog: Catalog;
  if (pack) {
    // A pack is read where its checked catalog says (inside the pack), never from paths the file names elsewhere.
    const packed = packedSource(pack.doc, source, { cwd, ...platformOpt });
    catalog = new FileCatalog({ patterns: packed.paths, format: formatOfDriver(packed.driver)!, rootMap: packed.rootMap, description: pack.file });
  } else {
    catalog = await openSource(source);
  }
  try {
    const yamlDoc = mongoCatalogDocument(
      pack ? { catalog: pack.doc, path: source } : undefined,
      catalog.rootMap,
      name,
      uri,
      existing,
      { cwd, ...platformOpt },
    );

    const { client, db } = await connectDatabase(uri);
    const progress: UnpackMongoProgress = { inserted: 0, duplicates: 0, dropped: 0, runsDone: 0, runsFailed: 0 };
    const failures: RunFailure[] = [];
    const conflicts: Conflict[] = [];
    let warnings: string[] = [];
    let seen = 0;
    try {
      const writer = await MongoNormalizedWriter.create(db, db, {
        ...opts.writer,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onBatch: (t) => opts.onProgress?.({ ...progress, ...t }),
      });
      warnings = await writer.createIndexes();
      const fail = (uid: string, e: unknown) => {
        failures.push({ uid, code: errorCode(e), message: describeError(e) });
        progress.runsFailed++;
        opts.onProgress?.({ ...progress, ...writer.totals });
        if (opts.strict) throw e;
      };
      for await (const run of catalog.runs({ ...(opts.query ? { query: opts.query } : {}), ...(opts.signal ? { signal: opts.signal } : {}) })) {
        seen++;
        if (isBrokenRun(run)) {
          fail(run.uid, run.error);
          continue;
        }
        progress.currentRun = run.uid;
        let r;
        try {
          r = await writer.writeRun(run.documents(opts.signal ? { signal: opts.signal } : {}));
        } catch (e) {
          // The server is gone for good (retries ran out): every other run would fail the same way.
          if (opts.signal?.aborted || isConnectionError(e instanceof PackStreamError ? e.cause : e)) throw e;
          fail(run.uid, e);
          continue;
        }
        if (r.conflicts.length) {
          conflicts.push(...r.conflicts);
          fail(run.uid, new PackStreamError('E_CONFLICT', `${r.conflicts.length} document(s) of run ${run.uid} differ from the stored ones with the same unique key`, { subject: run.uid }));
        }
        progress.runsDone++;
        opts.onProgress?.({ ...progress, ...writer.totals });
      }
      const wroteCatalog = seen === 0 || progress.runsDone > 0;
      if (wroteCatalog) await replaceFileAtomic(destFile, dumpYaml(yamlDoc));
      return {
        name,
        file: destFile,
        merged: existing !== undefined,
        catalog: yamlDoc,
        uri,
        runsDone: progress.runsDone,
        totals: { ...writer.totals },
        failures,
        conflicts,
        warnings,
        wroteCatalog,
      };
    } finally {
      await client.close().catch(() => {});
    }
  } finally {
    await catalog.close?.();
  }
}
