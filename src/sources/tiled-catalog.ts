/**
 * A Tiled server (or a node below its root) as a Catalog of Bluesky runs.
 *
 * SOURCE is written as Tiled's Python `from_uri` takes it: the server
 * (`http://host:8000`), its API (`http://host:8000/api/v1`), or a node
 * (`http://host:8000/api/v1/metadata/raw`); `tiled+http(s)://` says it is Tiled
 * without asking. The API key (`--api-key`, `TILED_API_KEY`) travels in the
 * `Authorization: Apikey …` header and never appears in a message.
 *
 * Listing pages through `GET /api/v1/search/{node}`. A query is split: the
 * parts Tiled can express (`$eq`/plain values, `$ne`, `$gt/$gte/$lt/$lte`,
 * `$in`, `$nin`, `TimeRange`, `$text`) become Tiled filters on `start.<key>` as
 * bluesky-tiled-plugins' client writes them; the rest is matched against each
 * start document here. Lookups follow databroker's `catalog[key]` rules.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { parsePyJson, stringifyPyJson } from '../codec/pyjson.js';
import { isPlainDoc, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { HttpClient, safeUrl, type HttpClientOptions } from '../net/http.js';
import { matchQuery } from '../transforms/query.js';
import type { Catalog, RunRef } from '../types.js';
import { resolveKey } from './file-catalog.js';
import { encodePath, TiledRun, type TiledContext } from './tiled-run.js';

export interface TiledOptions {
  apiKey?: string;
  /** What the export does with external files: copy and fill need them downloaded. */
  external?: 'manifest' | 'copy' | 'fill' | 'ignore';
  /** Downloads in flight. */
  concurrency?: number;
  http?: HttpClientOptions;
}

/** `tiled+http(s)://` (forced) or `http(s)://`. */
export function isTiledUri(s: string): boolean {
  return /^tiled\+https?:\/\//i.test(s);
}

/** Split a from_uri-style URI into the API base and the node path. */
export function parseTiledUri(uri: string): { api: string; parts: string[] } {
  const u = new URL(uri.replace(/^tiled\+/i, ''));
  const p = u.pathname;
  let api: string;
  let node = '';
  const m = p.indexOf('/metadata');
  if (m >= 0) {
    api = p.slice(0, m);
    node = p.slice(m + '/metadata'.length);
  } else if (!p.includes('/api')) {
    api = `${p.replace(/\/$/, '')}/api/v1`;
  } else if (!p.includes('/v1')) {
    api = `${p.replace(/\/$/, '')}/v1`;
  } else {
    api = p.replace(/\/$/, '');
  }
  const parts = node.split('/').filter(Boolean).map(decodeURIComponent);
  return { api: `${u.protocol}//${u.host}${api}`, parts };
}

/** Tiled answers `GET /api/v1/` (no key needed) with its description. */
export async function probeTiled(uri: string, http = new HttpClient({ retry: { retries: 1 } })): Promise<Doc | null> {
  const { api } = parseTiledUri(uri);
  try {
    const v = parsePyJson(await http.getText(`${api}/`, { headers: { accept: 'application/json' }, maxBytes: 1 << 22 }));
    return isPlainDoc(v) && 'api_version' in v && 'library_version' in v && isPlainDoc(v.formats) ? v : null;
  } catch {
    return null;
  }
}

const OPS: Record<string, [string, string?]> = {
  $eq: ['eq'],
  $ne: ['noteq'],
  $gt: ['comparison', 'gt'],
  $gte: ['comparison', 'ge'],
  $lt: ['comparison', 'lt'],
  $lte: ['comparison', 'le'],
  $in: ['in'],
  $nin: ['notin'],
};

/**
 * A query as Tiled filter parameters plus what is left to match here.
 * Exported for tests.
 */
