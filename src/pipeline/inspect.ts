/**
 * inspect: what a pack (or any source) holds, run by run, without unpacking
 * it: uid, scan_id, plan, start time, events per stream, exit status, and the
 * external files its resources need (how many, how many bytes, how many are
 * missing). Runs are streamed one at a time, so memory stays bounded whatever
 * the catalog size; external files shared by several runs count once per run.
 */
import { stat } from 'node:fs/promises';
import pLimit from 'p-limit';
import { isPlainDoc, toNumber, type Doc, type Value } from '../codec/values.js';
import { describeError, errorCode, PackStreamError } from '../errors.js';
import { isBrokenRun } from '../sources/file-catalog.js';
import { HandlerRegistry, type FileLister } from '../transforms/handlers.js';
import { checkedResourcePath, forEachDatumFile } from '../transforms/resources.js';
import { checkExternalPath } from '../transforms/safe-names.js';
import { datumAsRow, unpackDatumPage } from '../transforms/pages.js';
import type { Catalog, RunRef } from '../types.js';

export interface ExternalFilesSummary {
  /** Distinct files the run's resources and datums refer to. */
  files: number;
  /** Total size of those that exist. */
  bytes: number;
  /** Files that do not exist where the root_map says. */
  missing: number;
  /** Resources whose files could not be listed (unknown spec, bad kwargs). */
  unlisted: number;
  /** Specs no rule knows, if any. */
  unknownSpecs: string[];
  /** Files not looked at because their path leaves the resource root or holds control characters. */
  unsafe: number;
}

export interface RunSummary {
  uid: string;
  scan_id: number | string | null;
  plan_name: string | null;
  /** start.time, seconds since the epoch. */
  time: number | null;
  /** start.time as ISO 8601 UTC. */
  start_time: string | null;
  /** Events per stream, streams in the order their descriptors appear. */
  streams: Record<string, number>;
  /** stop.exit_status, or null when the run has no stop document. */
  exit_status: string | null;
  documents: number;
  external: ExternalFilesSummary;
  location: string;
  error?: { code: string; message: string };
}

export interface InspectTotals {
  runs: number;
  failedRuns: number;
  documents: number;
  events: number;
  externalFiles: number;
  externalBytes: number;
  missingExternalFiles: number;
}

export interface InspectOptions {
  handlers?: HandlerRegistry;
  signal?: AbortSignal;
  /** Concurrent stat() calls for external files. */
  concurrency?: number;
}

function scalar(v: Value | undefined): number | string | null {
  if (v === undefined || v === null) return null;
  const n = toNumber(v);
  if (n !== undefined) return n;
  return typeof v === 'string' ? v : String(v);
}

function isoTime(seconds: number | undefined): string | null {
  if (seconds === undefined || !Number.isFinite(seconds)) return null;
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d+Z$/, 'Z');
}

function rowCount(page: Doc): number {
  for (const k of ['seq_num', 'uid', 'time']) {
    const v = page[k];
    if (Array.isArray(v)) return v.length;
  }
  return 0;
}

/**
 * The external files of one run's resources, listed as the handlers list them;
 * `only` limits it to resources whose mapped root it accepts.
 */
export class RunFiles {
  readonly files = new Set<string>();
  unlisted = 0;
  readonly unknownSpecs = new Set<string>();
  /** Files (or resources) refused because their path leaves its root or holds control characters: first messages. */
  readonly unsafe: string[] = [];
  unsafeCount = 0;
  private readonly listers = new Map<string, { lister: FileLister; mappedRoot: string } | null>();

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly rootMap: Record<string, string>,
    private readonly only?: (mappedRoot: string) => boolean,
  ) {}

  private refuse(e: unknown): void {
    if (!(e instanceof PackStreamError) || e.code !== 'E_UNSAFE_PATH') throw e;
    if (this.unsafeCount++ < 10) this.unsafe.push(e.message);
  }

  /** Add files a lister gave, except those a hostile resource pointed outside its root (never looked at). */
  private add(files: Iterable<string>, mappedRoot: string): void {
    for (const f of files) {
      try {
        this.files.add(checkExternalPath(f, mappedRoot));
      } catch (e) {
        this.refuse(e);
      }
    }
  }

  resource(doc: Doc): void {
    const uid = String(doc.uid ?? '');
    const spec = String(doc.spec ?? '');
    let paths;
    try {
      paths = checkedResourcePath(doc, this.rootMap);
    } catch (e) {
      this.refuse(e);
      this.listers.set(uid, null);
      return;
    }
    const { mappedRoot, filePath } = paths;
    if (this.only && !this.only(mappedRoot)) {
      this.listers.set(uid, null);
      return;
    }
    if (!this.registry.has(spec)) {
      this.unknownSpecs.add(spec);
      this.unlisted++;
      this.listers.set(uid, null);
      return;
    }
    try {
      const lister = this.registry.lister(doc, filePath);
      this.add(lister.resourceFiles(), mappedRoot);
      this.listers.set(uid, { lister, mappedRoot });
    } catch {
      this.unlisted++;
      this.listers.set(uid, null);
    }
  }

  /** Feed any document; resources and datums (single or paged) are taken note of. */
  async observe(name: string, doc: Doc): Promise<void> {
    if (name === 'resource') this.resource(doc);
    else if (name === 'datum') await this.datums([datumAsRow(doc)]);
    else if (name === 'datum_page') await this.datums(unpackDatumPage(doc));
  }

  async datums(rows: Iterable<{ resource: Value; datum_kwargs: Value }>): Promise<void> {
    for (const row of rows) {
      const entry = this.listers.get(String(row.resource ?? ''));
      if (!entry) continue;
      try {
        await forEachDatumFile(entry.lister.filesForDatum(isPlainDoc(row.datum_kwargs) ? row.datum_kwargs : {}), this.registry.limits.filesPerDatum, (f) => this.add([f], entry.mappedRoot));
      } catch {
        this.unlisted++;
        this.listers.set(String(row.resource ?? ''), null);
      }
    }
  }
}

