/**
 * Export runs into a pack: the operations databroker-pack offers
 * (export_catalog, export_uids, export_run), composed from stages
 *
 *   run.documents() ─► collect external files ─► rewrite resource roots ─► encode ─► sink run file
 *   run.documents() ─► fill external data (--fill-external) ───────────────► encode ─► sink run file
 *
 * and, once per pack, the manifest splitter's chunks and catalog.yml, handed
 * to the same sink. The exporter knows no file system: the sink (a directory,
 * a tar stream, a document stream) decides where bytes go. A run that fails is
 * recorded (uid, code, message), its run file aborted, and the export goes on
 * unless `strict`; catalog.yml is written last and only if the pack holds
 * something.
 */
import { rm } from 'node:fs/promises';
import type { Doc } from '../codec/values.js';
import { PackStreamError, describeError, errorCode } from '../errors.js';
import { catalogFileText } from '../sinks/catalog-file.js';
import { checkFilesExist, ExternalFileCopier, planCopies } from '../sinks/copy-external.js';
import { DirectorySink } from '../sinks/directory-sink.js';
import { DEFAULT_MANIFEST_CHUNK, documentsManifestChunks, externalFilesManifestChunks, type ManifestChunk } from '../sinks/manifests.js';
import type { PackSink, RunFileWriter } from '../sinks/sink.js';
import { PARTIAL_SUFFIX } from '../sinks/pack-directory.js';
import { isBrokenRun } from '../sources/file-catalog.js';
import { partsEncoderFor } from '../transforms/encode.js';
import { fillDocuments, type FillOptions } from '../transforms/fill.js';
import { HandlerRegistry } from '../transforms/handlers.js';
import { ExternalFileCollector, rewriteRoot, type RootFiles } from '../transforms/resources.js';
import { randomSalt } from '../transforms/root-hash.js';
import { checkPathComponent, printable } from '../transforms/safe-names.js';
import type { Catalog, DocPair, Format, RunRef } from '../types.js';

export type ExternalMode = 'manifest' | 'copy' | 'ignore' | 'fill';

export interface ExportOptions {
  format?: Format;
  /**
   * manifest (default): list source paths; copy: bundle files; ignore: neither;
   * fill: read the data into the events (no resources, datums, manifests or copies).
   */
  external?: ExternalMode;
  /** manifest mode: check that every listed file exists here (default); off for files that live on a server. */
  checkExternalFiles?: boolean;
  /** Compute file lists and root_map but write no document files. */
  noDocuments?: boolean;
  salt?: string;
  /** Stop at the first failed run instead of recording it and going on. */
  strict?: boolean;
  handlers?: HandlerRegistry;
  /** External files copied, or datums read (fill), at once. */
  concurrency?: number;
  manifestChunk?: number;
  limit?: number;
  signal?: AbortSignal;
  onProgress?: (p: ExportProgress) => void;
  /** Called once per finished or failed run. */
  onRun?: (r: RunResult) => void;
}

export interface ExportProgress {
  runsDone: number;
  runsFailed: number;
  documents: number;
  bytes: number;
  filesCopied: number;
  bytesCopied: number;
  /** fill mode: datums read into events, and the bytes of their data. */
  datumsFilled: number;
  bytesFilled: number;
  currentRun?: string;
}

export interface RunFailure {
  uid: string;
  code: string;
  message: string;
}

export interface RunResult {
  uid: string;
  ok: boolean;
  documents: number;
  bytes: number;
  file?: string;
  error?: RunFailure;
}

export interface ExportSummary extends ExportProgress {
  dir: string;
  salt: string;
  rootMap: Record<string, string>;
  documentFiles: string[];
  manifests: string[];
  failures: RunFailure[];
  /** Things worth knowing that did not fail a run (e.g. which of two files holding one run was packed). */
  warnings: string[];
  catalogFile: string | null;
}

/**
 * Shared state of one pack being written. Use `exportRun` for each run, then
 * `finish()` once; `exportCatalog` / `exportUids` do all of it.
 */
