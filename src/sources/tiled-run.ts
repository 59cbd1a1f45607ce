/**
 * One Bluesky run held by a Tiled server, as event-model documents.
 *
 * - Mongo-backed runs (databroker 2's MongoAdapter, spec BlueskyRun 1.x): the
 *   original documents from `GET /api/v1/documents/{path}` as msgpack, decoded
 *   record by record.
 * - SQL-backed runs (TiledWriter, spec BlueskyRun 3.x): start/stop from the run's
 *   metadata, and descriptors and events either from bluesky-tiled-plugins'
 *   json-seq exporter (when the server offers it) or rebuilt from each stream's
 *   metadata and its `internal` table (Arrow IPC). External data keys (array
 *   nodes with `data_sources[].assets`) become legacy resource/datum documents
 *   with a spec databroker 1.x has a handler for (see `externalDocs`).
 *
 * Either way the documents are written once to a local msgpack file (the
 * source is read once, memory stays one record or one stream table), and the
 * pack's canonical order is produced from that file by the same code that packs
 * run files (transforms/canonical.ts).
 *
 * Stable uids of rebuilt documents (the same server gives the same pack):
 *   event     `event-<descriptor uid>-<seq_num>` (what the json-seq exporter uses)
 *   resource  `resource-<descriptor uid>-<data key>-<n>` (n: file number, from 0)
 *   datum     `<resource uid>/<index>`
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { MsgpackDecoder, encodeRecord } from '../codec/msgpack.js';
import { msgpackRecordsOf } from './msgpack-records.js';
import { parsePyJson } from '../codec/pyjson.js';
import { NdArray } from '../codec/ndarray.js';
import { isPlainDoc, pyFloat, topLevelDoc, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { HttpClient } from '../net/http.js';
import { canonicalDocuments } from '../transforms/canonical.js';
import type { DocPair, ReadOptions, RunRef } from '../types.js';
import { readMsgpackRecords } from './msgpack-records.js';
import { readArrowRows } from './tiled-arrow.js';

/** What a run needs from its catalog: the HTTP client, URLs, where to put local copies. */
export interface TiledContext {
  http: HttpClient;
  /** `http://host:port/api/v1` */
  api: string;
  /** json-seq exporter offered for BlueskyRun. */
  jsonSeq: boolean;
  /** Download the external files (copy / fill) into `workDir`, and map their roots there. */
  fetchAssets: boolean;
  workDir: string;
  /** Shared with the catalog: original root → local download folder. */
  rootMap: Record<string, string>;
  /** Bounds the downloads in flight (--concurrency). */
  limit: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Runs rebuilt from tables (not read from original documents), for catalog.yml. */
  rebuilt: Map<string, string>;
}

/** `a/b c` → `a/b%20c` (each segment encoded). */
export function encodePath(parts: string[]): string {
  return parts.map(encodeURIComponent).join('/');
}

interface NodeMeta {
  id: string;
  structure_family: string;
  specs: { name: string; version: string | null }[];
  metadata: Doc;
  structure?: { shape?: number[]; data_type?: unknown } | null;
  data_sources?: DataSource[] | null;
}

interface Asset {
  data_uri: string;
  is_directory: boolean;
  size: number | null;
  parameter: string | null;
  num: number | null;
  id: number;
}

interface DataSource {
  mimetype: string;
  parameters: Record<string, unknown>;
  assets: Asset[];
  structure?: { shape?: number[] } | null;
}

/** A JSON value from JSON.parse (metadata) into the value model: whole floats are lost by JSON.parse, so metadata is parsed with parsePyJson instead. */
async function getPy(ctx: TiledContext, route: string, signal?: AbortSignal): Promise<Doc> {
  const text = await ctx.http.getText(`${ctx.api}${route}`, { headers: { accept: 'application/json' }, ...(signal ? { signal } : {}) });
  const v = parsePyJson(text);
  if (!isPlainDoc(v)) throw new PackStreamError('E_HTTP', `${route}: the answer is not a JSON object`, { subject: route });
  return v;
}

function nodeOf(body: Doc): NodeMeta {
  const data = body.data as Doc;
  const attrs = data.attributes as Doc;
  return { id: String(data.id), ...(attrs as unknown as Omit<NodeMeta, 'id'>) };
}