export function translateQuery(query: Doc | undefined): { params: [string, string][]; local: Doc | null } {
  const params: [string, string][] = [];
  const local: Doc[] = [];
  const json = (v: Value) => stringifyPyJson(v);
  const key = (k: string) => (/^(start|stop)\./.test(k) ? k : `start.${k}`);
  const add = (type: string, cond: [string, string][]) => {
    for (const [k, v] of cond) params.push([`filter[${type}][condition][${k}]`, v]);
  };
  const walk = (q: Doc) => {
    for (const [k, v] of Object.entries(q)) {
      if (k === '$and' && Array.isArray(v)) {
        for (const sub of v) if (isPlainDoc(sub)) walk(sub);
        else local.push({ [k]: [sub] } as Doc);
        continue;
      }
      if (k === '$text' && isPlainDoc(v) && typeof v.$search === 'string') {
        add('fulltext', [['text', v.$search]]);
        continue;
      }
      if (k.startsWith('$')) {
        local.push({ [k]: v } as Doc);
        continue;
      }
      if (isPlainDoc(v) && Object.keys(v).some((o) => o.startsWith('$'))) {
        const ops = Object.entries(v);
        if (!ops.every(([o, x]) => o in OPS && (!(o === '$in' || o === '$nin') || Array.isArray(x)))) {
          local.push({ [k]: v } as Doc);
          continue;
        }
        for (const [o, x] of ops) {
          const [type, op] = OPS[o]!;
          if (type === 'comparison') add(type, [['operator', op!], ['key', key(k)], ['value', json(x)]]);
          else add(type, [['key', key(k)], ['value', json(x)]]);
        }
        continue;
      }
      add('eq', [['key', key(k)], ['value', json(v)]]);
    }
  };
  if (query) walk(query);
  return { params, local: local.length === 0 ? null : local.length === 1 ? local[0]! : { $and: local } };
}

function qs(params: [string, string][]): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

/** Runs fetched ahead of the one being written. */
const PREFETCH = 3;

interface Entry {
  id: string;
  attributes: { specs?: { name: string; version: string | null }[]; metadata?: Doc };
}

export class TiledCatalog implements Catalog {
  readonly description: string;
  readonly rootMap: Record<string, string> = {};
  readonly queriesOnServer = true;
  readonly remoteFiles: boolean;
  private readonly ctx: TiledContext;
  private readonly parts: string[];
  private workDir: string | null = null;

  private constructor(uri: string, api: string, parts: string[], jsonSeq: boolean, http: HttpClient, workDir: string, opts: TiledOptions) {
    this.description = safeUrl(uri.replace(/^tiled\+/i, ''));
    this.parts = parts;
    this.workDir = workDir;
    const fetchAssets = opts.external === 'copy' || opts.external === 'fill';
    this.remoteFiles = !fetchAssets;
    this.ctx = { http, api, jsonSeq, fetchAssets, workDir, rootMap: this.rootMap, rebuilt: new Map(), limit: pLimit(Math.max(1, opts.concurrency ?? 4)) };
  }