export class PackExporter {
  readonly salt: string;
  readonly format: Format;
  readonly external: ExternalMode;
  private readonly registry: HandlerRegistry;
  private readonly copier: ExternalFileCopier;
  private readonly roots = new Map<string, RootFiles>();
  private readonly documentFiles: string[] = [];
  private readonly seenRuns = new Set<string>();
  readonly failures: RunFailure[] = [];
  readonly warnings: string[] = [];
  readonly progress: ExportProgress = { runsDone: 0, runsFailed: 0, documents: 0, bytes: 0, filesCopied: 0, bytesCopied: 0, datumsFilled: 0, bytesFilled: 0 };

  readonly dir: string;

  private constructor(
    readonly sink: PackSink,
    private readonly rootMap: Record<string, string>,
    private readonly opts: ExportOptions,
  ) {
    this.salt = opts.salt ?? randomSalt();
    this.format = opts.format ?? 'msgpack';
    // A document stream carries the documents as they are: no root rewrite, no file lists.
    this.external = !sink.wholePack && opts.external !== 'fill' && opts.external !== 'copy' ? 'ignore' : (opts.external ?? 'manifest');
    this.registry = opts.handlers ?? new HandlerRegistry();
    if (this.external === 'fill' && opts.noDocuments) {
      throw new PackStreamError('E_USAGE', 'filling external data puts it into the documents, so it cannot be combined with writing no documents');
    }
    this.dir = sink.location;
    if (!sink.wholePack && this.external === 'copy') {
      throw new PackStreamError('E_USAGE', 'a document stream carries no files, so external files cannot be copied into it');
    }
    this.copier = new ExternalFileCopier(sink, opts.concurrency ?? 4, (bytes) => {
      this.progress.filesCopied++;
      this.progress.bytesCopied += bytes;
      this.emit();
    });
  }

  /** Open `dest` (a sink, or a new or empty directory) for a pack of runs from a source with `rootMap`. */
  static async create(dest: PackSink | string, rootMap: Record<string, string>, opts: ExportOptions = {}): Promise<PackExporter> {
    const sink = typeof dest === 'string' ? new DirectorySink(dest) : dest;
    await sink.open();
    return new PackExporter(sink, rootMap, opts);
  }

  private emit(): void {
    this.opts.onProgress?.(this.progress);
  }

  private fail(uid: string, e: unknown): RunResult {
    const failure = { uid, code: errorCode(e), message: describeError(e) };
    this.failures.push(failure);
    this.progress.runsFailed++;
    this.emit();
    const r: RunResult = { uid, ok: false, documents: 0, bytes: 0, error: failure };
    this.opts.onRun?.(r);
    if (this.opts.strict) throw e instanceof PackStreamError ? e : new PackStreamError('E_BAD_RUN', `run ${uid}: ${describeError(e)}`, { subject: uid, cause: e });
    return r;
  }

  /** Record a run that could not even be found (a bad uid line). */
  recordFailure(uid: string, e: unknown): RunResult {
    return this.fail(uid, e);
  }

