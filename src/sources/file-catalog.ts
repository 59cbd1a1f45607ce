/**
 * A catalog of run files: one msgpack or JSONL file per run, found by globs,
 * as databroker's bluesky-msgpack-catalog and bluesky-jsonl-catalog read them.
 *
 * Listing a run reads only its first record (the start document). A file that
 * cannot be read still yields a RunRef, carrying the error, so an export can
 * record it as a failed run and go on with the others.
 */
import { glob, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { deepEqual, toNumber, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { canonicalDocuments } from '../transforms/canonical.js';
import { matchQuery, validateQuery } from '../transforms/query.js';
import type { Catalog, DocPair, Format, ReadOptions, RunRef } from '../types.js';
import { readJsonlRecords } from './jsonl-records.js';
import { readMsgpackRecords, readWholeRunFile } from './msgpack-records.js';

export function formatOfFile(file: string): Format | undefined {
  if (file.endsWith('.msgpack')) return 'msgpack';
  if (file.endsWith('.jsonl')) return 'jsonl';
  return undefined;
}

/** `whole`: the file's bytes when already read (readWholeRunFile), so the file is not read again. */
export function readRecords(file: string, format: Format, opts: ReadOptions = {}, whole?: Promise<Buffer | null>): AsyncGenerator<DocPair> {
  return format === 'msgpack' ? readMsgpackRecords(file, opts, whole) : readJsonlRecords(file, opts, whole);
}

/** A run whose file could not be opened or whose start could not be read. */
export interface BrokenRun extends RunRef {
  error: PackStreamError;
}

export function isBrokenRun(r: RunRef): r is BrokenRun {
  return (r as BrokenRun).error !== undefined;
}

export class FileRun implements RunRef {
  notes?: string[];
  constructor(
    readonly uid: string,
    readonly start: Doc,
    readonly location: string,
    readonly format: Format,
    /** The file's bytes when they were read whole to list it (a small file): every pass reads them. */
    private readonly bytes?: Buffer,
  ) {}
  records(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    return readRecords(this.location, this.format, opts);
  }
  /** Canonical order reads the file several times: a small one is read once, for all passes. */
  documents(opts: ReadOptions = {}): AsyncIterable<DocPair> {
    let whole: Promise<Buffer | null> | undefined = this.bytes ? Promise.resolve(this.bytes) : undefined;
    return canonicalDocuments((o) => readRecords(this.location, this.format, o, (whole ??= readWholeRunFile(this.location))), { ...opts, location: this.location });
  }
}

/** A run that cannot be read, from any source; its documents() throw its error. */
export class BrokenRunRef implements BrokenRun {
  constructor(
    readonly uid: string,
    readonly location: string,
    readonly error: PackStreamError,
    readonly start: Doc = {},
  ) {}
  records(): AsyncIterable<DocPair> {
    const err = this.error;
    return (async function* () {
      throw err;
    })();
  }
  documents(): AsyncIterable<DocPair> {
    return this.records();
  }
}

/**
 * Open one run file and read its start document; null for an empty file (skipped, as databroker does).
 * `whole`: read a small file whole (one open, one read) and keep its bytes for the run's passes.
 */
export async function openRunFile(file: string, format?: Format, opts: { whole?: boolean } = {}): Promise<RunRef | null> {
  const fmt = format ?? formatOfFile(file) ?? 'msgpack';
  const guess = path.basename(file).replace(/\.(msgpack|jsonl)$/, '');
  try {
    const bytes = opts.whole ? await readWholeRunFile(file) : null;
    if (bytes?.length === 0) return null;
    const it = readRecords(file, fmt, {}, bytes ? Promise.resolve(bytes) : undefined)[Symbol.asyncIterator]();
    let first;
    try {
      first = await it.next();
    } finally {
      await it.return?.(undefined);
    }
    if (first.done) return null;
    const { name, doc } = first.value;
    if (name !== 'start') {
      throw new PackStreamError('E_BAD_RUN', `${file}: the first document is a '${name}', not a 'start'`, { subject: file });
    }
    if (typeof doc.uid !== 'string') throw new PackStreamError('E_BAD_RUN', `${file}: the start document has no uid`, { subject: file });
    // A flat copy of the uid: kept (duplicate detection) long after the run, it must not pin the text it was cut from.
    return new FileRun(flatString(doc.uid), doc, file, fmt, bytes ?? undefined);
  } catch (e) {
    const err = e instanceof PackStreamError ? e : new PackStreamError('E_IO', `${file}: ${(e as Error).message}`, { subject: file, cause: e });
    return new BrokenRunRef(guess, file, err);
  }
}

/** A string that shares no storage with the one it was sliced from. */
function flatString(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

export interface FileCatalogOptions {
  /** Absolute glob patterns (or file paths). */
  patterns: string[];
  /** The format, when the driver says; otherwise taken from each file's extension. */
  format?: Format;
  rootMap?: Record<string, string>;
  description?: string;
  /** A query every run must match (the catalog's own `query` arg). */
  query?: Doc;
}

interface IndexEntry {
  uid: string;
  scanId: unknown;
  time: number;
  file: string;
  /** A run settled among several copies (with notes, or failed as E_DUPLICATE). */
  resolved?: RunRef;
}

export class FileCatalog implements Catalog {
  readonly description: string;
  readonly rootMap: Record<string, string>;
  private index: IndexEntry[] | null = null;

  constructor(private readonly opts: FileCatalogOptions) {
    this.description = opts.description ?? opts.patterns.join(', ');
    this.rootMap = opts.rootMap ?? {};
  }

  /** The run files, sorted so every listing is repeatable. */
  async files(): Promise<string[]> {
    // path -> known to be a regular file (from the directory entry), else to be checked
    const found = new Map<string, boolean>();
    for (const pattern of this.opts.patterns) {
      if (!/[*?[\]{}]/.test(pattern)) {
        if (!found.has(pattern)) found.set(pattern, false);
        continue;
      }
      for await (const d of glob(pattern, { withFileTypes: true })) {
        const f = path.resolve(d.parentPath, d.name);
        if (!found.get(f)) found.set(f, d.isFile());
      }
    }
    const out: string[] = [];
    for (const f of [...found.keys()].sort()) {
      if (found.get(f)) {
        out.push(f);
        continue;
      }
      try {
        if ((await stat(f)).isFile()) out.push(f);
      } catch {
        // a listed path that vanished, or an explicit file that never was
        out.push(f);
      }
    }
    return out;
  }

  /**
   * The runs, newest first by start time (ties and unreadable runs in file-name
   * order, unreadable ones last), as databroker lists Mongo catalogs and Tiled
   * lists runs. databroker's own file order is arbitrary; this one is the same in
   * every command, so `--limit N` takes the N newest. Holds one small entry per run.
   */
  async *runs(opts: { query?: Doc; signal?: AbortSignal } = {}): AsyncGenerator<RunRef> {
    yield* this.listRuns(opts, true);
  }

  /**
   * Newest first by start time (file name breaks ties), as databroker's Mongo
   * catalogs and Tiled list runs. One pass over the start documents keeps (file,
   * uid, time, match) per run; a run is reopened when yielded (`whole`: a small
   * file read whole then, for all its passes). A run several files claim is
   * settled once, at the first of them, and kept as settled.
   */
  private async *listRuns(opts: { query?: Doc; signal?: AbortSignal }, whole: boolean): AsyncGenerator<RunRef> {
    // A bad query (the catalog's own, from its YAML, or the caller's) fails the
    // listing before any run is read.
    if (this.opts.query) {
      try {
        validateQuery(this.opts.query);
      } catch (e) {
        if (!(e instanceof PackStreamError)) throw e;
        throw new PackStreamError(e.code, `catalog ${this.description}: its query: ${e.message}`, { subject: this.description, cause: e });
      }
    }
    if (opts.query) validateQuery(opts.query);
    type Listed = { file: string; uid: string; time: number; matches: boolean | RunRef };
    const listed: (Listed | RunRef)[] = [];
    const byUid = new Map<string, string[]>();
    const match = (run: RunRef): boolean | RunRef => {
      try {
        return (!this.opts.query || matchQuery(this.opts.query, run.start)) && (!opts.query || matchQuery(opts.query, run.start));
      } catch (e) {
        // A start document too deep to search fails its run, not the listing.
        if (!(e instanceof PackStreamError && e.code === 'E_LIMIT')) throw e;
        return new BrokenRunRef(run.uid, run.location, new PackStreamError('E_LIMIT', `${run.location}: the start document cannot be matched against the query: ${e.message}`, { subject: run.location, cause: e }));
      }
    };
    for (const file of await this.files()) {
      opts.signal?.throwIfAborted();
      const run = await openRunFile(file, this.formatOf(file));
      if (run === null) continue;
      if (isBrokenRun(run)) {
        listed.push(run);
        continue;
      }
      listed.push({ file, uid: run.uid, time: toNumber(run.start.time) ?? -Infinity, matches: match(run) });
      const list = byUid.get(run.uid);
      if (list) list.push(file);
      else byUid.set(run.uid, [file]);
    }
    const entries: { file: string; time: number; settled?: RunRef }[] = [];
    const broken: RunRef[] = [];
    for (const l of listed) {
      opts.signal?.throwIfAborted();
      if (!('file' in l && 'matches' in l)) {
        broken.push(l as RunRef);
        continue;
      }
      const same = byUid.get(l.uid)!;
      if (same.length > 1) {
        // Several files claim this run: settled once, at the first of them.
        if (same[0] !== l.file) continue;
        const run = await resolveCopies(l.uid, same, (f) => this.formatOf(f));
        if (isBrokenRun(run)) {
          broken.push(run);
          continue;
        }
        const m = match(run);
        if (m === true) entries.push({ file: l.file, time: toNumber(run.start.time) ?? -Infinity, settled: run });
        else if (m !== false) broken.push(m);
        continue;
      }
      if (l.matches === true) entries.push({ file: l.file, time: l.time });
      else if (l.matches !== false) broken.push(l.matches);
    }
    entries.sort((a, b) => b.time - a.time || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    for (const e of entries) {
      opts.signal?.throwIfAborted();
      const run = e.settled ?? await openRunFile(e.file, this.formatOf(e.file), { whole });
      if (run !== null) yield run;
    }
    yield* broken;
  }

  private formatOf(file: string): Format | undefined {
    return this.opts.format ?? formatOfFile(file);
  }

  private async buildIndex(): Promise<IndexEntry[]> {
    if (this.index) return this.index;
    const idx: IndexEntry[] = [];
    // Listing only: the runs are not read whole here.
    for await (const run of this.listRuns({}, false)) {
      if (isBrokenRun(run) && run.error.code !== 'E_DUPLICATE') continue;
      idx.push({ uid: run.uid, scanId: run.start.scan_id, time: toNumber(run.start.time) ?? 0, file: run.location, ...(run.notes || isBrokenRun(run) ? { resolved: run } : {}) });
    }
    this.index = idx;
    return idx;
  }

  async lookup(key: string, opts: { query?: Doc } = {}): Promise<RunRef> {
    let idx = await this.buildIndex();
    if (opts.query) {
      const q = opts.query;
      const keep = new Set<string>();
      for await (const r of this.listRuns({ query: q }, false)) keep.add(r.uid);
      idx = idx.filter((e) => keep.has(e.uid));
    }
    const entry = resolveKey(key, idx);
    if (entry.resolved) {
      if (isBrokenRun(entry.resolved)) throw entry.resolved.error;
      return entry.resolved;
    }
    const run = await openRunFile(entry.file, this.opts.format ?? formatOfFile(entry.file));
    if (run === null || isBrokenRun(run)) throw run && isBrokenRun(run) ? run.error : new PackStreamError('E_NOT_FOUND', `run ${key} vanished`);
    return run;
  }
}

/** Whether a whole run file reads to its end; the error when it does not. */
async function readError(file: string, format: Format): Promise<PackStreamError | undefined> {
  try {
    for await (const pair of readRecords(file, format, { skim: true })) void pair;
    return undefined;
  } catch (e) {
    return e instanceof PackStreamError ? e : new PackStreamError('E_IO', `${file}: ${(e as Error).message}`, { subject: file, cause: e });
  }
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = [await open(a, 'r'), await open(b, 'r')];
  try {
    if ((await fa.stat()).size !== (await fb.stat()).size) return false;
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; pos += ba.length) {
      const [ra, rb] = [await fa.read(ba, 0, ba.length, pos), await fb.read(bb, 0, bb.length, pos)];
      if (ra.bytesRead !== rb.bytesRead || ba.compare(bb, 0, rb.bytesRead, 0, ra.bytesRead) !== 0) return false;
      if (ra.bytesRead === 0) return true;
    }
  } finally {
    await fa.close();
    await fb.close();
  }
}

/** The index of the first document where two readable run files differ, or -1 when they hold the same documents. */
async function firstDifference(a: FileRun, b: FileRun): Promise<number> {
  if (a.format === b.format && (await sameBytes(a.location, b.location))) return -1;
  const ia = a.records()[Symbol.asyncIterator]();
  const ib = b.records()[Symbol.asyncIterator]();
  try {
    for (let i = 0; ; i++) {
      const [na, nb] = [await ia.next(), await ib.next()];
      if (na.done || nb.done) return na.done && nb.done ? -1 : i;
      if (na.value.name !== nb.value.name || !deepEqual(na.value.doc, nb.value.doc)) return i;
    }
  } finally {
    await ia.return?.(undefined);
    await ib.return?.(undefined);
  }
}

/**
 * One run claimed by several files (a copy left beside the original, a re-export):
 * the readable copy is used; when several are readable they must hold the same
 * documents, else the run fails with E_DUPLICATE naming both. The choice is
 * noted on the run, so the export reports it.
 */
export async function resolveCopies(uid: string, files: string[], formatOf: (file: string) => Format | undefined): Promise<RunRef> {
  const runs: FileRun[] = [];
  const broken: [string, PackStreamError][] = [];
  for (const file of files) {
    const run = await openRunFile(file, formatOf(file));
    const err = run === null ? new PackStreamError('E_TRUNCATED', `${file} is empty`, { subject: file }) : isBrokenRun(run) ? run.error : await readError(file, (run as FileRun).format);
    if (err) broken.push([file, err]);
    else runs.push(run as FileRun);
  }
  const all = files.join(' and ');
  const why = broken.map(([f, e]) => `${f} is unreadable (${e.code}: ${e.message})`).join('; ');
  if (runs.length === 0) {
    const first = broken[0]![1];
    return new BrokenRunRef(uid, files[0]!, new PackStreamError(first.code, `run ${uid} is in ${all}, and none can be read: ${why}`, { subject: uid, cause: first }));
  }
  const chosen = runs[0]!;
  for (const other of runs.slice(1)) {
    const at = await firstDifference(chosen, other);
    if (at >= 0) {
      return new BrokenRunRef(
        uid,
        chosen.location,
        new PackStreamError('E_DUPLICATE', `run ${uid} is in both ${chosen.location} and ${other.location}, which differ (from document ${at + 1} on); neither was used`, { subject: uid }),
        chosen.start,
      );
    }
  }
  const same = runs.length > 1 ? `; ${runs.slice(1).map((r) => r.location).join(' and ')} holds the same documents` : '';
  chosen.notes = [`run ${uid} is in ${all}: ${chosen.location} was used${same}${why ? `; ${why}` : ''}`];
  return chosen;
}

/** Python's int(): optional sign, digits with single underscores, surrounding spaces. */
const PY_INT = /^\s*[-+]?\d+(?:_\d+)*\s*$/;

/** databroker's `catalog[key]` rules for file catalogs (formats.md §3). */
export function resolveKey<T extends { uid: string; scanId: unknown; time: number }>(key: string, idx: T[]): T {
  if (PY_INT.test(key)) {
    const n = Number(key.replace(/_/g, ''));
    if (n < 0) {
      const sorted = [...idx].sort((a, b) => b.time - a.time);
      const hit = sorted[-n - 1];
      if (!hit) throw new PackStreamError('E_NOT_FOUND', `index ${n} is out of range: the catalog has ${idx.length} runs`, { subject: key });
      return hit;
    }
    let best: T | undefined;
    for (const e of idx) if (toNumber(e.scanId as never) === n && typeof e.scanId !== 'boolean' && (!best || e.time > best.time)) best = e;
    if (!best) throw new PackStreamError('E_NOT_FOUND', `No run with scan_id=${n}`, { subject: key });
    return best;
  }
  const exact = idx.find((e) => e.uid === key);
  if (exact) return exact;
  const hits = idx.filter((e) => e.uid.startsWith(key));
  if (hits.length === 0) throw new PackStreamError('E_NOT_FOUND', `no run with uid or uid prefix '${key}'`, { subject: key });
  if (hits.length > 1) {
    throw new PackStreamError('E_AMBIGUOUS', `Multiple matches to partial uid '${key}': ${hits.map((h) => h.uid).join(', ')}`, { subject: key });
  }
  return hits[0]!;
}
