/**
 * databroker's canonical document order for one run, i.e. what
 * `run.canonical(fill='no')` yields and what a pack holds (formats.md §4.3):
 *
 *   start;
 *   for each stream: its descriptors, then (first stream only, later copies are
 *     dropped as duplicates) every resource and each resource's datums in
 *     datum_pages of 5;
 *   every event of every stream as a one-row event_page, merged by (time, uid);
 *   stop.
 *
 * Streams are taken in the order their first descriptor appears (Python's is
 * set order, i.e. arbitrary; first appearance keeps a re-pack identical).
 *
 * Memory: the run is read more than once instead of being held. A scan pass
 * keeps only start, stop, descriptors and resources. When the events in the
 * file are already in (time, uid) order (true of every pack and of RunEngine
 * output) one more pass streams them; otherwise one reader per descriptor
 * replays Python's heap merge exactly. Datums stream when they are grouped by
 * resource in resource order; otherwise the datum rows (small) are held.
 */
import { field, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { DocPair, ReadOptions } from '../types.js';
import { Heap } from './heap.js';
import { canonicalEventPageDescriptor } from '../codec/msgpack.js';
import { canonicalEventPageDescriptorJson } from '../codec/pyjson.js';
import {
  chunkDatumRows,
  datumAsRow,
  eventAsRow,
  packEventPage,
  unpackDatumPage,
  unpackEventPage,
  type DatumRow,
  type EventRow,
} from './pages.js';

export type OpenRecords = (opts?: ReadOptions) => AsyncIterable<DocPair>;

const EVENT_PAGE_KEYS = 'time,uid,seq_num,descriptor,filled,data,timestamps';
const DATUM_PAGE_KEYS = 'resource,datum_id,datum_kwargs';
const DATUM_PAGE_SIZE = 5;

interface Scan {
  start: DocPair;
  stop: DocPair | null;
  descriptors: Map<string, DocPair>;
  resources: Map<string, DocPair>;
  streams: string[];
  eventsSorted: boolean;
  datumsGrouped: boolean;
}

function str(v: Value | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Python's tuple comparison of (time, uid). */
function before(t1: number, u1: string, t2: number, u2: string): boolean {
  return t1 < t2 || (t1 === t2 && u1 < u2);
}

async function scan(open: OpenRecords, opts: ReadOptions, location: string): Promise<Scan> {
  let start: DocPair | null = null;
  let stop: DocPair | null = null;
  const descriptors = new Map<string, DocPair>();
  const resources = new Map<string, DocPair>();
  const streams: string[] = [];
  let eventsSorted = true;
  let lastTime = -Infinity;
  let lastUid = '';
  const datumRuns: string[] = []; // resource uid of each run of consecutive datums
  let datumsGrouped = true;
  let first = true;
  const seeRow = (time: Value | undefined, uid: Value | undefined) => {
    if (!eventsSorted) return;
    const t = toNumber(time) ?? NaN;
    const u = str(uid) ?? '';
    if (before(t, u, lastTime, lastUid) || Number.isNaN(t)) eventsSorted = false;
    lastTime = t;
    lastUid = u;
  };
  const seeDatum = (resource: Value | undefined) => {
    if (!datumsGrouped) return;
    const r = str(resource) ?? '';
    if (datumRuns[datumRuns.length - 1] === r) return;
    if (datumRuns.includes(r)) datumsGrouped = false;
    else datumRuns.push(r);
  };
  for await (const pair of open({ ...opts, skim: true })) {
    if (first) {
      if (pair.name !== 'start') {
        throw new PackStreamError('E_BAD_RUN', `${location}: the first document is a '${pair.name}', not a 'start'`, { subject: location });
      }
      start = pair;
      first = false;
      continue;
    }
    switch (pair.name) {
      case 'stop':
        stop ??= pair;
        break;
      case 'descriptor': {
        const uid = str(pair.doc.uid) ?? '';
        descriptors.set(uid, pair);
        const name = str(pair.doc.name);
        if (name !== undefined && !streams.includes(name)) streams.push(name);
        break;
      }
      case 'resource':
        resources.set(str(pair.doc.uid) ?? '', pair);
        break;
      case 'event':
        seeRow(pair.doc.time, pair.doc.uid);
        break;
      case 'event_page': {
        const times = Array.isArray(pair.doc.time) ? pair.doc.time : [];
        const uids = Array.isArray(pair.doc.uid) ? pair.doc.uid : [];
        for (let i = 0; i < times.length; i++) seeRow(times[i], uids[i]);
        break;
      }
      case 'datum':
        seeDatum(pair.doc.resource);
        break;
      case 'datum_page':
        seeDatum(pair.doc.resource);
        break;
    }
  }
  if (start === null) throw new PackStreamError('E_BAD_RUN', `${location}: the file holds no documents`, { subject: location });
  if (datumsGrouped) {
    // Grouped is not enough: the groups must come in resource order too.
    const order = [...resources.keys()];
    let prev = -1;
    for (const r of datumRuns) {
      const i = order.indexOf(r);
      if (i < 0) continue; // orphan datums are dropped, as Python does
      if (i < prev) datumsGrouped = false;
      prev = i;
    }
  }
  return { start, stop, descriptors, resources, streams, eventsSorted, datumsGrouped };
}

function streamOf(desc: Doc): string | undefined {
  return str(desc.name);
}

/** A source record that is already a canonical one-row event_page keeps its bytes. */
function isCanonicalEventPage(doc: Doc): boolean {
  if (Object.keys(doc).join(',') !== EVENT_PAGE_KEYS) return false;
  if (!Array.isArray(doc.time) || doc.time.length !== 1 || !Array.isArray(doc.uid) || doc.uid.length !== 1) return false;
  if (!Array.isArray(doc.seq_num) || doc.seq_num.length !== 1) return false;
  for (const k of ['filled', 'data', 'timestamps']) {
    const v = doc[k];
    if (v instanceof Map) return false;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
    for (const c of Object.values(v as Doc)) if (!Array.isArray(c) || c.length !== 1) return false;
  }
  return true;
}

/** One-row event_pages for a stored event or event_page; a canonical one keeps its bytes. */
function* onePages(pair: DocPair): Generator<DocPair> {
  if (pair.name === 'event_page' && isCanonicalEventPage(pair.doc)) {
    yield pair;
    return;
  }
  const rows = pair.name === 'event' ? [eventAsRow(pair.doc)] : unpackEventPage(pair.doc);
  for (const row of rows) yield { name: 'event_page', doc: packEventPage([row]) };
}

async function* datumRowsFromRecords(records: AsyncIterable<DocPair>, known: Set<string>): AsyncGenerator<DatumRow & { src: DocPair; n: number }> {
  for await (const pair of records) {
    if (pair.name === 'datum') {
      const row = datumAsRow(pair.doc);
      if (known.has(str(row.resource) ?? '')) yield { ...row, src: pair, n: 1 };
    } else if (pair.name === 'datum_page') {
      if (!known.has(str(pair.doc.resource) ?? '')) continue;
      const rows = [...unpackDatumPage(pair.doc)];
      for (const row of rows) yield { ...row, src: pair, n: rows.length };
    }
  }
}

/** Datum pages of 5 per resource; a source page that already is such a chunk keeps its bytes. */
async function* datumPages(rows: AsyncIterable<DatumRow & { src: DocPair; n: number }>): AsyncGenerator<DocPair> {
  let buf: (DatumRow & { src: DocPair; n: number })[] = [];
  let resource: string | undefined;
  async function* flush(): AsyncGenerator<DocPair> {
    if (buf.length === 0) return;
    const src = buf[0]!.src;
    const whole = buf.every((r) => r.src === src) && buf.length === buf[0]!.n && src.name === 'datum_page' && Object.keys(src.doc).join(',') === DATUM_PAGE_KEYS;
    if (whole) yield src;
    else for await (const doc of chunkDatumRows(buf, DATUM_PAGE_SIZE)) yield { name: 'datum_page', doc };
    buf = [];
  }
  for await (const r of rows) {
    const res = str(r.resource);
    if (res !== resource) {
      yield* flush();
      resource = res;
    }
    buf.push(r);
    if (buf.length === DATUM_PAGE_SIZE) yield* flush();
  }
  yield* flush();
}

/** Python's heap merge, one reader per descriptor (used when events are out of order). */
async function* mergeEvents(open: OpenRecords, opts: ReadOptions, streams: { name: string; descriptors: string[] }[]): AsyncGenerator<DocPair> {
  type Page = { page: Doc; time: number; uid: string; idx: number };
  const pageIterators = (desc: string) =>
    (async function* () {
      for await (const pair of open(opts)) {
        if ((pair.name === 'event' || pair.name === 'event_page') && pair.doc.descriptor === desc) {
          const page = pair.name === 'event' ? packEventPage([eventAsRow(pair.doc)]) : pair.doc;
          const t = Array.isArray(page.time) ? page.time[0] : undefined;
          const u = Array.isArray(page.uid) ? page.uid[0] : undefined;
          yield { page, time: toNumber(t) ?? NaN, uid: str(u) ?? '', idx: 0 };
        }
      }
    })();
  // Per stream: pages of its descriptors merged by their first (time, uid).
  const streamPages = (descs: string[]) =>
    (async function* () {
      const its = descs.map(pageIterators);
      const heap = new Heap<Page>((a, b) => before(a.time, a.uid, b.time, b.uid) || (a.time === b.time && a.uid === b.uid && a.idx < b.idx));
      const pull = async (i: number) => {
        const n = await its[i]!.next();
        if (!n.done) heap.push({ ...n.value, idx: i });
      };
      for (let i = 0; i < its.length; i++) await pull(i);
      while (heap.size) {
        const top = heap.pop()!;
        yield top.page;
        await pull(top.idx);
      }
    })();
  type Row = { row: EventRow; time: number; uid: string; idx: number };
  const its = streams.map((s) => streamPages(s.descriptors));
  const heap = new Heap<Row>((a, b) => before(a.time, a.uid, b.time, b.uid) || (a.time === b.time && a.uid === b.uid && a.idx < b.idx));
  const pull = async (i: number) => {
    const n = await its[i]!.next();
    if (n.done) return;
    for (const row of unpackEventPage(n.value)) heap.push({ row, time: toNumber(row.time) ?? NaN, uid: str(row.uid) ?? '', idx: i });
  };
  for (let i = 0; i < its.length; i++) await pull(i);
  while (heap.size) {
    const top = heap.pop()!;
    yield { name: 'event_page', doc: packEventPage([top.row]) };
    await pull(top.idx);
  }
}

export async function* canonicalDocuments(open: OpenRecords, opts: ReadOptions & { location?: string } = {}): AsyncGenerator<DocPair> {
  const location = opts.location ?? 'run';
  const s = await scan(open, opts, location);
  yield s.start;
  const streams = s.streams.map((name) => ({
    name,
    descriptors: [...s.descriptors.values()].filter((d) => streamOf(d.doc) === name),
  }));
  const known = new Set(s.resources.keys());
  for (let i = 0; i < streams.length; i++) {
    yield* streams[i]!.descriptors;
    if (i > 0) continue;
    yield* s.resources.values();
    if (known.size === 0) continue;
    if (s.datumsGrouped) {
      yield* datumPages(datumRowsFromRecords(open(opts), known));
    } else {
      const byResource = new Map<string, (DatumRow & { src: DocPair; n: number })[]>();
      for (const r of known) byResource.set(r, []);
      for await (const row of datumRowsFromRecords(open(opts), known)) byResource.get(str(row.resource) ?? '')!.push(row);
      for (const rows of byResource.values()) yield* datumPages((async function* () { yield* rows; })());
    }
  }
  const wanted = new Set(streams.flatMap((st) => st.descriptors.map((d) => str(d.doc.uid) ?? '')));
  if (wanted.size > 0) {
    if (s.eventsSorted) {
      for await (const pair of open({ ...opts, lazy: true })) {
        if (pair.name !== 'event' && pair.name !== 'event_page') continue;
        // Fast path: a canonical one-row page passes as bytes (or text), never decoded.
        const fast = pair.name !== 'event_page' ? undefined
          : pair.rawFormat === 'msgpack' && Buffer.isBuffer(pair.raw) ? canonicalEventPageDescriptor(pair.raw)
          : pair.rawFormat === 'jsonl' && typeof pair.raw === 'string' ? canonicalEventPageDescriptorJson(pair.raw)
          : undefined;
        if (fast !== undefined) {
          if (wanted.has(fast)) yield pair;
        } else if (wanted.has(str(pair.doc.descriptor) ?? '')) {
          yield* onePages(pair);
        }
      }
    } else {
      yield* mergeEvents(open, opts, streams.map((st) => ({ name: st.name, descriptors: st.descriptors.map((d) => str(d.doc.uid) ?? '') })));
    }
  }
  if (s.stop) yield s.stop;
}

