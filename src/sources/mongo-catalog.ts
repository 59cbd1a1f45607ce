/**
 * A mongo_normalized database as a Catalog: what databroker's
 * `bluesky-mongo-normalized-catalog` driver reads (formats.md §4.2), from its
 * `metadatastore_db` / `asset_registry_db` URIs or one `mongodb://host/db` URI.
 *
 * Runs are listed newest first (databroker's order), read by key so a listing
 * of millions of runs needs no long-lived cursor; queries (`-q`, TimeRange,
 * TextQuery) go to the server. `lookup` follows databroker's `catalog[key]`:
 * an int is a scan_id (newest wins) or, when negative, an index from the
 * newest; otherwise the exact uid, else a unique uid prefix — matched with an
 * escaped regex, so '.' or '+' in a key are literal.
 *
 * Example:
 *   const cat = MongoCatalog.fromUri('mongodb://localhost:27017/metadatastore');
 *   for await (const run of cat.runs({ query: { plan_name: 'scan' } })) ...
 *   await cat.close();
 */
import { BrokenRunRef } from './file-catalog.js';
import type { Db, MongoClient } from 'mongodb';
import { MongoServerError } from 'mongodb';
import { decodeStored, toBson } from '../codec/bson.js';
import { isPlainDoc, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { Catalog, DocPair, ReadOptions, RunRef } from '../types.js';
import { connectDatabase, hidePassword, mongoError, requireDatabase } from './mongo-connection.js';
import { readByKey } from './mongo-keyset.js';
import { mongoCanonicalDocuments, type MongoCollections, type ReadTuning } from './mongo-run.js';

export interface MongoCatalogOptions {
  /** URI of the metadatastore database (run_start, run_stop, event_descriptor, event). */
  metadatastoreDb: string;
  /** URI of the asset registry database (resource, datum); default: the metadatastore's. */
  assetRegistryDb?: string;
  rootMap?: Record<string, string>;
  /** A query every run must match (the catalog's own `query` argument). */
  query?: Doc;
  description?: string;
  /** Batch size, cursor age and retry time for every read. */
  read?: ReadTuning;
}

export class MongoRun implements RunRef {
  constructor(
    readonly uid: string,
    readonly start: Doc,
    readonly location: string,
    private readonly cols: () => Promise<MongoCollections>,
    private readonly read: ReadTuning,
  ) {}
  /** MongoDB has no stored order of a run's documents: the canonical order is the order. */
  records(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    return this.documents(opts);
  }
  documents(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    const { cols, start, read } = this;
    return (async function* () {
      yield* mongoCanonicalDocuments(await cols(), start, read, opts);
    })();
  }
}

/** `{$and: [...]}` of the non-empty queries (or the one, or {}). */
export function andQueries(...qs: (Doc | undefined)[]): Doc {
  const list = qs.filter((q): q is Doc => q !== undefined && !(isPlainDoc(q) && Object.keys(q).length === 0));
  if (list.length === 0) return {};
  if (list.length === 1) return list[0]!;
  return { $and: list };
}

/** A regex matching `s` literally. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const PY_INT = /^\s*[-+]?\d+(?:_\d+)*\s*$/;

interface Connected {
  clients: MongoClient[];
  cols: MongoCollections;
}

export class MongoCatalog implements Catalog {
  readonly description: string;
  readonly rootMap: Record<string, string>;
  /** Queries are evaluated by the server ($text works, if the server has the index). */
  readonly queriesOnServer = true;
  private conn: Promise<Connected> | null = null;
  private readonly mds: string;
  private readonly assets: string;

  constructor(private readonly opts: MongoCatalogOptions) {
    this.mds = opts.metadatastoreDb;
    this.assets = opts.assetRegistryDb ?? opts.metadatastoreDb;
    requireDatabase(this.mds);
    requireDatabase(this.assets);
    this.description = opts.description ?? (this.mds === this.assets ? hidePassword(this.mds) : `${hidePassword(this.mds)} + ${hidePassword(this.assets)}`);
    this.rootMap = opts.rootMap ?? {};
  }

  static fromUri(uri: string, opts: Omit<MongoCatalogOptions, 'metadatastoreDb'> = {}): MongoCatalog {
    return new MongoCatalog({ ...opts, metadatastoreDb: uri });
  }

  /** From the `args` of a `bluesky-mongo-normalized-catalog` YAML source. */
  static fromArgs(args: Record<string, unknown>, description: string, rootMap?: Record<string, string>): MongoCatalog {
    const mds = args.metadatastore_db;
    const assets = args.asset_registry_db ?? mds;
    if (typeof mds !== 'string' || typeof assets !== 'string') {
      throw new PackStreamError('E_BAD_CATALOG', `${description}: metadatastore_db and asset_registry_db must be MongoDB URI strings`, { subject: description });
    }
    const query = isPlainDoc(args.query) ? (args.query as Doc) : undefined;
    const rm = rootMap ?? (isPlainDoc(args.root_map) ? (Object.fromEntries(Object.entries(args.root_map as Record<string, unknown>).map(([k, v]) => [k, String(v)])) as Record<string, string>) : {});
    return new MongoCatalog({ metadatastoreDb: mds, assetRegistryDb: assets, rootMap: rm, description, ...(query ? { query } : {}) });
  }

  /** The six collections (connecting on first use; a failed connection is tried again next time). */
  collections(): Promise<MongoCollections> {
    this.conn ??= (async () => {
      const a = await connectDatabase(this.mds);
      const b = this.assets === this.mds ? a : await connectDatabase(this.assets);
      const m: Db = a.db;
      const r: Db = b.db;
      return {
        clients: a === b ? [a.client] : [a.client, b.client],
        cols: {
          runStart: m.collection('run_start'),
          runStop: m.collection('run_stop'),
          descriptor: m.collection('event_descriptor'),
          event: m.collection('event'),
          resource: r.collection('resource'),
          datum: r.collection('datum'),
        },
      };
    })();
    return this.conn.then(
      (c) => c.cols,
      (e) => {
        this.conn = null;
        throw e;
      },
    );
  }

  private makeRun(raw: { doc: Doc; idKey: string }): RunRef {
    const uid = raw.doc.uid;
    const location = `${hidePassword(this.mds)}#${typeof uid === 'string' ? uid : raw.idKey}`;
    if (typeof uid !== 'string') {
      return new BrokenRunRef(raw.idKey, location, new PackStreamError('E_BAD_RUN', `run_start document ${raw.idKey} has no uid`, { subject: raw.idKey }));
    }
    return new MongoRun(uid, raw.doc, location, () => this.collections(), this.opts.read ?? {});
  }

  private serverQuery(q: Doc): Record<string, unknown> {
    return toBson(q, { where: 'query' }) as Record<string, unknown>;
  }

  private badQuery(e: unknown, q: Doc): unknown {
    const cause = e instanceof PackStreamError ? e.cause : e;
    if (cause instanceof MongoServerError) {
      return new PackStreamError('E_BAD_QUERY', `${this.description} refused the query ${JSON.stringify(q)}: ${cause.message}`, { subject: JSON.stringify(q), cause });
    }
    return e;
  }

  async *runs(opts: { query?: Doc; signal?: AbortSignal } = {}): AsyncGenerator<RunRef> {
    const q = andQueries(this.opts.query, opts.query);
    const cols = await this.collections();
    const it = readByKey(cols.runStart, this.serverQuery(q), { ...this.opts.read, order: 'time', direction: -1, where: 'run_start', ...(opts.signal ? { signal: opts.signal } : {}) });
    for (;;) {
      let n;
      try {
        n = await it.next();
      } catch (e) {
        throw this.badQuery(e, q);
      }
      if (n.done) return;
      yield this.makeRun(n.value);
    }
  }

  private async find(filter: Doc, sort: Record<string, 1 | -1>, skip: number, limit: number): Promise<{ doc: Doc; idKey: string }[]> {
    const cols = await this.collections();
    try {
      const raws = await cols.runStart.find(this.serverQuery(filter), { sort, skip, limit, raw: true }).toArray();
      return raws.map((r) => decodeStored(r as unknown as Uint8Array, 'run_start'));
    } catch (e) {
      throw this.badQuery(mongoError(e, `${this.description} run_start`), filter);
    }
  }

  /** databroker's `catalog[key]` (formats.md §4.2), with the uid prefix regex-escaped. */
  async lookup(key: string, opts: { query?: Doc } = {}): Promise<RunRef> {
    const q = andQueries(this.opts.query, opts.query);
    if (PY_INT.test(key)) {
      const n = Number(key.replace(/_/g, ''));
      if (n < 0) {
        const hit = await this.find(q, { time: -1, _id: -1 }, -n - 1, 1);
        if (!hit[0]) throw new PackStreamError('E_NOT_FOUND', `index ${n} is out of range in ${this.description}`, { subject: key });
        return this.makeRun(hit[0]);
      }
      const hit = await this.find(andQueries(q, { scan_id: n }), { time: -1, _id: -1 }, 0, 1);
      if (!hit[0]) throw new PackStreamError('E_NOT_FOUND', `No run with scan_id=${n}`, { subject: key });
      return this.makeRun(hit[0]);
    }
    const exact = await this.find(andQueries(q, { uid: key }), { _id: 1 }, 0, 1);
    if (exact[0]) return this.makeRun(exact[0]);
    const hits = await this.find(andQueries(q, { uid: { $regex: `^${escapeRegex(key)}` } }), { _id: 1 }, 0, 10);
    if (hits.length === 0) throw new PackStreamError('E_NOT_FOUND', `no run with uid or uid prefix '${key}'`, { subject: key });
    if (hits.length > 1) {
      throw new PackStreamError('E_AMBIGUOUS', `Multiple matches to partial uid '${key}'. Up to 10 listed here: ${hits.map((h) => String(h.doc.uid)).join(', ')}`, { subject: key });
    }
    return this.makeRun(hits[0]!);
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (!c) return;
    try {
      const { clients } = await c;
      await Promise.all(clients.map((cl) => cl.close()));
    } catch {
      // never connected
    }
  }
}