/** Every child of a node (ids and attributes), paged. */
async function children(ctx: TiledContext, parts: string[], signal?: AbortSignal): Promise<NodeMeta[]> {
  const out: NodeMeta[] = [];
  for (let offset = 0; ; ) {
    const body = await getPy(ctx, `/search/${encodePath(parts)}?page[offset]=${offset}&page[limit]=300`, signal);
    const data = (body.data as Doc[]) ?? [];
    for (const d of data) out.push({ id: String(d.id), ...((d.attributes as unknown) as Omit<NodeMeta, 'id'>) });
    offset += data.length;
    const count = Number((body.meta as Doc | null)?.count ?? offset);
    if (data.length === 0 || offset >= count) return out;
  }
}

/** The file path of a `file://localhost/...` or `file:///...` asset URI. */
export function assetPath(uri: string): string {
  const u = new URL(uri);
  if (u.protocol !== 'file:') throw new PackStreamError('E_UNSUPPORTED', `asset ${uri}: only file: assets can be read`, { subject: uri });
  return decodeURIComponent(u.pathname);
}

interface ExternalKey {
  key: string;
  resources: Doc[];
  datums: Doc[];
  /** Datum id for the event with this seq_num (1-based). */
  datumFor: (seqNum: number) => string | undefined;
  assets: { asset: Asset; file: string; root: string }[];
  /** The array node, for asset downloads. */
  nodePath: string[];
}

/**
 * Legacy resource/datum documents for one external array node, with a spec
 * databroker 1.x reads:
 * - `application/x-hdf5` → `AD_HDF5` (`frame_per_point` from the node's
 *   metadata, default 1): one file → one resource, datum `point_number` = event
 *   index; one file per event → one resource per file, `point_number` 0.
 * - `multipart/related;type=application/x-npy` (one .npy per frame) → `NPY_SEQ`
 *   when the files are `<stem>_<i>.npy` in one folder (as ophyd writes them),
 *   datum `index` = i; otherwise `npy`, one resource per file.
 * Anything else fails the run with a message naming the mimetype.
 */
export function externalDocs(runUid: string, descUid: string, key: string, node: NodeMeta, events: number, nodePath: string[] = []): ExternalKey {
  const ds = node.data_sources?.[0];
  if (!ds) throw new PackStreamError('E_UNSUPPORTED', `run ${runUid}: external key ${key} has no data source`, { subject: runUid });
  const assets = [...ds.assets]
    .filter((a) => a.parameter === null || a.parameter === 'data_uri' || a.parameter === 'data_uris')
    .sort((a, b) => (a.num ?? 0) - (b.num ?? 0));
  const files = assets.map((a) => ({ asset: a, file: assetPath(a.data_uri), root: path.posix.dirname(assetPath(a.data_uri)) }));
  const resources: Doc[] = [];
  const datums: Doc[] = [];
  const ids: string[] = [];
  const resUid = (n: number) => `resource-${descUid}-${key}-${n}`;
  const resource = (n: number, spec: string, root: string, rel: string, kwargs: Doc): string => {
    const uid = resUid(n);
    resources.push({ spec, root, resource_path: rel, resource_kwargs: kwargs, path_semantics: 'posix', uid, run_start: runUid });
    return uid;
  };
  const datum = (res: string, i: number, kwargs: Doc) => {
    const id = `${res}/${i}`;
    datums.push({ resource: res, datum_id: id, datum_kwargs: kwargs });
    ids.push(id);
  };
  const mimetype = ds.mimetype.replace(/\s+/g, '');
  if (mimetype === 'application/x-hdf5') {
    const fpp = Number((node.metadata as Doc).frame_per_point ?? 1) || 1;
    if (files.length === 1) {
      const f = files[0]!;
      const r = resource(0, 'AD_HDF5', f.root, path.posix.basename(f.file), { frame_per_point: fpp });
      for (let i = 0; i < events; i++) datum(r, i, { point_number: i });
    } else if (files.length === events) {
      files.forEach((f, i) => datum(resource(i, 'AD_HDF5', f.root, path.posix.basename(f.file), { frame_per_point: fpp }), 0, { point_number: 0 }));
    } else {
      throw new PackStreamError('E_UNSUPPORTED', `run ${runUid}: external key ${key} spreads ${events} events over ${files.length} HDF5 files; which frames each file holds is not known`, { subject: runUid });
    }
  } else if (mimetype === 'multipart/related;type=application/x-npy') {
    const m = files.map((f) => /^(.*)_(\d+)\.npy$/.exec(path.posix.basename(f.file)));
    const stem = m[0]?.[1];
    const seq = files.length > 0 && m.every((x, i) => x && x[1] === stem && Number(x[2]) === Number(m[0]![2]) + i && files[i]!.root === files[0]!.root);
    if (seq) {
      const r = resource(0, 'NPY_SEQ', files[0]!.root, stem!, {});
      m.forEach((x) => datum(r, Number(x![2]), { index: Number(x![2]) }));
    } else {
      files.forEach((f, i) => datum(resource(i, 'npy', f.root, path.posix.basename(f.file), {}), 0, {}));
    }
  } else {
    throw new PackStreamError('E_UNSUPPORTED', `run ${runUid}: external key ${key} is stored as ${ds.mimetype}, which pack-stream cannot turn into a resource yet`, { subject: runUid });
  }
  return { key, resources, datums, datumFor: (sn) => ids[sn - 1], assets: files, nodePath };
}

