/**
 * MongoDB connection helpers shared by the Mongo source and sink: the
 * database a URI names, one client per URI, what kind of server it is, and
 * which errors mean "the server or the cursor went away" (so a reader can
 * resume from its last key, and a writer can stop instead of failing run after
 * run).
 */
import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError, type Db } from 'mongodb';
import { PackStreamError } from '../errors.js';

export const MONGO_URI = /^mongodb(?:\+srv)?:\/\//i;

export function isMongoUri(s: string): boolean {
  return MONGO_URI.test(s);
}

/** The database named in the path of a `mongodb://` URI, or '' if none. */
export function databaseOfUri(uri: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/[^/?#]*(?:\/([^?#]*))?/i.exec(uri);
  if (!m) throw new PackStreamError('E_USAGE', `not a MongoDB URI: ${hidePassword(uri)}`, { subject: hidePassword(uri) });
  try {
    return decodeURIComponent(m[1] ?? '');
  } catch {
    return m[1] ?? '';
  }
}

/** A MongoDB URI without its password, for messages. */
export function hidePassword(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** Fail unless the URI names a database (databroker and suitcase both require one). */
export function requireDatabase(uri: string): string {
  const db = databaseOfUri(uri);
  if (db === '') {
    throw new PackStreamError('E_USAGE', `the MongoDB URI ${hidePassword(uri)} must name a database, e.g. mongodb://localhost:27017/mydb`, { subject: hidePassword(uri) });
  }
  return db;
}

let mongoWaitNotice: ((message: string) => void) | undefined;

/** Where "waiting for MongoDB at HOST..." goes (the CLI sends it to stderr); nowhere by default. */
export function setMongoWaitNotice(fn: ((message: string) => void) | undefined): void {
  mongoWaitNotice = fn;
}

/** The host list of a URI (`host:port[,host:port]`), without credentials or database. */
export function hostsOfUri(uri: string): string {
  const rest = uri.replace(MONGO_URI, '');
  const hosts = rest.split(/[/?]/)[0] ?? '';
  return hosts.slice(hosts.lastIndexOf('@') + 1);
}

/**
 * Connect to a URI and return its database; the caller closes the client.
 * A server that cannot be reached now is an error at once (after the driver's
 * server selection timeout, 30 s unless the URI sets `serverSelectionTimeoutMS`):
 * retrying is for servers that go away in the middle of the work.
 */
export async function connectDatabase(uri: string): Promise<{ client: MongoClient; db: Db }> {
  const name = requireDatabase(uri);
  let client: MongoClient;
  try {
    client = new MongoClient(uri);
  } catch (e) {
    throw new PackStreamError('E_USAGE', `bad MongoDB URI ${hidePassword(uri)}: ${(e as Error).message}`, { subject: hidePassword(uri), cause: e });
  }
  // A server that does not answer within 2 s is said to be waited for, so a silent command is not taken for a hang.
  const notice = setTimeout(() => mongoWaitNotice?.(`waiting for MongoDB at ${hostsOfUri(uri)}...`), 2000);
  try {
    await client.connect();
  } catch (e) {
    await client.close().catch(() => {});
    throw new PackStreamError('E_IO', `cannot connect to MongoDB at ${hidePassword(uri)}: ${(e as Error).message}`, { subject: hidePassword(uri), cause: e });
  } finally {
    clearTimeout(notice);
  }
  return { client, db: client.db(name) };
}

/** FerretDB reports its version in buildInfo; it lacks NaN, ±Infinity, '.'/'$' keys and text indexes. */
export async function isFerretDb(db: Db): Promise<boolean> {
  try {
    const info = await db.command({ buildInfo: 1 });
    return typeof info.ferretdbVersion === 'string' || typeof info.ferretdb === 'object';
  } catch {
    return false;
  }
}

/** Server error codes after which a query can be re-issued from its last key. */
const RESUMABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  43, // CursorNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  175, // QueryPlanKilled
  189, // PrimarySteppedDown
  206, // NoSuchSession
  237, // CursorKilled
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** The server, the connection or the cursor went away: worth retrying from the last key. */
export function isResumable(e: unknown): boolean {
  if (e instanceof MongoNetworkError || e instanceof MongoServerSelectionError) return true;
  if (e instanceof MongoServerError && typeof e.code === 'number' && RESUMABLE_CODES.has(e.code)) return true;
  return e instanceof Error && /cursor (id \d+ )?not found|cursor.*(killed|expired)/i.test(e.message);
}

/** The server cannot be reached at all (as opposed to refusing one document). */
export function isConnectionError(e: unknown): boolean {
  return e instanceof MongoNetworkError || e instanceof MongoServerSelectionError;
}

/** A Mongo error as a PackStreamError with a useful code. */
export function mongoError(e: unknown, what: string): PackStreamError {
  if (e instanceof PackStreamError) return e;
  const msg = (e as Error)?.message ?? String(e);
  if (isConnectionError(e)) return new PackStreamError('E_IO', `${what}: MongoDB is unreachable: ${msg}`, { subject: what, cause: e });
  return new PackStreamError('E_IO', `${what}: ${msg}`, { subject: what, cause: e });
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** A failed write that may be sent again: the server or the connection went away. */
export function isRetryableWrite(e: unknown): boolean {
  if (isResumable(e)) return true;
  const w = e as { writeErrors?: unknown[]; name?: string; message?: string };
  return w?.name === 'MongoBulkWriteError' && (w.writeErrors?.length ?? 0) === 0 && /connection|closed|ECONN|socket|timed out/i.test(w.message ?? '');
}

/**
 * Run `fn`, again and again while the server is unreachable, for up to
 * `retryMs` (default 2 min). Only for operations that are safe to repeat.
 * Other errors are rethrown as they are, for the caller to inspect.
 */
export async function withRetry<T>(fn: () => Promise<T>, what: string, opts: { retryMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  const retryMs = opts.retryMs ?? 120_000;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn();
    } catch (e) {
      if (!isRetryableWrite(e)) throw e;
      if (Date.now() - started > retryMs) throw mongoError(e, what);
      await sleep(Math.min(100 * 2 ** attempt, 5000), opts.signal);
    }
  }
}