  async exportRun(run: RunRef): Promise<RunResult> {
    if (run.notes) this.warnings.push(...run.notes);
    if (isBrokenRun(run)) return this.fail(run.uid, run.error);
    if (this.seenRuns.has(run.uid)) return { uid: run.uid, ok: true, documents: 0, bytes: 0 };
    this.seenRuns.add(run.uid);
    try {
      // The uid names the run's document file: it must not climb out of documents/.
      checkPathComponent(run.uid, 'run uid', `.${this.format}${PARTIAL_SUFFIX}`.length);
    } catch (e) {
      return this.fail(run.uid, e);
    }
    this.progress.currentRun = run.uid;
    const signal = this.opts.signal;
    const rel = `documents/${run.uid}.${this.format}`;
    let writer: RunFileWriter | null = null;
    const filling = this.external === 'fill';
    const collector = this.external === 'ignore' || filling ? null : new ExternalFileCollector(this.registry, this.rootMap, this.salt);
    const encode = partsEncoderFor(this.format);
    let documents = 0;
    let bytes = 0;
    try {
      if (!this.opts.noDocuments) writer = await this.sink.openRunFile(rel);
      let docs = run.documents(signal ? { signal } : {});
      if (filling) docs = fillDocuments(docs, this.fillOptions(signal));
      for await (const pair of docs) {
        await collector?.observe(pair);
        if (!writer) continue;
        const out: DocPair = pair.name === 'resource' && this.sink.wholePack ? rewriteRoot(pair, this.salt) : pair;
        const parts = encode(out);
        await writer.write(parts);
        let n = 0;
        for (const p of parts) n += p.length;
        documents++;
        bytes += n;
        this.progress.documents++;
        this.progress.bytes += n;
        if ((documents & 1023) === 0) this.emit();
      }
      if (collector) await this.handleExternalFiles(collector);
      await writer?.commit();
    } catch (e) {
      await writer?.abort();
      if (signal?.aborted) throw e;
      if (this.sink.broken) throw this.sink.broken;
      return this.fail(run.uid, e);
    }
    if (collector) this.mergeRoots(collector);
    if (writer) this.documentFiles.push(rel);
    this.progress.runsDone++;
    this.emit();
    const r: RunResult = { uid: run.uid, ok: true, documents, bytes, ...(writer ? { file: rel } : {}) };
    this.opts.onRun?.(r);
    return r;
  }

  private fillOptions(signal: AbortSignal | undefined): FillOptions {
    return {
      registry: this.registry,
      rootMap: this.rootMap,
      concurrency: this.opts.concurrency ?? 4,
      ...(signal ? { signal } : {}),
      onDatum: (n) => {
        this.progress.datumsFilled++;
        this.progress.bytesFilled += n;
        this.emit();
      },
    };
  }

  private async handleExternalFiles(collector: ExternalFileCollector): Promise<void> {
    for (const root of collector.roots.values()) {
      if (this.external === 'copy') await this.copier.copyAll(planCopies(root));
      else if (this.opts.checkExternalFiles !== false) await checkFilesExist(root.files, 16, root.needers);
    }
  }

  private mergeRoots(collector: ExternalFileCollector): void {
    for (const [hash, root] of collector.roots) {
      const mine = this.roots.get(hash);
      if (!mine) this.roots.set(hash, { hash, originalRoot: root.originalRoot, mappedRoot: root.mappedRoot, files: new Set(root.files) });
      else for (const f of root.files) mine.files.add(f);
    }
  }

  /** root_map for catalog.yml, per mode (formats.md §7.4). */
  packRootMap(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.external === 'ignore' || this.external === 'fill') return out;
    for (const root of this.roots.values()) {
      const key = this.opts.noDocuments ? root.originalRoot : root.hash;
      out[key] = this.external === 'copy' ? `external_files/${root.hash}` : root.mappedRoot;
    }
    return out;
  }

  /** The manifest splitter's chunks for this pack (documents, then each root's external files). */
  *manifestChunks(): Generator<ManifestChunk> {
    const chunk = this.opts.manifestChunk ?? DEFAULT_MANIFEST_CHUNK;
    if (this.documentFiles.length) yield* documentsManifestChunks(this.documentFiles, chunk);
    if (this.external === 'manifest' || this.external === 'copy') {
      for (const root of this.roots.values()) {
        const files = this.external === 'copy' ? planCopies(root).map((p) => p.target) : [...root.files];
        yield* externalFilesManifestChunks(root.hash, files, chunk);
      }
    }
  }

  /** Write manifests, the failure list and, last, catalog.yml; then finish the sink. */
  async finish(extraMetadata: Record<string, unknown> = {}): Promise<ExportSummary> {
    const manifests: string[] = [];
    const rootMap = this.packRootMap();
    let catalogFile: string | null = null;
    try {
      if (this.sink.wholePack) {
        for (const c of this.manifestChunks()) {
          await this.sink.writeFile(c.name, c.text);
          manifests.push(c.name);
        }
        if (this.failures.length) {
          await this.sink.writeFile('failures.tsv', this.failures.map((f) => `${printable(f.uid)}\t${f.code}\t${printable(f.message)}\n`).join(''));
        }
        if (this.progress.runsDone > 0) {
          catalogFile = await this.sink.writeFile('catalog.yml', catalogFileText(this.sink.packPath, this.format, rootMap, { metadata: extraMetadata }));
        }
      }
      await this.sink.finish();
    } catch (e) {
      await this.sink.abort(e);
      throw e;
    }
    return {
      ...this.progress,
      dir: this.dir,
      salt: this.salt,
      rootMap,
      documentFiles: [...this.documentFiles],
      manifests,
      failures: [...this.failures],
      warnings: [...this.warnings],
      catalogFile,
    };
  }

  /** Give up on the pack: the sink leaves nothing that looks complete (a directory is removed if still empty). */
  async abort(reason?: unknown): Promise<void> {
    await this.sink.abort(reason);
  }
}