/** databroker 2 MongoAdapter runs say BlueskyRun 1.x; TiledWriter's say 3.x. */
export function isMongoBacked(specs: NodeMeta['specs']): boolean {
  return specs.some((s) => s.name === 'BlueskyRun' && !String(s.version ?? '').startsWith('3'));
}

const NON_DESCRIPTOR_KEYS = new Set(['_config_updates', 'stream_name']);

/** The stream's descriptor(s) from its metadata, as bluesky-tiled-plugins' build_descriptor_docs rebuilds them. */
export function descriptorsOf(meta: Doc, stream: string, runUid: string): Doc[] {
  const base: Doc = {};
  for (const [k, v] of Object.entries(meta)) if (!NON_DESCRIPTOR_KEYS.has(k)) base[k] = v;
  base.name = stream;
  base.run_start = runUid;
  const objectKeys: Record<string, string[]> = {};
  for (const [k, dk] of Object.entries((base.data_keys as Doc) ?? {})) {
    const obj = isPlainDoc(dk) ? dk.object_name : undefined;
    if (typeof obj === 'string') (objectKeys[obj] ??= []).push(k);
  }
  base.object_keys = objectKeys as unknown as Doc;
  const out = [base];
  for (const upd of (meta._config_updates as Doc[] | undefined) ?? []) {
    const d = structuredClone(out[out.length - 1]!) as Doc;
    if (upd.uid !== undefined) d.uid = upd.uid;
    if (upd.time !== undefined) d.time = upd.time;
    const conf = (upd.configuration as Doc | undefined) ?? {};
    for (const [obj, o] of Object.entries(conf)) {
      const target = ((d.configuration as Doc)[obj] as Doc);
      for (const k of Object.keys(((o as Doc).data as Doc) ?? {})) {
        (target.data as Doc)[k] = ((o as Doc).data as Doc)[k]!;
        (target.timestamps as Doc)[k] = ((o as Doc).timestamps as Doc)[k]!;
      }
    }
    out.push(d);
  }
  return out;
}

/** Writes records to the local run file, awaiting the disk (back-pressure). */
class RecordFile {
  private readonly out;
  count = 0;
  constructor(readonly file: string) {
    this.out = createWriteStream(file);
  }
  async write(name: string, doc: Value): Promise<void> {
    this.count++;
    if (!this.out.write(encodeRecord(name, doc))) await once(this.out, 'drain');
  }
  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }
}

export class TiledRun implements RunRef {
  readonly location: string;
  private fetched: Promise<string> | null = null;

  constructor(
    private readonly ctx: TiledContext,
    private readonly parts: string[],
    readonly uid: string,
    readonly start: Doc,
    private readonly specs: NodeMeta['specs'],
    private readonly stop: Doc | undefined,
  ) {
    this.location = `${ctx.api.replace(/\/api\/v1$/, '')}/${encodePath(parts)}`;
  }

  get mongoBacked(): boolean {
    return isMongoBacked(this.specs);
  }

