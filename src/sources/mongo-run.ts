/**
 * One run of a mongo_normalized database, in databroker's canonical order
 * (formats.md §4.3), read the way BlueskyMongoCatalog reads it (§4.2):
 *
 *   start;
 *   per stream (streams in the order their first descriptor was stored), its
 *     descriptors by time; after the first stream's, every resource whose
 *     `run_start` is the run, and each one's datums as datum_pages of 5;
 *   events of every named stream as one-row event_pages, merged by (time, uid),
 *     each with `filled` = {key: false} for the data keys whose descriptor entry
 *     has `external` (whatever was stored); a legacy resource (no `run_start`)
 *     is emitted, with all its datums, just before the first event that needs
 *     it, found from the datum id (the part before '/') or the datum collection;
 *   stop.
 *
 * Every collection is read by key (src/sources/mongo-keyset.ts), so memory is
 * a batch per descriptor and a run may be any size. `_id` is never part of a
 * document.
 */
import { ObjectId, type Collection } from 'mongodb';
import { decodeStored, type StoredDoc } from '../codec/bson.js';
import { makeDoc } from '../codec/msgpack.js';
import { field, isPlainDoc, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { Heap } from '../transforms/heap.js';
import { chunkDatumRows, packEventPage, type DatumRow, type EventRow } from '../transforms/pages.js';
import type { DocPair, ReadOptions } from '../types.js';
import { mongoError } from './mongo-connection.js';
import { readByKey, type KeysetOptions } from './mongo-keyset.js';

export interface MongoCollections {
  runStart: Collection;
  runStop: Collection;
  descriptor: Collection;
  event: Collection;
  resource: Collection;
  datum: Collection;
}

/** How collections are read: batch size, cursor age, retry time. */
export type ReadTuning = Pick<KeysetOptions, 'batchSize' | 'maxCursorAgeMs' | 'retryMs' | 'onQuery'>;

const DATUM_PAGE_SIZE = 5;
/** Events whose datum ids are resolved with one query. */
const LOOKUP_CHUNK = 256;

function str(v: Value | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A sub-document as a row field, keeping an order-keeping Map as it is. */
function docLike(v: Value | undefined): Doc {
  return v instanceof Map || isPlainDoc(v) ? (v as Doc) : {};
}

function hasKey(v: Value | undefined, key: string): boolean {
  if (v instanceof Map) return v.has(key);
  return isPlainDoc(v) && Object.prototype.hasOwnProperty.call(v, key);
}

function keysOf(v: Value | undefined): string[] {
  if (v instanceof Map) return [...v.keys()].filter((k): k is string => typeof k === 'string');
  return isPlainDoc(v) ? Object.keys(v) : [];
}

/** Data keys whose descriptor entry has an `external` key, in data_keys order. */
export function externalKeys(descriptor: Doc): string[] {
  const dk = field(descriptor, 'data_keys');
  return keysOf(dk).filter((k) => hasKey(field(dk, k), 'external'));
}

async function collect(it: AsyncIterable<StoredDoc>): Promise<StoredDoc[]> {
  const out: StoredDoc[] = [];
  for await (const d of it) out.push(d);
  return out;
}

async function findOne(coll: Collection, filter: Record<string, unknown>, where: string): Promise<StoredDoc | null> {
  let raw: Uint8Array | null;
  try {
    raw = (await coll.find(filter, { raw: true, limit: 1, sort: { _id: 1 } }).next()) as Uint8Array | null;
  } catch (e) {
    throw mongoError(e, where);
  }
  return raw === null ? null : decodeStored(raw, where);
}

interface ExternalRef {
  /** The resource named by the datum id before its first '/', if any. */
  prefix?: string;
  /** The resource the datum collection says (looked up unless the prefix is already emitted). */
  actual?: string;
  datumId: string;
}

interface PendingEvent {
  row: EventRow;
  time: number;
  uid: string;
  refs: ExternalRef[];
}

/** Events of one descriptor in (time, _id) order, with their external datum ids resolved in chunks. */
class DescriptorEvents {
  private buf: PendingEvent[] = [];
  private pos = 0;
  private readonly docs: AsyncGenerator<StoredDoc>;
  private finished = false;
  /** databroker overwrites each event's `filled` with this (shared: rows are never mutated). */
  private readonly filled: Doc;

  constructor(
    private readonly cols: MongoCollections,
    private readonly descriptorUid: string,
    private readonly external: string[],
    private readonly emitted: Set<string>,
    read: ReadTuning & { signal?: AbortSignal },
  ) {
    this.filled = makeDoc(external.map((k) => [k, false])) as Doc;
    this.docs = readByKey(cols.event, { descriptor: descriptorUid }, { ...read, order: 'time', where: `events of descriptor ${descriptorUid}` });
  }

  async next(): Promise<PendingEvent | null> {
    if (this.pos < this.buf.length) return this.buf[this.pos++]!;
    if (this.finished) return null;
    const chunk: StoredDoc[] = [];
    for (;;) {
      const n = await this.docs.next();
      if (n.done) {
        this.finished = true;
        break;
      }
      chunk.push(n.value);
      if (chunk.length >= LOOKUP_CHUNK) break;
    }
    this.buf = await this.resolve(chunk);
    this.pos = 0;
    return this.pos < this.buf.length ? this.buf[this.pos++]! : null;
  }

  async close(): Promise<void> {
    await this.docs.return(undefined);
  }

  private async resolve(chunk: StoredDoc[]): Promise<PendingEvent[]> {
    const out: PendingEvent[] = [];
    const lookup = new Map<string, ExternalRef[]>();
    for (const { doc } of chunk) {
      const data = docLike(doc.data);
      const refs: ExternalRef[] = [];
      for (const k of this.external) {
        const id = field(data, k);
        if (typeof id !== 'string') continue;
        const slash = id.indexOf('/');
        const ref: ExternalRef = { datumId: id, ...(slash >= 0 ? { prefix: id.slice(0, slash) } : {}) };
        refs.push(ref);
        // ophyd names datums `<resource uid>/<n>`: one of an emitted resource is already there.
        if (ref.prefix !== undefined && this.emitted.has(ref.prefix)) ref.actual = ref.prefix;
        else {
          let l = lookup.get(id);
          if (!l) lookup.set(id, (l = []));
          l.push(ref);
        }
      }
      const row: EventRow = {
        descriptor: doc.descriptor ?? null,
        uid: doc.uid ?? null,
        time: doc.time ?? null,
        seq_num: doc.seq_num ?? null,
        data,
        timestamps: docLike(doc.timestamps),
        filled: this.filled,
      };
      out.push({ row, time: toNumber(doc.time) ?? NaN, uid: str(doc.uid) ?? '', refs });
    }
    if (lookup.size > 0) {
      const where = `datums of descriptor ${this.descriptorUid}`;
      try {
        const cursor = this.cols.datum.find({ datum_id: { $in: [...lookup.keys()] } }, { raw: true, projection: { datum_id: 1, resource: 1 } });
        for await (const raw of cursor) {
          const { doc } = decodeStored(raw as unknown as Uint8Array, where);
          const resource = str(doc.resource);
          for (const ref of lookup.get(str(doc.datum_id) ?? '') ?? []) if (resource !== undefined) ref.actual = resource;
        }
      } catch (e) {
        throw mongoError(e, where);
      }
    }
    return out;
  }
}

/** Datum pages of 5 for one resource, datums in stored (_id) order. */
async function* datumPages(cols: MongoCollections, resourceUid: string, read: ReadTuning & { signal?: AbortSignal }): AsyncGenerator<DocPair> {
  const rows = (async function* (): AsyncGenerator<DatumRow> {
    for await (const { doc } of readByKey(cols.datum, { resource: resourceUid }, { ...read, order: 'id', where: `datums of resource ${resourceUid}` })) {
      yield { resource: doc.resource ?? null, datum_id: doc.datum_id ?? null, datum_kwargs: docLike(doc.datum_kwargs) };
    }
  })();
  for await (const doc of chunkDatumRows(rows, DATUM_PAGE_SIZE)) yield { name: 'datum_page', doc };
}

/** databroker's get_resource: by uid, else (legacy) by ObjectId `_id`, with `uid` set. */
async function getResource(cols: MongoCollections, uid: string, runUid: string): Promise<Doc> {
  const where = `resource ${uid}`;
  const hit = await findOne(cols.resource, { uid }, where);
  if (hit) return hit.doc;
  if (/^[0-9a-f]{24}$/i.test(uid)) {
    const legacy = await findOne(cols.resource, { _id: new ObjectId(uid) }, where);
    if (legacy) {
      legacy.doc.uid = uid;
      return legacy.doc;
    }
  }
  throw new PackStreamError('E_BAD_RUN', `run ${runUid}: an event refers to resource ${uid}, which is not in the resource collection`, { subject: runUid });
}

/** Python's tuple comparison of (time, uid), then the descriptor's index (stable). */
function before(a: { ev: PendingEvent; idx: number }, b: { ev: PendingEvent; idx: number }): boolean {
  if (a.ev.time !== b.ev.time) return a.ev.time < b.ev.time;
  if (a.ev.uid !== b.ev.uid) return a.ev.uid < b.ev.uid;
  return a.idx < b.idx;
}

export async function* mongoCanonicalDocuments(
  cols: MongoCollections,
  start: Doc,
  read: ReadTuning,
  opts: ReadOptions = {},
): AsyncGenerator<DocPair> {
  const uid = str(start.uid) ?? '';
  const tuning = { ...read, ...(opts.signal ? { signal: opts.signal } : {}) };
  yield { name: 'start', doc: start };

  const descriptors = await collect(readByKey(cols.descriptor, { run_start: uid }, { ...tuning, order: 'time', where: `descriptors of run ${uid}` }));
  const streams: string[] = [];
  for (const d of [...descriptors].sort((a, b) => (a.idKey < b.idKey ? -1 : a.idKey > b.idKey ? 1 : 0))) {
    const name = str(d.doc.name);
    if (name !== undefined && !streams.includes(name)) streams.push(name);
  }

  const emitted = new Set<string>();
  const resources: Doc[] = [];
  for await (const r of readByKey(cols.resource, { run_start: uid }, { ...tuning, order: 'id', where: `resources of run ${uid}` })) {
    const ruid = str(r.doc.uid) ?? r.idKey;
    if (emitted.has(ruid)) continue; // re-imported copies (suitcase inserts identical resources again)
    emitted.add(ruid);
    resources.push(r.doc);
  }
  if (streams.length === 0) emitted.clear();

  for (let i = 0; i < streams.length; i++) {
    for (const d of descriptors) if (d.doc.name === streams[i]) yield { name: 'descriptor', doc: d.doc };
    if (i > 0) continue;
    for (const r of resources) yield { name: 'resource', doc: r };
    for (const r of resources) {
      const ruid = str(r.uid);
      if (ruid !== undefined) yield* datumPages(cols, ruid, tuning);
    }
  }

  const wanted = descriptors.filter((d) => typeof d.doc.name === 'string' && streams.includes(d.doc.name));
  const sources = wanted.map((d) => new DescriptorEvents(cols, str(d.doc.uid) ?? '', externalKeys(d.doc), emitted, tuning));
  try {
    const heap = new Heap<{ ev: PendingEvent; idx: number }>(before);
    for (let i = 0; i < sources.length; i++) {
      const ev = await sources[i]!.next();
      if (ev) heap.push({ ev, idx: i });
    }
    while (heap.size) {
      const top = heap.pop()!;
      for (const ref of top.ev.refs) {
        if (ref.actual !== undefined && emitted.has(ref.actual)) continue; // its datums were emitted already
        const ruid = ref.prefix ?? ref.actual;
        if (ruid === undefined) {
          throw new PackStreamError('E_BAD_RUN', `run ${uid}: event ${top.ev.uid} refers to datum ${ref.datumId}, which is not in the datum collection`, { subject: uid });
        }
        if (emitted.has(ruid)) continue;
        emitted.add(ruid);
        yield { name: 'resource', doc: await getResource(cols, ruid, uid) };
        yield* datumPages(cols, ruid, tuning);
      }
      yield { name: 'event_page', doc: packEventPage([top.ev.row]) };
      const next = await sources[top.idx]!.next();
      if (next) heap.push({ ev: next, idx: top.idx });
    }
  } finally {
    await Promise.all(sources.map((s) => s.close().catch(() => {})));
  }

  const stop = await findOne(cols.runStop, { run_start: uid }, `stop of run ${uid}`);
  if (stop) yield { name: 'stop', doc: stop.doc };
}
