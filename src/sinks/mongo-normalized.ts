/**
 * Store runs in a mongo_normalized database the way suitcase-mongo's
 * Serializer stores them (formats.md §4.1) — same collections, one document
 * per event (with `filled`) and per datum, the same indexes — but in bulk and
 * idempotently:
 *
 * - documents go in with unordered `insertMany`, in batches bounded by bytes;
 * - a duplicate key is not an error when the stored document is the same
 *   (compared as Python compares dicts: key order aside, 1 == 1.0); when it
 *   differs, both versions are reported as a Conflict and the rest goes on;
 * - resources (whose uid index is not unique) are looked up first, so an
 *   identical resource is never stored twice (suitcase stores a copy);
 * - a run's `start` is inserted last, after all its other documents, so a run
 *   that is visible is complete, and a run cut short (process or server
 *   killed) is invisible until a re-run, which only adds what is missing;
 * - while the server is unreachable, writes are retried (they are safe to
 *   repeat), so a server restart in the middle does not lose the unpack.
 */
import { BSON, MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import { decodeStored, toBsonDocument } from '../codec/bson.js';
import { PyFloat, entries, isPlainDoc, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { isConnectionError, isFerretDb, mongoError, withRetry } from '../sources/mongo-connection.js';
import { rowAsEvent, unpackDatumPage, unpackEventPage } from '../transforms/pages.js';
import type { DocPair } from '../types.js';

export type CollectionName = 'run_start' | 'run_stop' | 'event_descriptor' | 'event' | 'resource' | 'datum';

export interface IndexSpec {
  collection: CollectionName;
  keys: Record<string, 1 | -1 | 'text'>;
  unique?: boolean;
  background?: boolean;
}

/** suitcase-mongo's `_create_indexes` (v0.4+), names left to the default `<field>_<dir>_…`. */
export const MONGO_NORMALIZED_INDEXES: readonly IndexSpec[] = [
  { collection: 'resource', keys: { uid: 1 }, unique: false },
  { collection: 'resource', keys: { resource_id: 1 } },
  { collection: 'datum', keys: { datum_id: 1 }, unique: true },
  { collection: 'datum', keys: { resource: 1 } },
  { collection: 'run_start', keys: { uid: 1 }, unique: true },
  { collection: 'run_start', keys: { scan_id: 1 }, unique: false },
  { collection: 'run_start', keys: { scan_id: -1, _id: -1 }, unique: true },
  { collection: 'run_start', keys: { time: 1, _id: -1 }, unique: true },
  { collection: 'run_start', keys: { time: -1, _id: -1 }, unique: true },
  { collection: 'run_start', keys: { time: -1, scan_id: -1 }, unique: false, background: true },
  { collection: 'run_start', keys: { '$**': 'text' } as Record<string, 'text'> },
  { collection: 'run_start', keys: { data_session: 1 }, unique: false },
  { collection: 'run_start', keys: { data_groups: 1 }, unique: false },
  { collection: 'run_stop', keys: { run_start: 1 }, unique: true },
  { collection: 'run_stop', keys: { uid: 1 }, unique: true },
  { collection: 'run_stop', keys: { time: -1 }, unique: false, background: true },
  { collection: 'run_stop', keys: { '$**': 'text' } as Record<string, 'text'> },
  { collection: 'event_descriptor', keys: { uid: 1 }, unique: true },
  { collection: 'event_descriptor', keys: { run_start: -1, time: -1 }, unique: false, background: true },
  { collection: 'event_descriptor', keys: { time: -1 }, unique: false, background: true },
  { collection: 'event_descriptor', keys: { '$**': 'text' } as Record<string, 'text'> },
  { collection: 'event', keys: { uid: 1 }, unique: true },
  { collection: 'event', keys: { descriptor: -1, time: 1 }, unique: false, background: true },
];

/** The default name MongoDB and pymongo give an index: `uid_1`, `scan_id_-1__id_-1`, `$**_text`. */
export function indexName(keys: Record<string, unknown>): string {
  return Object.entries(keys).map(([k, v]) => `${k}_${String(v)}`).join('_');
}

/** The unique keys a duplicate-key error on each collection can come from. */
const UNIQUE_FIELDS: Record<Exclude<CollectionName, 'resource'>, string[]> = {
  run_start: ['uid'],
  run_stop: ['uid', 'run_start'],
  event_descriptor: ['uid'],
  event: ['uid'],
  datum: ['datum_id'],
};

const COLLECTION_OF: Record<string, CollectionName> = {
  start: 'run_start',
  stop: 'run_stop',
  descriptor: 'event_descriptor',
  event: 'event',
  resource: 'resource',
  datum: 'datum',
};

export interface Conflict {
  collection: CollectionName;
  /** e.g. `uid=1234…` */
  key: string;
  existing: Doc | null;
  incoming: Doc;
}

export interface WriteCounts {
  /** Documents inserted. */
  inserted: number;
  /** Documents already stored, identical. */
  duplicates: number;
  /** stream_resource / stream_datum, which mongo_normalized has no place for. */
  dropped: number;
}

export interface RunWriteResult extends WriteCounts {
  uid: string;
  conflicts: Conflict[];
}

export interface MongoWriterOptions {
  /** Flush a collection's batch at this many BSON bytes (default 8 MiB). */
  batchBytes?: number;
  /** ... or at this many documents (default 10 000). */
  batchDocs?: number;
  /** Keep retrying an unreachable server this long (default 2 min). */
  retryMs?: number;
  signal?: AbortSignal;
  /** Called after each batch. */
  onBatch?: (counts: WriteCounts) => void;
}

/** Python `==` on stored documents: dicts compare regardless of key order, 1 == 1.0, and NaN equals NaN here. */
export function sameStored(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  const na = typeof a === 'number' || typeof a === 'bigint' ? a : a instanceof PyFloat ? a.value : undefined;
  const nb = typeof b === 'number' || typeof b === 'bigint' ? b : b instanceof PyFloat ? b.value : undefined;
  if (na !== undefined || nb !== undefined) {
    if (na === undefined || nb === undefined) return false;
    if (typeof na === 'number' && typeof nb === 'number' && Number.isNaN(na) && Number.isNaN(nb)) return true;
    // eslint-disable-next-line eqeqeq
    return na == nb;
  }
  if (a === null || b === null || a === undefined || b === undefined || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameStored(x, b[i]));
  }
  if (!(a instanceof Map || isPlainDoc(a)) || !(b instanceof Map || isPlainDoc(b))) return false;
  const ea = entries(a as Doc);
  const mb = new Map(entries(b as Doc).map(([k, v]) => [typeof k === 'string' ? k : Buffer.from(k).toString('latin1'), v]));
  if (ea.length !== mb.size) return false;
  return ea.every(([k, v]) => {
    const key = typeof k === 'string' ? k : Buffer.from(k).toString('latin1');
    return mb.has(key) && sameStored(v, mb.get(key));
  });
}

interface Pending {
  doc: Doc;
  bson: Record<string, unknown>;
  bytes: number;
}

function describeKey(doc: Doc, fields: string[]): string {
  for (const f of fields) if (doc[f] !== undefined) return `${f}=${String(doc[f])}`;
  return '(no key)';
}

export class MongoNormalizedWriter {
  readonly totals: WriteCounts = { inserted: 0, duplicates: 0, dropped: 0 };
  private readonly cols: Record<CollectionName, Collection>;
  private readonly batchBytes: number;
  private readonly batchDocs: number;

  private constructor(
    mds: Db,
    assets: Db,
    /** FerretDB cannot store NaN/±Infinity or '.'/'$' keys: refuse those documents up front. */
    readonly ferretdb: boolean,
    private readonly opts: MongoWriterOptions,
  ) {
    this.cols = {
      run_start: mds.collection('run_start'),
      run_stop: mds.collection('run_stop'),
      event_descriptor: mds.collection('event_descriptor'),
      event: mds.collection('event'),
      resource: assets.collection('resource'),
      datum: assets.collection('datum'),
    };
    this.batchBytes = opts.batchBytes ?? 8 * 1024 * 1024;
    this.batchDocs = opts.batchDocs ?? 10_000;
  }

  static async create(mds: Db, assets: Db = mds, opts: MongoWriterOptions = {}): Promise<MongoNormalizedWriter> {
    const ferret = await withRetry(() => isFerretDb(mds), 'MongoDB', opts);
    return new MongoNormalizedWriter(mds, assets, ferret, opts);
  }

  private retry<T>(fn: () => Promise<T>, what: string): Promise<T> {
    return withRetry(fn, what, { ...(this.opts.retryMs !== undefined ? { retryMs: this.opts.retryMs } : {}), ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
  }

  /**
   * Create suitcase's indexes. One the server cannot create (FerretDB has no
   * text indexes; an index with the same keys but other options may exist) is
   * a warning, returned, and the rest go on.
   */
  async createIndexes(): Promise<string[]> {
    const warnings: string[] = [];
    for (const spec of MONGO_NORMALIZED_INDEXES) {
      const name = indexName(spec.keys);
      const options = { name, ...(spec.unique !== undefined ? { unique: spec.unique } : {}), ...(spec.background ? { background: true } : {}) };
      try {
        await this.retry(() => this.cols[spec.collection].createIndex(spec.keys, options), `creating index ${name} on ${spec.collection}`);
      } catch (e) {
        const cause = e instanceof PackStreamError ? e.cause : e;
        if (isConnectionError(cause)) throw e;
        const why = (cause as Error)?.message ?? String(cause);
        const text = Object.values(spec.keys).includes('text');
        warnings.push(
          `index ${name} on ${spec.collection} was not created: ${why}` +
            (text ? ' (this server has no text indexes; TextQuery searches of this catalog will not work)' : ''),
        );
      }
    }
    return warnings;
  }

  private prepare(doc: Doc, where: string): Pending {
    const bson = toBsonDocument(doc, { ferretdb: this.ferretdb, where });
    return { doc, bson, bytes: BSON.calculateObjectSize(bson) };
  }

  /** Store one run's documents (any order; `start` goes in last). */
  async writeRun(docs: AsyncIterable<DocPair>): Promise<RunWriteResult> {
    const result: RunWriteResult = { uid: '', inserted: 0, duplicates: 0, dropped: 0, conflicts: [] };
    const batches = new Map<CollectionName, { items: Pending[]; bytes: number }>();
    let start: Pending | null = null;
    const add = async (collection: CollectionName, doc: Doc, where: string) => {
      const p = this.prepare(doc, where);
      let b = batches.get(collection);
      if (!b) batches.set(collection, (b = { items: [], bytes: 0 }));
      b.items.push(p);
      b.bytes += p.bytes;
      if (b.bytes >= this.batchBytes || b.items.length >= this.batchDocs) {
        batches.delete(collection);
        await this.flush(collection, b.items, result);
      }
    };
    for await (const { name, doc } of docs) {
      switch (name) {
        case 'start':
          result.uid = typeof doc.uid === 'string' ? doc.uid : '';
          start = this.prepare(doc, `start ${String(doc.uid)}`);
          break;
        case 'event_page':
          for (const row of unpackEventPage(doc)) await add('event', rowAsEvent(row), `event ${String(row.uid)}`);
          break;
        case 'datum_page':
          for (const row of unpackDatumPage(doc)) {
            await add('datum', { datum_id: row.datum_id, datum_kwargs: row.datum_kwargs, resource: row.resource }, `datum ${String(row.datum_id)}`);
          }
          break;
        case 'stream_resource':
        case 'stream_datum':
          result.dropped++;
          this.totals.dropped++;
          break;
        default: {
          const collection = COLLECTION_OF[name];
          if (!collection) throw new PackStreamError('E_BAD_RUN', `run ${result.uid}: unknown document name '${name}'`, { subject: result.uid });
          await add(collection, doc, `${name} ${String(doc.uid ?? doc.datum_id ?? '')}`);
        }
      }
    }
    if (!start) throw new PackStreamError('E_BAD_RUN', 'a run without a start document cannot be stored', {});
    for (const [collection, b] of batches) await this.flush(collection, b.items, result);
    await this.flush('run_start', [start], result);
    return result;
  }

  private async flush(collection: CollectionName, items: Pending[], result: RunWriteResult): Promise<void> {
    if (items.length === 0) return;
    if (collection === 'resource') await this.insertResources(items, result);
    else await this.insert(collection, items, result);
    this.opts.onBatch?.(this.totals);
  }

  private count(result: RunWriteResult, inserted: number, duplicates: number): void {
    result.inserted += inserted;
    result.duplicates += duplicates;
    this.totals.inserted += inserted;
    this.totals.duplicates += duplicates;
  }

  private async insert(collection: Exclude<CollectionName, 'resource'>, items: Pending[], result: RunWriteResult): Promise<void> {
    const coll = this.cols[collection];
    let dups: Pending[] = [];
    let inserted = items.length;
    try {
      await this.retry(async () => {
        try {
          await coll.insertMany(items.map((i) => i.bson), { ordered: false });
        } catch (e) {
          // A batch cut short by a lost connection may be partly stored: sending it again is safe.
          if (e instanceof MongoBulkWriteError && e.writeErrors && (Array.isArray(e.writeErrors) ? e.writeErrors.length : 1) > 0) {
            const errs = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
            const other = errs.find((w) => w.code !== 11000);
            if (other) {
              throw new PackStreamError('E_IO', `${collection}: the server refused ${describeKey(items[other.index]?.doc ?? {}, UNIQUE_FIELDS[collection])}: ${other.errmsg ?? other.message}`, { subject: collection, cause: e });
            }
            dups = errs.map((w) => items[w.index]!).filter(Boolean);
            inserted = items.length - dups.length;
            return;
          }
          throw e;
        }
      }, `inserting into ${collection}`);
    } catch (e) {
      throw mongoError(e, `inserting into ${collection}`);
    }
    let same = 0;
    if (dups.length) same = await this.checkDuplicates(collection, dups, result);
    // Documents stored by an earlier, interrupted attempt of this batch are duplicates too.
    this.count(result, inserted, same);
  }

  /** Compare each duplicate with what is stored; identical ones are fine, others are conflicts. */
  private async checkDuplicates(collection: Exclude<CollectionName, 'resource'>, dups: Pending[], result: RunWriteResult): Promise<number> {
    const fields = UNIQUE_FIELDS[collection];
    const or = fields
      .map((f) => ({ f, values: [...new Set(dups.map((d) => d.doc[f]).filter((v): v is string => typeof v === 'string'))] }))
      .filter((x) => x.values.length > 0)
      .map(({ f, values }) => ({ [f]: { $in: values } }));
    const stored =
      or.length === 0
        ? []
        : await this.retry(async () => {
            const raws = await this.cols[collection].find(or.length === 1 ? or[0]! : { $or: or }, { raw: true }).toArray();
            return raws.map((r) => decodeStored(r as unknown as Uint8Array, collection).doc);
          }, `reading ${collection}`);
    let same = 0;
    for (const d of dups) {
      const matches = stored.filter((s) => fields.some((f) => d.doc[f] !== undefined && s[f] === d.doc[f]));
      if (matches.some((m) => sameStored(m, d.doc))) same++;
      else result.conflicts.push({ collection, key: describeKey(d.doc, fields), existing: matches[0] ?? null, incoming: d.doc });
    }
    return same;
  }

  /** Resources: look before inserting (their uid index is not unique). */
  private async insertResources(items: Pending[], result: RunWriteResult): Promise<void> {
    const uids = [...new Set(items.map((i) => i.doc.uid).filter((u): u is string => typeof u === 'string'))];
    const stored = await this.retry(async () => {
      const raws = await this.cols.resource.find({ uid: { $in: uids } }, { raw: true }).toArray();
      return raws.map((r) => decodeStored(r as unknown as Uint8Array, 'resource').doc);
    }, 'reading resource');
    const fresh: Pending[] = [];
    let same = 0;
    for (const item of items) {
      const known = [...stored, ...fresh.map((f) => f.doc)].filter((s) => s.uid === item.doc.uid);
      if (known.length === 0) fresh.push(item);
      else if (known.some((k) => sameStored(k, item.doc))) same++;
      else result.conflicts.push({ collection: 'resource', key: `uid=${String(item.doc.uid)}`, existing: known[0]!, incoming: item.doc });
    }
    if (fresh.length) {
      // Resources have no unique index: a retried batch must not store one twice.
      await this.retry(async () => {
        const again = await this.cols.resource.find({ uid: { $in: fresh.map((f) => f.doc.uid as string) } }, { projection: { uid: 1 } }).toArray();
        const there = new Set(again.map((a) => a.uid));
        const todo = fresh.filter((f) => !there.has(f.doc.uid));
        if (todo.length) await this.cols.resource.insertMany(todo.map((t) => t.bson), { ordered: false });
      }, 'inserting into resource');
    }
    this.count(result, fresh.length, same);
  }
}
