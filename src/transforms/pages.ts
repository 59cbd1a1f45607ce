/**
 * event-model's page helpers, with the same key orders as Python's
 * `pack_event_page`, `unpack_event_page`, `pack_datum_page` and
 * `rechunk_datum_pages`, because byte-identical packs depend on them.
 */
import { field, isPlainDoc, setOwn, type Doc, type Value } from '../codec/values.js';
import { makeDoc } from '../codec/msgpack.js';

export interface EventRow {
  descriptor: Value;
  uid: Value;
  time: Value;
  seq_num: Value;
  data: Doc;
  timestamps: Doc;
  filled: Doc;
}

function asDoc(v: Value | undefined): Doc {
  // A Map (integer-like keys) stays a Map so its key order survives the page helpers.
  if (v instanceof Map) return v as unknown as Doc;
  return isPlainDoc(v) ? v : {};
}

function list(v: Value | undefined): Value[] {
  return Array.isArray(v) ? v : [];
}

function keyedEntries(v: Value | undefined): [string, Value][] {
  if (v instanceof Map) return [...v].filter((e): e is [string, Value] => typeof e[0] === 'string');
  return isPlainDoc(v) ? Object.entries(v) : [];
}

/** Python's `_transpose_dict_of_lists`: rows as long as the shortest column. */
function transposeColumns(v: Value | undefined): Doc[] {
  const cols = keyedEntries(v);
  if (cols.length === 0) return [];
  const n = Math.min(...cols.map(([, c]) => list(c).length));
  const rows: Doc[] = [];
  for (let i = 0; i < n; i++) rows.push(makeDoc(cols.map(([k, c]) => [k, list(c)[i]!])) as Doc);
  return rows;
}

/** One event per row of an event_page (zip_longest over the columns, as Python does). */
export function* unpackEventPage(page: Doc): Generator<EventRow> {
  const uids = list(page.uid);
  const times = list(page.time);
  const seqs = list(page.seq_num);
  const data = transposeColumns(page.data);
  const ts = transposeColumns(page.timestamps);
  const filled = transposeColumns(field(page, 'filled'));
  const n = Math.max(uids.length, times.length, seqs.length, data.length, ts.length, filled.length);
  for (let i = 0; i < n; i++) {
    yield {
      descriptor: page.descriptor ?? null,
      uid: i < uids.length ? uids[i]! : {},
      time: i < times.length ? times[i]! : {},
      seq_num: i < seqs.length ? seqs[i]! : {},
      data: data[i] ?? {},
      timestamps: ts[i] ?? {},
      filled: filled[i] ?? {},
    };
  }
}

export function eventAsRow(ev: Doc): EventRow {
  return {
    descriptor: ev.descriptor ?? null,
    uid: ev.uid ?? null,
    time: ev.time ?? null,
    seq_num: ev.seq_num ?? null,
    data: asDoc(ev.data),
    timestamps: asDoc(ev.timestamps),
    filled: asDoc(field(ev, 'filled')),
  };
}

function column(rows: Doc[]): Doc {
  const cols = new Map<string, Value[]>();
  for (const r of rows) {
    for (const [k, v] of keyedEntries(r)) {
      let c = cols.get(k);
      if (!c) cols.set(k, (c = []));
      c.push(v);
    }
  }
  return makeDoc(cols) as Doc;
}

/** `pack_event_page(*events)`: time, uid, seq_num, descriptor, filled, data, timestamps. */
export function packEventPage(rows: EventRow[]): Doc {
  const last = rows[rows.length - 1]!;
  return {
    time: rows.map((r) => r.time),
    uid: rows.map((r) => r.uid),
    seq_num: rows.map((r) => r.seq_num),
    descriptor: last.descriptor,
    filled: column(rows.map((r) => r.filled)),
    data: column(rows.map((r) => r.data)),
    timestamps: column(rows.map((r) => r.timestamps)),
  };
}

/** A plain event document from a row (what `unpack_event_page` yields). */
export function rowAsEvent(r: EventRow): Doc {
  return { descriptor: r.descriptor, uid: r.uid, time: r.time, seq_num: r.seq_num, data: r.data, timestamps: r.timestamps, filled: r.filled };
}

export interface DatumRow {
  resource: Value;
  datum_id: Value;
  datum_kwargs: Doc;
}

export function* unpackDatumPage(page: Doc): Generator<DatumRow> {
  const ids = list(page.datum_id);
  const kw = transposeColumns(page.datum_kwargs);
  for (let i = 0; i < ids.length; i++) yield { resource: page.resource ?? null, datum_id: ids[i]!, datum_kwargs: kw[i] ?? {} };
}

export function datumAsRow(d: Doc): DatumRow {
  return { resource: d.resource ?? null, datum_id: d.datum_id ?? null, datum_kwargs: asDoc(d.datum_kwargs) };
}

/** A datum_page in rechunk_datum_pages' key order: resource, datum_id, datum_kwargs. */
export function packDatumPage(rows: DatumRow[]): Doc {
  const out: Doc = {};
  setOwn(out, 'resource', rows[rows.length - 1]!.resource);
  setOwn(out, 'datum_id', rows.map((r) => r.datum_id));
  setOwn(out, 'datum_kwargs', column(rows.map((r) => r.datum_kwargs)));
  return out;
}

/** Group rows into pages of `size` (the last may be shorter). */
export async function* chunkDatumRows(rows: AsyncIterable<DatumRow> | Iterable<DatumRow>, size: number): AsyncGenerator<Doc> {
  let buf: DatumRow[] = [];
  for await (const r of rows) {
    buf.push(r);
    if (buf.length === size) {
      yield packDatumPage(buf);
      buf = [];
    }
  }
  if (buf.length) yield packDatumPage(buf);
}