/** export_run: one run into a new or empty directory. */
export async function exportRun(run: RunRef, dest: PackSink | string, opts: ExportOptions & { rootMap?: Record<string, string> } = {}): Promise<ExportSummary> {
  const ex = await PackExporter.create(dest, opts.rootMap ?? {}, opts);
  try {
    await ex.exportRun(run);
  } catch (e) {
    await ex.abort(e);
    throw e;
  }
  return ex.finish();
}

/** export_catalog: every run of a catalog (optionally matching a query) into a pack sink (a path means a directory). */
export async function exportCatalog(catalog: Catalog, dest: PackSink | string, opts: ExportOptions & { query?: Doc } = {}): Promise<ExportSummary> {
  const ex = await PackExporter.create(dest, catalog.rootMap, withCatalogDefaults(catalog, opts));
  let n = 0;
  try {
    for await (const run of catalog.runs({ ...(opts.query ? { query: opts.query } : {}), ...(opts.signal ? { signal: opts.signal } : {}) })) {
      if (opts.limit !== undefined && n >= opts.limit) break;
      n++;
      await ex.exportRun(run);
    }
  } catch (e) {
    await ex.abort(e);
    throw e;
  }
  if (n === 0) {
    // "match" only when there was something to select from.
    let any = false;
    if (opts.query) for await (const _ of catalog.runs(opts.signal ? { signal: opts.signal } : {})) { any = true; break; }
    const e = new PackStreamError(
      'E_NOT_FOUND',
      any ? `no runs in ${catalog.description} match the selection` : `${catalog.description} holds no runs`,
      { subject: catalog.description },
    );
    await ex.abort(e);
    throw e;
  }
  return ex.finish(catalog.packMetadata?.() ?? {});
}

/** A source whose external files live on a server (Tiled) lists them without a local existence check. */
function withCatalogDefaults<T extends ExportOptions>(catalog: Catalog, opts: T): T {
  return catalog.remoteFiles ? { ...opts, checkExternalFiles: false } : opts;
}

/** export_uids: the runs that uids (or prefixes, scan_ids, negative indexes) name. */
export async function exportUids(catalog: Catalog, uids: string[], dest: PackSink | string, opts: ExportOptions = {}): Promise<ExportSummary> {
  const ex = await PackExporter.create(dest, catalog.rootMap, withCatalogDefaults(catalog, opts));
  const list = opts.limit !== undefined ? uids.slice(0, opts.limit) : uids;
  try {
    for (const key of list) {
      let run: RunRef;
      try {
        run = await catalog.lookup(key);
      } catch (e) {
        ex.recordFailure(key, e);
        continue;
      }
      await ex.exportRun(run);
    }
  } catch (e) {
    await ex.abort(e);
    throw e;
  }
  if (list.length === 0) {
    const e = new PackStreamError('E_NOT_FOUND', 'no uids were given', {});
    await ex.abort(e);
    throw e;
  }
  return ex.finish(catalog.packMetadata?.() ?? {});
}

/** Remove a pack directory this process created (used when aborting). */
export async function removePack(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
