/**
 * --fill-external: put the data that resources and datums point to into the
 * events themselves, as event-model's Filler does (formats.md §5, §7.3):
 * `data[key]` becomes the array, `filled[key]` the datum_id, and resource,
 * datum and datum_page documents are consumed (not passed on).
 *
 * Which keys are filled: those whose `filled[key]` is false; for an event with
 * no `filled` at all, every data key the descriptor marks `external`; and an
 * `external` key missing from `filled` whose value is the id of one of the run's
 * datums (Python leaves that unfilled, which loses the data once resources are
 * dropped).
 *
 * Memory stays bounded on runs of thousands of large frames: reads go through
 * one p-limit (`concurrency`), at most `concurrency` datums are read or held
 * ahead of the consumer, documents come out in their input order, and a frame
 * is referenced only by its document, so it is released once written. Resources
 * and datums are cached for the run (canonical order puts them before events).
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { makeDoc } from '../codec/msgpack.js';
import { entries, isEncodable, isPlainDoc, withField, type Doc, type PyMap, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { Handler } from '../handlers/types.js';
import type { DocPair } from '../types.js';
import { HandlerRegistry, READABLE_SPECS } from './handlers.js';
import { checkedResourcePath, forEachDatumFile } from './resources.js';
import { checkExternalPath } from './safe-names.js';
import { datumAsRow, eventAsRow, packEventPage, unpackDatumPage, unpackEventPage, type EventRow } from './pages.js';

export interface FillOptions {
  registry?: HandlerRegistry;
  /** root_map of the source: original resource root → where the files are now. */
  rootMap?: Record<string, string>;
  /** Datum reads at once, which is also how many datums may be held ahead of the consumer (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each datum is read, with the bytes of its data. */
  onDatum?: (bytes: number) => void;
}

interface CachedResource {
  doc: Doc;
  filePath: string;
  mappedRoot: string;
  handler?: Handler;
}

interface Job {
  promise: Promise<DocPair>;
  datums: number;
}

function str(v: Value | undefined): string {
  return typeof v === 'string' ? v : '';
}

function getKey(d: Doc | PyMap | undefined, k: string): Value | undefined {
  if (d === undefined) return undefined;
  if (d instanceof Map) return d.get(k);
  return Object.prototype.hasOwnProperty.call(d, k) ? d[k] : undefined;
}

function hasKey(d: Doc | PyMap, k: string): boolean {
  return d instanceof Map ? d.has(k) : Object.prototype.hasOwnProperty.call(d, k);
}

/** A copy of a mapping with some keys set (in place when present, appended otherwise). */
function updated(d: Doc | PyMap, updates: Map<string, Value>): Doc {
  const out: [string, Value][] = [];
  for (const [k, v] of entries(d)) {
    if (typeof k !== 'string') continue;
    out.push([k, updates.has(k) ? updates.get(k)! : v]);
  }
  for (const [k, v] of updates) if (!hasKey(d, k)) out.push([k, v]);
  return makeDoc(out) as Doc;
}

function bytesOf(v: Value): number {
  const n = isEncodable(v) ? (v as { nbytes?: unknown }).nbytes : undefined;
  return typeof n === 'number' ? n : 0;
}

/** Reads datums for the events of one run; use one per run and `close()` it. */
export class DatumFiller {
  private readonly registry: HandlerRegistry;
  private readonly rootMap: Record<string, string>;
  private readonly externals = new Map<string, Set<string>>();
  private readonly resources = new Map<string, CachedResource>();
  private readonly datums = new Map<string, { resource: string; kwargs: Doc }>();
  private readonly limit: LimitFunction;
  private closed = false;
  readonly concurrency: number;

  constructor(private readonly opts: FillOptions = {}) {
    this.registry = opts.registry ?? new HandlerRegistry();
    this.rootMap = opts.rootMap ?? {};
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
    this.limit = pLimit(this.concurrency);
  }