async function sizeFiles(files: Iterable<string>, concurrency: number): Promise<{ bytes: number; missing: number }> {
  const limit = pLimit(concurrency);
  let bytes = 0;
  let missing = 0;
  await Promise.all(
    [...files].map((f) =>
      limit(async () => {
        try {
          // read the size before adding: `bytes += await ...` would lose concurrent updates
          const { size } = await stat(f);
          bytes += size;
        } catch {
          missing++;
        }
      }),
    ),
  );
  return { bytes, missing };
}

/**
 * What a summary needs of events: their data is never decoded (it can be huge;
 * the reader has checked it is well-formed while framing the record).
 */
export const EVENT_FIELDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['event', new Set(['descriptor'])],
  ['event_page', new Set(['descriptor', 'seq_num', 'uid', 'time'])],
]);

/** Summarise one run by reading its documents once, in stored order. */
export async function inspectRun(run: RunRef, rootMap: Record<string, string>, opts: InspectOptions = {}): Promise<RunSummary> {
  const summary: RunSummary = {
    uid: run.uid,
    scan_id: scalar(run.start.scan_id),
    plan_name: typeof run.start.plan_name === 'string' ? run.start.plan_name : null,
    time: toNumber(run.start.time) ?? null,
    start_time: isoTime(toNumber(run.start.time)),
    streams: Object.create(null) as Record<string, number>,
    exit_status: null,
    documents: 0,
    external: { files: 0, bytes: 0, missing: 0, unlisted: 0, unknownSpecs: [], unsafe: 0 },
    location: run.location,
  };
  if (isBrokenRun(run)) {
    summary.error = { code: run.error.code, message: describeError(run.error) };
    return summary;
  }
  const streamOf = new Map<string, string>();
  const files = new RunFiles(opts.handlers ?? new HandlerRegistry(), rootMap);
  try {
    for await (const { name, doc } of run.records({ skim: true, skimFields: EVENT_FIELDS, ...(opts.signal ? { signal: opts.signal } : {}) })) {
      summary.documents++;
      if (name === 'descriptor') {
        const stream = typeof doc.name === 'string' ? doc.name : '(unnamed)';
        streamOf.set(String(doc.uid ?? ''), stream);
        summary.streams[stream] ??= 0;
      } else if (name === 'event' || name === 'event_page') {
        const stream = streamOf.get(String(doc.descriptor ?? '')) ?? '(unknown descriptor)';
        summary.streams[stream] = (summary.streams[stream] ?? 0) + (name === 'event' ? 1 : rowCount(doc));
      } else if (name === 'stop') {
        summary.exit_status = typeof doc.exit_status === 'string' ? doc.exit_status : String(doc.exit_status ?? '');
      } else {
        await files.observe(name, doc);
      }
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    summary.error = { code: errorCode(e), message: describeError(e) };
  }
  const sized = await sizeFiles(files.files, opts.concurrency ?? 16);
  summary.external = { files: files.files.size, bytes: sized.bytes, missing: sized.missing, unlisted: files.unlisted, unknownSpecs: [...files.unknownSpecs].sort(), unsafe: files.unsafeCount };
  return summary;
}

/** Running totals over run summaries. */
export class InspectTotalizer {
  readonly totals: InspectTotals = { runs: 0, failedRuns: 0, documents: 0, events: 0, externalFiles: 0, externalBytes: 0, missingExternalFiles: 0 };
  add(r: RunSummary): void {
    this.totals.runs++;
    if (r.error) this.totals.failedRuns++;
    this.totals.documents += r.documents;
    for (const n of Object.values(r.streams)) this.totals.events += n;
    this.totals.externalFiles += r.external.files;
    this.totals.externalBytes += r.external.bytes;
    this.totals.missingExternalFiles += r.external.missing;
  }
}

/** Every run of a catalog, summarised one after another. */
export async function* inspectCatalog(catalog: Catalog, opts: InspectOptions = {}): AsyncGenerator<RunSummary> {
  for await (const run of catalog.runs(opts.signal ? { signal: opts.signal } : {})) {
    yield await inspectRun(run, catalog.rootMap, opts);
  }
}
