/**
 * One HTTP(S) client for everything pack-stream reads over the network (packs
 * served by a static file server or an object store, Tiled): GET with extra
 * headers, bodies as streams, JSON and text, bounded retries with exponential
 * back-off, and downloads that resume a broken body with a `Range` request and
 * check the final size.
 *
 * Headers given here (credentials) are never part of a message: errors name
 * the URL only, with any user:password removed.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { PackStreamError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts after the first (default 5). */
  retries: number;
  /** First wait; doubled each time (default 200 ms). */
  backoffMs: number;
  /** Longest wait between attempts (default 5 s). */
  maxBackoffMs: number;
}

export interface HttpClientOptions {
  /** Sent with every request (e.g. Authorization); never printed. */
  headers?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  /** No response headers, or no body bytes, for this long counts as a failed attempt (default 30 s). */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Told about each retry (for progress lines and tests). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  url: string;
  attempt: number;
  /** Bytes already received that the next attempt asks to skip with `Range` (0 if none). */
  resumeFrom: number;
  reason: string;
}

export interface GetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Start at this byte (a `Range` request). */
  start?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The size of the whole resource when the server says it (Content-Length, or the total of Content-Range). */
  totalSize: number | undefined;
  /** The byte the body starts at (from Content-Range; 0 for a full response). */
  start: number;
}

/** `Name: value` (as curl's -H) → [name, value]. */
export function parseHeader(line: string): [string, string] {
  const i = line.indexOf(':');
  if (i <= 0) throw new PackStreamError('E_USAGE', `a header must look like 'Name: value' (the value is not shown here)`);
  const name = line.slice(0, i).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new PackStreamError('E_USAGE', `'${name}' is not a valid header name`);
  return [name, line.slice(i + 1).trim()];
}

/** Headers from repeated `--header 'Name: value'` options. */
export function parseHeaders(lines: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const [k, v] = parseHeader(l);
    out[k] = v;
  }
  return out;
}