  /** Note descriptors, resources and datums; true when the document is consumed (not passed on). */
  observe(pair: DocPair): boolean {
    switch (pair.name) {
      case 'descriptor': {
        const keys = new Set<string>();
        const dk = pair.doc.data_keys;
        if (isPlainDoc(dk) || dk instanceof Map) {
          for (const [k, v] of entries(dk)) if (typeof k === 'string' && getKey(v as Doc, 'external') !== undefined) keys.add(k);
        }
        this.externals.set(str(pair.doc.uid), keys);
        return false;
      }
      case 'resource': {
        const { filePath, mappedRoot } = checkedResourcePath(pair.doc, this.rootMap);
        this.resources.set(str(pair.doc.uid), { doc: pair.doc, filePath, mappedRoot });
        return true;
      }
      case 'datum':
      case 'datum_page': {
        const rows = pair.name === 'datum' ? [datumAsRow(pair.doc)] : unpackDatumPage(pair.doc);
        for (const r of rows) this.datums.set(str(r.datum_id), { resource: str(r.resource), kwargs: isPlainDoc(r.datum_kwargs) ? r.datum_kwargs : {} });
        return true;
      }
      default:
        return false;
    }
  }

  /** The keys of one event that need filling. */
  private keysToFill(descriptor: string, filled: Doc | PyMap | undefined, data: Doc | PyMap, where: string): string[] {
    const ext = this.externals.get(descriptor) ?? new Set<string>();
    const out = new Set<string>();
    if (filled === undefined) {
      for (const k of ext) out.add(k);
    } else {
      for (const [k, v] of entries(filled)) if (typeof k === 'string' && v === false) out.add(k);
      for (const k of ext) {
        const v = getKey(data, k);
        if (!hasKey(filled, k) && typeof v === 'string' && this.datums.has(v)) out.add(k);
      }
    }
    for (const k of out) {
      if (!hasKey(data, k)) throw new PackStreamError('E_BAD_RUN', `${where}: data key '${k}' is to be filled but the event has no such data`, { subject: where });
    }
    return [...out];
  }

  private handlerFor(res: CachedResource): Handler {
    if (!res.handler) res.handler = this.registry.handler(res.doc, res.filePath);
    return res.handler;
  }