  /** Connect: ask the server what it is, and check the key with one authenticated request. */
  static async open(uri: string, opts: TiledOptions = {}): Promise<TiledCatalog> {
    const { api, parts } = parseTiledUri(uri);
    const headers: Record<string, string> = { ...opts.http?.headers };
    if (opts.apiKey) headers.authorization = `Apikey ${opts.apiKey}`;
    const http = new HttpClient({ ...opts.http, headers });
    const where = safeUrl(uri.replace(/^tiled\+/i, ''));
    const about = await probeTiled(uri, http);
    if (!about) {
      await http.close();
      throw new PackStreamError('E_NO_SOURCE', `${where} is not a Tiled server (GET ${safeUrl(`${api}/`)} did not answer with Tiled's description)`, { subject: where });
    }
    const formats = about.formats as Doc;
    const jsonSeq = Array.isArray(formats.BlueskyRun) && formats.BlueskyRun.includes('application/json-seq');
    try {
      await http.getText(`${api}/metadata/${encodePath(parts)}`, { headers: { accept: 'application/json' } });
    } catch (e) {
      await http.close();
      throw authError(e, where, Boolean(opts.apiKey));
    }
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'pack-stream-tiled-'));
    return new TiledCatalog(uri, api, parts, jsonSeq, http, workDir, opts);
  }

  private run(e: Entry): TiledRun {
    const meta = e.attributes.metadata ?? {};
    const start = (meta.start as Doc) ?? {};
    return new TiledRun(this.ctx, [...this.parts, e.id], typeof start.uid === 'string' ? start.uid : e.id, start, e.attributes.specs ?? [], isPlainDoc(meta.stop) ? meta.stop : undefined);
  }

  /** One page of children matching `params`: the runs among them, how many children came, and the total. */
  private async page(params: [string, string][], offset: number, limit: number, signal?: AbortSignal): Promise<{ entries: Entry[]; ids: string[]; got: number; count: number }> {
    const q = qs([['page[offset]', String(offset)], ['page[limit]', String(limit)], ['fields', 'metadata'], ['fields', 'specs'], ...params]);
    const url = `${this.ctx.api}/search/${encodePath(this.parts)}?${q}`;
    let text: string;
    try {
      text = await this.ctx.http.getText(url, { headers: { accept: 'application/json' }, maxBytes: 64 << 20, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (e instanceof PackStreamError && e.code === 'E_HTTP' && /HTTP 400/.test(e.message)) {
        throw new PackStreamError('E_BAD_QUERY', `${this.description} refused the search (HTTP 400): the query uses a filter this server does not support`, { subject: this.description, cause: e });
      }
      throw authError(e, this.description, true);
    }
    // The answer is input from a stranger: its shape is checked before anything is read from it.
    const notPage = (why: string) => new PackStreamError('E_HTTP', `${this.description}: the answer to a search (offset ${offset}) is not a Tiled search page: ${why}`, { subject: this.description });
    let body: Value;
    try {
      body = parsePyJson(text);
    } catch (e) {
      throw notPage(`not JSON (${(e as Error).message})`);
    }
    if (!isPlainDoc(body)) throw notPage('not an object');
    const raw = body.data ?? [];
    if (!Array.isArray(raw)) throw notPage("'data' is not a list");
    for (const e of raw) {
      if (!isPlainDoc(e) || typeof e.id !== 'string' || !isPlainDoc(e.attributes)) throw notPage("an entry without a string 'id' and an 'attributes' object");
      const a = e.attributes;
      if (a.specs !== undefined && a.specs !== null && !(Array.isArray(a.specs) && a.specs.every((x) => isPlainDoc(x)))) throw notPage(`entry ${JSON.stringify(e.id.slice(0, 100))} has malformed 'specs'`);
      if (a.metadata !== undefined && a.metadata !== null && !isPlainDoc(a.metadata)) throw notPage(`entry ${JSON.stringify(e.id.slice(0, 100))} has malformed 'metadata'`);
    }
    const list = raw as unknown as Entry[];
    const entries = list.filter((e) => (e.attributes.specs ?? []).some((s) => s.name === 'BlueskyRun'));
    const count = Number((body.meta as Doc | null | undefined)?.count ?? offset + list.length);
    return { entries, ids: list.map((e) => e.id), got: list.length, count: Number.isFinite(count) ? count : offset + list.length };
  }

  private async *entries(params: [string, string][], signal?: AbortSignal): AsyncGenerator<Entry> {
    // A server whose paging hands out entries it already gave (a loop, or offsets ignored) would
    // otherwise be read forever: ids are remembered and a page of nothing new ends it, with an error.
    const seen = new Set<string>();
    for (let offset = 0; ; ) {
      const body = await this.page(params, offset, 100, signal);
      const before = seen.size;
      for (const e of body.entries) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        yield e;
      }
      for (const id of body.ids) seen.add(id);
      offset += body.got;
      if (body.got === 0 || offset >= body.count) return;
      if (seen.size === before) {
        throw new PackStreamError('E_HTTP', `${this.description}: the search at offset ${offset - body.got} returned only entries it had returned before; its paging loops, so the listing stops here`, { subject: this.description });
      }
    }
  }

  /**
   * Runs in the server's order. The next PREFETCH runs are fetched while one is
   * being written: a run costs several round trips to the server, and the
   * latency, not the bandwidth, is what limits packing from Tiled.
   */
  async *runs(opts: { query?: Doc; signal?: AbortSignal } = {}): AsyncGenerator<RunRef> {
    const { params, local } = translateQuery(opts.query);
    const ahead: TiledRun[] = [];
    const it = this.entries(params, opts.signal);
    let done = false;
    const fill = async () => {
      while (!done && ahead.length < PREFETCH + 1) {
        const n = await it.next();
        if (n.done) {
          done = true;
          break;
        }
        const run = this.run(n.value);
        if (local && !matchQuery(local, run.start)) continue;
        if (ahead.length > 0) run.prefetch();
        ahead.push(run);
      }
    };
    for (;;) {
      await fill();
      const run = ahead.shift();
      if (!run) return;
      yield run;
    }
  }

  /** databroker's `catalog[key]`: full uid, unique prefix, scan_id (newest wins), negative index. */
  async lookup(key: string, opts: { query?: Doc } = {}): Promise<RunRef> {
    const trimmed = key.trim();
    const extra = translateQuery(opts.query);
    const collect = async (params: [string, string][]) => {
      const out: { run: RunRef; uid: string; scanId: Value | undefined; time: number }[] = [];
      for await (const e of this.entries([...params, ...extra.params])) {
        const run = this.run(e);
        if (extra.local && !matchQuery(extra.local, run.start)) continue;
        out.push({ run, uid: run.uid, scanId: run.start.scan_id, time: toNumber(run.start.time) ?? 0 });
      }
      return out;
    };
    if (/^[-+]?\d+(?:_\d+)*$/.test(trimmed)) {
      const n = Number(trimmed.replace(/_/g, ''));
      // scan_id: only the runs with it; a negative index needs every run's time.
      const idx = n >= 0 ? await collect(translateQuery({ scan_id: n }).params) : await collect([]);
      return resolveKey(trimmed, idx).run;
    }
    let idx = await collect(translateQuery({ uid: key }).params);
    if (idx.length === 0) {
      // `_` and `%` in the key widen the pattern; resolveKey keeps only true prefixes.
      try {
        idx = await collect([['filter[like][condition][key]', 'start.uid'], ['filter[like][condition][pattern]', stringifyPyJson(`${key}%`)]]);
      } catch (e) {
        if (!(e instanceof PackStreamError && e.code === 'E_BAD_QUERY')) throw e;
        // Mongo-backed catalogs have databroker's partial_uid filter instead of `like`.
        idx = await collect([['filter[partial_uid][condition][partial_uids]', key]]);
      }
    }
    return resolveKey(key, idx).run;
  }

  packMetadata(): Record<string, unknown> {
    const rebuilt = Object.fromEntries(this.ctx.rebuilt);
    return Object.keys(rebuilt).length ? { tiled: { source: this.description, rebuilt_runs: rebuilt } } : { tiled: { source: this.description } };
  }

  async close(): Promise<void> {
    await this.ctx.http.close();
    if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
    this.workDir = null;
  }
}

/** A refused key as one line that says where to put the key (never the key itself). */
function authError(e: unknown, where: string, hadKey: boolean): unknown {
  if (e instanceof PackStreamError && e.code === 'E_AUTH') {
    return new PackStreamError('E_AUTH', `${where}: the Tiled server refused ${hadKey ? 'the API key' : 'access without an API key'}; check --api-key or TILED_API_KEY`, { subject: where, cause: e });
  }
  return e;
}
