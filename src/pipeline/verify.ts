/**
 * verify: is a pack whole, wherever it now lives? Everything is resolved
 * against the pack directory (the folder of catalog.yml), so a moved or copied
 * pack verifies the same. Checks, each failure reported as a problem and the
 * check carried on:
 *  - catalog.yml reads and names a msgpack/jsonl source;
 *  - manifests (databroker-pack's `documents_manifest.txt`,
 *    `external_files_manifest_<HASH>.txt`, and pack-stream's `_N` chunks, none
 *    of them missing) list files that exist, and every document file is listed;
 *  - every document file decodes to the end, holds one run that begins with
 *    `start` and ends with `stop`, named by its start uid, no uid twice;
 *  - every resource root is a key of the root_map;
 *  - every copied external file (in `external_files/`, whether listed by a
 *    manifest or needed by a datum) is present.
 * Files a manifest lists outside the pack (the default "manifest" mode) are
 * counted, not checked: they travel separately. Packs carry no checksums yet;
 * when they do, copied files are compared here.
 */
import { glob, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { describeError, errorCode, PackStreamError } from '../errors.js';
import { byCodePoint } from '../sinks/manifests.js';
import { formatOfDriver, readCatalogSources, resolvedPaths, resolvedRootMap, type CatalogSourceEntry } from '../sources/catalog-yaml.js';
import { formatOfFile, readRecords } from '../sources/file-catalog.js';
import { HandlerRegistry } from '../transforms/handlers.js';
import type { Format } from '../types.js';
import { isInside, quoted } from '../transforms/safe-names.js';
import { EVENT_FIELDS, RunFiles } from './inspect.js';
import { readRegularText } from '../sources/regular-file.js';

/** A manifest chunk lists paths, 10,000 by default; one larger than this is refused. */
const MAX_MANIFEST_BYTES = 1024 * 1024 * 1024;

export type VerifyProblemKind =
  | 'bad-catalog' //          catalog.yml missing, unreadable, or without a file-based source
  | 'bad-manifest' //         a manifest chunk missing, an entry outside the pack, no manifest for documents
  | 'missing-document' //     a manifest lists a document file that is not there
  | 'unlisted-document' //    a document file no manifest lists
  | 'unreadable-document' //  a document file does not decode
  | 'truncated-document' //   a document file ends mid-record, or is empty
  | 'bad-run' //              a run not beginning with start / ending with stop, or misnamed
  | 'duplicate-run' //        two document files hold the same start uid
  | 'unmapped-root' //        a resource root that is not a root_map key
  | 'missing-external' //     a copied external file (or its root directory) is missing
  | 'unsafe-path' //          a root_map value or a resource's file that leads out of its root (not looked at)
  | 'failed-run'; //          failures.tsv names a run the export could not write, so the pack is missing it

export interface VerifyProblem {
  kind: VerifyProblemKind;
  /** The file, root or uid the problem is about (relative to the pack where it is inside it). */
  subject: string;
  message: string;
}

export interface VerifyReport {
  pack: string;
  ok: boolean;
  problems: VerifyProblem[];
  /** Things that limit the check but are not problems of the pack. */
  warnings: string[];
  documentFiles: number;
  runs: number;
  documents: number;
  /** External files inside the pack that were checked. */
  externalFilesChecked: number;
  /** External files the manifests list outside the pack (not checked). */
  externalFilesOutside: number;
  /** Runs failures.tsv says the export could not write. */
  failedRuns: number;
}

export interface VerifyOptions {
  handlers?: HandlerRegistry;
  signal?: AbortSignal;
  concurrency?: number;
  /** Called as each problem is found. */
  onProblem?: (p: VerifyProblem) => void;
  /** Runs listed in failures.tsv are warnings, not problems: the pack is known to lack them. */
  allowFailures?: boolean;
}

/** failures.tsv holds a line per failed run; a larger one is not read. */
const MAX_FAILURES_BYTES = 64 * 1024 * 1024;

const DOC_MANIFEST = /^documents_manifest(?:_(\d+))?\.txt$/;
const EXT_MANIFEST = /^external_files_manifest_([^_]+)(?:_(\d+))?\.txt$/;

class Verifier {
  readonly report: VerifyReport;
  private readonly missingExternal = new Set<string>();
  private readonly unmappedRoots = new Set<string>();
  private readonly limit;
  private readonly registry: HandlerRegistry;
  private readonly uids = new Map<string, string>();
  private readonly warnedSpecs = new Set<string>();
  private entry: CatalogSourceEntry | undefined;
  private format: Format | undefined;
  private rootMap: Record<string, string> = {};
  /** No root_map and no external-file manifests: written with --ignore-external, external files left out on purpose. */
  private externalLeftOut = false;

  constructor(
    readonly dir: string,
    private readonly opts: VerifyOptions,
  ) {
    this.report = { pack: dir, ok: true, problems: [], warnings: [], documentFiles: 0, runs: 0, documents: 0, externalFilesChecked: 0, externalFilesOutside: 0, failedRuns: 0 };
    this.limit = pLimit(opts.concurrency ?? 16);
    this.registry = opts.handlers ?? new HandlerRegistry();
  }

  problem(kind: VerifyProblemKind, subject: string, message: string): void {
    const p = { kind, subject, message };
    this.report.problems.push(p);
    this.report.ok = false;
    this.opts.onProblem?.(p);
  }

  rel(p: string): string {
    const r = path.relative(this.dir, p);
    return r === '' ? '.' : r;
  }

  inside(p: string): boolean {
    return isInside(this.dir, p);
  }

  async exists(p: string): Promise<boolean> {
    try {
      await stat(p);
      return true;
    } catch {
      return false;
    }
  }

  async readCatalog(): Promise<void> {
    const file = path.join(this.dir, 'catalog.yml');
    let entries: CatalogSourceEntry[];
    try {
      entries = await readCatalogSources(file);
    } catch (e) {
      this.problem('bad-catalog', 'catalog.yml', e instanceof PackStreamError && e.code === 'E_NO_SOURCE' ? 'catalog.yml is missing, so databroker cannot open the pack' : describeError(e));
      return;
    }
    const entry = entries.find((e) => e.name === 'packed_catalog') ?? (entries.length === 1 ? entries[0] : undefined);
    if (!entry) {
      this.problem('bad-catalog', 'catalog.yml', `catalog.yml has no 'packed_catalog' source (it has: ${entries.map((e) => e.name).join(', ') || 'none'})`);
      return;
    }
    this.format = formatOfDriver(entry.driver);
    if (!this.format) {
      this.problem('bad-catalog', 'catalog.yml', `source '${entry.name}' has driver '${entry.driver}', not bluesky-msgpack-catalog or bluesky-jsonl-catalog`);
      return;
    }
    this.entry = entry;
    this.rootMap = resolvedRootMap(entry);
    const raw = entry.args.root_map;
    if (raw && typeof raw === 'object') {
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        const target = this.rootMap[key]!;
        if (typeof value === 'string' && !path.isAbsolute(value) && !this.inside(target)) {
          this.problem('unsafe-path', String(value), `root_map maps ${quoted(key)} to ${quoted(value)}, which leads out of the pack (not looked at)`);
          continue;
        }
        if (typeof value === 'string' && !path.isAbsolute(value) && !(await this.exists(target))) {
          this.problem('missing-external', String(value), `root_map maps '${key}' to ${value}, which is not in the pack`);
          this.missingExternal.add(target);
        }
      }
    }
  }

  /** Manifest names grouped (documents, or one group per root hash), numbered chunks contiguous from 0. */
  checkChunks(names: string[]): void {
    const groups = new Map<string, { prefix: string; numbers: number[] }>();
    for (const n of names) {
      const d = DOC_MANIFEST.exec(n);
      const x = d ? null : EXT_MANIFEST.exec(n);
      const num = d ? d[1] : x?.[2];
      if (num === undefined) continue;
      const prefix = d ? 'documents_manifest' : `external_files_manifest_${x![1]}`;
      const g = groups.get(prefix) ?? { prefix, numbers: [] };
      g.numbers.push(Number(num));
      groups.set(prefix, g);
    }
    for (const { prefix, numbers } of groups.values()) {
      const have = new Set(numbers);
      const max = Math.max(...numbers);
      for (let i = 0; i <= max; i++) {
        if (!have.has(i)) this.problem('bad-manifest', `${prefix}_${i}.txt`, `${prefix}_${i}.txt is missing (chunks ${[...have].sort((a, b) => a - b).join(', ')} are present)`);
      }
    }
  }

  async manifestLines(name: string): Promise<string[]> {
    try {
      return (await readRegularText(path.join(this.dir, name), 'manifest', MAX_MANIFEST_BYTES)).split(/\r?\n/).filter((l) => l !== '');
    } catch (e) {
      this.problem('bad-manifest', name, `${name} cannot be read: ${(e as Error).message}`);
      return [];
    }
  }

  async checkDocumentManifests(names: string[]): Promise<Set<string> | null> {
    const manifests = names.filter((n) => DOC_MANIFEST.test(n));
    if (manifests.length === 0) return null;
    const listed = new Set<string>();
    for (const m of manifests) {
      for (const line of await this.manifestLines(m)) {
        const file = path.resolve(this.dir, line);
        if (path.isAbsolute(line) || !this.inside(file)) {
          this.problem('bad-manifest', m, `${m} lists ${line}, which is not inside the pack`);
          continue;
        }
        listed.add(file);
      }
    }
    await Promise.all(
      [...listed].map((f) =>
        this.limit(async () => {
          if (!(await this.exists(f))) this.problem('missing-document', this.rel(f), `${this.rel(f)} is listed in the documents manifest but missing`);
        }),
      ),
    );
    return listed;
  }

  async checkExternalManifests(names: string[]): Promise<void> {
    for (const m of names.filter((n) => EXT_MANIFEST.test(n))) {
      const inPack: string[] = [];
      for (const line of await this.manifestLines(m)) {
        if (path.isAbsolute(line)) {
          this.report.externalFilesOutside++;
          continue;
        }
        const file = path.resolve(this.dir, line);
        if (!this.inside(file)) {
          this.problem('bad-manifest', m, `${m} lists ${line}, which is not inside the pack`);
          continue;
        }
        inPack.push(file);
      }
      await this.checkExternalFiles(inPack, `listed in ${m}`);
    }
  }

  async checkExternalFiles(files: Iterable<string>, why: string): Promise<void> {
    await Promise.all(
      [...files].map((f) =>
        this.limit(async () => {
          this.report.externalFilesChecked++;
          if (this.missingExternal.has(f)) return;
          if (!(await this.exists(f))) {
            this.missingExternal.add(f);
            this.problem('missing-external', this.rel(f), `external file ${this.rel(f)} (${why}) is missing`);
          }
        }),
      ),
    );
  }

  /** The document files databroker would read: the catalog's path globs, inside the pack. */
  async documentFilesOnDisk(): Promise<string[]> {
    let patterns: string[];
    if (this.entry) {
      try {
        patterns = resolvedPaths(this.entry);
      } catch (e) {
        this.problem('bad-catalog', 'catalog.yml', describeError(e));
        patterns = [];
      }
    } else {
      patterns = ['msgpack', 'jsonl'].map((ext) => path.join(this.dir.replace(/[*?[\]{}]/g, '[$&]'), 'documents', `*.${ext}`));
    }
    const found = new Set<string>();
    for (const pattern of patterns) {
      for await (const f of glob(pattern)) {
        const abs = path.resolve(f);
        if (!this.inside(abs)) {
          this.report.warnings.push(`catalog.yml's paths match ${abs}, outside the pack; it was not checked`);
          continue;
        }
        try {
          if ((await stat(abs)).isFile()) found.add(abs);
        } catch {
          // vanished
        }
      }
    }
    return [...found].sort(byCodePoint);
  }

  async checkDocumentFile(file: string): Promise<void> {
    this.opts.signal?.throwIfAborted();
    const rel = this.rel(file);
    const format = this.format ?? formatOfFile(file) ?? 'msgpack';
    const files = new RunFiles(this.registry, this.rootMap, (mappedRoot) => path.isAbsolute(mappedRoot) && this.inside(mappedRoot));
    let first: string | undefined;
    let last: string | undefined;
    let count = 0;
    let uid: string | undefined;
    let failed = false;
    try {
      for await (const { name, doc } of readRecords(file, format, { skim: true, skimFields: EVENT_FIELDS, ...(this.opts.signal ? { signal: this.opts.signal } : {}) })) {
        if (count === 0) {
          first = name;
          if (name === 'start' && typeof doc.uid === 'string') uid = doc.uid;
        }
        count++;
        last = name;
        if (name === 'resource') {
          const root = typeof doc.root === 'string' ? doc.root : '';
          if (root !== '' && !Object.hasOwn(this.rootMap, root) && !this.unmappedRoots.has(root)) {
            this.unmappedRoots.add(root);
            if (!this.externalLeftOut) {
              this.problem('unmapped-root', root, `resource root '${root}' (first in ${rel}) is not in catalog.yml's root_map, so databroker cannot find its external files`);
            } else if (this.unmappedRoots.size === 1) {
              this.report.warnings.push('the pack has resources but no root_map and no external-file manifests (written with --ignore-external): their external files are not part of it');
            }
          }
        }
        await files.observe(name, doc);
      }
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      failed = true;
      const code = errorCode(e);
      this.problem(code === 'E_TRUNCATED' ? 'truncated-document' : 'unreadable-document', rel, describeError(e).replace(/^E_[A-Z_]+: /, ''));
    }
    this.report.documentFiles++;
    this.report.documents += count;
    if (count === 0) {
      if (!failed) this.problem('truncated-document', rel, `${rel} is empty`);
      return;
    }
    if (first !== 'start') this.problem('bad-run', rel, `${rel} begins with a '${first}' document, not a 'start'`);
    else if (uid === undefined) this.problem('bad-run', rel, `${rel}: the start document has no uid`);
    if (!failed && last !== 'stop') this.problem('bad-run', rel, `${rel} ends with a '${last}' document, not a 'stop' (an unfinished run, or a file cut short)`);
    if (uid !== undefined) {
      this.report.runs++;
      const stem = path.basename(file).replace(/\.(msgpack|jsonl)$/, '');
      if (stem !== uid) this.problem('bad-run', rel, `${rel} holds run ${uid}, but document files are named by their start uid`);
      const other = this.uids.get(uid);
      if (other) this.problem('duplicate-run', uid, `run ${uid} is in both ${other} and ${rel}`);
      else this.uids.set(uid, rel);
    }
    for (const m of files.unsafe) this.problem('unsafe-path', rel, `${rel}: ${m} (not looked at)`);
    if (files.unsafeCount > files.unsafe.length) this.problem('unsafe-path', rel, `${rel}: ${files.unsafeCount - files.unsafe.length} more external path(s) refused`);
    for (const spec of files.unknownSpecs) {
      if (this.warnedSpecs.has(spec)) continue;
      this.warnedSpecs.add(spec);
      this.report.warnings.push(`resource spec '${spec}' has no file rule (use --handler ${spec}=BUILTIN); its copied files were checked through the manifests only`);
    }
    await this.checkExternalFiles(files.files, `needed by run ${uid ?? rel}`);
  }

  /** The export's own list of runs it could not write: each one is a run the pack lacks. */
  async checkFailures(): Promise<void> {
    let text: string;
    try {
      text = await readRegularText(path.join(this.dir, 'failures.tsv'), 'failures.tsv', MAX_FAILURES_BYTES);
    } catch (e) {
      this.problem('failed-run', 'failures.tsv', `failures.tsv cannot be read: ${describeError(e)}`);
      return;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      const [uid = '', code = '', ...rest] = line.split('\t');
      this.report.failedRuns++;
      const message = `run ${uid} was not packed (${code}: ${rest.join('\t').replace(/^E_[A-Z_]+: /, '')})`;
      if (this.opts.allowFailures) this.report.warnings.push(message);
      else this.problem('failed-run', uid, message);
    }
  }

  async run(): Promise<VerifyReport> {
    await this.readCatalog();
    const names = (await readdir(this.dir)).sort(byCodePoint);
    this.checkChunks(names);
    this.externalLeftOut = Object.keys(this.rootMap).length === 0 && !names.some((n) => EXT_MANIFEST.test(n));
    const listed = await this.checkDocumentManifests(names);
    await this.checkExternalManifests(names);
    const onDisk = await this.documentFilesOnDisk();
    const onDiskSet = new Set(onDisk);
    if (listed === null && onDisk.length > 0) {
      this.problem('bad-manifest', 'documents_manifest.txt', `no documents manifest lists the ${onDisk.length} document file(s)`);
    } else if (listed !== null) {
      for (const f of onDisk) if (!listed.has(f)) this.problem('unlisted-document', this.rel(f), `${this.rel(f)} is not listed in any documents manifest`);
      if (this.entry) {
        for (const f of listed) {
          if (!onDiskSet.has(f) && (await this.exists(f))) this.problem('bad-manifest', this.rel(f), `${this.rel(f)} is listed, but catalog.yml's paths do not match it, so databroker will not read it`);
        }
      }
    }
    if (names.includes('failures.tsv')) await this.checkFailures();
    const toRead = new Set(onDisk);
    for (const f of listed ?? []) if (await this.exists(f)) toRead.add(f);
    for (const f of [...toRead].sort(byCodePoint)) await this.checkDocumentFile(f);
    return this.report;
  }
}

/** Check a pack directory; resolves with every problem found (it throws only if `dir` is not a directory). */
export async function verifyPack(dir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const abs = path.resolve(dir);
  let isDir = false;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new PackStreamError('E_NO_SOURCE', `${dir} is not a pack directory`, { subject: dir });
  return new Verifier(abs, opts).run();
}