/** A URL fit for messages: no user:password, no query string (signed URLs carry secrets there). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    if (u.search) u.search = '?…';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function statusError(url: string, status: number): PackStreamError {
  const where = safeUrl(url);
  if (status === 401 || status === 403) return new PackStreamError('E_AUTH', `${where}: the server refused access (HTTP ${status}); check --header`, { subject: where });
  if (status === 404) return new PackStreamError('E_HTTP', `${where}: not found (HTTP 404)`, { subject: where });
  return new PackStreamError('E_HTTP', `${where}: the server answered HTTP ${status}`, { subject: where });
}

/** Worth another attempt: the server was busy or failing, or the connection broke. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** A back-off wait that an abort ends early. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {});
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export class HttpClient {
  readonly policy: RetryPolicy;
  private readonly dispatcher: Dispatcher;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  /** Attempts repeated after a failure, and of those, bodies resumed with `Range`. */
  readonly stats = { requests: 0, retries: 0, resumes: 0, bytes: 0 };

  constructor(private readonly opts: HttpClientOptions = {}) {
    this.policy = { retries: 5, backoffMs: 200, maxBackoffMs: 5000, ...opts.retry };
    this.headers = { ...opts.headers };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    // Credentials are not sent on to another origin by a redirect.
    this.dispatcher =
      opts.dispatcher ??
      new Agent({ connections: 16 }).compose(
        interceptors.redirect({ maxRedirections: 5, stripHeadersOnCrossOriginRedirect: ['authorization', 'cookie', 'proxy-authorization'] }),
      );
  }

  private backoff(attempt: number): number {
    return Math.min(this.policy.maxBackoffMs, this.policy.backoffMs * 2 ** (attempt - 1));
  }

  private retried(url: string, attempt: number, resumeFrom: number, reason: string): void {
    this.stats.retries++;
    if (resumeFrom > 0) this.stats.resumes++;
    this.opts.onRetry?.({ url: safeUrl(url), attempt, resumeFrom, reason });
  }

  /** One GET, no retries: a 2xx response with its body, or an error (status errors are PackStreamErrors). */
  async getOnce(url: string, opts: GetOptions = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...this.headers, ...opts.headers };
    const start = opts.start ?? 0;
    if (start > 0) headers['range'] = `bytes=${start}-`;
    this.stats.requests++;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new PackStreamError('E_NETWORK', `${safeUrl(url)}: ${(e as Error).message}`, { subject: safeUrl(url), cause: e });
    }
    if (res.statusCode === 416 && start > 0) {
      // Nothing left after `start`: an empty rest.
      discard(res.body);
      return { status: 206, headers: res.headers, body: emptyBody(), totalSize: start, start };
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      discard(res.body);
      throw statusError(url, res.statusCode);
    }
    let totalSize: number | undefined;
    let bodyStart = 0;
    const range = header(res.headers, 'content-range');
    const length = header(res.headers, 'content-length');
    if (res.statusCode === 206 && range) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range.trim());
      if (!m) {
        discard(res.body);
        throw new PackStreamError('E_HTTP', `${safeUrl(url)}: cannot read Content-Range '${range}'`, { subject: safeUrl(url) });
      }
      bodyStart = Number(m[1]);
      if (m[3] !== '*') totalSize = Number(m[3]);
    } else if (length !== undefined && !header(res.headers, 'content-encoding')) {
      totalSize = Number(length);
    }
    return { status: res.statusCode, headers: res.headers, body: res.body, totalSize, start: bodyStart };
  }

  /** GET with retries for the response head (not the body): a failed status or connection is tried again after a back-off. */
  async get(url: string, opts: GetOptions = {}): Promise<HttpResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.getOnce(url, opts);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const retry = e instanceof PackStreamError && (e.code === 'E_NETWORK' || (e.code === 'E_HTTP' && retryableStatus(Number(/HTTP (\d+)/.exec(e.message)?.[1]))));
        if (!retry || attempt > this.policy.retries) throw e;
        this.retried(url, attempt, opts.start ?? 0, (e as Error).message);
        await sleep(this.backoff(attempt), opts.signal);
      }
    }
  }

  /**
   * The body of `url` as a stream of chunks that survives broken connections:
   * after a drop the rest is asked for with `Range: bytes=N-` (N = bytes
   * already passed on), up to the retry bound; the total is checked against
   * the size the server announced, or `expectedSize` when given.
   */
  async *stream(url: string, opts: GetOptions & { expectedSize?: number } = {}): AsyncGenerator<Buffer> {
    let offset = opts.start ?? 0;
    let total = opts.expectedSize;
    let attempt = 0;
    for (;;) {
      const res = await this.get(url, { ...opts, start: offset });
      if (res.totalSize !== undefined) {
        if (total !== undefined && res.totalSize !== total) {
          discard(res.body);
          throw new PackStreamError('E_NETWORK', `${safeUrl(url)}: the server has ${res.totalSize} bytes, expected ${total}`, { subject: safeUrl(url) });
        }
        total = res.totalSize;
      }
      // A server that ignores Range sends the whole body again: skip what we have.
      let skip = offset - res.start;
      try {
        for await (const chunk of res.body) {
          let c = chunk;
          if (skip > 0) {
            if (c.length <= skip) {
              skip -= c.length;
              continue;
            }
            c = c.subarray(skip);
            skip = 0;
          }
          offset += c.length;
          this.stats.bytes += c.length;
          yield c;
        }
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        attempt++;
        if (attempt > this.policy.retries) {
          throw new PackStreamError('E_NETWORK', `${safeUrl(url)}: the connection broke ${attempt} times (last at byte ${offset}): ${(e as Error).message}`, { subject: safeUrl(url), cause: e });
        }
        this.retried(url, attempt, offset, (e as Error).message);
        await sleep(this.backoff(attempt), opts.signal);
        continue;
      }
      if (total !== undefined && offset < total) {
        // The body ended early without an error (a proxy cut it): resume as for a drop.
        attempt++;
        if (attempt > this.policy.retries) {
          throw new PackStreamError('E_NETWORK', `${safeUrl(url)}: ended at byte ${offset} of ${total} after ${attempt} attempts`, { subject: safeUrl(url) });
        }
        this.retried(url, attempt, offset, `body ended at byte ${offset} of ${total}`);
        await sleep(this.backoff(attempt), opts.signal);
        continue;
      }
      if (total !== undefined && offset !== total) {
        throw new PackStreamError('E_NETWORK', `${safeUrl(url)}: received ${offset} bytes, expected ${total}`, { subject: safeUrl(url) });
      }
      return;
    }
  }

  /** The whole body as bytes (for small files: manifests, catalog.yml, JSON). */
  async getBuffer(url: string, opts: GetOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    const max = opts.maxBytes ?? 64 * 1024 * 1024;
    for await (const c of this.stream(url, opts)) {
      n += c.length;
      if (n > max) throw new PackStreamError('E_LIMIT', `${safeUrl(url)}: more than ${max} bytes`, { subject: safeUrl(url) });
      parts.push(c);
    }
    return Buffer.concat(parts, n);
  }

  async getText(url: string, opts: GetOptions & { maxBytes?: number } = {}): Promise<string> {
    return (await this.getBuffer(url, opts)).toString('utf8');
  }

  async getJson<T = unknown>(url: string, opts: GetOptions & { maxBytes?: number } = {}): Promise<T> {
    const text = await this.getText(url, { ...opts, headers: { accept: 'application/json', ...opts.headers } });
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new PackStreamError('E_HTTP', `${safeUrl(url)}: the answer is not JSON: ${(e as Error).message}`, { subject: safeUrl(url), cause: e });
    }
  }

  /**
   * Download to `file` (via `file.partial`, renamed when whole), resuming
   * broken transfers by Range; returns the size. A size known in advance is
   * checked.
   */
  async download(url: string, file: string, opts: GetOptions & { expectedSize?: number } = {}): Promise<number> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.partial`;
    let n = 0;
    try {
      const out = createWriteStream(tmp, { flags: 'w' });
      const body = this.stream(url, opts);
      await pipeline(
        (async function* () {
          for await (const c of body) {
            n += c.length;
            yield c;
          }
        })(),
        out,
      );
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return n;
  }

  async close(): Promise<void> {
    if (!this.opts.dispatcher) await this.dispatcher.close();
  }
}

/** Drop a body we will not read (error status, wrong size), without an unhandled error event. */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

function emptyBody(): Readable {
  return Readable.from([]);
}

/** Resolve `rel` (a pack-relative POSIX path) against a base URL that names a directory. */
export function urlJoin(base: string, rel: string): string {
  const b = base.endsWith('/') ? base : `${base}/`;
  return new URL(rel.split('/').map(encodeURIComponent).join('/'), b).toString();
}