  /** Fetch once into a local msgpack run file (and the assets, when asked). */
  private local(signal?: AbortSignal): Promise<string> {
    if (!this.fetched) {
      this.fetched = this.fetch(signal);
      this.fetched.catch(() => (this.fetched = null));
    }
    return this.fetched;
  }

  private async fetch(signal?: AbortSignal): Promise<string> {
    const dir = path.join(this.ctx.workDir, 'runs');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${this.uid.replace(/[^\w.-]/g, '_')}.msgpack`);
    const out = new RecordFile(file);
    try {
      if (this.mongoBacked) await this.fetchMongoDocuments(out, signal);
      else await this.rebuild(out, signal);
      await out.close();
    } catch (e) {
      await out.close().catch(() => {});
      await rm(file, { force: true });
      throw e;
    }
    return file;
  }

  /** MongoAdapter: the original documents, msgpack-streamed, one record at a time. */
  private async fetchMongoDocuments(out: RecordFile, signal?: AbortSignal): Promise<void> {
    const url = `${this.ctx.api}/documents/${encodePath(this.parts)}?fill=false`;
    const where = `${this.location}: the documents stream`;
    const body = this.ctx.http.stream(url, { headers: { accept: 'application/x-msgpack' }, ...(signal ? { signal } : {}) });
    for await (const raw of msgpackRecordsOf(body, where)) {
      let rec;
      try {
        rec = new MsgpackDecoder(raw).value();
      } catch (e) {
        throw new PackStreamError(e instanceof PackStreamError ? e.code : 'E_CORRUPT', `${where}: ${(e as Error).message}`, { subject: this.location, cause: e });
      }
      const doc = isPlainDoc(rec) ? topLevelDoc(rec.doc) : undefined;
      if (!isPlainDoc(rec) || typeof rec.name !== 'string' || doc === undefined) {
        throw new PackStreamError('E_CORRUPT', `${this.location}: a documents record is not {name, doc}`, { subject: this.location });
      }
      await out.write(rec.name, doc);
    }
    this.ctx.rebuilt.delete(this.uid);
  }

  /** TiledWriter runs: start, descriptors, resources/datums, events, stop. */
  private async rebuild(out: RecordFile, signal?: AbortSignal): Promise<void> {
    await out.write('start', this.start);
    const streams = await children(this.ctx, this.parts, signal);
    const perStream: { name: string; descs: Doc[]; external: ExternalKey[]; internalArrays: NodeMeta[]; partNames: string[] }[] = [];
    for (const s of streams) {
      if (s.structure_family !== 'container') continue;
      const descs = descriptorsOf(s.metadata, s.id, this.uid);
      const parts = await children(this.ctx, [...this.parts, s.id], signal);
      const dataKeys = (s.metadata.data_keys as Doc) ?? {};
      const external: ExternalKey[] = [];
      const internalArrays: NodeMeta[] = [];
      const events = Number(((s.metadata as Doc).num_events as number | undefined) ?? NaN);
      for (const p of parts) {
        if (p.id === 'internal') continue;
        const dk = dataKeys[p.id];
        if (!(isPlainDoc(dk) && dk.external)) {
          // An array of more than 16 elements per event, in an array node of its own.
          internalArrays.push(p);
          continue;
        }
        const nodePath = [...this.parts, s.id, p.id];
        const node = nodeOf(await getPy(this.ctx, `/metadata/${encodePath(nodePath)}?include_data_sources=true`, signal));
        const n = node.data_sources?.[0]?.structure?.shape?.[0] ?? node.structure?.shape?.[0] ?? events;
        external.push(externalDocs(this.uid, String(descs[0]!.uid), p.id, node, Number(n), nodePath));
      }
      perStream.push({ name: s.id, descs, external, internalArrays, partNames: parts.map((p) => p.id) });
      for (const d of descs) await out.write('descriptor', d);
    }
    for (const s of perStream) {
      for (const x of s.external) {
        for (const r of x.resources) await out.write('resource', r);
        for (const d of x.datums) await out.write('datum', d);
        if (this.ctx.fetchAssets) await this.fetchAssets(x, signal);
      }
    }
    const byStream = new Map(perStream.map((s) => [s.name, s]));
    const addExternal = (stream: string, ev: Doc) => {
      const s = byStream.get(stream);
      if (!s?.external.length) return ev;
      const sn = Number(ev.seq_num);
      const data = { ...(ev.data as Doc) };
      const ts = { ...(ev.timestamps as Doc) };
      const filled: Doc = {};
      for (const x of s.external) {
        const id = x.datumFor(sn);
        if (id === undefined) continue;
        data[x.key] = id;
        // Tiled keeps no timestamp for external keys: the event's time stands in.
        ts[x.key] = ev.time!;
        filled[x.key] = false;
      }
      return { ...ev, data, timestamps: ts, filled };
    };
    if (this.ctx.jsonSeq) {
      await this.eventsFromJsonSeq(out, byStream, addExternal, signal);
      this.ctx.rebuilt.set(this.uid, 'json-seq exporter');
    } else {
      for (const s of perStream) {
        if (!s.partNames.includes('internal')) continue;
        await this.eventsFromTable(out, s.name, s.descs, await this.arrayColumns(s.name, s.internalArrays, signal), addExternal, signal);
      }
      this.ctx.rebuilt.set(this.uid, 'tables');
    }
    if (this.stop) await out.write('stop', this.stop);
  }

  /** Descriptors come from our own rebuild; of the exporter's records only the events are used. */
  private async eventsFromJsonSeq(out: RecordFile, byStream: Map<string, { descs: Doc[] }>, addExternal: (stream: string, ev: Doc) => Doc, signal?: AbortSignal): Promise<void> {
    const streamOf = new Map<string, string>();
    for (const [name, s] of byStream) for (const d of s.descs) streamOf.set(String(d.uid), name);
    const url = `${this.ctx.api}/container/full/${encodePath(this.parts)}?format=application/json-seq`;
    let rest = '';
    const handle = async (line: string) => {
      // RFC 7464 records start with RS (0x1e); older exporters write plain lines.
      const text = line.replace(/^\x1e/, '').trim();
      if (!text) return;
      const rec = parsePyJson(text);
      if (!isPlainDoc(rec) || !isPlainDoc(rec.doc)) throw new PackStreamError('E_CORRUPT', `${this.location}: a json-seq record is not {name, doc}`, { subject: this.location });
      if (rec.name !== 'event') return;
      const stream = streamOf.get(String(rec.doc.descriptor));
      await out.write('event', stream ? addExternal(stream, rec.doc) : rec.doc);
    };
    const decoder = new TextDecoder();
    for await (const chunk of this.ctx.http.stream(url, { headers: { accept: 'application/json-seq' }, ...(signal ? { signal } : {}) })) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split(/[\n\x1e]/);
      rest = lines.pop()!;
      for (const l of lines) await handle(l);
    }
    await handle(rest + decoder.decode());
  }

  /**
   * Internal arrays kept in array nodes of their own (the json-seq exporter merges
   * them into its events; the table path reads them here): the node's bytes
   * (`application/octet-stream`, C order) split into one `tolist()` value per row.
   */
  private async arrayColumns(stream: string, nodes: NodeMeta[], signal?: AbortSignal): Promise<Map<string, Value[]>> {
    const out = new Map<string, Value[]>();
    for (const node of nodes) {
      const nodePath = [...this.parts, stream, node.id];
      const st = node.structure as { shape: number[]; data_type: { endianness: string; kind: string; itemsize: number } } | null | undefined;
      if (!st?.data_type || !Array.isArray(st.shape) || st.shape.length === 0) {
        throw new PackStreamError('E_UNSUPPORTED', `run ${this.uid}: array node ${stream}/${node.id} has no plain array structure`, { subject: this.uid });
      }
      const order = st.data_type.endianness === 'big' ? '>' : st.data_type.endianness === 'little' ? '<' : '|';
      const dtype = `${order}${st.data_type.kind}${st.data_type.itemsize}`;
      const bytes = await this.ctx.http.getBuffer(`${this.ctx.api}/array/full/${encodePath(nodePath)}?format=application/octet-stream`, { headers: { accept: 'application/octet-stream' }, maxBytes: 2 ** 31, ...(signal ? { signal } : {}) });
      const [rows, ...rest] = st.shape;
      const rowBytes = rest.reduce((a, b) => a * b, 1) * st.data_type.itemsize;
      if (bytes.length !== rows! * rowBytes) {
        throw new PackStreamError('E_HTTP', `run ${this.uid}: array node ${stream}/${node.id} sent ${bytes.length} bytes, its shape needs ${rows! * rowBytes}`, { subject: this.uid });
      }
      const values: Value[] = [];
      for (let i = 0; i < rows!; i++) values.push(new NdArray(dtype, rest, Buffer.from(bytes.subarray(i * rowBytes, (i + 1) * rowBytes))).toJsonValue());
      out.set(node.id, values);
    }
    return out;
  }

  private async eventsFromTable(out: RecordFile, stream: string, descs: Doc[], arrays: Map<string, Value[]>, addExternal: (stream: string, ev: Doc) => Doc, signal?: AbortSignal): Promise<void> {
    const url = `${this.ctx.api}/table/full/${encodePath([...this.parts, stream, 'internal'])}?format=application/vnd.apache.arrow.file`;
    const bytes = await this.ctx.http.getBuffer(url, { headers: { accept: 'application/vnd.apache.arrow.file' }, maxBytes: 2 ** 31, ...(signal ? { signal } : {}) });
    let index = 0;
    for (const row of readArrowRows(bytes)) {
      const sn = Number(row.get('seq_num'));
      const time = row.get('time') as Value;
      let desc = descs[0]!;
      for (const d of descs.slice(1)) if (Number(d.time) <= Number(time)) desc = d;
      const data: Doc = {};
      const ts: Doc = {};
      for (const [k, v] of row) {
        if (k === 'seq_num' || k === 'time' || k.startsWith('ts_') || k.startsWith('__index_level_')) continue;
        data[k] = v;
        ts[k] = row.get(`ts_${k}`) ?? time;
      }
      // Rows of an array node follow the table's rows (seq_num order), as the exporter assumes.
      for (const [k, col] of arrays) {
        data[k] = col[index] ?? null;
        ts[k] = row.get(`ts_${k}`) ?? time;
      }
      index++;
      await out.write('event', addExternal(stream, { seq_num: sn, time: typeof time === 'number' ? pyFloat(time) : time, uid: `event-${String(desc.uid)}-${sn}`, descriptor: desc.uid!, data, timestamps: ts }));
    }
  }

  /** Download a key's files into the work folder (Range resume, size check), and map their roots there. */
  private async fetchAssets(x: ExternalKey, signal?: AbortSignal): Promise<void> {
    const nodeUrl = (id: number) => `${this.ctx.api}/asset/bytes/${encodePath(x.nodePath)}?id=${id}`;
    await Promise.all(
      x.assets.map((a) => this.ctx.limit(async () => {
        let local = this.ctx.rootMap[a.root];
        if (!local) {
          local = path.join(this.ctx.workDir, 'files', String(Object.keys(this.ctx.rootMap).length));
          this.ctx.rootMap[a.root] = local;
        }
        const target = path.join(local, path.posix.relative(a.root, a.file));
        try {
          await this.ctx.http.download(nodeUrl(a.asset.id), target, { ...(a.asset.size ? { expectedSize: a.asset.size } : {}), ...(signal ? { signal } : {}) });
        } catch (e) {
          if (e instanceof PackStreamError && e.code === 'E_AUTH') {
            throw new PackStreamError('E_AUTH', `run ${this.uid}: the server refuses to hand out the file ${a.file} of ${x.key} (raw assets not exposed, or no access)`, { subject: this.uid, cause: e });
          }
          throw e;
        }
      })),
    );
  }

  records(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    const self = this;
    return (async function* () {
      const file = await self.local(opts.signal);
      yield* readMsgpackRecords(file, opts);
    })();
  }

  /** Start fetching now (the catalog does this for the next runs while one is written); errors surface in documents(). */
  prefetch(): void {
    this.local().catch(() => {});
  }

  documents(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    const self = this;
    return (async function* () {
      const file = await self.local(opts.signal);
      try {
        yield* canonicalDocuments((o) => readMsgpackRecords(file, o), { ...opts, location: self.location });
      } finally {
        // The local copy has served; a later call fetches again.
        self.fetched = null;
        await rm(file, { force: true });
      }
    })();
  }
}