  /** Read one datum's data (through the concurrency limit). */
  readDatum(datumId: Value | undefined, key: string, where: string): Promise<Value> {
    const id = str(datumId);
    const datum = this.datums.get(id);
    if (typeof datumId !== 'string' || !datum) {
      return Promise.reject(new PackStreamError('E_BAD_RUN', `${where}: data key '${key}' refers to datum ${JSON.stringify(datumId)}, which is not in the run`, { subject: id }));
    }
    const res = this.resources.get(datum.resource);
    if (!res) return Promise.reject(new PackStreamError('E_BAD_RUN', `datum ${id} refers to resource ${datum.resource}, which is not in the run`, { subject: id }));
    const spec = str(res.doc.spec);
    const context = `datum ${id} (resource ${datum.resource}, spec ${spec})`;
    return this.limit(async () => {
      if (this.closed) throw new PackStreamError('E_ABORTED', `${context}: the run was closed`);
      this.opts.signal?.throwIfAborted();
      try {
        const h = this.handlerFor(res);
        if (!h.read) {
          throw new PackStreamError('E_NO_HANDLER', `pack-stream cannot read ${spec} data (built-in readers: ${READABLE_SPECS.join(', ')}); load a reader with --handler ${spec}=./my-handler.js, or map the spec onto a built-in with --handler ${spec}=BUILTIN`, { subject: spec });
        }
        // Built-in readers open what their templates make of the kwargs: it must stay inside the root.
        if (this.registry.isBuiltin(spec)) await forEachDatumFile(h.filesForDatum(datum.kwargs), this.registry.limits.filesPerDatum, (f) => checkExternalPath(f, res.mappedRoot));
        const v = await h.read(datum.kwargs, { maxBytes: this.registry.limits.datumBytes, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
        this.opts.onDatum?.(bytesOf(v));
        return v;
      } catch (e) {
        if (e instanceof PackStreamError) throw new PackStreamError(e.code, `${context}: ${e.message}`, { subject: e.subject ?? id, cause: e });
        if ((e as Error)?.name === 'AbortError') throw e;
        throw new PackStreamError('E_HANDLER', `${context}: ${(e as Error)?.message ?? String(e)}`, { subject: id, cause: e });
      }
    });
  }

  private fillRows(rows: EventRow[], hasFilled: boolean): { promise: Promise<EventRow[]>; datums: number } {
    let datums = 0;
    const jobs = rows.map((row) => {
      const where = `event ${str(row.uid)}`;
      const keys = this.keysToFill(str(row.descriptor), hasFilled ? row.filled : undefined, row.data, where);
      if (keys.length === 0) return row;
      datums += keys.length;
      const reads = keys.map((k) => this.readDatum(getKey(row.data, k), k, where));
      return Promise.all(reads).then((values) => {
        const data = new Map<string, Value>();
        const filled = new Map<string, Value>();
        keys.forEach((k, i) => {
          data.set(k, values[i]!);
          filled.set(k, getKey(row.data, k)!);
        });
        return { ...row, data: updated(row.data, data), filled: updated(row.filled, filled) };
      });
    });
    return { promise: Promise.all(jobs), datums };
  }

  /** Start filling an event or event_page; `datums` is how many datums it reads. */
  fill(pair: DocPair): Job {
    if (pair.name === 'event_page') {
      const rows = [...unpackEventPage(pair.doc)];
      const { promise, datums } = this.fillRows(rows, true);
      if (datums === 0) return { promise: Promise.resolve(pair), datums };
      return { promise: promise.then((filledRows) => ({ name: 'event_page', doc: packEventPage(filledRows) })), datums };
    }
    if (pair.name === 'event') {
      const doc = pair.doc;
      const row = eventAsRow(doc);
      const hasFilled = Object.prototype.hasOwnProperty.call(doc, 'filled');
      const { promise, datums } = this.fillRows([row], hasFilled);
      if (datums === 0) return { promise: Promise.resolve(pair), datums };
      return {
        promise: promise.then(([r]) => ({ name: 'event', doc: withField(withField(doc, 'data', r!.data), 'filled', r!.filled) })),
        datums,
      };
    }
    return { promise: Promise.resolve(pair), datums: 0 };
  }

  /** Close the handlers' files and refuse reads not yet started. */
  async close(): Promise<void> {
    this.closed = true;
    this.limit.clearQueue();
    for (const res of this.resources.values()) {
      try {
        await res.handler?.close?.();
      } catch {
        // a handler that fails to close must not hide the run's result
      }
    }
  }
}


/**
 * Stage: documents in, filled documents out (same order); resources, datums
 * and datum pages are consumed. The filler's files are closed when the stage
 * ends, also when it fails or the consumer stops early.
 */
export async function* fillDocuments(docs: AsyncIterable<DocPair>, opts: FillOptions | DatumFiller = {}): AsyncGenerator<DocPair> {
  const filler = opts instanceof DatumFiller ? opts : new DatumFiller(opts);
  const signal = opts instanceof DatumFiller ? undefined : opts.signal;
  const queue: Job[] = [];
  let held = 0;
  try {
    for await (const pair of docs) {
      signal?.throwIfAborted();
      if (filler.observe(pair)) continue;
      const job = filler.fill(pair);
      job.promise.catch(() => undefined); // a failure is raised when its turn comes
      queue.push(job);
      held += job.datums;
      while (queue.length > 0 && (held >= filler.concurrency || queue[0]!.datums === 0)) {
        const head = queue.shift()!;
        held -= head.datums;
        yield await head.promise;
      }
    }
    while (queue.length > 0) {
      const head = queue.shift()!;
      held -= head.datums;
      yield await head.promise;
    }
  } finally {
    queue.length = 0;
    await filler.close();
  }
}
